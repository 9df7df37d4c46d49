"""#11: a device removed from the inventory takes its open alarms with it (closed, with the
reason); what its failure explained on other objects stays open."""

from __future__ import annotations

from oss.faults import tmf_schema
from oss.faults.alarms import AlarmManager
from oss.faults.correlate import link_root_key
from oss.store import Database
from tests.unit.faults.conftest import FakeServices, RecordingFeed, chain_graph
from tests.unit.faults.test_correlate import by_object, down, parent_of, unreachable

REASON = "device removed from inventory"


async def test_removing_a_device_closes_its_alarms_and_frees_what_they_explained(
    db: Database, feed: RecordingFeed
) -> None:
    graph = chain_graph()  # r1 -1- r2 -2- r3, r4 behind r2 on link 3
    manager = AlarmManager(db, lambda: graph, FakeServices(), feed)
    await manager.signal(down("r1:eth1"))  # r1's side of link 1: the link's root
    await manager.signal(unreachable("r2"))  # a node failure: link 1's root and r4 under it
    await manager.signal(unreachable("r4"))
    await manager.signal(unreachable("r3"))  # nothing to do with r2: left alone
    before = await by_object(manager)
    r2 = before["device:r2"]
    assert r2["isRootCause"] and parent_of(before["device:r4"]) == r2["id"]
    assert parent_of(before["link:1"]) == r2["id"]

    changes = await manager.close_removed_device("r2", [1, 2, 3], reason=REASON, user="alice")

    after = await by_object(manager)
    for closed in ("device:r2", "link:1"):
        doc = after[closed]
        assert doc["state"] == "cleared", doc
        assert f"clearReason={REASON}" in doc["alarmDetails"]
        assert doc["clearUserId"] == "alice"
        assert tmf_schema.errors(doc, "Alarm") == [], doc
    # r1's interface and r4 are still down: open, on their own now.
    for still in ("interface:r1:eth1", "device:r4"):
        assert after[still]["state"] != "cleared" and parent_of(after[still]) is None, still
    assert after["device:r3"]["state"] != "cleared"
    assert {doc["id"] for event, doc in changes if event == "cleared"} == {
        r2["id"],
        before["link:1"]["id"],
    }
    assert link_root_key(1) == after["link:1"]["reductionKey"]
    # Nothing left open on r2 for a device added again under its name.
    assert await manager.close_removed_device("r2", [], reason=REASON) == []


async def test_only_the_devices_own_interfaces_are_closed(
    db: Database, feed: RecordingFeed
) -> None:
    """An interface of r1 is "r1:...": not "r10:...", nor LIKE's wildcards ("r1_x", "r1%")."""
    graph = chain_graph()
    manager = AlarmManager(db, lambda: graph, FakeServices(), feed)
    for obj in ("r1:eth9", "r10:eth9", "r1_x:eth9", "r1%:eth9"):
        await manager.signal(down(obj))
    await manager.close_removed_device("r1", [], reason=REASON)
    states = {obj: doc["state"] for obj, doc in (await by_object(manager)).items()}
    assert states == {
        "interface:r1:eth9": "cleared",
        "interface:r10:eth9": "raised",
        "interface:r1_x:eth9": "raised",
        "interface:r1%:eth9": "raised",
    }

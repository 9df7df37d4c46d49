"""AlarmManager: reduction, clearing, the feed in the same transaction, TMF642 rendering."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, select

from oss.errors import Conflict, InvalidInput, NotFound
from oss.faults import tmf_schema
from oss.faults.alarms import AlarmFilter, AlarmManager, Signal
from oss.store import Database
from oss.store.tables import AlarmRow
from tests.bss_rows import alarm_row
from tests.unit.faults.conftest import FakeServices, RecordingFeed, chain_graph, outbox_count

T0 = 1_700_000_000_000_000_000


def sig(kind: str = "raise", key: str = "cpu:r9", *, t: int = 0, severity: str = "major") -> Signal:
    return Signal(
        kind=kind,  # type: ignore[arg-type]
        reduction_key=key,
        alarm_type="processingErrorAlarm",
        severity=severity,
        probable_cause="cpuCyclesLimitExceeded",
        specific_problem="CPU high",
        object_type="device",
        object="r9",  # not in the graph: no correlation
        time_ns=T0 + t * 1_000_000_000,
        details={"cpu": 97},
    )


async def test_repeats_fold_into_one_alarm_with_a_count(manager: AlarmManager) -> None:
    first = await manager.signal(sig(t=0))
    second = await manager.signal(sig(t=5, severity="critical"))
    third = await manager.signal(sig(t=9))

    assert [e for e, _ in first] == ["raised"]
    assert [e for e, _ in second + third] == ["changed", "changed"]
    alarm_id = first[0][1]["id"]
    assert {doc["id"] for _, doc in second + third} == {alarm_id}
    doc = await manager.get(alarm_id)
    assert doc["count"] == 3
    assert doc["state"] == "updated"
    assert doc["perceivedSeverity"] == "major"  # the latest raise's severity
    assert doc["sequence"] == 3
    assert doc["alarmRaisedTime"] == "2023-11-14T22:13:20Z"
    assert doc["alarmChangedTime"] == "2023-11-14T22:13:29Z"
    docs, total = await manager.find()
    assert total == 1 and len(docs) == 1


async def test_clear_closes_the_open_alarm_and_a_new_raise_opens_another(
    manager: AlarmManager,
) -> None:
    raised = await manager.signal(sig(t=0))
    cleared = await manager.signal(sig("clear", t=3))
    assert [e for e, _ in cleared] == ["cleared"]
    doc = cleared[0][1]
    assert doc["id"] == raised[0][1]["id"]
    assert doc["state"] == "cleared"
    assert doc["perceivedSeverity"] == "cleared"
    assert doc["alarmClearedTime"] == "2023-11-14T22:13:23Z"
    assert doc["sequence"] == 2

    assert await manager.signal(sig("clear", t=4)) == []  # nothing open: nothing to clear
    again = await manager.signal(sig(t=5))
    assert again[0][0] == "raised"
    assert again[0][1]["id"] != doc["id"]
    assert again[0][1]["count"] == 1


async def test_every_change_reaches_the_feed_in_the_same_transaction(
    manager: AlarmManager, feed: RecordingFeed, db: Database
) -> None:
    await manager.signal(sig(t=0))
    await manager.signal(sig(t=1))
    await manager.signal(sig("clear", t=2))
    assert [e for e, _ in feed.sent] == ["raised", "changed", "cleared"]
    assert [doc["sequence"] for _, doc in feed.sent] == [1, 2, 3]
    assert await outbox_count(db) == 3


class FailingFeed(RecordingFeed):
    def write_changes(self, conn: Connection, changes: list[tuple[dict[str, Any], str]]) -> int:
        super().write_changes(conn, changes)  # its rows, rolled back with the alarm change
        raise RuntimeError("outbox full")


async def test_a_failing_feed_rolls_the_alarm_change_back(db: Database) -> None:
    manager = AlarmManager(db, chain_graph, FakeServices(), FailingFeed())
    with pytest.raises(RuntimeError, match="outbox full"):
        await manager.signal(sig())
    async with db.transaction() as s:
        assert (await s.scalars(select(AlarmRow))).all() == []
    assert await outbox_count(db) == 0


async def test_rendered_alarms_validate_against_the_official_schema(
    manager: AlarmManager,
) -> None:
    alarm_id = (await manager.signal(sig()))[0][1]["id"]
    await manager.acknowledge(alarm_id, "token:alice#1")
    await manager.signal(sig(t=2))
    await manager.signal(sig("clear", t=3))
    doc = await manager.get(alarm_id)
    assert tmf_schema.errors(doc, "Alarm") == []
    for key in ("id", "href", "alarmType", "perceivedSeverity", "probableCause",
                "specificProblem", "alarmedObject", "alarmedObjectType", "state", "ackState",
                "ackUserId", "alarmRaisedTime", "alarmChangedTime", "alarmClearedTime",
                "serviceAffecting", "affectedService", "correlatedAlarm", "parentAlarm",
                "isRootCause", "count", "sequence"):  # fmt: skip
        assert key in doc, key
    assert doc["alarmedObject"] == {
        "id": "r9",
        "href": "/api/v1/devices/r9",
        "@referredType": "device",
    }
    assert doc["href"] == f"/tmf-api/alarm/v4/alarm/{alarm_id}"


def test_the_schema_helper_refuses_what_the_spec_does() -> None:
    bad = {"id": "1", "alarmRaisedTime": "yesterday", "parentAlarm": [{"href": "x"}]}
    problems = tmf_schema.errors(bad, "Alarm")
    assert any(p.startswith("id:") for p in problems)
    assert any(p.startswith("alarmRaisedTime:") for p in problems)
    assert any(p.startswith("parentAlarm/0:") for p in problems)
    with pytest.raises(InvalidInput):
        tmf_schema.validate(bad, "Alarm")
    assert tmf_schema.base_path() == "/tmf-api/alarm/v4"


async def test_acknowledge_and_manual_clear(manager: AlarmManager, feed: RecordingFeed) -> None:
    alarm_id = (await manager.signal(sig()))[0][1]["id"]
    doc = await manager.acknowledge(alarm_id, "token:alice#1")
    assert doc["ackState"] == "acknowledged"
    assert doc["ackUserId"] == "token:alice#1"
    assert doc["state"] == "raised"
    doc = await manager.clear(alarm_id, "token:alice#1")
    assert doc["state"] == "cleared"
    assert doc["perceivedSeverity"] == "cleared"
    assert [e for e, _ in feed.sent] == ["raised", "changed", "cleared"]
    with pytest.raises(Conflict):
        await manager.clear(alarm_id, "token:alice#1")
    with pytest.raises(NotFound):
        await manager.acknowledge(alarm_id + 100, "x")


async def test_find_filters(manager: AlarmManager) -> None:
    await manager.signal(sig(key="a", severity="minor"))
    b = (await manager.signal(sig(key="b", severity="critical")))[0][1]["id"]
    await manager.signal(sig("clear", key="a"))
    await manager.acknowledge(b, "bob")

    async def ids(**where: Any) -> list[int]:
        docs, total = await manager.find(AlarmFilter(**where))
        assert total == len(docs)
        return [d["id"] for d in docs]

    assert await ids(perceived_severity="critical") == [b]
    assert await ids(state="cleared") == [b - 1]
    assert await ids(ack_state="acknowledged") == [b]
    assert await ids(open=True) == [b]
    assert await ids(alarmed_object="r9") == [b, b - 1]
    assert await ids(alarmed_object="nope") == []
    docs, total = await manager.find(limit=1, offset=1)
    assert total == 2 and [d["id"] for d in docs] == [b - 1]


async def test_reads_do_not_wait_for_a_write_in_progress(
    manager: AlarmManager, db: Database
) -> None:
    # The API's reads of alarms must not queue behind a storm's write batches: with a write
    # transaction open (holding the process's SQLite write turn), get and find still answer,
    # from the last committed state. Were they to wait for the turn, they would give up only
    # after the busy timeout (5 s): the 1 s bound below catches that.
    raised = (await manager.signal(sig(key="a")))[0][1]["id"]
    async with db.transaction() as session:
        session.add(alarm_row(datetime.now(UTC), None, obj="uncommitted"))
        await session.flush()
        docs, total = await asyncio.wait_for(manager.find(), 1.0)
        one = await asyncio.wait_for(manager.get(raised), 1.0)
    assert (total, [d["id"] for d in docs], one["id"]) == (1, [raised], raised)


async def test_live_listeners_hear_committed_changes(manager: AlarmManager) -> None:
    async with manager.broadcast.subscribe() as sub:
        await manager.signal(sig())
        await manager.signal(sig("clear"))
        got = [await asyncio.wait_for(sub.get(), 5) for _ in range(2)]
    assert [(e, d["state"]) for e, d in got] == [("raised", "raised"), ("cleared", "cleared")]
    assert manager.broadcast.subscribers == 0


async def test_a_slow_listener_is_dropped_not_buffered_without_bound(db: Database) -> None:
    manager = AlarmManager(db, chain_graph, FakeServices(), RecordingFeed())
    manager.broadcast = type(manager.broadcast)(queue_size=2)
    async with manager.broadcast.subscribe() as sub:
        for t in range(3):
            await manager.signal(sig(t=t))
        assert sub.lost
        assert (await sub.get()) is not None
        assert (await sub.get()) is not None
        assert (await sub.get()) is None  # dropped: the stream ends instead of waiting


def test_signal_checks_its_kind_and_severity() -> None:
    with pytest.raises(InvalidInput):
        sig(kind="maybe")
    with pytest.raises(InvalidInput):
        sig(severity="apocalyptic")

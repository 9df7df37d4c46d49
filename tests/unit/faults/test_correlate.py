"""Correlation on the topology: link and node failures as root causes with their children."""

from __future__ import annotations

from typing import Any

from oss.faults import tmf_schema
from oss.faults.alarms import AlarmFilter, AlarmManager, Signal
from oss.faults.correlate import link_root_key
from oss.faults.rules import interface_down_key, unreachable_key
from tests.unit.faults.conftest import SVC_A

T0 = 1_700_000_000_000_000_000


def down(obj: str, kind: str = "raise", t: int = 0) -> Signal:
    device, _, interface = obj.partition(":")
    return Signal(
        kind=kind,  # type: ignore[arg-type]
        reduction_key=interface_down_key(device, interface),
        alarm_type="communicationsAlarm",
        severity="major",
        probable_cause="lossOfSignal",
        specific_problem=f"interface {obj} down",
        object_type="interface",
        object=obj,
        time_ns=T0 + t,
    )


def unreachable(device: str, kind: str = "raise", t: int = 0) -> Signal:
    return Signal(
        kind=kind,  # type: ignore[arg-type]
        reduction_key=unreachable_key(device),
        alarm_type="communicationsAlarm",
        severity="critical",
        probable_cause="communicationsSubsystemFailure",
        specific_problem=f"device {device} unreachable",
        object_type="device",
        object=device,
        time_ns=T0 + t,
    )


async def by_object(manager: AlarmManager) -> dict[str, dict[str, Any]]:
    docs, _ = await manager.find(limit=1000)
    for doc in docs:
        assert tmf_schema.errors(doc, "Alarm") == [], doc
    return {f"{d['alarmedObjectType']}:{d['alarmedObject']['id']}": d for d in docs}


def parent_of(doc: dict[str, Any]) -> int | None:
    return int(doc["parentAlarm"][0]["id"]) if doc["parentAlarm"] else None


async def test_a_link_failure_is_one_root_with_its_far_end_devices_and_services_under_it(
    manager: AlarmManager,
) -> None:
    await manager.signal(down("r2:eth3"))
    await manager.signal(unreachable("r4"))  # r4 hangs off link 3 only: cut off
    await manager.signal(down("r4:eth1"))  # the far end
    alarms = await by_object(manager)

    root = alarms["link:3"]
    assert root["isRootCause"] is True
    assert root["serviceAffecting"] is True
    assert root["perceivedSeverity"] == "critical"
    assert [s["id"] for s in root["affectedService"]] == ["svc-a"]
    assert root["impact"]["customers"] == ["acme"]
    assert root["impact"]["isolatedDevices"] == ["r4"]
    assert root["alarmedObject"]["href"] == "/api/v1/links/3"
    children = {"interface:r2:eth3", "interface:r4:eth1", "device:r4", "service:svc-a"}
    assert set(alarms) == children | {"link:3"}
    for name in children:
        assert parent_of(alarms[name]) == root["id"], name
        assert alarms[name]["isRootCause"] is False
    assert sorted(int(r["id"]) for r in root["correlatedAlarm"]) == sorted(
        alarms[n]["id"] for n in children
    )
    assert alarms["service:svc-a"]["serviceAffecting"] is True

    # One end back up: the link is still down.
    await manager.signal(down("r2:eth3", "clear", 1))
    alarms = await by_object(manager)
    assert alarms["link:3"]["state"] == "raised"
    assert alarms["interface:r2:eth3"]["state"] == "cleared"
    # Both ends up: the root clears and takes every alarm it explains with it.
    await manager.signal(down("r4:eth1", "clear", 2))
    alarms = await by_object(manager)
    assert {n: d["state"] for n, d in alarms.items()} == dict.fromkeys(alarms, "cleared")
    _, still_open = await manager.find(AlarmFilter(open=True))
    assert still_open == 0


async def test_the_root_is_raised_once_however_many_ends_report(manager: AlarmManager) -> None:
    await manager.signal(down("r1:eth1"))
    await manager.signal(down("r2:eth1"))
    await manager.signal(down("r1:eth1"))  # a repeat
    docs, _ = await manager.find(AlarmFilter(alarmed_object_type="link"))
    assert len(docs) == 1 and docs[0]["count"] == 1
    assert len(docs[0]["correlatedAlarm"]) == 2
    assert docs[0]["affectedService"] == []  # no service on link 1...
    assert docs[0]["impact"]["isolatedDevices"] == ["r1"]  # ...but r1 is cut off
    assert docs[0]["serviceAffecting"] is True


async def test_a_node_failure_adopts_link_roots_neighbour_interfaces_and_services(
    manager: AlarmManager,
) -> None:
    await manager.signal(down("r1:eth1"))  # seen first: looks like link 1 failed
    await manager.signal(unreachable("r2"))  # then: r2 itself is gone
    await manager.signal(down("r3:eth1"))  # r3's side facing r2
    await manager.signal(unreachable("r3"))  # cut off behind r2
    alarms = await by_object(manager)

    root = alarms["device:r2"]
    assert root["isRootCause"] is True
    assert root["impact"]["services"] == ["svc-a", "svc-b"]
    assert root["impact"]["customers"] == ["acme", "globex"]
    assert set(root["impact"]["isolatedDevices"]) == {"r3", "r4"}
    assert alarms["link:1"]["isRootCause"] is False  # demoted: explained by the node
    assert parent_of(alarms["link:1"]) == root["id"]
    assert parent_of(alarms["interface:r1:eth1"]) == alarms["link:1"]["id"]
    assert parent_of(alarms["interface:r3:eth1"]) == root["id"]
    assert parent_of(alarms["device:r3"]) == root["id"]
    assert parent_of(alarms["service:svc-a"]) == root["id"]
    assert parent_of(alarms["service:svc-b"]) == root["id"]

    await manager.signal(unreachable("r2", "clear", 5))
    alarms = await by_object(manager)
    assert {n: d["state"] for n, d in alarms.items()} == dict.fromkeys(alarms, "cleared")


async def test_an_interface_without_a_link_or_an_unknown_device_stays_a_plain_alarm(
    manager: AlarmManager,
) -> None:
    await manager.signal(down("r1:eth9"))
    await manager.signal(unreachable("r99"))
    alarms = await by_object(manager)
    assert set(alarms) == {"interface:r1:eth9", "device:r99"}
    for doc in alarms.values():
        assert doc["parentAlarm"] == [] and doc["isRootCause"] is False


async def test_keys_used_for_roots() -> None:
    assert link_root_key(3) == "linkFailure:link:3"


async def test_a_service_cut_by_two_failures_stays_down_until_both_end(
    manager: AlarmManager, services: Any
) -> None:
    services.on_link[1] = [SVC_A]
    services.on_link[2] = [SVC_A]
    await manager.signal(down("r1:eth1"))  # link 1 down: svc-a alarm under its root
    await manager.signal(down("r2:eth2"))  # link 2 down too: svc-a is explained by both
    alarms = await by_object(manager)
    service, first, second = alarms["service:svc-a"], alarms["link:1"], alarms["link:2"]
    assert parent_of(service) == first["id"]

    await manager.signal(down("r1:eth1", "clear", 1))  # link 1 back: link 2 still cuts it
    alarms = await by_object(manager)
    assert alarms["link:1"]["state"] == "cleared"
    assert alarms["service:svc-a"]["state"] != "cleared"
    assert parent_of(alarms["service:svc-a"]) == second["id"]

    await manager.signal(down("r2:eth2", "clear", 2))  # both back: the service is up
    alarms = await by_object(manager)
    assert alarms["service:svc-a"]["state"] == "cleared"
    _, still_open = await manager.find(AlarmFilter(open=True))
    assert still_open == 0

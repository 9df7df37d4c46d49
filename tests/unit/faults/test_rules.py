"""Rules: canonical events to signals (interface status, traps, reachability, thresholds)."""

from __future__ import annotations

from typing import Any

import pytest

from oss.errors import InvalidInput
from oss.events import Event
from oss.faults.rules import Rules, Threshold, interface_down_key, unreachable_key

S = 1_000_000_000


def iface(oper: str, admin: str = "up", *, t: int = 0, name: str = "eth1") -> Event:
    return Event(
        "interface",
        t * S,
        {"device": "r1", "interface": name, "ifindex": "2"},
        {"oper-status": oper, "admin-status": admin, "in-octets": 5},
    )


def trap(oid: str, *, name: str | None = None, values: dict[str, Any] | None = None,
         ifindex: str | None = "2") -> Event:  # fmt: skip
    tags = {"device": "r1", "source": "127.0.0.1:1162", "trap": name or oid, "trap_oid": oid}
    if ifindex is not None:
        tags["ifindex"] = ifindex
    return Event("snmp.trap", 0, tags, values or {})


def kinds(signals: list[Any]) -> list[tuple[str, str]]:
    return [(s.kind, s.reduction_key) for s in signals]


def test_interface_status_changes_raise_and_clear_once() -> None:
    rules = Rules()
    key = interface_down_key("r1", "eth1")
    assert kinds(rules.signals(iface("up"))) == [("clear", key)]  # first sight: settle state
    assert rules.signals(iface("up", t=1)) == []
    down = rules.signals(iface("down", t=2))
    assert kinds(down) == [("raise", key)]
    assert down[0].object == "r1:eth1" and down[0].object_type == "interface"
    assert down[0].time_ns == 2 * S
    assert rules.signals(iface("down", t=3)) == []  # the poll repeats it: no news
    assert kinds(rules.signals(iface("up", t=4))) == [("clear", key)]


def test_an_interface_shut_on_purpose_is_not_a_fault() -> None:
    rules = Rules()
    assert kinds(rules.signals(iface("down", "down"))) == [
        ("clear", interface_down_key("r1", "eth1"))
    ]
    assert rules.signals(iface("down", "down", t=1)) == []
    assert rules.signals(iface("testing")) == []


def test_link_traps_share_the_key_of_the_polled_status() -> None:
    rules = Rules()
    down = rules.signals(trap("1.3.6.1.6.3.1.1.5.3", values={"ifName.2": "eth1"}))
    assert kinds(down) == [("raise", interface_down_key("r1", "eth1"))]
    assert down[0].details["source"] == "trap"
    assert rules.signals(iface("down", t=1)) == []  # the poll confirms what the trap said
    # A repeated trap is raised again (the manager counts it).
    assert len(rules.signals(trap("1.3.6.1.6.3.1.1.5.3", values={"ifName.2": "eth1"}))) == 1
    up = rules.signals(trap("1.3.6.1.6.3.1.1.5.4", values={"ifDescr.2": "eth1"}))
    assert kinds(up) == [("clear", interface_down_key("r1", "eth1"))]


def test_trap_interface_names_come_from_varbinds_then_the_resolver_then_the_index() -> None:
    named = Rules(interface_name=lambda dev, idx: {"2": "ge-0/0/1"}.get(idx))
    assert named.signals(trap("1.3.6.1.6.3.1.1.5.3"))[0].object == "r1:ge-0/0/1"
    assert Rules().signals(trap("1.3.6.1.6.3.1.1.5.3"))[0].object == "r1:ifIndex.2"
    # linkDown without any ifIndex: kept as a generic event, not lost.
    generic = Rules().signals(trap("1.3.6.1.6.3.1.1.5.3", ifindex=None))
    assert generic[0].object_type == "device" and generic[0].probable_cause == "unknown"


@pytest.mark.parametrize(
    ("oid", "cause", "severity", "alarm_type"),
    [
        ("1.3.6.1.6.3.1.1.5.1", "coldStart", "warning", "equipmentAlarm"),
        ("1.3.6.1.6.3.1.1.5.2", "warmStart", "indeterminate", "equipmentAlarm"),
        (
            "1.3.6.1.6.3.1.1.5.5",
            "authenticationFailure",
            "warning",
            "securityServiceOrMechanismViolation",
        ),
    ],
)
def test_event_traps(oid: str, cause: str, severity: str, alarm_type: str) -> None:
    (s,) = Rules().signals(trap(oid, values={"sysUpTime.0": 12}))
    assert (s.kind, s.probable_cause, s.severity, s.alarm_type) == (
        "raise",
        cause,
        severity,
        alarm_type,
    )
    assert s.object == "r1" and s.reduction_key == f"{cause}:r1"
    assert s.details["sysUpTime.0"] == 12


def test_unknown_traps_are_kept_as_generic_event_alarms() -> None:
    (s,) = Rules().signals(trap("1.3.6.1.4.1.9999.0.7", values={"1.3.6.1.4.1.9999.1": "x"}))
    assert s.kind == "raise"
    assert s.reduction_key == "trap:r1:1.3.6.1.4.1.9999.0.7"
    assert s.severity == "indeterminate"
    assert "1.3.6.1.4.1.9999.0.7" in s.specific_problem


def test_reachability_raises_once_and_clears_on_recovery() -> None:
    rules = Rules()

    def reach(ok: bool) -> list[tuple[str, str]]:
        return kinds(rules.signals(Event("device.reachability", 0, {"device": "r2"},
                                         {"reachable": ok})))  # fmt: skip

    assert reach(False) == [("raise", unreachable_key("r2"))]
    assert reach(False) == []
    assert reach(True) == [("clear", unreachable_key("r2"))]
    assert reach(True) == []


def kpi(value: float, t: float, metric: str = "in-utilisation") -> Event:
    return Event("kpi.interface", int(t * S), {"device": "r1", "interface": "eth1"},
                 {metric: value})  # fmt: skip


def test_threshold_needs_the_minimum_duration_and_clears_below_the_hysteresis() -> None:
    rules = Rules(
        [
            {
                "metric": "in-utilisation",
                "raise_above": 0.9,
                "clear_below": 0.7,
                "min_duration_s": 30,
                "severity": "minor",
            }
        ]
    )
    assert rules.signals(kpi(0.95, 0)) == []  # above, but not for long enough yet
    assert rules.signals(kpi(0.5, 10)) == []  # dipped: the clock restarts
    assert rules.signals(kpi(0.95, 20)) == []
    assert rules.signals(kpi(0.97, 40)) == []  # 20 s above
    (raised,) = rules.signals(kpi(0.96, 50))  # 30 s above
    assert (raised.kind, raised.severity, raised.object) == ("raise", "minor", "r1:eth1")
    assert raised.reduction_key == "tca:in-utilisation:r1:eth1"
    assert raised.details["value"] == 0.96
    assert rules.signals(kpi(0.99, 60)) == []  # still above: already raised
    assert rules.signals(kpi(0.8, 70)) == []  # inside the hysteresis band: stays raised
    (cleared,) = rules.signals(kpi(0.6, 80))
    assert cleared.kind == "clear" and cleared.reduction_key == raised.reduction_key
    assert rules.signals(kpi(0.6, 90)) == []


def test_thresholds_are_per_object_and_metric_and_ignore_other_values() -> None:
    rules = Rules([Threshold("error-ratio", raise_above=0.01, clear_below=0.001)])
    assert len(rules.signals(kpi(0.5, 0, "error-ratio"))) == 1  # no minimum duration
    other = Event("kpi.interface", 0, {"device": "r1", "interface": "eth2"}, {"error-ratio": 0.5})
    assert kinds(rules.signals(other)) == [("raise", "tca:error-ratio:r1:eth2")]
    assert rules.signals(kpi(0.5, 1, "in-utilisation")) == []
    assert rules.signals(Event("kpi.interface", 0, {"device": "r1"}, {"error-ratio": 1.0})) == []


def test_thresholds_refuse_inverted_levels() -> None:
    with pytest.raises(InvalidInput):
        Threshold("x", raise_above=0.5, clear_below=0.9)
    with pytest.raises(InvalidInput):
        Threshold.of({"metric": "x", "raise_above": "high"})


def test_events_without_a_device_or_of_other_kinds_make_nothing() -> None:
    assert Rules().signals(Event("interface", 0, {}, {"oper-status": "down"})) == []
    assert Rules().signals(Event("gnmi.update", 0, {"device": "r1"}, {"x": 1})) == []

"""Rules: canonical events to signals (interface status, traps, reachability, thresholds)."""

from __future__ import annotations

from typing import Any

import pytest

from oss.errors import InvalidInput
from oss.events import Event
from oss.faults.notifications import Notification, Notifications
from oss.faults.rules import (
    AUTH_EVENT,
    Rules,
    auth_failure_key,
    interface_down_key,
    unreachable_key,
)
from oss.settings import Threshold

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


LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
COLD_START, WARM_START = "1.3.6.1.6.3.1.1.5.1", "1.3.6.1.6.3.1.1.5.2"
NS_SHUTDOWN, NS_RESTART = "1.3.6.1.4.1.8072.4.0.2", "1.3.6.1.4.1.8072.4.0.3"


def link_trap(oid: str, admin: int, oper: int = 2) -> Event:
    """A linkDown/linkUp as Net-SNMP sends it: ifIndex, ifAdminStatus, ifOperStatus."""
    return trap(oid, values={"ifIndex.2": 2, "ifAdminStatus.2": admin, "ifOperStatus.2": oper})


def test_an_administrative_shutdown_trap_raises_no_alarm() -> None:
    """#9: `ip link set X down` sends linkDown with ifAdminStatus down(2): shut on purpose, as
    polling treats it (a clear, no raise), and the next poll of it is no news."""
    rules = Rules(interface_name=lambda dev, idx: "eth1")
    key = interface_down_key("r1", "eth1")
    assert kinds(rules.signals(link_trap(LINK_DOWN, admin=2))) == [("clear", key)]
    assert rules.signals(iface("down", "down", t=1)) == []
    assert kinds(rules.signals(link_trap(LINK_UP, admin=1, oper=1))) == [("clear", key)]


def test_an_administrative_shutdown_trap_clears_the_link_alarm_like_a_poll() -> None:
    """A link that failed (admin up) and is then shut on purpose: the alarm clears, as the poll
    of (oper down, admin down) would clear it."""
    by_trap = Rules(interface_name=lambda dev, idx: "eth1")
    by_poll = Rules()
    key = interface_down_key("r1", "eth1")
    assert kinds(by_trap.signals(link_trap(LINK_DOWN, admin=1))) == [("raise", key)]
    assert kinds(by_poll.signals(iface("down", "up"))) == [("raise", key)]
    assert kinds(by_trap.signals(link_trap(LINK_DOWN, admin=2))) == [("clear", key)]
    assert kinds(by_poll.signals(iface("down", "down", t=1))) == [("clear", key)]


def test_agent_shutdown_is_named_and_cleared_by_its_restart() -> None:
    """#10: nsNotifyShutdown raises "SNMP agent shut down" (named from the table, not its
    OID), which the agent's coldStart clears; the coldStart itself raises nothing."""
    rules = Rules()
    (down,) = rules.signals(trap(NS_SHUTDOWN, ifindex=None, values={"sysUpTime.0": 9}))
    assert (down.kind, down.reduction_key) == ("raise", "nsNotifyShutdown:r1")
    assert down.specific_problem == "SNMP agent shut down"
    assert down.probable_cause == "nsNotifyShutdown" and NS_SHUTDOWN not in down.specific_problem
    assert (down.object_type, down.object, down.severity) == ("device", "r1", "minor")
    for counterpart in (COLD_START, WARM_START, NS_RESTART):
        assert kinds(rules.signals(trap(counterpart, ifindex=None))) == [
            ("clear", "nsNotifyShutdown:r1")
        ]


def test_authentication_failure_traps_stay_counted_alarms() -> None:
    (s,) = Rules().signals(trap("1.3.6.1.6.3.1.1.5.5", ifindex=None, values={"sysUpTime.0": 12}))
    assert (s.kind, s.probable_cause, s.severity, s.alarm_type) == (
        "raise",
        "authenticationFailure",
        "warning",
        "securityServiceOrMechanismViolation",
    )
    assert s.object == "r1" and s.reduction_key == "authenticationFailure:r1"
    assert s.details["sysUpTime.0"] == 12


def test_the_notifications_come_from_the_table_given() -> None:
    table = Notifications(
        {
            "vendorLinkDown": Notification("vendorLinkDown", "1.3.6.1.4.1.9.9.1", "link-down"),
            "fanFail": Notification(
                "fanFail", "1.3.6.1.4.1.9.9.2", "alarm", (), "fan failed", "equipmentAlarm"
            ),
            "fanOk": Notification("fanOk", "1.3.6.1.4.1.9.9.3", "event", ("fanFail",)),
        }
    )
    rules = Rules(notifications=table)
    assert kinds(rules.signals(trap("1.3.6.1.4.1.9.9.1"))) == [
        ("raise", interface_down_key("r1", "ifIndex.2"))
    ]
    assert kinds(rules.signals(trap("1.3.6.1.4.1.9.9.2"))) == [("raise", "fanFail:r1")]
    assert kinds(rules.signals(trap("1.3.6.1.4.1.9.9.3"))) == [("clear", "fanFail:r1")]
    # linkDown is not in this table: a generic event alarm named by its OID.
    (generic,) = rules.signals(trap(LINK_DOWN))
    assert generic.reduction_key == f"trap:r1:{LINK_DOWN}"


def auth(ok: bool, t: int = 0) -> Event:
    return Event(AUTH_EVENT, t * S, {"device": "r1", "protocol": "gnmi"},
                 {"ok": ok, "reason": "Subscribe: bad username or password"})  # fmt: skip


def test_authentication_refusals_raise_once_and_clear_when_accepted() -> None:
    rules = Rules()
    key = auth_failure_key("r1", "gnmi")
    (raised,) = rules.signals(auth(False))
    assert (raised.kind, raised.reduction_key, raised.object) == ("raise", key, "r1")
    assert raised.details["reason"] == "Subscribe: bad username or password"
    assert rules.signals(auth(False, 1)) == []  # another retry refused: the same alarm
    assert kinds(rules.signals(auth(True, 2))) == [("clear", key)]
    assert rules.signals(auth(True, 3)) == []


def test_a_device_forgotten_gets_its_alarms_raised_afresh() -> None:
    """A device removed from the inventory (its alarms closed) and added again: its state as
    last seen is no news any more."""
    rules = Rules()
    assert kinds(rules.signals(iface("down")))[0][0] == "raise"
    assert kinds(rules.signals(auth(False)))[0][0] == "raise"
    rules.forget_device("r1")
    assert kinds(rules.signals(iface("down", t=1))) == [("raise", interface_down_key("r1", "eth1"))]
    assert kinds(rules.signals(auth(False, 1))) == [("raise", auth_failure_key("r1", "gnmi"))]


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

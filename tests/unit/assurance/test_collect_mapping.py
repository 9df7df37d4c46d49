"""What the collectors make of driver events, and their settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from oss.assurance.gnmi_collector import interface_event
from oss.assurance.poller import mark_counter32, reachability_event
from oss.events import Event
from oss.settings import PollerSettings


def update(path: str, interface: str | None, **values: object) -> Event:
    tags = {"device": "r1", "path": path}
    if interface:
        tags["interface"] = interface
    return Event("gnmi.update", 5, tags, values)  # type: ignore[arg-type]


def test_gnmi_counters_and_state_become_interface_events() -> None:
    counters = interface_event(
        update("interfaces/interface[name=eth1]/state/counters", "eth1", **{"in-octets": 7})
    )
    assert counters == Event(
        "interface", 5, {"device": "r1", "interface": "eth1"}, {"in-octets": 7}
    )
    state = interface_event(
        update("interfaces/interface[name=eth1]/state", "eth1", **{"oper-status": "DOWN"})
    )
    assert state is not None and state.values == {"oper-status": "down"}


def test_gnmi_other_containers_are_not_interface_events() -> None:
    sub = "interfaces/interface[name=eth1]/subinterfaces/subinterface[index=0]/state/counters"
    assert interface_event(update(sub, "eth1", **{"in-octets": 1})) is None
    assert interface_event(update("system/state", None, hostname="r1")) is None
    deleted = Event("gnmi.delete", 5, {"device": "r1", "path": "x", "interface": "eth1"})
    assert interface_event(deleted) is None


def test_counter32_columns_are_marked() -> None:
    event = Event("interface", 1, {"device": "r1"}, {"in-octets": 1, "in-errors": 2})
    marked = mark_counter32(event)
    assert marked.values == {"in-octets": 1, "in-errors": 2, "in-errors-bits": 32}
    plain = Event("interface", 1, {"device": "r1"}, {"in-octets": 1})
    assert mark_counter32(plain) is plain


def test_poller_settings() -> None:
    settings = PollerSettings(interval_s=30, intervals_s={"core1": 10})
    assert settings.interval_for("core1") == 10
    assert settings.interval_for("edge1") == 30
    with pytest.raises(ValidationError):
        PollerSettings(jitter_ratio=1.5)
    assert reachability_event("r1", False, 9) == Event(
        "device.reachability", 9, {"device": "r1"}, {"reachable": False}
    )

"""The one event type that flows between stages: collectors produce it, processors map lists
of it, outputs consume it (after gnmic's EventMsg).

It is a slotted frozen dataclass rather than a pydantic model because telemetry makes many
of them per second; validation belongs where the data enters (drivers), not on every hop.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Value = int | float | str | bool

# The names of the events that more than one stage reads: collectors make them, outputs and
# the fault rules consume them without importing the collector that made them.
INTERFACE = "interface"  # an interface's counters and status, as read (SNMP row, gNMI update)
KPI_INTERFACE = "kpi.interface"  # rates, utilisation and error ratio computed from two of those
# a service's measured latency-ms, jitter-ms and loss-pct (active probes), tags service, device
KPI_SERVICE = "kpi.service"
REACHABILITY = "device.reachability"  # values {"reachable": bool}, on every change


@dataclass(frozen=True, slots=True)
class Event:
    name: str  # what it is: "interface", "snmp.trap", "gnmi.update", "device.reachability"
    timestamp_ns: int  # when the device says it happened (or when we saw it, if it does not)
    tags: Mapping[str, str] = field(default_factory=dict)  # device, interface, path, ...
    values: Mapping[str, Value] = field(default_factory=dict)  # in-octets, oper-status, ...

    @property
    def device(self) -> str | None:
        return self.tags.get("device")


def now_ns() -> int:
    return time.time_ns()


class InterfaceNames:
    """Interface names by (device, ifindex), learned from the "interface" events that carry
    both: a trap names an interface by its ifIndex only. Call it as `names(device, ifindex)`."""

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], str] = {}

    def learn(self, events: Iterable[Event]) -> None:
        for event in events:
            if event.name == INTERFACE:
                tags = event.tags
                if "ifindex" in tags:
                    self._names[(tags["device"], tags["ifindex"])] = tags["interface"]

    def __call__(self, device: str, ifindex: str) -> str | None:
        return self._names.get((device, ifindex))

"""The simulated device's model: one source of truth that every protocol server reads and writes.

Configuration is a flat map of leaf paths to values, in gNMI path syntax without the leading
slash, OpenConfig-shaped: `interfaces/interface[name=eth1]/config/description`. NETCONF XML,
gNMI JSON, CLI lines and SNMP sets are all translated to and from these leaves by their servers,
so config pushed by any protocol is visible through all of them.

Besides `interfaces`, the configuration holds subinterfaces (VLAN, IPv4 addresses),
`network-instances` and `qos`: `lab.sim.schema` describes every leaf, `lab.sim.datastore`
validates a whole configuration before any protocol may apply it.

A management-plane fault: `reply_delay_s` holds back every answer of the NETCONF, gNMI (unary
RPCs) and CLI servers that long (the request itself is carried out at once), so a client with a
short timeout gives up, as it would with an overloaded device.

Operational state (oper-status, counters) is derived: an interface is oper-up when it is
admin-enabled, its node is up and its link (if cabled) is up. Counters advance lazily from the
simulated traffic rate, computed when read, so hundreds of idle devices cost nothing.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

LeafValue = str | int | float | bool
Leaves = dict[str, LeafValue]

# Events listeners receive: what changed, where.
ChangeKind = Literal["oper-status", "config", "node"]


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    device: str
    interface: str | None = None
    up: bool | None = None  # for oper-status and node
    paths: tuple[str, ...] = ()  # for config
    timestamp_ns: int = field(default_factory=time.time_ns)


Listener = Callable[[Change], None]

_KEYED = re.compile(r"^([^\[]+)\[([^=\]]+)=([^\]]+)\]$")


def iface_path(name: str, leaf: str) -> str:
    return f"interfaces/interface[name={name}]/{leaf}"


def split_path(path: str) -> list[tuple[str, dict[str, str]]]:
    """`a/b[name=x]/c` -> [("a", {}), ("b", {"name": "x"}), ("c", {})]. Keys hold no '/'."""
    parts: list[tuple[str, dict[str, str]]] = []
    for elem in _elements(path.strip("/")):
        match = _KEYED.match(elem)
        if match:
            parts.append((match.group(1), {match.group(2): match.group(3)}))
        else:
            parts.append((elem, {}))
    return parts


def _elements(path: str) -> Iterator[str]:
    depth, start = 0, 0
    for i, ch in enumerate(path):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "/" and depth == 0:
            yield path[start:i]
            start = i + 1
    if path[start:]:
        yield path[start:]


@dataclass
class SimInterface:
    name: str
    index: int  # ifIndex
    speed_bps: int = 10_000_000_000
    link_up: bool = False  # cabled to a link that is up
    rate_bps: int = 0  # simulated traffic each way while oper-up
    loss: float = 0.0  # fraction of packets lost on the link
    latency_us: int = 0  # added by fault injection
    _octets_base: float = 0.0  # sent up to _since_ns
    _received_base: float = 0.0  # of those, what arrived (loss applies from when it is set)
    _since_ns: int = field(default_factory=time.monotonic_ns)
    last_change_ns: int = field(default_factory=time.time_ns)


class SimDevice:
    """One simulated device. Not thread-safe: used from one asyncio loop."""

    def __init__(self, name: str, *, interfaces: list[str], sys_descr: str = "oss lab-sim") -> None:
        self.name = name
        self.sys_descr = sys_descr
        self.sys_object_id = "1.3.6.1.4.1.8072.3.2.10"  # net-snmp's Linux agent OID
        self.node_up = True
        self._boot_ns = time.monotonic_ns()
        self.interfaces: dict[str, SimInterface] = {}
        self.running: Leaves = {}
        self._listeners: list[Listener] = []
        self.reply_delay_s = 0.0  # management-plane fault: answers wait this long
        self._delay_changed = asyncio.Event()  # wakes waiting replies when the delay changes
        for i, ifname in enumerate(interfaces, start=1):
            self.add_interface(ifname, index=i)

    # --- listeners -------------------------------------------------------------------------

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on every change; returns a function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    # --- management-plane delay --------------------------------------------------------------

    def set_reply_delay(self, seconds: float) -> None:
        """Delay every answer from now on; replies already waiting re-check the new delay (so
        setting 0 lets them go at once)."""
        self.reply_delay_s = seconds
        waking, self._delay_changed = self._delay_changed, asyncio.Event()
        waking.set()

    async def delay_reply(self) -> None:
        """Wait out `reply_delay_s` (counted from the call) before a server answers."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while (remaining := start + self.reply_delay_s - loop.time()) > 0:
            changed = self._delay_changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return

    # --- interfaces and operational state ---------------------------------------------------

    def add_interface(
        self, name: str, *, index: int | None = None, speed_bps: int = 10**10
    ) -> None:
        idx = index if index is not None else len(self.interfaces) + 1
        self.interfaces[name] = SimInterface(name=name, index=idx, speed_bps=speed_bps)
        self.running.setdefault(iface_path(name, "config/name"), name)
        self.running.setdefault(iface_path(name, "config/enabled"), True)
        self.running.setdefault(iface_path(name, "config/description"), "")
        self.running.setdefault(iface_path(name, "config/mtu"), 1500)

    def uptime_ticks(self) -> int:
        """sysUpTime in hundredths of a second."""
        return (time.monotonic_ns() - self._boot_ns) // 10_000_000

    def admin_up(self, ifname: str) -> bool:
        return bool(self.running.get(iface_path(ifname, "config/enabled"), True))

    def oper_up(self, ifname: str) -> bool:
        return self.node_up and self.admin_up(ifname) and self.interfaces[ifname].link_up

    def set_link_up(self, ifname: str, up: bool) -> None:
        """The link at this interface went up or down (called by the lab, for both ends)."""
        self._with_oper_change(ifname, lambda: setattr(self.interfaces[ifname], "link_up", up))

    def set_node_up(self, up: bool) -> None:
        before = {n: self.oper_up(n) for n in self.interfaces}
        self._settle_counters()
        self.node_up = up
        if up:
            self._boot_ns = time.monotonic_ns()  # a node that comes back has rebooted
        self._emit(Change(kind="node", device=self.name, up=up))
        self._emit_oper_changes(before)

    def _with_oper_change(self, ifname: str, mutate: Callable[[], None]) -> None:
        before = {ifname: self.oper_up(ifname)}
        self._settle_counters()
        mutate()
        self._emit_oper_changes(before)

    def _emit_oper_changes(self, before: dict[str, bool]) -> None:
        for name, was in before.items():
            now = self.oper_up(name)
            if now != was:
                self.interfaces[name].last_change_ns = time.time_ns()
                self._emit(Change(kind="oper-status", device=self.name, interface=name, up=now))

    # --- counters ---------------------------------------------------------------------------

    def counters(self, ifname: str) -> dict[str, int]:
        """64-bit counters as of now (octets and unicast packets each way, errors, discards)."""
        iface = self.interfaces[ifname]
        accrued = self._accrued(iface)
        octets = int(iface._octets_base + accrued)
        received = int(iface._received_base + accrued * (1.0 - iface.loss))
        mask = (1 << 64) - 1
        return {
            "in-octets": received & mask,
            "out-octets": octets & mask,
            "in-unicast-pkts": (received // 1000) & mask,
            "out-unicast-pkts": (octets // 1000) & mask,
            "in-errors": 0,
            "out-errors": 0,
            "in-discards": (octets - received) // 1000,
            "out-discards": 0,
        }

    def set_traffic(self, ifname: str, rate_bps: int) -> None:
        self._settle_counters()
        self.interfaces[ifname].rate_bps = rate_bps

    def set_impairment(
        self, ifname: str, *, latency_us: int | None = None, loss: float | None = None
    ) -> None:
        self._settle_counters()
        iface = self.interfaces[ifname]
        if latency_us is not None:
            iface.latency_us = latency_us
        if loss is not None:
            iface.loss = loss

    def _accrued(self, iface: SimInterface) -> float:
        if not self.oper_up(iface.name):
            return 0.0
        return iface.rate_bps / 8 * (time.monotonic_ns() - iface._since_ns) / 1e9

    def _settle_counters(self) -> None:
        """Fold the traffic so far into the base, before anything that changes the rate."""
        now = time.monotonic_ns()
        for iface in self.interfaces.values():
            accrued = self._accrued(iface)
            iface._octets_base += accrued
            iface._received_base += accrued * (1.0 - iface.loss)
            iface._since_ns = now

    # --- configuration ----------------------------------------------------------------------

    def get_leaves(self, prefix: str = "") -> Leaves:
        prefix = prefix.strip("/")
        return {
            p: v
            for p, v in self.running.items()
            if not prefix or p == prefix or p.startswith(prefix + "/")
        }

    def apply(self, new_running: Leaves) -> None:
        """Replace the running configuration; operational state follows."""
        before = {n: self.oper_up(n) for n in self.interfaces}
        self._settle_counters()
        changed = tuple(
            sorted(
                p
                for p in set(self.running) | set(new_running)
                if self.running.get(p) != new_running.get(p)
            )
        )
        self.running = dict(new_running)
        if changed:
            self._emit(Change(kind="config", device=self.name, paths=changed))
        self._emit_oper_changes(before)

    def snapshot(self) -> Leaves:
        return copy.copy(self.running)

"""The console's map as one JSON document (`GET /api/v1/map`): the inventory graph in memory,
the open alarms summed up per object (one grouped query, `oss.faults.summary`), the view's
positions (one query) and the links' latest utilisation (one query, kept `UTILISATION_TTL_S`),
never a query per device or link.

A device takes the most severe open alarm on it or on one of its interfaces; a link the most
severe on it or on its two end interfaces, and is down when it is set down or either end's
oper_state is down. The serialised document is kept per request shape (`MapCache`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from oss.api.map_layouts import Layouts
from oss.faults.summary import OpenAlarms, Worst
from oss.store import Database
from oss.store.kpi_latest import latest_kpis
from oss.store.map_views import Point
from topology.graph import InventoryGraph
from topology.model import Endpoint, Link, LinkState, OperState

UTILISATION_METRICS = ("in-utilisation", "out-utilisation")
UTILISATION_WINDOW = timedelta(minutes=10)  # older roll-ups say nothing about the link now
UTILISATION_TTL_S = 15.0  # the console polls every 30 s; one query serves all its sessions
_CACHED_SHAPES = 16  # views x neighbourhoods kept serialised


def now_text(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------- alarms roll-up


@dataclass(frozen=True)
class Severities:
    """The open alarms rolled up onto what the map draws."""

    devices: dict[str, Worst]
    interfaces: dict[str, Worst]  # "device:interface"
    links: dict[int, Worst]

    @classmethod
    def of(cls, alarms: OpenAlarms, graph: InventoryGraph) -> Severities:
        devices: dict[str, Worst] = {}
        interfaces: dict[str, Worst] = {}
        links: dict[int, Worst] = {}
        for (object_type, name), worst in alarms.items():
            if object_type == "device":
                devices[name] = worst + devices.get(name)
            elif object_type == "interface":
                device, _, interface = name.partition(":")
                devices[device] = worst + devices.get(device)
                interfaces[name] = worst + interfaces.get(name)
                carried = _link_at(graph, device, interface)
                if carried is not None and carried.id is not None:
                    links[carried.id] = worst + links.get(carried.id)
            elif object_type == "link" and name.isdigit():
                links[int(name)] = worst + links.get(int(name))
        return cls(devices, interfaces, links)


def _link_at(graph: InventoryGraph, device: str, interface: str) -> Link | None:
    try:
        return graph.link_at(Endpoint(device=device, interface=interface))
    except ValueError:  # an alarmed object that names no interface the inventory could hold
        return None


def link_state(graph: InventoryGraph, link: Link) -> LinkState:
    """Down when the link is set down or either end's interface is operationally down."""
    if link.state is LinkState.DOWN:
        return LinkState.DOWN
    for end in link.ends():
        if graph.interface(end.device, end.interface).oper_state is OperState.DOWN:
            return LinkState.DOWN
    return LinkState.UP


def down_interfaces(graph: InventoryGraph) -> set[tuple[str, str]]:
    """(device, interface) of every interface operationally down: one walk of the graph
    instead of two look-ups per link."""
    return {(i.device, i.name) for i in graph.interfaces_after() if i.oper_state is OperState.DOWN}


# --------------------------------------------------------------------------- utilisation


@dataclass(frozen=True)
class Utilisation:
    """The latest in/out utilisation per interface ("device:interface" -> the larger, 0..1)."""

    interfaces: dict[str, float]
    taken_at: datetime

    def of_link(self, link: Link) -> float | None:
        if not self.interfaces:  # no KPI collected lately: the common case of a cold map
            return None
        values = [self.interfaces.get(str(end)) for end in link.ends()]
        known = [v for v in values if v is not None]
        return max(known) if known else None

    def by_link(self, links: Iterable[Link]) -> dict[int, float]:
        found = {}
        for link in links:
            value = self.of_link(link)
            if value is not None and link.id is not None:
                found[link.id] = value
        return found


class UtilisationCache:
    """One KPI query per `UTILISATION_TTL_S` whatever the number of readers."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._latest: Utilisation | None = None

    async def get(self, db: Database) -> Utilisation:
        now = self._clock()
        latest = self._latest
        if latest is not None and (now - latest.taken_at).total_seconds() < UTILISATION_TTL_S:
            return latest
        found = await latest_kpis(db, "interface", UTILISATION_METRICS, now - UTILISATION_WINDOW)
        values = {
            name: min(1.0, max(0.0, max(metrics.values())))
            for name, metrics in found.items()
            if metrics
        }
        self._latest = Utilisation(values, now)
        return self._latest


# ------------------------------------------------------------------------------ document


@dataclass(frozen=True)
class MapShape:
    """What a request asks for: the view (positions), a neighbourhood, a name filter."""

    view: str
    around: str | None = None
    hops: int = 1
    q: str | None = None

    def visible(self, graph: InventoryGraph) -> set[str] | None:
        """The devices shown; None: all of them."""
        shown: set[str] | None = None
        if self.around is not None:
            shown = graph.around(self.around, self.hops)
        if self.q:
            needle = self.q.casefold()
            names = shown if shown is not None else (d.name for d in graph.devices())
            shown = {name for name in names if needle in name.casefold()}
        return shown


def build_map(
    graph: InventoryGraph,
    shape: MapShape,
    severities: Severities,
    positions: dict[str, Point],
    utilisation: Utilisation,
    generated_at: datetime,
) -> dict[str, Any]:
    visible = shape.visible(graph)
    devices = graph.devices()
    links = graph.links()
    if visible is not None:
        devices = [d for d in devices if d.name in visible]
        links = [lk for lk in links if lk.a.device in visible and lk.b.device in visible]
    per_site: dict[str, int] = {}
    device_docs = []
    for d in devices:
        if d.site is not None:
            per_site[d.site] = per_site.get(d.site, 0) + 1
        worst = severities.devices.get(d.name)
        at = positions.get(d.name)
        device_docs.append(
            {
                "name": d.name,
                "site": d.site,
                "role": d.role,
                "platform": d.platform,
                "kind": d.kind,
                "state": d.state.value,
                "severity": worst.severity if worst else None,
                "open_alarms": worst.count if worst else 0,
                "position": {"x": at[0], "y": at[1]} if at is not None else None,
            }
        )
    link_docs = []
    down = down_interfaces(graph)
    for lk in links:
        worst = severities.links.get(lk.id or 0)
        a, b = lk.a, lk.b
        is_down = (
            lk.state is LinkState.DOWN
            or (a.device, a.interface) in down
            or (b.device, b.interface) in down
        )
        link_docs.append(
            {
                "id": lk.id,
                "a": {"device": a.device, "interface": a.interface},
                "b": {"device": b.device, "interface": b.interface},
                "state": "down" if is_down else "up",
                "severity": worst.severity if worst else None,
                "utilisation": utilisation.of_link(lk),
                "capacity_bps": lk.capacity_bps,
            }
        )
    sites = [
        {"name": s.name, "device_count": per_site.get(s.name, 0)}
        for s in graph.sites()
        if visible is None or s.name in per_site
    ]
    return {
        "view": shape.view,
        "sites": sites,
        "devices": device_docs,
        "links": link_docs,
        "generated_at": now_text(generated_at),
    }


def serialise(document: Any) -> bytes:
    return orjson.dumps(document)


# --------------------------------------------------------------------------------- cache


Stamp = tuple[InventoryGraph, int, int, int, datetime]


class MapCache:
    """Serialised map documents by request shape, each kept with the stamp of what it was
    built from: the graph (identity: a reload replaces it) and its revision, the alarm
    manager's revision, the layouts' revision and the utilisation snapshot's time.

    Why a hit is current: every input moves its counter on after each change (the graph as it
    applies one, the alarms and the layouts once their transaction committed), and a reader
    takes the stamp BEFORE it reads. A change landing while a document is built makes the
    document newer than its stamp, never older; the stamp is then stale, so the next request
    misses and builds again. One daemon owns its graph and alarms (no other writer)."""

    def __init__(self, size: int = _CACHED_SHAPES) -> None:
        self._size = size
        self._entries: OrderedDict[MapShape, tuple[Stamp, bytes]] = OrderedDict()

    def get(self, shape: MapShape, stamp: Stamp) -> bytes | None:
        found = self._entries.get(shape)
        if found is None or found[0] != stamp:
            return None
        self._entries.move_to_end(shape)
        return found[1]

    def put(self, shape: MapShape, stamp: Stamp, body: bytes) -> None:
        self._entries[shape] = (stamp, body)
        self._entries.move_to_end(shape)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


# --------------------------------------------------------------------------------- state


@dataclass(frozen=True)
class MapState:
    """What the console's routes keep for the life of one app (`create_app`)."""

    layouts: Layouts
    cache: MapCache
    utilisation: UtilisationCache

    @classmethod
    def of(cls, db: Database) -> MapState:
        return cls(Layouts(db), MapCache(), UtilisationCache())

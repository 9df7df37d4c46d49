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
from oss.faults.alarms import AlarmManager
from oss.faults.summary import OpenAlarmIndex, OpenAlarms, Worst
from oss.store import Database
from oss.store.kpi_latest import latest_kpis
from oss.store.map_views import Point
from oss.store.notify import Notifications
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


# The graph, its revision (or its structure's, for fragments), the layouts' revision.
Layer = tuple[InventoryGraph, int, int]

_NO_ALARM = b'"severity":null,"open_alarms":0}'
_UP_NO_ALARM_NO_LOAD = b'"state":"up","severity":null,"utilisation":null}'


@dataclass(frozen=True)
class DeviceFragment:
    name: str
    site: str | None
    prefix: bytes  # b'{"name":...,"position":...,': up to its alarm members
    quiet: bytes  # the whole object without an alarm


@dataclass(frozen=True)
class LinkFragment:
    link: Link
    ends: tuple[tuple[str, str], tuple[str, str]]  # (device, interface) of a and b
    prefix: bytes  # b'{"id":...,"capacity_bps":...,': up to its state
    quiet: bytes  # the whole object with its ends up, no alarm and no utilisation known


class Fragments:
    """Each device's and link's JSON up to its state, alarm and utilisation members, and whole
    for the quiet case (no alarm, ends up, no utilisation known), rendered once per graph
    structure (devices and links: `structure_revision`) and view layout (`layer`). A map is
    then the quiet objects with the few that are not replaced (`render_map`): a request after
    an alarm or an interface's state changed costs the changed objects, not 10,000 of them.
    Devices in name order, links in id order."""

    def __init__(self, layer: Layer, devices: list[DeviceFragment], links: list[LinkFragment]):
        self.layer = layer
        self.devices = devices
        self.links = links
        self.quiet_devices = [d.quiet for d in devices]
        self.quiet_links = [f.quiet for f in links]
        self.device_at = {d.name: i for i, d in enumerate(devices)}
        self.link_at = {f.link.id or 0: i for i, f in enumerate(links)}
        self.end_at = {end: i for i, f in enumerate(links) for end in f.ends}
        self.end_text_at = {f"{d}:{n}": i for (d, n), i in self.end_at.items()}
        self.per_site: dict[str, int] = {}
        for d in devices:
            if d.site is not None:
                self.per_site[d.site] = self.per_site.get(d.site, 0) + 1

    @classmethod
    def of(cls, graph: InventoryGraph, positions: dict[str, Point], layer: Layer) -> Fragments:
        devices = []
        for d in graph.devices():
            at = positions.get(d.name)
            doc: dict[str, Any] = {
                "name": d.name,
                "site": d.site,
                "role": d.role,
                "platform": d.platform,
                "kind": d.kind,
                "state": d.state.value,
                "position": {"x": at[0], "y": at[1]} if at is not None else None,
            }
            prefix = orjson.dumps(doc)[:-1] + b","
            devices.append(DeviceFragment(d.name, d.site, prefix, prefix + _NO_ALARM))
        links = []
        for lk in graph.links():
            a, b = lk.a, lk.b
            link_doc: dict[str, Any] = {
                "id": lk.id,
                "a": {"device": a.device, "interface": a.interface},
                "b": {"device": b.device, "interface": b.interface},
                "capacity_bps": lk.capacity_bps,
            }
            prefix = orjson.dumps(link_doc)[:-1] + b","
            ends = ((a.device, a.interface), (b.device, b.interface))
            quiet = prefix + _link_tail(lk.state is LinkState.DOWN, None, None)
            links.append(LinkFragment(lk, ends, prefix, quiet))
        return cls(layer, devices, links)


def _device_tail(worst: Worst) -> bytes:
    return b'"severity":%s,"open_alarms":%d}' % (orjson.dumps(worst.severity), worst.count)


def _link_tail(down: bool, worst: Worst | None, load: float | None) -> bytes:
    state = b'"down"' if down else b'"up"'
    severity = orjson.dumps(worst.severity) if worst is not None else b"null"
    return b'"state":%s,"severity":%s,"utilisation":%s}' % (state, severity, orjson.dumps(load))


def render_map(
    graph: InventoryGraph,
    fragments: Fragments,
    shape: MapShape,
    visible: set[str] | None,
    severities: Severities,
    utilisation: Utilisation,
    generated_at: datetime,
) -> bytes:
    """The map document: the fragments each completed with its severity (a link with its
    state and utilisation too), joined. Devices not `visible` and links with an end not
    visible are left out."""
    if visible is None:
        devices, links, per_site = _whole(graph, fragments, severities, utilisation)
    else:
        devices, links, per_site = _part(graph, fragments, visible, severities, utilisation)
    sites = [
        {"name": site.name, "device_count": per_site.get(site.name, 0)}
        for site in graph.sites()
        if visible is None or site.name in per_site
    ]
    head = orjson.dumps({"view": shape.view, "sites": sites})[:-1]
    return b"".join(
        (
            head,
            b',"devices":[',
            b",".join(devices),
            b'],"links":[',
            b",".join(links),
            b'],"generated_at":',
            orjson.dumps(now_text(generated_at)),
            b"}",
        )
    )


Parts = tuple[list[bytes], list[bytes], dict[str, int]]


def _whole(
    graph: InventoryGraph, fragments: Fragments, severities: Severities, utilisation: Utilisation
) -> Parts:
    """The whole map: the quiet objects, those with an alarm, a down end or a utilisation
    replaced (the map's hot path: a copy of two lists, then a few objects)."""
    devices = list(fragments.quiet_devices)
    for name, worst in severities.devices.items():
        i = fragments.device_at.get(name)
        if i is not None:
            devices[i] = fragments.devices[i].prefix + _device_tail(worst)
    touched = {fragments.link_at[k] for k in severities.links if k in fragments.link_at}
    down = graph.oper_down()
    touched.update(fragments.end_at[end] for end in down if end in fragments.end_at)
    loads = utilisation.interfaces
    if loads:
        touched.update(fragments.end_text_at[e] for e in loads if e in fragments.end_text_at)
    links = list(fragments.quiet_links)
    for i in touched:
        f = fragments.links[i]
        lk = f.link
        is_down = lk.state is LinkState.DOWN or f.ends[0] in down or f.ends[1] in down
        alarmed = severities.links.get(lk.id or 0)
        load = utilisation.of_link(lk) if loads else None
        links[i] = f.prefix + _link_tail(is_down, alarmed, load)
    return devices, links, fragments.per_site


def _part(
    graph: InventoryGraph,
    fragments: Fragments,
    visible: set[str],
    severities: Severities,
    utilisation: Utilisation,
) -> Parts:
    """The visible devices and the links among them, object by object."""
    per_site: dict[str, int] = {}
    devices = []
    for d in fragments.devices:
        if d.name not in visible:
            continue
        if d.site is not None:
            per_site[d.site] = per_site.get(d.site, 0) + 1
        worst = severities.devices.get(d.name)
        devices.append(d.quiet if worst is None else d.prefix + _device_tail(worst))
    links = []
    down = graph.oper_down()
    loads = utilisation.interfaces
    for f in fragments.links:
        a, b = f.ends
        if a[0] not in visible or b[0] not in visible:
            continue
        lk = f.link
        is_down = lk.state is LinkState.DOWN or a in down or b in down
        worst = severities.links.get(lk.id or 0)
        load = utilisation.of_link(lk) if loads else None
        if worst is None and load is None and (not is_down or lk.state is LinkState.DOWN):
            links.append(f.quiet)  # as rendered once: its own state, no alarm, no load
        else:
            links.append(f.prefix + _link_tail(is_down, worst, load))
    return devices, links, per_site


def serialise(document: Any) -> bytes:
    return orjson.dumps(document)


# --------------------------------------------------------------------------------- cache


@dataclass(frozen=True)
class Built:
    """A serialised map and what it was built from."""

    layer: Layer
    utilisation_at: datetime
    alarm_revision: int
    alarms: OpenAlarms
    body: bytes


class MapCache:
    """Serialised map documents by request shape, each kept with what it was built from: the
    graph (identity: a reload replaces it) and its revision, the layouts' revision, the
    utilisation snapshot's time, and the open alarms' summary with the alarm manager's
    revision it was read at.

    Why a hit is current: every input moves its counter on after each change (the graph as it
    applies one, the alarms and the layouts once their transaction committed), and a reader
    takes the counters BEFORE it reads. A change landing while a document is built makes the
    document newer than its stamp, never older; the stamp is then stale, so the next request
    misses. After an alarm change the summary is read again (one grouped query) and compared:
    an acknowledgement, or a count moved on, leaves it equal and the body is served as it is.
    In a cluster the other instances' changes move the same counters once heard (the graph
    through `Inventory.remote_changed`, the alarms through `AlarmManager.remote_changed`, the
    layouts through `Layouts.remote_changed`), so a hit is as current as what was heard."""

    def __init__(self, size: int = _CACHED_SHAPES) -> None:
        self._size = size
        self._entries: OrderedDict[MapShape, Built] = OrderedDict()

    def get(self, shape: MapShape) -> Built | None:
        found = self._entries.get(shape)
        if found is not None:
            self._entries.move_to_end(shape)
        return found

    def put(self, shape: MapShape, built: Built) -> None:
        self._entries[shape] = built
        self._entries.move_to_end(shape)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


# --------------------------------------------------------------------------------- state


class MapState:
    """What the console's routes keep for the life of one app (`create_app`): the layouts,
    the serialised maps, the latest utilisation, each view's fragments and the open alarms'
    summary at the alarm manager's last revision."""

    def __init__(self, db: Database, notifications: Notifications | None = None) -> None:
        self.db = db
        self.layouts = Layouts(db, notifications)
        self.cache = MapCache()
        self.utilisation = UtilisationCache()
        self._fragments: OrderedDict[str, Fragments] = OrderedDict()
        self._alarms: tuple[int, OpenAlarms] | None = None
        self.alarm_index = OpenAlarmIndex(db)  # told of changes by `of`

    @classmethod
    def of(cls, db: Database, alarms: AlarmManager) -> MapState:
        """Cluster mode (the alarm manager's `notifications`): other instances' layout changes
        reach the layouts; their alarm changes reach the index through the alarm manager."""
        state = cls(db, alarms.notifications)
        alarms.listeners.append(state.alarm_index.heard)
        alarms.resync_listeners.append(state.alarm_index.forget)
        return state

    async def open_alarms(self, revision_now: Callable[[], int]) -> tuple[int, OpenAlarms]:
        """The open alarms' summary and the alarm manager's revision it is current for (read
        before the summary: the summary is never older), from the in-memory index."""
        revision = revision_now()
        if self._alarms is None or self._alarms[0] != revision:
            self._alarms = (revision, await self.alarm_index.summary())
        return self._alarms

    async def fragments(self, graph: InventoryGraph, layer: Layer, view: str) -> Fragments:
        found = self._fragments.get(view)
        if found is None or found.layer != layer:
            positions = await self.layouts.positions(view)
            found = Fragments.of(graph, positions, layer)
            self._fragments[view] = found
            self._fragments.move_to_end(view)
            while len(self._fragments) > _CACHED_SHAPES:
                self._fragments.popitem(last=False)
        return found

"""Another instance's inventory changes, applied to this instance's graph (cluster mode).

A change's transaction NOTIFYs the objects it touched (`Touched`: site and device names,
(device, interface) pairs, link ids; `oss.store.notify`). The other instances read those
objects as committed and bring their graph to them (`reconcile`): what the database no longer
has is removed, what it has is upserted where it differs. The graph tells its `on_change` of
each, so the topology stream, the listing cache and the map follow as for a local change. A
resync (notices missed) reconciles the whole inventory the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from oss.errors import NotFound
from oss.inventory.rows import (
    Snapshot,
    device_from_row,
    interface_from_row,
    link_from_row,
    site_from_row,
)
from oss.store.base import in_chunks
from oss.store.tables import DeviceRow, InterfaceRow, LinkRow, SiteRow
from topology.graph import InventoryGraph

T = TypeVar("T")


@dataclass
class Touched:
    """The inventory objects one change touched (a device's removal takes its interfaces and
    links with it: naming the device is enough)."""

    sites: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)
    interfaces: set[tuple[str, str]] = field(default_factory=set)
    links: set[int] = field(default_factory=set)

    def fields(self) -> dict[str, list[Any]]:
        """The notice's fields (JSON: lists)."""
        return {
            "sites": sorted(self.sites),
            "devices": sorted(self.devices),
            "interfaces": [list(pair) for pair in sorted(self.interfaces)],
            "links": sorted(self.links),
        }

    @classmethod
    def of_notice(cls, notice: Mapping[str, Any]) -> Touched:
        return cls(
            sites={str(s) for s in notice.get("sites", ())},
            devices={str(d) for d in notice.get("devices", ())},
            interfaces={(str(d), str(n)) for d, n in notice.get("interfaces", ())},
            links={int(i) for i in notice.get("links", ())},
        )

    @classmethod
    def everything(cls, graph: InventoryGraph, snapshot: Snapshot) -> Touched:
        """Every object of the graph and of the snapshot (a whole resync)."""
        return cls(
            sites={s.name for s in graph.sites()} | {s.name for s in snapshot.sites},
            devices={d.name for d in graph.devices()} | {d.name for d in snapshot.devices},
            interfaces={(i.device, i.name) for i in graph.interfaces()}
            | {(i.device, i.name) for i in snapshot.interfaces},
            links={lk.id for lk in graph.links() if lk.id is not None}
            | {lk.id for lk in snapshot.links if lk.id is not None},
        )


async def read_touched(session: AsyncSession, touched: Touched) -> Snapshot:
    """The touched objects the database has, as committed (the others were removed)."""
    sites, devices, interfaces, links = [], [], [], []
    for chunk in in_chunks(sorted(touched.sites)):
        sites += [site_from_row(r) for r in await session.scalars(_where(SiteRow.name, chunk))]
    for chunk in in_chunks(sorted(touched.devices)):
        rows = await session.scalars(_where(DeviceRow.name, chunk))
        devices += [device_from_row(r) for r in rows]
    pair = tuple_(InterfaceRow.device, InterfaceRow.name)
    for pairs in in_chunks(sorted(touched.interfaces)):
        rows_i = await session.scalars(select(InterfaceRow).where(pair.in_(pairs)))
        interfaces += [interface_from_row(r) for r in rows_i]
    for ids in in_chunks(sorted(touched.links)):
        links += [link_from_row(r) for r in await session.scalars(_where(LinkRow.id, ids))]
    return Snapshot(sites, devices, interfaces, links)


def _where(column: Any, values: list[Any]) -> Any:
    return select(column.class_).where(column.in_(values))


def reconcile(graph: InventoryGraph, found: Snapshot, scope: Touched) -> None:
    """Bring the graph's objects in `scope` to what the database has (`found`, read for that
    scope): removals of links, interfaces and devices first (a link's end freed before another
    link takes it), then upserts parents first, then the sites (a device may have left one).
    Raises the graph's `OssError` when the scope alone cannot be applied consistently (the
    caller then reconciles everything)."""
    sites = {s.name: s for s in found.sites}
    devices = {d.name: d for d in found.devices}
    interfaces = {(i.device, i.name): i for i in found.interfaces}
    links = {lk.id: lk for lk in found.links}
    for link_id in sorted(scope.links - links.keys()):
        if _get(graph.link, link_id) is not None:
            graph.remove_link(link_id)
    for device, name in sorted(scope.interfaces - interfaces.keys()):
        if _get(graph.interface, device, name) is not None:
            graph.remove_interface(device, name)
    for name in sorted(scope.devices - devices.keys()):
        if _get(graph.device, name) is not None:
            graph.remove_device(name)
    _upsert(sites.values(), lambda s: _get(graph.site, s.name), graph.upsert_site)
    _upsert(devices.values(), lambda d: _get(graph.device, d.name), graph.upsert_device)
    _upsert(
        interfaces.values(),
        lambda i: _get(graph.interface, i.device, i.name),
        graph.upsert_interface,
    )
    _upsert(found.links, lambda lk: _get(graph.link, lk.id), graph.upsert_link)
    for name in sorted(scope.sites - sites.keys()):
        if _get(graph.site, name) is not None:
            graph.remove_site(name)


def _upsert(
    new: Iterable[T], current: Callable[[T], T | None], upsert: Callable[[T], None]
) -> None:
    for item in new:
        if current(item) != item:
            upsert(item)


def _get(getter: Callable[..., T], *key: Any) -> T | None:
    try:
        return getter(*key)
    except NotFound:
        return None

"""The inventory: the live graph, loaded from the database and written through.

Every change is checked against the graph, written to the database together with its audit
entry in one transaction, and applied to the graph only after that transaction commits. One
lock serialises changes; reads need no lock, because a change is applied to the graph without
yielding to the event loop, so a reader never sees half of one.

Removing or shrinking what services or open transactions use is refused (`InUse`, 409 naming
them): the check (`oss.store.in_use.users_of`) runs in the change's own transaction, and each
refusal is audited in a transaction of its own.

Cluster mode: a change's transaction also NOTIFYs the objects it touched; another instance's
change reaches this graph through `remote_changed` (`oss.inventory.remote`), under the same
lock, so the graph's listeners hear it as they hear a change made here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Executable, delete, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from oss import audit
from oss.broadcast import Broadcast
from oss.errors import Conflict, InvalidInput, NotFound, OssError, StorageError
from oss.inventory.remote import Touched, read_touched, reconcile
from oss.inventory.rows import (
    device_values,
    interface_values,
    link_values,
    load_snapshot,
    site_values,
)
from oss.store import Database
from oss.store.base import Base
from oss.store.in_use import InUse, Users, users_of
from oss.store.notify import INVENTORY, Notifications
from oss.store.tables import DeviceRow, InterfaceRow, LinkRow, SiteRow
from topology.clab import ClabTopology
from topology.graph import GraphChange, InventoryGraph
from topology.model import Device, Endpoint, Interface, Link, OperState, Site

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Guard = Callable[[AsyncSession], Awaitable[None]]


def _changed(model: M, changes: dict[str, Any], what: str) -> M:
    """`model` with `changes` applied and validated again (model_copy would skip validation)."""
    try:
        return type(model).model_validate({**model.model_dump(), **changes})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{what}: {key}: {first['msg']}") from None


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


@dataclass
class ImportReport:
    source: str
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[str, int], kind: str) -> None:
        bucket[kind] = bucket.get(kind, 0) + 1


class Inventory:
    def __init__(self, db: Database, notifications: Notifications | None = None) -> None:
        self._db = db
        self._notifications = notifications  # cluster mode: other instances hear our changes
        # Every change the graph applies, for live listeners (GET /api/v1/topology/stream):
        # the graph is changed only after the change's transaction committed.
        self.changes: Broadcast[GraphChange] = Broadcast("inventory")
        self._graph = InventoryGraph()
        self._graph.on_change = self.changes.publish
        self._lock = asyncio.Lock()

    @property
    def graph(self) -> InventoryGraph:
        """The live graph, for reading. Change it only through this service."""
        return self._graph

    @asynccontextmanager
    async def frozen(self) -> AsyncIterator[InventoryGraph]:
        """The graph held still: no change lands until the block ends, so that it can be read
        from a worker thread (a placement on a large graph is seconds of CPU)."""
        async with self._lock:
            yield self._graph

    async def load(self) -> None:
        async with self._db.sessions() as session:
            snap = await load_snapshot(session)
        graph = InventoryGraph()
        for site in snap.sites:
            graph.upsert_site(site)
        for device in snap.devices:
            graph.upsert_device(device)
        for interface in snap.interfaces:
            graph.upsert_interface(interface)
        for link in snap.links:
            graph.upsert_link(link)
        graph.on_change = self.changes.publish  # the load itself is no change to announce
        self._graph = graph
        log.info("inventory loaded", extra=graph.counts())

    async def _write(
        self,
        apply_db: Callable[[AsyncSession], Any],
        apply_graph: Callable[[], None],
        touched: Touched | Callable[[], Touched],
    ) -> None:
        """`touched`: what the change touched, for the other instances (a callable: known once
        `apply_db` ran, a new link's id)."""
        try:
            async with self._db.transaction() as session:
                result = apply_db(session)
                if asyncio.iscoroutine(result):
                    await result
                notifications = self._notifications
                if notifications is not None:
                    what = (touched if isinstance(touched, Touched) else touched()).fields()
                    await session.run_sync(
                        lambda sync: notifications.send(sync.connection(), INVENTORY, **what)
                    )
        except IntegrityError as exc:
            # The graph said yes but the database says no: someone wrote behind our back.
            raise Conflict(f"the database refused the change: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"the change was not stored: {exc}") from exc
        apply_graph()

    async def remote_changed(self, notice: Mapping[str, Any]) -> None:
        """Another instance committed a change of these objects: the graph takes them as the
        database has them now."""
        scope = Touched.of_notice(notice)
        async with self._lock:
            async with self._db.read() as session:
                found = await read_touched(session, scope)
            try:
                reconcile(self._graph, found, scope)
            except OssError as exc:  # the scope alone does not fit the graph: take it all
                log.warning("inventory: another instance's change read whole again: %s", exc)
                await self._reconcile_all()

    async def remote_resync(self) -> None:
        """Other instances' changes may have been missed: the whole inventory, read again."""
        async with self._lock:
            await self._reconcile_all()

    async def _reconcile_all(self) -> None:
        async with self._db.read() as session:
            snap = await load_snapshot(session)
        reconcile(self._graph, snap, Touched.everything(self._graph, snap))

    async def _change(
        self,
        *,
        actor: str,
        action: str,
        kind: str,
        object_id: str,
        graph: Callable[[], None],
        row: Base | None = None,
        statement: Executable | None = None,
        touched: Touched,
        before: Any = None,
        after: Any = None,
        guard: Guard | None = None,
    ) -> None:
        """One change: its row or statement and its audit entry in one transaction, then the
        graph. `guard` runs first in that transaction and may refuse the change."""

        async def db(s: AsyncSession) -> None:
            if guard is not None:
                await guard(s)
            if row is not None:
                s.add(row)
            if statement is not None:
                await s.execute(statement)
            audit.record(
                s,
                actor=actor,
                action=action,
                object_type=kind,
                object_id=object_id,
                before=before,
                after=after,
            )

        await self._write(db, graph, touched)

    @asynccontextmanager
    async def _refusals_audited(
        self, *, actor: str, action: str, kind: str, object_id: str
    ) -> AsyncIterator[None]:
        """An `InUse` refusal inside the block is audited (`<kind>.<action>.refused`, with the
        reason and its users) in a transaction of its own: the refused change rolled back."""
        try:
            yield
        except InUse as exc:
            try:
                async with self._db.transaction() as s:
                    audit.record(
                        s,
                        actor=actor,
                        action=f"{kind}.{action}.refused",
                        object_type=kind,
                        object_id=object_id,
                        after={"reason": exc.message, **exc.users.public()},
                    )
            except SQLAlchemyError:
                log.exception("the refusal of %s %s %s was not audited", action, kind, object_id)
            raise

    # --- sites -----------------------------------------------------------------------------

    async def add_site(self, site: Site, *, actor: str) -> Site:
        async with self._lock:
            if self._has(self._graph.site, site.name):
                raise Conflict(f"site '{site.name}' already exists")
            await self._change(
                actor=actor, action="create", kind="site", object_id=site.name,
                row=SiteRow(**site_values(site)), after=_dump(site),
                touched=Touched(sites={site.name}),
                graph=lambda: self._graph.upsert_site(site),
            )  # fmt: skip
            return site

    async def update_site(self, name: str, changes: dict[str, Any], *, actor: str) -> Site:
        async with self._lock:
            old = self._graph.site(name)
            new = _changed(old, {**changes, "name": name}, f"site '{name}'")
            await self._change(
                actor=actor, action="update", kind="site", object_id=name,
                touched=Touched(sites={name}),
                statement=update(SiteRow).where(SiteRow.name == name).values(site_values(new)),
                before=_dump(old), after=_dump(new),
                graph=lambda: self._graph.upsert_site(new),
            )  # fmt: skip
            return new

    async def remove_site(self, name: str, *, actor: str) -> None:
        """Only an empty site goes: its devices are never removed with it."""
        audited = self._refusals_audited(actor=actor, action="delete", kind="site", object_id=name)
        async with self._lock, audited:
            old = self._graph.site(name)
            devices = [d.name for d in self._graph.devices() if d.site == name]

            async def empty(s: AsyncSession) -> None:
                links = self._link_ids(devices)
                await _refuse_if_used(s, f"site '{name}'", devices=devices, links=links)
                if devices:
                    raise InUse(
                        f"site '{name}' still has devices: {', '.join(devices[:10])}; "
                        "remove or move them first"
                    )

            await self._change(
                actor=actor, action="delete", kind="site", object_id=name,
                touched=Touched(sites={name}),
                statement=delete(SiteRow).where(SiteRow.name == name), before=_dump(old),
                graph=lambda: self._graph.remove_site(name), guard=empty,
            )  # fmt: skip

    def _link_ids(self, devices: Collection[str]) -> list[int]:
        """The stored links with an end on any of these devices."""
        ids = {lk.id for d in devices for lk in self._graph.links(d) if lk.id is not None}
        return sorted(ids)

    # --- devices ---------------------------------------------------------------------------

    def _check_site(self, device: Device) -> None:
        if device.site is not None and not self._has(self._graph.site, device.site):
            raise InvalidInput(f"device '{device.name}': site '{device.site}' does not exist")

    async def add_device(self, device: Device, *, actor: str) -> Device:
        async with self._lock:
            if self._has(self._graph.device, device.name):
                raise Conflict(f"device '{device.name}' already exists")
            self._check_site(device)
            await self._change(
                actor=actor, action="create", kind="device", object_id=device.name,
                touched=Touched(devices={device.name}),
                row=DeviceRow(**device_values(device)), after=_dump(device),
                graph=lambda: self._graph.upsert_device(device),
            )  # fmt: skip
            return device

    async def update_device(self, name: str, changes: dict[str, Any], *, actor: str) -> Device:
        async with self._lock:
            old = self._graph.device(name)
            new = _changed(old, {**changes, "name": name}, f"device '{name}'")
            self._check_site(new)
            await self._change(
                actor=actor, action="update", kind="device", object_id=name,
                touched=Touched(devices={name}),
                statement=update(DeviceRow)
                .where(DeviceRow.name == name)
                .values(device_values(new)),
                before=_dump(old), after=_dump(new),
                graph=lambda: self._graph.upsert_device(new),
            )  # fmt: skip
            return new

    async def remove_device(self, name: str, *, actor: str) -> None:
        """Removes the device with its interfaces and links (the database cascades them),
        unless a service or an open transaction uses any of them."""
        audited = self._refusals_audited(
            actor=actor, action="delete", kind="device", object_id=name
        )
        async with self._lock, audited:
            old = self._graph.device(name)
            before = {
                **_dump(old),
                "interfaces": [_dump(i) for i in self._graph.interfaces(name)],
                "links": [_dump(lk) for lk in self._graph.links(name)],
            }
            links = self._link_ids([name])

            async def unused(s: AsyncSession) -> None:
                await _refuse_if_used(s, f"device '{name}'", devices=[name], links=links)

            await self._change(
                actor=actor, action="delete", kind="device", object_id=name,
                touched=Touched(devices={name}),
                statement=delete(DeviceRow).where(DeviceRow.name == name), before=before,
                graph=lambda: self._graph.remove_device(name), guard=unused,
            )  # fmt: skip

    # --- interfaces ------------------------------------------------------------------------

    async def add_interface(self, interface: Interface, *, actor: str) -> Interface:
        async with self._lock:
            self._graph.device(interface.device)
            if _get(self._graph.interface, interface.device, interface.name) is not None:
                raise Conflict(f"interface '{interface.device}:{interface.name}' already exists")

            def db(s: AsyncSession) -> None:
                self._stage_interface(s, interface, actor)

            await self._write(
                db,
                lambda: self._graph.upsert_interface(interface),
                Touched(interfaces={(interface.device, interface.name)}),
            )
            return interface

    @staticmethod
    def _stage_interface(s: AsyncSession, interface: Interface, actor: str) -> None:
        s.add(InterfaceRow(**interface_values(interface)))
        audit.record(
            s,
            actor=actor,
            action="create",
            object_type="interface",
            object_id=f"{interface.device}:{interface.name}",
            after=_dump(interface),
        )

    async def update_interface(
        self, device: str, name: str, changes: dict[str, Any], *, actor: str
    ) -> Interface:
        async with self._lock:
            old = self._graph.interface(device, name)
            new = _changed(
                old, {**changes, "device": device, "name": name}, f"interface '{device}:{name}'"
            )
            where = (InterfaceRow.device == device, InterfaceRow.name == name)
            await self._change(
                actor=actor, action="update", kind="interface", object_id=f"{device}:{name}",
                touched=Touched(interfaces={(device, name)}),
                statement=update(InterfaceRow).where(*where).values(interface_values(new)),
                before=_dump(old), after=_dump(new),
                graph=lambda: self._graph.upsert_interface(new),
            )  # fmt: skip
            return new

    async def set_oper_states(
        self, observed: dict[tuple[str, str], OperState], *, actor: str
    ) -> list[Interface]:
        """Operational states the collectors observed, by (device, interface): those that
        differ from the inventory's are written in one transaction, each with its audit entry;
        interfaces the inventory does not have are ignored. Returns the interfaces changed."""
        async with self._lock:
            changes = []
            for (device, name), state in observed.items():
                old = _get(self._graph.interface, device, name)
                if old is not None and old.oper_state != state:
                    changes.append((old, old.model_copy(update={"oper_state": state})))
            if not changes:
                return []

            async def db(s: AsyncSession) -> None:
                for old, new in changes:
                    where = (InterfaceRow.device == new.device, InterfaceRow.name == new.name)
                    values = {"oper_state": new.oper_state.value}
                    await s.execute(update(InterfaceRow).where(*where).values(values))
                    audit.record(
                        s, actor=actor, action="update", object_type="interface",
                        object_id=f"{new.device}:{new.name}", before=_dump(old), after=_dump(new),
                    )  # fmt: skip

            def graph() -> None:
                for _, new in changes:
                    self._graph.upsert_interface(new)

            touched = Touched(interfaces={(new.device, new.name) for _, new in changes})
            await self._write(db, graph, touched)
            return [new for _, new in changes]

    async def remove_interface(self, device: str, name: str, *, actor: str) -> None:
        key = f"{device}:{name}"
        audited = self._refusals_audited(
            actor=actor, action="delete", kind="interface", object_id=key
        )
        async with self._lock, audited:
            old = self._graph.interface(device, name)
            link = self._graph.link_at(Endpoint(device=device, interface=name))
            links = [link.id] if link is not None and link.id is not None else []

            async def unused(s: AsyncSession) -> None:
                what = f"interface '{key}'"
                await _refuse_if_used(s, what, interfaces=[(device, name)], links=links)
                if link is not None:
                    raise InUse(f"{what} carries link {link.id}; remove it first")

            where = (InterfaceRow.device == device, InterfaceRow.name == name)
            await self._change(
                actor=actor, action="delete", kind="interface", object_id=key,
                touched=Touched(interfaces={(device, name)}),
                statement=delete(InterfaceRow).where(*where), before=_dump(old),
                graph=lambda: self._graph.remove_interface(device, name), guard=unused,
            )  # fmt: skip

    # --- links -----------------------------------------------------------------------------

    def _missing_interfaces(self, link: Link) -> list[Interface]:
        """Link ends that are not interfaces yet; they are created with the link."""
        missing = []
        for end in link.ends():
            self._graph.device(end.device)
            if _get(self._graph.interface, end.device, end.interface) is None:
                missing.append(
                    Interface(device=end.device, name=end.interface, speed_bps=link.capacity_bps)
                )
            used = self._graph.link_at(end)
            if used is not None:
                raise Conflict(f"endpoint {end} already carries link {used.id}")
        return missing

    async def add_link(self, link: Link, *, actor: str) -> Link:
        async with self._lock:
            missing = self._missing_interfaces(link)
            created: list[Link] = []

            async def db(s: AsyncSession) -> None:
                for interface in missing:
                    self._stage_interface(s, interface, actor)
                await s.flush()
                created.append(await self._stage_link(s, link, actor))

            def graph() -> None:
                for interface in missing:
                    self._graph.upsert_interface(interface)
                self._graph.upsert_link(created[0])

            def touched() -> Touched:
                return Touched(
                    interfaces={(i.device, i.name) for i in missing},
                    links={lk.id for lk in created if lk.id is not None},
                )

            await self._write(db, graph, touched)
            return created[0]

    @staticmethod
    async def _stage_link(s: AsyncSession, link: Link, actor: str) -> Link:
        row = LinkRow(**link_values(link))
        s.add(row)
        await s.flush()
        stored = link.model_copy(update={"id": row.id})
        audit.record(
            s,
            actor=actor,
            action="create",
            object_type="link",
            object_id=str(row.id),
            after=_dump(stored),
        )
        return stored

    async def update_link(self, link_id: int, changes: dict[str, Any], *, actor: str) -> Link:
        audited = self._refusals_audited(
            actor=actor, action="update", kind="link", object_id=str(link_id)
        )
        async with self._lock, audited:
            old = self._graph.link(link_id)
            fixed = {"id": link_id, "a": old.a.model_dump(), "b": old.b.model_dump()}
            if {"a", "b"} & changes.keys():
                raise InvalidInput("link ends cannot change; remove the link and add a new one")
            new = _changed(old, {**changes, **fixed}, f"link {link_id}")

            async def room_left(s: AsyncSession) -> None:
                if new.capacity_bps < old.capacity_bps:
                    await _refuse_if_shrunk(s, f"link {link_id}", {link_id: new.capacity_bps})

            await self._change(
                actor=actor, action="update", kind="link", object_id=str(link_id),
                touched=Touched(links={link_id}),
                statement=update(LinkRow).where(LinkRow.id == link_id).values(link_values(new)),
                before=_dump(old), after=_dump(new),
                graph=lambda: self._graph.upsert_link(new), guard=room_left,
            )  # fmt: skip
            return new

    async def remove_link(self, link_id: int, *, actor: str) -> None:
        audited = self._refusals_audited(
            actor=actor, action="delete", kind="link", object_id=str(link_id)
        )
        async with self._lock, audited:
            old = self._graph.link(link_id)

            async def unused(s: AsyncSession) -> None:
                await _refuse_if_used(s, f"link {link_id}", links=[link_id])

            await self._change(
                actor=actor, action="delete", kind="link", object_id=str(link_id),
                touched=Touched(links={link_id}),
                statement=delete(LinkRow).where(LinkRow.id == link_id), before=_dump(old),
                graph=lambda: self._graph.remove_link(link_id), guard=unused,
            )  # fmt: skip

    # --- containerlab import ---------------------------------------------------------------

    async def import_topology(self, topo: ClabTopology, *, actor: str, source: str) -> ImportReport:
        """Merge a parsed containerlab file in one transaction: new objects are created, changed
        ones updated, nothing is removed. A conflict with the inventory, or a link shrunk below
        what services reserved on it, rejects the whole file."""
        audited = self._refusals_audited(
            actor=actor, action="import", kind="topology", object_id=source
        )
        async with self._lock, audited:
            plan = _ImportPlan.build(self._graph, topo, source)
            applied: list[Callable[[], None]] = []
            touched = Touched(
                sites={s.name for s in plan.new_sites},
                devices={d.name for _, d in plan.devices},
                interfaces={(i.device, i.name) for _, i in plan.interfaces},
            )
            shrunk = {
                new_l.id: new_l.capacity_bps
                for old_l, new_l in plan.links
                if old_l is not None
                and new_l.id is not None
                and new_l.capacity_bps < old_l.capacity_bps
            }

            async def db(s: AsyncSession) -> None:
                if shrunk:
                    await _refuse_if_shrunk(s, f"{source}: rejected, nothing was written", shrunk)
                for site in plan.new_sites:
                    s.add(SiteRow(**site_values(site)))
                    applied.append(partial(self._graph.upsert_site, site))
                await s.flush()  # parents before children: rows carry no ORM relationships
                for old_d, new_d in plan.devices:
                    if old_d is None:
                        s.add(DeviceRow(**device_values(new_d)))
                    else:
                        await s.execute(
                            update(DeviceRow)
                            .where(DeviceRow.name == new_d.name)
                            .values(device_values(new_d))
                        )
                    applied.append(partial(self._graph.upsert_device, new_d))
                await s.flush()
                for old_i, new_i in plan.interfaces:
                    if old_i is None:
                        s.add(InterfaceRow(**interface_values(new_i)))
                    else:
                        await s.execute(
                            update(InterfaceRow)
                            .where(
                                InterfaceRow.device == new_i.device, InterfaceRow.name == new_i.name
                            )
                            .values(interface_values(new_i))
                        )
                    applied.append(partial(self._graph.upsert_interface, new_i))
                await s.flush()
                for old_l, new_l in plan.links:
                    if old_l is None:
                        row = LinkRow(**link_values(new_l))
                        s.add(row)
                        await s.flush()
                        new_l = new_l.model_copy(update={"id": row.id})
                    else:
                        await s.execute(
                            update(LinkRow).where(LinkRow.id == new_l.id).values(link_values(new_l))
                        )
                    applied.append(partial(self._graph.upsert_link, new_l))
                    if new_l.id is not None:
                        touched.links.add(new_l.id)
                audit.record(
                    s,
                    actor=actor,
                    action="import",
                    object_type="topology",
                    object_id=source,
                    after=plan.summary(),
                )

            def graph() -> None:
                for step in applied:
                    step()

            await self._write(db, graph, lambda: touched)
            return plan.report

    @staticmethod
    def _has(getter: Callable[[str], object], name: str) -> bool:
        return _get(getter, name) is not None


async def _refuse_if_used(
    s: AsyncSession,
    what: str,
    *,
    devices: Collection[str] = (),
    interfaces: Collection[tuple[str, str]] = (),
    links: Collection[int] = (),
) -> None:
    users = await users_of(s, devices=devices, interfaces=interfaces, links=links)
    if users:
        raise InUse(f"{what} is in use by {users.describe()}; {_next_step(users)}", users)


async def _refuse_if_shrunk(s: AsyncSession, what: str, capacities: dict[int, int]) -> None:
    """Refuses capacities (link id -> new bit/s) below what services reserved on the links."""
    reserved = (await users_of(s, links=capacities)).reserved_bps
    short = {i: bps for i, bps in capacities.items() if bps < reserved.get(i, 0)}
    if not short:
        return
    users = await users_of(s, links=short)
    figures = ", ".join(
        f"link {i}: {bps} bit/s asked, {reserved[i]} bit/s reserved" for i, bps in short.items()
    )
    raise InUse(
        f"{what}: capacity below the bandwidth reserved ({figures}) by {users.describe()}; "
        f"{_next_step(users)}",
        users,
    )


def _next_step(users: Users) -> str:
    if users.services:
        return "delete those services first (nothing was changed)"
    return "retry when those transactions have ended (nothing was changed)"


T = TypeVar("T")


def _get(getter: Callable[..., T], *key: str) -> T | None:
    try:
        return getter(*key)
    except NotFound:
        return None


@dataclass
class _ImportPlan:
    """What an import will change, worked out against the graph before any write."""

    report: ImportReport
    new_sites: list[Site] = field(default_factory=list)
    devices: list[tuple[Device | None, Device]] = field(default_factory=list)
    interfaces: list[tuple[Interface | None, Interface]] = field(default_factory=list)
    links: list[tuple[Link | None, Link]] = field(default_factory=list)

    @classmethod
    def build(cls, graph: InventoryGraph, topo: ClabTopology, source: str) -> _ImportPlan:
        plan = cls(report=ImportReport(source=source))
        known_sites = {s.name for s in graph.sites()}
        for site in topo.sites:
            if site.name in known_sites:
                plan.report.count(plan.report.unchanged, "sites")
            else:
                plan.new_sites.append(site)
                plan.report.count(plan.report.created, "sites")
        for device in topo.devices:
            old_d = _get(graph.device, device.name)
            if old_d is not None:
                # Fields the file leaves out (a credentials reference set through the API, say)
                # keep their inventory value.
                device = old_d.model_copy(
                    update={k: getattr(device, k) for k in device.model_fields_set}
                )
            plan._pair(old_d, device, plan.devices, "devices")
        for interface in topo.interfaces:
            old_i = _get(graph.interface, interface.device, interface.name)
            if old_i is not None:
                # Live state (admin/oper, description) stays; the file only knows the speed.
                interface = old_i.model_copy(update={"speed_bps": interface.speed_bps})
            plan._pair(old_i, interface, plan.interfaces, "interfaces")
        problems = []
        for link in topo.links:
            at_a, at_b = graph.link_at(link.a), graph.link_at(link.b)
            if at_a is None and at_b is None:
                plan._pair(None, link, plan.links, "links")
            elif at_a is not None and at_b is not None and at_a.id == at_b.id:
                same = at_a.model_copy(
                    update={k: getattr(link, k) for k in ("capacity_bps", "latency_us", "state")}
                )
                plan._pair(at_a, same, plan.links, "links")
            else:
                end, used = (link.a, at_a) if at_a is not None else (link.b, at_b)
                assert used is not None
                problems.append(
                    f"{link.a} -- {link.b}: endpoint {end} already carries link {used.id}"
                )
        if problems:
            raise Conflict(f"{source}: rejected, nothing was written: " + "; ".join(problems))
        return plan

    def _pair(self, old: M | None, new: M, bucket: list[tuple[M | None, M]], kind: str) -> None:
        if old is None:
            bucket.append((None, new))
            self.report.count(self.report.created, kind)
        elif old != new:
            bucket.append((old, new))
            self.report.count(self.report.updated, kind)
        else:
            self.report.count(self.report.unchanged, kind)

    def summary(self) -> dict[str, Any]:
        return {
            "created": self.report.created,
            "updated": self.report.updated,
            "unchanged": self.report.unchanged,
        }

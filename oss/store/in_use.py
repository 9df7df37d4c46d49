"""Who uses an inventory object: the one place that answers it.

A service that is not terminated uses the devices, interfaces and links stored as its resources
(links with the bandwidth it reserved); an open provisioning transaction uses its devices.
Removing or shrinking an inventory object asks `users_of` inside the write transaction that
makes the change, and a service about to hold objects asks `unavailable` inside the one that
stores its resources. Both lock the inventory rows they look at (PostgreSQL: FOR UPDATE against
FOR SHARE; SQLite: one writer holds the whole database), so no service lands on an object
between its check and its removal, nor the reverse.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from oss.errors import Conflict
from oss.store.tables import (
    DeviceRow,
    InterfaceRow,
    LinkRow,
    ServiceResourceRow,
    ServiceRow,
    TransactionDeviceRow,
    TransactionRow,
)

ENDED = "terminated"  # the only lifecycle state that holds nothing


@dataclass(frozen=True)
class ServiceUse:
    id: int
    name: str
    state: str
    customer: str
    uses: tuple[str, ...]  # "device agg1", "interface pe1:eth3", "link 26 (200000000 bit/s ...)"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "customer": self.customer,
            "uses": list(self.uses),
        }


@dataclass(frozen=True)
class TransactionUse:
    id: int
    kind: str
    state: str
    devices: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "devices": list(self.devices),
        }


@dataclass(frozen=True)
class Users:
    """Services and open transactions using some inventory objects, and the bandwidth reserved
    on each link asked about."""

    services: list[ServiceUse] = field(default_factory=list)
    transactions: list[TransactionUse] = field(default_factory=list)
    reserved_bps: dict[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.services or self.transactions)

    def describe(self) -> str:
        """`service slice-1 (active, customer acme: link 26 ...); transaction 7 (create, ...)`"""
        parts = [
            f"service {s.name} ({s.state}, customer {s.customer or '-'}: {', '.join(s.uses)})"
            for s in self.services
        ]
        parts += [
            f"transaction {t.id} ({t.kind}, {t.state}, on {', '.join(t.devices)})"
            for t in self.transactions
        ]
        return "; ".join(parts)

    def public(self) -> dict[str, Any]:
        return {
            "services": [s.public() for s in self.services],
            "transactions": [t.public() for t in self.transactions],
        }


class InUse(Conflict):
    """A change refused because something uses what it would remove or shrink (409). The
    problem document names the services and transactions (`services`, `transactions`)."""

    def __init__(self, message: str, users: Users | None = None) -> None:
        users = users or Users()
        super().__init__(message, **users.public())
        self.users = users


async def users_of(
    session: AsyncSession,
    *,
    devices: Collection[str] = (),
    interfaces: Collection[tuple[str, str]] = (),
    links: Collection[int] = (),
) -> Users:
    """Who uses any of these devices (with their interfaces), interfaces or links. Their rows are
    locked first, for the rest of the caller's transaction."""
    await _lock(session, devices, interfaces, links, share=False)
    services = await _services_using(session, devices, interfaces, links)
    transactions = await _transactions_on(session, devices)
    return Users(
        services=[_service_use(rows) for rows in services.values()],
        transactions=transactions,
        reserved_bps=_reserved(services, links),
    )


async def unavailable(
    session: AsyncSession, resources: Sequence[ServiceResourceRow], *, service_id: int
) -> list[str]:
    """What a service's resources (not stored yet) lack in the inventory as it is now: objects
    removed since the service was placed, links without room left for its reservations.
    The rows are locked (shared) until the caller's transaction ends."""
    devices = {r.device for r in resources if r.kind == "device" and r.device}
    interfaces = {
        (r.device, r.interface)
        for r in resources
        if r.kind == "interface" and r.device and r.interface
    }
    need = {
        r.link_id: r.bandwidth_bps
        for r in resources
        if r.kind == "link" and r.link_id is not None and r.reserved
    }
    links = {r.link_id for r in resources if r.kind == "link" and r.link_id is not None}
    found = await _lock(session, devices, interfaces, links, share=True)
    problems = [f"device {d} was removed" for d in sorted(devices - found.devices)]
    problems += [f"interface {d}:{i} was removed" for d, i in sorted(interfaces - found.interfaces)]
    problems += [f"link {lk} was removed" for lk in sorted(links - found.links.keys())]
    held = await _reserved_by_others(session, need.keys() & found.links.keys(), service_id)
    for link_id in sorted(need.keys() & found.links.keys()):
        free = found.links[link_id] - held.get(link_id, 0)
        if need[link_id] > max(free, 0):  # nothing asked is never refused
            problems.append(f"link {link_id} has {free} bit/s free, {need[link_id]} bit/s needed")
    return problems


@dataclass
class _Found:
    devices: set[str]
    interfaces: set[tuple[str, str]]
    links: dict[int, int]  # id -> capacity_bps


async def _lock(
    session: AsyncSession,
    devices: Collection[str],
    interfaces: Collection[tuple[str, str]],
    links: Collection[int],
    *,
    share: bool,
) -> _Found:
    """Lock the rows in one order (devices, interfaces, links; each sorted), so that lockers
    never wait for each other in a circle."""
    found = _Found(set(), set(), {})
    if devices:
        names = select(DeviceRow.name).where(DeviceRow.name.in_(sorted(devices)))
        names = names.order_by(DeviceRow.name).with_for_update(read=share)
        found.devices = set(await session.scalars(names))
    if interfaces:
        pairs = select(InterfaceRow.device, InterfaceRow.name).where(
            _any_interface(InterfaceRow.device, InterfaceRow.name, interfaces)
        )
        pairs = pairs.order_by(InterfaceRow.device, InterfaceRow.name).with_for_update(read=share)
        found.interfaces = {(d, n) for d, n in await session.execute(pairs)}
    if links:
        sizes = select(LinkRow.id, LinkRow.capacity_bps).where(LinkRow.id.in_(sorted(links)))
        sizes = sizes.order_by(LinkRow.id).with_for_update(read=share)
        found.links = {i: c for i, c in await session.execute(sizes)}
    return found


def _any_interface(
    device: Any, name: Any, pairs: Collection[tuple[str, str]]
) -> ColumnElement[bool]:
    return or_(false(), *(and_(device == d, name == n) for d, n in sorted(pairs)))


async def _services_using(
    session: AsyncSession,
    devices: Collection[str],
    interfaces: Collection[tuple[str, str]],
    links: Collection[int],
) -> dict[int, list[Any]]:
    r = ServiceResourceRow
    matches: list[ColumnElement[bool]] = []
    if devices:
        matches.append(r.device.in_(sorted(devices)))  # its device rows and interface rows
    if interfaces:
        matches.append(
            and_(r.kind == "interface", _any_interface(r.device, r.interface, interfaces))
        )
    if links:
        matches.append(r.link_id.in_(sorted(links)))
    if not matches:
        return {}
    query = (
        select(
            ServiceRow.id,
            ServiceRow.name,
            ServiceRow.state,
            ServiceRow.customer,
            r.kind,
            r.device,
            r.interface,
            r.link_id,
            r.bandwidth_bps,
            r.reserved,
        )
        .join(r, ServiceRow.id == r.service_id)
        .where(ServiceRow.state != ENDED, or_(*matches))
        .order_by(ServiceRow.id, r.id)
    )
    by_service: dict[int, list[Any]] = {}
    for row in await session.execute(query):
        by_service.setdefault(row.id, []).append(row)
    return by_service


def _service_use(rows: list[Any]) -> ServiceUse:
    first = rows[0]
    return ServiceUse(
        id=first.id,
        name=first.name,
        state=first.state,
        customer=first.customer,
        uses=tuple(dict.fromkeys(_what(row) for row in rows)),
    )


def _what(row: Any) -> str:
    if row.kind == "link":
        held = f" ({row.bandwidth_bps} bit/s reserved)" if row.reserved else ""
        return f"link {row.link_id}{held}"
    if row.kind == "interface":
        return f"interface {row.device}:{row.interface}"
    return f"device {row.device}"


def _reserved(services: dict[int, list[Any]], links: Collection[int]) -> dict[int, int]:
    reserved = dict.fromkeys(links, 0)
    for rows in services.values():
        for row in rows:
            if row.kind == "link" and row.reserved and row.link_id in reserved:
                reserved[row.link_id] += int(row.bandwidth_bps)
    return reserved


async def _transactions_on(session: AsyncSession, devices: Collection[str]) -> list[TransactionUse]:
    """Open transactions (the journal stamps `finished_at` when one ends) on these devices."""
    if not devices:
        return []
    t, d = TransactionRow, TransactionDeviceRow
    query = (
        select(t.id, t.kind, t.state, d.device)
        .join(d, d.transaction_id == t.id)
        .where(t.finished_at.is_(None), d.device.in_(sorted(devices)))
        .order_by(t.id, d.position)
    )
    by_txn: dict[int, TransactionUse] = {}
    for row in await session.execute(query):
        known = by_txn.get(row.id)
        on = (*known.devices, row.device) if known else (row.device,)
        by_txn[row.id] = TransactionUse(row.id, row.kind, row.state, on)
    return list(by_txn.values())


async def _reserved_by_others(
    session: AsyncSession, links: Collection[int], service_id: int
) -> dict[int, int]:
    if not links:
        return {}
    r = ServiceResourceRow
    query = (
        select(r.link_id, func.sum(r.bandwidth_bps))
        .join(ServiceRow, ServiceRow.id == r.service_id)
        .where(r.kind == "link", r.reserved.is_(True), r.link_id.in_(sorted(links)))
        .where(ServiceRow.state != ENDED, ServiceRow.id != service_id)
        .group_by(r.link_id)
    )
    return {int(link): int(bps) for link, bps in await session.execute(query) if link is not None}

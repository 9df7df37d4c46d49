"""Reads of the customer services table for those outside provisioning (the BSS's inventory,
orders, SLA and usage, through the ports `oss.bss_ports` fills): by id, by name, a filtered
page, and a service's customer-facing interfaces."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select

from oss.store.base import IN_CHUNK
from oss.store.database import Database
from oss.store.tables import ServiceResourceRow, ServiceRow

ENDPOINT_ROLES = ("attachment",)  # service_resources roles of the customer-facing interfaces


async def service_by_id(db: Database, service_id: int) -> ServiceRow | None:
    async with db.read() as s:
        return await s.get(ServiceRow, service_id)


async def services_named(db: Database, names: Collection[str]) -> list[ServiceRow]:
    unique = sorted(set(names))
    found: list[ServiceRow] = []
    async with db.read() as s:
        for i in range(0, len(unique), IN_CHUNK):
            chunk = unique[i : i + IN_CHUNK]
            found.extend(await s.scalars(select(ServiceRow).where(ServiceRow.name.in_(chunk))))
    return found


async def find_services(
    db: Database,
    *,
    states: Collection[str] | None,
    customer: str | None,
    service_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[ServiceRow], int]:
    """A page of the services that match, by id, and how many match."""
    where: list[ColumnElement[bool]] = []
    if states is not None:
        where.append(ServiceRow.state.in_(list(states)))
    if customer is not None:
        where.append(ServiceRow.customer == customer)
    if service_type is not None:
        where.append(ServiceRow.type == service_type)
    async with db.read() as s:
        total = await s.scalar(select(func.count()).select_from(ServiceRow).where(*where))
        page = select(ServiceRow).where(*where).order_by(ServiceRow.id).limit(limit).offset(offset)
        return list(await s.scalars(page)), int(total or 0)


async def endpoint_interfaces(db: Database, names: Collection[str]) -> dict[str, list[str]]:
    """Each named service's customer-facing interfaces as "<device>:<interface>" (the object
    name of their KPIs), sorted, once each, by service name; a service without any is left
    out."""
    unique = sorted(set(names))
    found: dict[str, set[str]] = {}
    async with db.read() as s:
        for i in range(0, len(unique), IN_CHUNK):
            query = (
                select(ServiceRow.name, ServiceResourceRow.device, ServiceResourceRow.interface)
                .join(ServiceRow, ServiceRow.id == ServiceResourceRow.service_id)
                .where(
                    ServiceRow.name.in_(unique[i : i + IN_CHUNK]),
                    ServiceResourceRow.kind == "interface",
                    ServiceResourceRow.role.in_(ENDPOINT_ROLES),
                )
            )
            for name, device, interface in await s.execute(query):
                found.setdefault(name, set()).add(f"{device}:{interface}")
    return {name: sorted(interfaces) for name, interfaces in found.items()}


@dataclass(frozen=True)
class ServiceEnds:
    """An active service's two ends, as active probes measure it: from `a` to `b` (None when
    every device of the service is one)."""

    name: str
    a: str
    b: str | None


async def active_service_ends(db: Database) -> list[ServiceEnds]:
    """Every active service's ends, by name: its placed path's first and last device, else its
    first and last device in the order realisation listed them (the endpoints' order)."""
    async with db.read() as s:
        services = (
            await s.execute(
                select(ServiceRow.id, ServiceRow.name, ServiceRow.placement)
                .where(ServiceRow.state == "active")
                .order_by(ServiceRow.name)
            )
        ).all()
        devices: dict[int, list[str]] = {}
        ids = [row.id for row in services]
        for i in range(0, len(ids), IN_CHUNK):
            query = (
                select(ServiceResourceRow.service_id, ServiceResourceRow.device)
                .where(
                    ServiceResourceRow.service_id.in_(ids[i : i + IN_CHUNK]),
                    ServiceResourceRow.kind == "device",
                )
                .order_by(ServiceResourceRow.id)
            )
            for service_id, device in await s.execute(query):
                if device is not None:
                    devices.setdefault(service_id, []).append(device)
    ends = []
    for row in services:
        path = _primary_path(row.placement) or devices.get(row.id, [])
        if path:
            ends.append(ServiceEnds(row.name, path[0], path[-1] if path[-1] != path[0] else None))
    return ends


def _primary_path(placement: Mapping[str, Any] | None) -> list[str]:
    primary = placement.get("primary") if isinstance(placement, Mapping) else None
    devices = primary.get("devices") if isinstance(primary, Mapping) else None
    return [str(d) for d in devices] if isinstance(devices, list) else []

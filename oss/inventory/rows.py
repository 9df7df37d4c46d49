"""Mapping between the inventory model and its database rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oss.store.tables import DeviceRow, InterfaceRow, LinkRow, SiteRow
from topology.model import Device, Endpoint, Interface, Link, Site


def site_values(site: Site) -> dict[str, Any]:
    return site.model_dump(mode="json")


def device_values(device: Device) -> dict[str, Any]:
    return device.model_dump(mode="json")


def interface_values(interface: Interface) -> dict[str, Any]:
    return interface.model_dump(mode="json")


def link_values(link: Link) -> dict[str, Any]:
    return {
        "a_device": link.a.device,
        "a_interface": link.a.interface,
        "b_device": link.b.device,
        "b_interface": link.b.interface,
        "capacity_bps": link.capacity_bps,
        "latency_us": link.latency_us,
        "state": link.state.value,
    }


def site_from_row(row: SiteRow) -> Site:
    return Site(name=row.name, description=row.description)


def device_from_row(row: DeviceRow) -> Device:
    return Device(
        name=row.name,
        role=row.role,
        platform=row.platform,
        site=row.site,
        kind=row.kind,
        image=row.image,
        mgmt_address=row.mgmt_address,
        loopback=row.loopback,
        credentials_ref=row.credentials_ref,
        state=row.state,
    )


def interface_from_row(row: InterfaceRow) -> Interface:
    return Interface.model_validate({c: getattr(row, c) for c in Interface.model_fields})


def link_from_row(row: LinkRow) -> Link:
    return Link(
        id=row.id,
        a=Endpoint(device=row.a_device, interface=row.a_interface),
        b=Endpoint(device=row.b_device, interface=row.b_interface),
        capacity_bps=row.capacity_bps,
        latency_us=row.latency_us,
        state=row.state,
    )


@dataclass(frozen=True)
class Snapshot:
    sites: list[Site]
    devices: list[Device]
    interfaces: list[Interface]
    links: list[Link]


async def load_snapshot(session: AsyncSession) -> Snapshot:
    return Snapshot(
        sites=[site_from_row(r) for r in await session.scalars(select(SiteRow))],
        devices=[device_from_row(r) for r in await session.scalars(select(DeviceRow))],
        interfaces=[interface_from_row(r) for r in await session.scalars(select(InterfaceRow))],
        links=[
            link_from_row(r) for r in await session.scalars(select(LinkRow).order_by(LinkRow.id))
        ],
    )

"""Request and response shapes that are not the inventory model itself."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from oss.bounds import Int64, Label, PositiveInt64, Text
from oss.web.paging import CursorPage as CursorPage
from oss.web.paging import Page as Page  # the BSS's routes share it (oss.web)
from topology.model import (
    AdminState,
    Device,
    DeviceState,
    Endpoint,
    Interface,
    LinkState,
    Name,
    OperState,
)


class _Patch(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteUpdate(_Patch):
    description: Text | None = None


class DeviceUpdate(_Patch):
    role: Name | None = None
    platform: Name | None = None
    site: Name | None = None
    kind: Label | None = None
    image: Label | None = None
    mgmt_address: Label | None = None
    loopback: Label | None = None
    credentials_ref: Label | None = None
    state: DeviceState | None = None


class InterfaceUpdate(_Patch):
    speed_bps: Int64 | None = None
    admin_state: AdminState | None = None
    oper_state: OperState | None = None
    description: Text | None = None


class LinkCreate(_Patch):
    a: Endpoint
    b: Endpoint
    capacity_bps: PositiveInt64 = 10_000_000_000
    latency_us: Int64 = 100
    state: LinkState = LinkState.UP


class LinkUpdate(_Patch):
    capacity_bps: PositiveInt64 | None = None
    latency_us: Int64 | None = None
    state: LinkState | None = None


class ImportResult(BaseModel):
    source: str
    created: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]


class DeviceInclude(StrEnum):
    """What `GET /api/v1/devices?include=` adds to each device."""

    INTERFACES = "interfaces"


class DeviceWithInterfaces(Device):
    """A device with its interfaces, in name order (`?include=interfaces`)."""

    interfaces: list[Interface]

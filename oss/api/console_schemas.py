"""The documents of the console's routes (`oss.api.routes.map`, `map_views`, `me`), as OpenAPI
shows them. The map is served pre-serialised (`oss.api.map_document`); these models document
it, field for field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from oss.auth_roles import Role
from topology.model import AdminState, DeviceState, LinkState, OperState

COORDINATE_MAX = 1e6  # beyond any drawing: a bug or an attack, refused
POSITIONS_MAX = 10_000  # per request

SeverityText = Annotated[
    str | None,
    Field(
        description="the most severe open alarm: critical, major, minor, warning, "
        "indeterminate; null when none",
    ),
]


class Me(BaseModel):
    name: str = Field(description="the token's name")
    role: Role
    actor: str = Field(description="how the audit log names this caller")


class MapPoint(BaseModel):
    x: float
    y: float


# NaN and infinities are refused (JSON as Python reads it may carry them).
Coordinate = Annotated[float, Field(ge=-COORDINATE_MAX, le=COORDINATE_MAX, allow_inf_nan=False)]


class PositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: Coordinate
    y: Coordinate


class PositionsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    positions: dict[str, PositionIn] = Field(
        max_length=POSITIONS_MAX,
        description=f"device name -> its position; at most {POSITIONS_MAX} per request",
    )


class MapSite(BaseModel):
    name: str
    device_count: int = Field(description="devices of the site in this answer")


class MapDevice(BaseModel):
    name: str
    site: str | None
    role: str
    platform: str
    kind: str | None
    state: DeviceState
    severity: SeverityText
    open_alarms: int = Field(description="open alarms on the device and its interfaces")
    position: MapPoint | None = Field(description="saved in the view; null: not placed yet")


class MapEnd(BaseModel):
    device: str
    interface: str


class MapLink(BaseModel):
    id: int
    a: MapEnd
    b: MapEnd
    state: LinkState = Field(description="down when set down or either end is operationally down")
    severity: SeverityText
    utilisation: float | None = Field(
        description="latest in/out utilisation of its ends, the larger, 0..1; null: unknown"
    )
    capacity_bps: int


class MapDocument(BaseModel):
    view: str
    sites: list[MapSite]
    devices: list[MapDevice] = Field(description="in name order (r9 before r10)")
    links: list[MapLink] = Field(description="in id order")
    generated_at: datetime


class LinkUtilisation(BaseModel):
    links: dict[str, float] = Field(description="link id -> utilisation 0..1, known ones only")
    generated_at: datetime


class MapViewSummary(BaseModel):
    name: str
    positions: int
    updated_at: datetime | None
    updated_by: str | None


class MapView(BaseModel):
    name: str
    positions: dict[str, MapPoint]


class PositionsSaved(BaseModel):
    name: str
    saved: int = Field(description="positions set by this request")
    positions: int = Field(description="positions the view holds now")


# ---------------------------------------------------------------------------- side panels


class PublicDevice(BaseModel):
    """A device as `GET /api/v1/devices/{name}` shows it, without its credentials' reference."""

    name: str
    role: str
    platform: str
    site: str | None
    kind: str | None
    image: str | None
    mgmt_address: str | None
    state: DeviceState


class PanelLink(BaseModel):
    id: int
    a: MapEnd
    b: MapEnd
    capacity_bps: int
    latency_us: int
    state: LinkState = Field(description="as set in the inventory")
    effective_state: LinkState = Field(
        description="as the map shows it: down when set down or either end is down"
    )


class PanelInterface(BaseModel):
    device: str
    name: str
    speed_bps: int | None
    admin_state: AdminState
    oper_state: OperState
    description: str
    link: int | None = Field(description="the link it carries")
    in_bps: float | None = Field(description="latest minute's rate; null: not collected lately")
    out_bps: float | None
    utilisation: float | None = Field(description="latest in/out utilisation, the larger, 0..1")


class PanelService(BaseModel):
    id: int
    name: str
    type: str = Field(description="the service type; slices are `slice`")
    customer: str
    state: str


class CustomerRisk(BaseModel):
    customer: str
    monthly: str
    currency: str
    products: int


class CurrencyRisk(BaseModel):
    currency: str
    monthly: str


class ProductRisk(BaseModel):
    id: str
    customer: str
    offering: str
    service: str | None
    monthly: str
    currency: str


class RevenueAtRisk(BaseModel):
    monthly: str | None = Field(description="decimal string; null when several currencies")
    currency: str | None
    by_customer: list[CustomerRisk] = Field(description="largest first")
    by_currency: list[CurrencyRisk]
    products: list[ProductRisk]


class PanelImpact(BaseModel):
    """If this fails: what goes down with it, who is cut off, and what it costs a month."""

    target: str
    links: list[int]
    interfaces: list[str]
    devices: list[str]
    isolated_devices: list[str]
    partitioned: bool
    services: list[str]
    customers: list[str]
    affected_services: list[PanelService]
    revenue_at_risk: RevenueAtRisk


class DevicePanel(BaseModel):
    device: PublicDevice
    interfaces: list[PanelInterface]
    alarms: list[dict[str, Any]] = Field(
        description="TMF642 alarms, open, on the device or its interfaces, most severe first"
    )
    services: list[PanelService] = Field(description="services and slices on it or its links")
    impact: PanelImpact


class LinkPanel(BaseModel):
    link: PanelLink
    interfaces: list[PanelInterface] = Field(description="its two ends")
    alarms: list[dict[str, Any]] = Field(
        description="TMF642 alarms, open, on the link or its two ends, most severe first"
    )
    services: list[PanelService] = Field(description="services and slices on it")
    impact: PanelImpact

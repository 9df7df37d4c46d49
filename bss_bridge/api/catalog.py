"""The product catalogue (`/api/v1/catalog/offerings`, viewer role): what an order can name —
each offering's service type, fixed and order parameters, price, usage tiers, tax and SLA terms,
read from `configs/catalog/`. Exact numbers are strings, as in the files."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# run time, and they name the dependencies `router(access)` was handed (local names).

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from bss_bridge.api.access import Access
from bss_bridge.bridge import Bss
from bss_bridge.catalog import Offering, SlaTerms, UsageTariff
from oss.auth import Principal
from oss.web.paging import Page, PageDep


class TierOut(BaseModel):
    up_to: str | None = Field(description="upper bound of the tier (inclusive); null: no bound")
    price: str = Field(description="price per unit in the offering's currency")


class UsageOut(BaseModel):
    usage_type: str
    unit: Literal["GB", "hour"]
    tiers: list[TierOut]


class CreditTierOut(BaseModel):
    below_percent: str = Field(description="availability strictly under this ...")
    credit_percent: str = Field(description="... credits this percentage of the month's price")


class SlaOut(BaseModel):
    availability_target_percent: str
    latency_target_ms: str | None
    latency_window_minutes: int
    credit_tiers: list[CreditTierOut]
    credit_cap_percent: str


class OfferingOut(BaseModel):
    id: str
    name: str
    description: str
    service_type: str = Field(description="the service type (configs/services) it realises")
    parameters: dict[str, Any] = Field(description="service parameters the offering fixes")
    order_parameters: list[str] = Field(description="what an order gives (or may give)")
    currency: str
    recurring_price: str = Field(description="per month, prorated by the day")
    tax_rate: str = Field(description="0.19 is 19 %")
    usage: UsageOut | None
    sla: SlaOut | None


def router(access: Access) -> APIRouter:
    BssDep = Annotated[Bss, Depends(access.bss)]
    Viewer = Annotated[Principal, Depends(access.viewer)]

    router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])

    @router.get("/offerings")
    async def list_offerings(bss: BssDep, _: Viewer, page: PageDep) -> Page[OfferingOut]:
        """Every offering of the catalogue, by id."""
        offerings = bss.catalog.all()
        items = [offering_out(o) for o in offerings[page.offset : page.offset + page.limit]]
        return Page(items=items, total=len(offerings), limit=page.limit, offset=page.offset)

    @router.get("/offerings/{offering_id}")
    async def get_offering(offering_id: str, bss: BssDep, _: Viewer) -> OfferingOut:
        return offering_out(bss.catalog.get(offering_id))  # NotFound -> 404

    return router


def offering_out(o: Offering) -> OfferingOut:
    return OfferingOut(
        id=o.id,
        name=o.name,
        description=o.description,
        service_type=o.service_type,
        parameters=dict(o.parameters),
        order_parameters=list(o.order_parameters),
        currency=o.currency,
        recurring_price=str(o.recurring_price),
        tax_rate=str(o.tax_rate),
        usage=_usage(o.usage),
        sla=_sla(o.sla),
    )


def _usage(usage: UsageTariff | None) -> UsageOut | None:
    if usage is None:
        return None
    tiers = [TierOut(up_to=_text(t.up_to), price=str(t.price)) for t in usage.tiers]
    return UsageOut(usage_type=usage.usage_type, unit=usage.unit, tiers=tiers)


def _sla(sla: SlaTerms | None) -> SlaOut | None:
    if sla is None:
        return None
    return SlaOut(
        availability_target_percent=str(sla.availability_target_percent),
        latency_target_ms=_text(sla.latency_target_ms),
        latency_window_minutes=sla.latency_window_minutes,
        credit_tiers=[
            CreditTierOut(below_percent=str(t.below_percent), credit_percent=str(t.credit_percent))
            for t in sla.credit_tiers
        ],
        credit_cap_percent=str(sla.credit_cap_percent),
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)

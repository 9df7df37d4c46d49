"""`GET /api/v1/sla/{service}`: the running SLA compliance of a service's product for its
current billing period (the account's billing day, today), with the outage windows and the
alarms that caused them. Terms come from the product's offering in the catalogue."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# run time, and they name the dependencies `router(access)` was handed (local names).

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from bss_bridge.api.access import Access
from bss_bridge.bridge import Bss
from bss_bridge.rating import Period, billing_period
from bss_bridge.sla import compliance
from bss_bridge.tables import BillingAccountRow, ProductRow
from oss.auth import Principal
from oss.errors import NotFound


def router(access: Access) -> APIRouter:
    BssDep = Annotated[Bss, Depends(access.bss)]
    Viewer = Annotated[Principal, Depends(access.viewer)]

    router = APIRouter(prefix="/api/v1/sla", tags=["sla"])

    @router.get("/{service}", summary="Running SLA compliance of a service in its current period")
    async def get_sla(service: str, bss: BssDep, _: Viewer) -> dict[str, Any]:
        now = bss.billing.clock()  # the bill run's clock: one injectable "now" for the BSS
        async with bss.db.sessions() as s:
            query = (
                select(ProductRow)
                .where(ProductRow.service_name == service)
                .order_by(ProductRow.created_at.desc(), ProductRow.id)
                .limit(1)
            )
            product = (await s.scalars(query)).first()
            if product is None:
                raise NotFound(f"service {service} is not a customer product (no SLA)")
            account = await s.get(BillingAccountRow, product.account_id)
        if account is None:
            raise NotFound(f"billing account {product.account_id} not found")
        terms = bss.catalog.get(product.offering_id).sla
        if terms is None:
            raise NotFound(f"offering {product.offering_id} has no SLA terms")
        period = current_period(now, account.billing_day)
        result = await compliance(bss.db, service, terms, period, records=bss.oss.records, now=now)
        return {"product": product.id, "offering": product.offering_id, **result.to_json()}

    return router


def current_period(now: datetime, billing_day: int) -> Period:
    """The billing period holding `now`: this month's, or last month's before the billing day."""
    this_month = billing_period(f"{now.year:04d}-{now.month:02d}", billing_day)
    if now >= this_month.start:
        return this_month
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return billing_period(f"{year:04d}-{month:02d}", billing_day)

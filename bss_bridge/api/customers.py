"""Customers and billing accounts (`/api/v1/customers`, `/api/v1/accounts`): the minimal CRM
behind orders and bills, and the products orders made (`/api/v1/products`, read-only). Writing
needs the operator role, reading the viewer role."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# run time, and they name the dependencies `router(access)` was handed (local names).

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from bss_bridge.api.access import Access
from bss_bridge.bridge import Bss
from bss_bridge.overview import customer_overview
from oss.auth import Principal
from oss.web.paging import Page, PageDep

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(max_length=64, pattern=_ID, description="the name services carry")
    name: str = Field(min_length=1, max_length=128)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=64, pattern=_ID, description="default: ba-…")
    customer: str = Field(max_length=64, pattern=_ID)
    name: str = Field(min_length=1, max_length=128)
    currency: str = Field(description="ISO 4217 code, e.g. EUR")
    billing_day: int = Field(default=1, ge=1, le=28, description="the day a period starts")


def router(access: Access) -> APIRouter:
    BssDep = Annotated[Bss, Depends(access.bss)]
    Viewer = Annotated[Principal, Depends(access.viewer)]
    Operator = Annotated[Principal, Depends(access.operator)]

    router = APIRouter(prefix="/api/v1", tags=["customers"])

    @router.post("/customers", status_code=status.HTTP_201_CREATED)
    async def create_customer(
        body: CustomerCreate, bss: BssDep, principal: Operator
    ) -> dict[str, Any]:
        return await bss.customers.create_customer(
            body.id, body.name, email=body.email, phone=body.phone, actor=principal.actor
        )

    @router.get("/customers")
    async def list_customers(bss: BssDep, _: Viewer, page: PageDep) -> Page[dict[str, Any]]:
        items, total = await bss.customers.list_customers(limit=page.limit, offset=page.offset)
        return Page(items=items, total=total, limit=page.limit, offset=page.offset)

    @router.get("/customers/{customer_id}")
    async def get_customer(customer_id: str, bss: BssDep, _: Viewer) -> dict[str, Any]:
        return await bss.customers.get_customer(customer_id)

    @router.get(
        "/customers/{customer_id}/overview",
        summary="A customer's products (price, this period's SLA) and bills with credits",
    )
    async def get_customer_overview(customer_id: str, bss: BssDep, _: Viewer) -> dict[str, Any]:
        # the bill run's clock: one injectable "now" for the BSS
        return await customer_overview(bss, customer_id, bss.billing.clock())

    @router.post("/accounts", status_code=status.HTTP_201_CREATED)
    async def create_account(
        body: AccountCreate, bss: BssDep, principal: Operator
    ) -> dict[str, Any]:
        return await bss.customers.create_account(
            body.customer,
            body.name,
            body.currency,
            billing_day=body.billing_day,
            id=body.id,
            actor=principal.actor,
        )

    @router.get("/accounts")
    async def list_accounts(
        bss: BssDep,
        _: Viewer,
        page: PageDep,
        customer: Annotated[str | None, Query()] = None,
    ) -> Page[dict[str, Any]]:
        items, total = await bss.customers.list_accounts(
            customer=customer, limit=page.limit, offset=page.offset
        )
        return Page(items=items, total=total, limit=page.limit, offset=page.offset)

    @router.get("/accounts/{account_id}")
    async def get_account(account_id: str, bss: BssDep, _: Viewer) -> dict[str, Any]:
        return await bss.customers.get_account(account_id)

    @router.get("/products")
    async def list_products(
        bss: BssDep,
        _: Viewer,
        page: PageDep,
        account: Annotated[str | None, Query()] = None,
        customer: Annotated[str | None, Query()] = None,
        state: Annotated[str | None, Query(description="e.g. active, terminated")] = None,
    ) -> Page[dict[str, Any]]:
        items, total = await bss.customers.list_products(
            account=account, customer=customer, state=state, limit=page.limit, offset=page.offset
        )
        return Page(items=items, total=total, limit=page.limit, offset=page.offset)

    @router.get("/products/{product_id}")
    async def get_product(product_id: str, bss: BssDep, _: Viewer) -> dict[str, Any]:
        return await bss.customers.get_product(product_id)

    return router

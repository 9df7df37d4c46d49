"""Rows the BSS tests start from: a customer with a billing account, and products on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bss_bridge.tables import BillingAccountRow, CustomerRow, ProductRow


async def add_account(
    s: AsyncSession, customer: str = "acme", account: str = "acme-1", billing_day: int = 1
) -> None:
    s.add(CustomerRow(id=customer, name=customer.upper()))
    await s.flush()  # no ORM relationship orders the inserts: the account refers to it
    s.add(
        BillingAccountRow(
            id=account,
            customer_id=customer,
            name=customer.upper(),
            currency="EUR",
            billing_day=billing_day,
        )
    )
    await s.flush()


def product_row(
    start: datetime | None,
    end: datetime | None = None,
    *,
    pid: str = "p-1",
    service: str = "svc-a",
    account: str = "acme-1",
    customer: str = "acme",
    offering: str = "metro-slice-200",
) -> ProductRow:
    return ProductRow(
        id=pid,
        account_id=account,
        customer_id=customer,
        offering_id=offering,
        service_name=service,
        state="active" if end is None else "terminated",
        params={},
        start_at=start,
        end_at=end,
    )

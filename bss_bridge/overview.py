"""A customer at a glance (`GET /api/v1/customers/{id}/overview`, the console's customer view):
the customer, its products with their monthly price and this period's SLA compliance, and its
latest bills with the SLA credits on each. A fixed number of queries whatever the number of
products or bills: compliance of all products at once (`sla.compliance_many`), the credit lines
of all bills in one read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bss_bridge.bridge import Bss
from bss_bridge.catalog import Offering
from bss_bridge.customers import product_json
from bss_bridge.money import round_money
from bss_bridge.rating import Period, period_containing
from bss_bridge.sla import SlaResult, compliance_many
from bss_bridge.tables import BillingAccountRow, BillLineRow, BillRow, ProductRow
from oss.errors import NotFound
from oss.store.base import in_chunks

BILLS_SHOWN = 24  # two years of monthly bills
CREDIT = "sla_credit"  # the bill line kind of an SLA credit


async def customer_overview(bss: Bss, customer_id: str, now: datetime) -> dict[str, Any]:
    customer = await bss.customers.get_customer(customer_id)  # NotFound names it
    async with bss.db.read() as s:
        accounts = {
            a.id: a
            for a in await s.scalars(
                select(BillingAccountRow)
                .where(BillingAccountRow.customer_id == customer_id)
                .order_by(BillingAccountRow.id)
            )
        }
        products = list(
            await s.scalars(
                select(ProductRow)
                .where(ProductRow.customer_id == customer_id)
                .order_by(ProductRow.created_at, ProductRow.id)
            )
        )
        bills = await _bills(s, list(accounts))
    offerings = {p.id: _offering(bss, p.offering_id) for p in products}
    sla = await _sla(bss, products, offerings, accounts, now)
    return {
        "customer": customer,
        "accounts": [
            {"id": a.id, "name": a.name, "currency": a.currency, "billing_day": a.billing_day}
            for a in accounts.values()
        ],
        "products": [_product(p, offerings[p.id], sla) for p in products],
        "bills": bills,
    }


def _offering(bss: Bss, offering_id: str) -> Offering | None:
    try:
        return bss.catalog.get(offering_id)
    except NotFound:  # an offering retired from the catalogue: the product stays listed
        return None


async def _sla(
    bss: Bss,
    products: Sequence[ProductRow],
    offerings: dict[str, Offering | None],
    accounts: dict[str, BillingAccountRow],
    now: datetime,
) -> dict[str, SlaResult]:
    """This period's compliance of each active product's service that has SLA terms."""
    items: list[tuple[str, Any, Period]] = []
    for p in products:
        offering = offerings[p.id]
        account = accounts.get(p.account_id)
        if p.state != "active" or p.service_name is None or account is None:
            continue
        if offering is None or offering.sla is None:
            continue
        items.append((p.service_name, offering.sla, period_containing(now, account.billing_day)))
    return await compliance_many(bss.db, items, records=bss.oss.records, now=now)


def _product(
    row: ProductRow, offering: Offering | None, sla: dict[str, SlaResult]
) -> dict[str, Any]:
    found = sla.get(row.service_name) if row.state == "active" and row.service_name else None
    return {
        **product_json(row),
        "monthly_price": (
            str(round_money(offering.recurring_price, offering.currency)) if offering else None
        ),
        "currency": offering.currency if offering else None,
        "sla": found.to_json() if found is not None else None,
    }


async def _bills(s: AsyncSession, accounts: list[str]) -> list[dict[str, Any]]:
    """The accounts' latest bills, newest period first, each with its SLA credit lines."""
    if not accounts:
        return []
    rows = list(
        await s.scalars(
            select(BillRow)
            .where(BillRow.account_id.in_(accounts))
            .order_by(BillRow.period_start.desc(), BillRow.id.desc())
            .limit(BILLS_SHOWN)
        )
    )
    credits: dict[int, list[dict[str, Any]]] = {}
    for chunk in in_chunks([b.id for b in rows]):
        lines = await s.scalars(
            select(BillLineRow)
            .where(BillLineRow.bill_id.in_(chunk), BillLineRow.kind == CREDIT)
            .order_by(BillLineRow.id)
        )
        for line in lines:
            credits.setdefault(line.bill_id, []).append(
                {"product": line.product_id, "amount": str(line.amount), "reason": line.description}
            )
    return [
        {
            "id": b.id,
            "bill_no": b.bill_no,
            "account": b.account_id,
            # ISO 8601 interval of whole UTC days, the end excluded: "2026-10-01/2026-11-01"
            "period": f"{b.period_start.date().isoformat()}/{b.period_end.date().isoformat()}",
            "period_start": b.period_start.isoformat(),
            "period_end": b.period_end.isoformat(),
            "state": b.state,
            "currency": b.currency,
            "subtotal": str(b.subtotal),
            "tax": str(b.tax),
            "total": str(b.total),
            "credits": credits.get(b.id, []),
        }
        for b in rows
    ]

"""Revenue at risk: the monthly recurring price of the active products whose services a failure
would hit (the console's "if this fails"). A product is realised by one service
(`products.service_name`); its monthly price is its offering's (`configs/catalog`). Money as
decimal strings, rounded to the currency, like the rest of the BSS API.

Products of several currencies are summed per currency (`by_currency`); the single `monthly`
and `currency` are then null, never a sum across currencies. Nothing at risk is 0 in the
catalogue's currency (null when it has several).
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from bss_bridge.catalog import Catalog
from bss_bridge.money import round_money
from bss_bridge.tables import ProductRow
from oss.errors import NotFound
from oss.store import Database
from oss.store.base import in_chunks

CHARGED = "active"  # the product state that is billed its recurring price


async def revenue_at_risk(
    db: Database, catalog: Catalog, services: Collection[str]
) -> dict[str, Any]:
    """{monthly, currency, by_customer: [{customer, monthly, currency, products}],
    by_currency: [{currency, monthly}], products: [{id, customer, offering, service,
    monthly, currency}]} of the active products on these services."""
    products: list[dict[str, Any]] = []
    async with db.read() as session:
        for chunk in in_chunks(sorted(services)):
            query = (
                select(
                    ProductRow.id,
                    ProductRow.customer_id,
                    ProductRow.offering_id,
                    ProductRow.service_name,
                )
                .where(ProductRow.service_name.in_(chunk), ProductRow.state == CHARGED)
                .order_by(ProductRow.customer_id, ProductRow.id)
            )
            for product_id, customer, offering_id, service in await session.execute(query):
                price = _monthly(catalog, offering_id)
                if price is None:
                    continue  # an offering no longer in the catalogue: no price to count
                amount, currency = price
                products.append(
                    {
                        "id": product_id,
                        "customer": customer,
                        "offering": offering_id,
                        "service": service,
                        "monthly": amount,
                        "currency": currency,
                    }
                )
    # Nothing at risk is still an amount: in the catalogue's currency when it has one.
    currencies = {o.currency for o in catalog.all()}
    return _summed(products, next(iter(currencies)) if len(currencies) == 1 else None)


def _monthly(catalog: Catalog, offering_id: str) -> tuple[Decimal, str] | None:
    try:
        offering = catalog.get(offering_id)
    except NotFound:
        return None
    return offering.recurring_price, offering.currency


def _summed(products: list[dict[str, Any]], default_currency: str | None) -> dict[str, Any]:
    per_currency: dict[str, Decimal] = {}
    if not products and default_currency is not None:
        per_currency[default_currency] = Decimal(0)
    per_customer: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for p in products:
        currency, amount = p["currency"], p["monthly"]
        per_currency[currency] = per_currency.get(currency, Decimal(0)) + amount
        total, count = per_customer.get((p["customer"], currency), (Decimal(0), 0))
        per_customer[(p["customer"], currency)] = (total + amount, count + 1)

    def money(amount: Decimal, currency: str) -> str:
        return str(round_money(amount, currency))

    single = next(iter(per_currency)) if len(per_currency) == 1 else None
    ranked = sorted(per_customer.items(), key=lambda item: (-item[1][0], item[0]))
    by_customer = [
        {
            "customer": customer,
            "monthly": money(total, currency),
            "currency": currency,
            "products": count,
        }
        for (customer, currency), (total, count) in ranked
    ]
    return {
        "monthly": money(per_currency[single], single) if single else None,
        "currency": single,
        "by_customer": by_customer,
        "by_currency": [
            {"currency": c, "monthly": money(per_currency[c], c)} for c in sorted(per_currency)
        ],
        "products": [{**p, "monthly": money(p["monthly"], p["currency"])} for p in products],
    }

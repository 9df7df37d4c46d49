"""Revenue at risk summed per customer and per currency, never across currencies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bss_bridge.revenue import _summed


def product(pid: str, customer: str, monthly: str, currency: str = "EUR") -> dict[str, Any]:
    return {
        "id": pid,
        "customer": customer,
        "offering": "o",
        "service": f"svc-{pid}",
        "monthly": Decimal(monthly),
        "currency": currency,
    }


def test_one_currency_sums_and_ranks_customers_largest_first() -> None:
    found = _summed(
        [
            product("1", "acme", "300"),
            product("2", "globex", "500.005"),
            product("3", "acme", "250"),
        ],
        "EUR",
    )
    assert (found["monthly"], found["currency"]) == ("1050.01", "EUR")  # rounded half up once
    assert [(c["customer"], c["monthly"], c["products"]) for c in found["by_customer"]] == [
        ("acme", "550.00", 2),
        ("globex", "500.01", 1),
    ]
    assert [p["monthly"] for p in found["products"]] == ["300.00", "500.01", "250.00"]


def test_several_currencies_are_never_added_together() -> None:
    found = _summed([product("1", "acme", "100"), product("2", "acme", "5000", "JPY")], "EUR")
    assert (found["monthly"], found["currency"]) == (None, None)
    assert found["by_currency"] == [
        {"currency": "EUR", "monthly": "100.00"},
        {"currency": "JPY", "monthly": "5000"},
    ]
    assert len(found["by_customer"]) == 2  # acme once per currency


def test_nothing_at_risk_is_zero_in_the_catalogues_currency() -> None:
    assert _summed([], "EUR")["monthly"] == "0.00"
    assert _summed([], None)["monthly"] is None

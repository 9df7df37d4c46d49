"""A bill computed by hand: proration, graduated usage tiers, an SLA credit and tax per rate,
to the cent; plus the rules that make lines idempotent (their keys) and currencies strict."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bss_bridge.billing import LateUsage, ProductToBill, compute_lines, totals
from bss_bridge.catalog import CreditTier, Offering, SlaTerms, Tier, UsageTariff
from bss_bridge.rating import billing_period
from oss.errors import InvalidInput

NOV = billing_period("2026-11", 1)  # 30 days


def offering(**overrides: Any) -> Offering:
    values: dict[str, Any] = {
        "id": "metro-slice-200",
        "name": "Metro slice",
        "description": "",
        "service_type": "slice",
        "parameters": {},
        "order_parameters": (),
        "currency": "EUR",
        "recurring_price": Decimal("500.00"),
        "usage": UsageTariff(
            "data",
            "GB",
            (
                Tier(Decimal("1000"), Decimal("0.00")),
                Tier(Decimal("10000"), Decimal("0.02")),
                Tier(None, Decimal("0.01")),
            ),
        ),
        "tax_rate": Decimal("0.19"),
        "sla": SlaTerms(
            availability_target_percent=Decimal("99.9"),
            latency_target_ms=None,
            latency_window_minutes=5,
            credit_tiers=(
                CreditTier(Decimal("99.9"), Decimal("10")),
                CreditTier(Decimal("99.0"), Decimal("25")),
            ),
            credit_cap_percent=Decimal("50"),
        ),
    }
    values.update(overrides)
    return Offering(**values)


@dataclass(frozen=True)
class Sla:
    availability_percent: Decimal
    met: bool = False
    evidence: dict[str, Any] = field(default_factory=lambda: {"outageWindows": [{"id": 7}]})

    def to_json(self) -> dict[str, Any]:
        return {"measuredPercent": str(self.availability_percent), **self.evidence}


def product(pid: str, off: Offering, start: datetime, end: datetime | None = None) -> ProductToBill:
    return ProductToBill(pid, off, f"svc-{pid}", start, end)


def test_a_bill_computed_by_hand() -> None:
    slice_ = product("p1", offering(), datetime(2026, 11, 16, 9, 30, tzinfo=UTC))
    cheap = offering(
        id="vpn-small", name="VPN", recurring_price=Decimal("99.99"), usage=None, sla=None,
        tax_rate=Decimal("0.07"),
    )  # fmt: skip
    vpn = product("p2", cheap, datetime(2026, 10, 1, tzinfo=UTC))
    lines = compute_lines(
        bill_id=42,
        currency="EUR",
        period=NOV,
        products=[slice_, vpn],
        usage={"p1": Decimal("1500")},
        sla={"p1": Sla(Decimal("98.500"))},
    )
    by_key = {line.key: line for line in lines}
    # 15 of 30 days (activation day counts in full): 500.00 * 15 / 30
    assert by_key["recurring:p1:2026-11-01"].amount == Decimal("250.00")
    # 1000 GB free, then 500 GB at 0.02
    assert by_key["usage:p1:2026-11-01"].amount == Decimal("10.00")
    # 98.5 % is under 99.0 %: 25 % of the prorated fee, as a credit
    credit = by_key["sla:p1:2026-11-01"]
    assert credit.kind == "sla_credit"
    assert credit.amount == Decimal("-62.50")
    assert credit.evidence["sla"] == {"measuredPercent": "98.500", "outageWindows": [{"id": 7}]}
    assert by_key["recurring:p2:2026-11-01"].amount == Decimal("99.99")
    # 19 % of 250 + 10 - 62.50 = 197.50 -> 37.525 -> 37.53 (half up)
    assert by_key["tax:42:0.19"].amount == Decimal("37.53")
    # 7 % of 99.99 = 6.9993 -> 7.00
    assert by_key["tax:42:0.07"].amount == Decimal("7.00")
    assert totals(lines, "EUR") == (Decimal("297.49"), Decimal("44.53"), Decimal("342.02"))
    assert [line.kind for line in lines][-2:] == ["tax", "tax"]


def test_a_met_sla_or_no_result_gives_no_credit() -> None:
    p = product("p1", offering(), datetime(2026, 10, 1, tzinfo=UTC))
    for sla in ({}, {"p1": Sla(Decimal("99.95"), met=True)}):
        lines = compute_lines(
            bill_id=1, currency="EUR", period=NOV, products=[p], usage={}, sla=sla
        )
        assert [line.kind for line in lines] == ["recurring", "tax"]
        assert totals(lines, "EUR") == (Decimal("500.00"), Decimal("95.00"), Decimal("595.00"))


def test_late_usage_is_priced_at_the_margin_and_names_its_period() -> None:
    p = product("p1", offering(), datetime(2026, 10, 1, tzinfo=UTC))
    october = billing_period("2026-10", 1)
    late = LateUsage(p, october, Decimal("300"), Decimal("900"), "2026-000001")
    lines = compute_lines(
        bill_id=9, currency="EUR", period=NOV, products=[], usage={}, sla={}, late=[late]
    )
    adjustment = lines[0]
    assert adjustment.key == "adjustment:p1:2026-10-01:9"
    # 900 GB were billed (free); 100 more are free, 200 at 0.02
    assert adjustment.amount == Decimal("4.00")
    assert "2026-10-01 to 2026-11-01" in adjustment.description
    assert "2026-000001" in adjustment.description
    assert lines[1].key == "tax:9:0.19" and lines[1].amount == Decimal("0.76")


def test_a_product_in_another_currency_is_an_error_naming_both() -> None:
    p = product("p1", offering(currency="USD"), datetime(2026, 10, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput, match=r"USD.*EUR"):
        compute_lines(bill_id=1, currency="EUR", period=NOV, products=[p], usage={}, sla={})


def test_yen_bills_round_to_whole_yen() -> None:
    p = product(
        "p1",
        offering(currency="JPY", recurring_price=Decimal("10000"), usage=None, sla=None),
        datetime(2026, 11, 11, tzinfo=UTC),
    )
    lines = compute_lines(bill_id=1, currency="JPY", period=NOV, products=[p], usage={}, sla={})
    # 20 of 30 days: 6666.67 -> 6667; tax 19 % of 6667 = 1266.73 -> 1267
    assert totals(lines, "JPY") == (Decimal("6667"), Decimal("1267"), Decimal("7934"))

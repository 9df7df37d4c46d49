"""Rating with hand-computed expectations (the arithmetic is in the comments)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bss_bridge.catalog import CreditTier, SlaTerms, Tier, UsageTariff
from bss_bridge.rating import (
    Period,
    billing_period,
    period_containing,
    recurring_charge,
    sla_credit,
    tax,
    usage_charge,
)
from oss.errors import InvalidInput

D = Decimal
PRICE = D("500.00")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


OCTOBER = Period(utc(2026, 10, 1), utc(2026, 11, 1))  # 31 days


# --- periods -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "day", "start", "end"),
    [
        ("2026-11", 1, utc(2026, 11, 1), utc(2026, 12, 1)),
        ("2026-11", 15, utc(2026, 11, 15), utc(2026, 12, 15)),
        ("2026-12", 1, utc(2026, 12, 1), utc(2027, 1, 1)),
        ("2026-12", 15, utc(2026, 12, 15), utc(2027, 1, 15)),
        # a billing day past the month's end falls on its last day
        ("2027-01", 31, utc(2027, 1, 31), utc(2027, 2, 28)),
        ("2027-02", 31, utc(2027, 2, 28), utc(2027, 3, 31)),
        ("2028-02", 30, utc(2028, 2, 29), utc(2028, 3, 30)),
    ],
)
def test_billing_period(month: str, day: int, start: datetime, end: datetime) -> None:
    assert billing_period(month, day) == Period(start, end)


@pytest.mark.parametrize(
    ("month", "day", "days"),
    [("2026-11", 1, 30), ("2026-10", 1, 31), ("2027-02", 1, 28), ("2028-02", 1, 29),
     ("2026-11", 15, 30), ("2027-01", 15, 31), ("2027-01", 31, 28)],
)  # fmt: skip
def test_days_in_a_period(month: str, day: int, days: int) -> None:
    assert billing_period(month, day).days == days


@pytest.mark.parametrize(
    ("month", "day"),
    [("2026-13", 1), ("2026-1", 1), ("26-11", 1), ("2026-11-01", 1), ("2026-11", 0),
     ("2026-11", 32), ("2026-11", True)],
)  # fmt: skip
def test_billing_period_refuses_bad_input(month: str, day: int) -> None:
    with pytest.raises(InvalidInput):
        billing_period(month, day)


def test_period_is_utc_and_ordered() -> None:
    cet = timezone(timedelta(hours=1))
    period = Period(datetime(2026, 11, 1, 1, tzinfo=cet), datetime(2026, 12, 1, 1, tzinfo=cet))
    assert period.start == utc(2026, 11, 1) and period.start.tzinfo == UTC
    with pytest.raises(InvalidInput, match="timezone-aware"):
        Period(datetime(2026, 11, 1), utc(2026, 12, 1))
    with pytest.raises(InvalidInput, match="ends after it starts"):
        Period(utc(2026, 12, 1), utc(2026, 12, 1))


def test_period_contains_its_start_not_its_end() -> None:
    assert utc(2026, 10, 1) in OCTOBER
    assert utc(2026, 10, 31, 23, 59) in OCTOBER
    assert utc(2026, 11, 1) not in OCTOBER


@pytest.mark.parametrize(
    ("moment", "start", "end"),
    [
        (utc(2026, 11, 20, 8), utc(2026, 11, 15), utc(2026, 12, 15)),
        (utc(2026, 11, 15), utc(2026, 11, 15), utc(2026, 12, 15)),
        (utc(2026, 11, 10), utc(2026, 10, 15), utc(2026, 11, 15)),
        (utc(2026, 1, 10), utc(2025, 12, 15), utc(2026, 1, 15)),
    ],
)
def test_period_containing(moment: datetime, start: datetime, end: datetime) -> None:
    assert period_containing(moment, 15) == Period(start, end)


# --- recurring charges: activation day inclusive, termination day exclusive ----------------------


@pytest.mark.parametrize(
    ("active_from", "active_to", "days", "amount"),
    [
        # active the whole period: exactly the price
        (utc(2026, 9, 12, 10), None, 31, "500.00"),
        (utc(2026, 10, 1), None, 31, "500.00"),
        (utc(2026, 10, 1, 23, 59), None, 31, "500.00"),  # activated on the first day
        (utc(2026, 9, 1), utc(2026, 11, 1), 31, "500.00"),  # terminated at the period's end
        (utc(2026, 9, 1), utc(2026, 11, 5), 31, "500.00"),
        # activated on the last day: 500 * 1 / 31 = 16.129...
        (utc(2026, 10, 31, 18), None, 1, "16.13"),
        # Oct 22..31 = 10 days: 500 * 10 / 31 = 161.290...
        (utc(2026, 10, 22, 9), None, 10, "161.29"),
        # terminated mid-month, Oct 1..15 = 15 days: 7500 / 31 = 241.935...
        (utc(2026, 9, 1), utc(2026, 10, 16, 12), 15, "241.94"),
        # Oct 5..11 = 7 days: 3500 / 31 = 112.903...
        (utc(2026, 10, 5, 8), utc(2026, 10, 12, 17), 7, "112.90"),
        # activated and terminated on the same day: no day charged
        (utc(2026, 10, 5, 8), utc(2026, 10, 5, 17), 0, "0.00"),
        # outside the period
        (utc(2026, 8, 1), utc(2026, 9, 20), 0, "0.00"),
        (utc(2026, 11, 3), None, 0, "0.00"),
        (utc(2026, 11, 1), None, 0, "0.00"),
    ],
)
def test_recurring_charge_prorated_by_the_day(
    active_from: datetime, active_to: datetime | None, days: int, amount: str
) -> None:
    charge = recurring_charge(PRICE, OCTOBER, active_from, active_to, "EUR")
    assert charge.amount == D(amount)
    assert str(charge.amount) == amount
    assert charge.quantity == D(days)
    assert charge.detail["days_charged"] == days
    assert charge.detail["days_in_period"] == 31


def test_days_are_utc_calendar_days() -> None:
    # 01:00 at +02:00 is Oct 21 23:00 UTC: Oct 21..31 = 11 days, 5500 / 31 = 177.419...
    cest = timezone(timedelta(hours=2))
    charge = recurring_charge(PRICE, OCTOBER, datetime(2026, 10, 22, 1, tzinfo=cest), None, "EUR")
    assert charge.quantity == 11
    assert charge.amount == D("177.42")


def test_february() -> None:
    # Feb 15..28 of 28 days: 500 * 14 / 28 = 250 exactly
    feb = billing_period("2027-02", 1)
    assert recurring_charge(PRICE, feb, utc(2027, 2, 15), None, "EUR").amount == D("250.00")
    # leap year: Feb 15..29 of 29 days: 7500 / 29 = 258.620...
    leap = billing_period("2028-02", 1)
    assert recurring_charge(PRICE, leap, utc(2028, 2, 15), None, "EUR").amount == D("258.62")
    assert recurring_charge(PRICE, leap, utc(2028, 1, 1), None, "EUR").amount == PRICE


def test_billing_day_15_spans_the_month_end() -> None:
    period = billing_period("2026-11", 15)  # Nov 15 .. Dec 15, 30 days
    # activated Dec 1: Dec 1..14 = 14 days, 7000 / 30 = 233.333...
    late = recurring_charge(PRICE, period, utc(2026, 12, 1, 10), None, "EUR")
    assert (late.quantity, late.amount) == (D(14), D("233.33"))
    # terminated Nov 30: Nov 15..29 = 15 days, 7500 / 30 = 250
    early = recurring_charge(PRICE, period, utc(2026, 6, 1), utc(2026, 11, 30, 12), "EUR")
    assert (early.quantity, early.amount) == (D(15), D("250.00"))


def test_split_period_adds_up_to_at_most_a_cent_off() -> None:
    # terminated Oct 16, re-activated Oct 16: 15 + 16 days = the month, each rounded
    first = recurring_charge(PRICE, OCTOBER, utc(2026, 9, 1), utc(2026, 10, 16, 9), "EUR")
    second = recurring_charge(PRICE, OCTOBER, utc(2026, 10, 16, 9), None, "EUR")
    assert (first.amount, second.amount) == (D("241.94"), D("258.06"))  # 8000 / 31 = 258.064...
    assert first.amount + second.amount == PRICE


def test_recurring_charge_in_yen_rounds_to_whole_yen() -> None:
    # 10000 * 10 / 31 = 3225.806...
    charge = recurring_charge(D("10000"), OCTOBER, utc(2026, 10, 22), None, "JPY")
    assert str(charge.amount) == "3226"


def test_recurring_charge_refuses_bad_times() -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        recurring_charge(PRICE, OCTOBER, datetime(2026, 10, 1), None, "EUR")
    with pytest.raises(InvalidInput, match="before active_from"):
        recurring_charge(PRICE, OCTOBER, utc(2026, 10, 10), utc(2026, 10, 9), "EUR")
    with pytest.raises(InvalidInput, match="whole UTC days"):
        recurring_charge(PRICE, Period(utc(2026, 10, 1, 6), utc(2026, 11, 1)), utc(2026, 9, 1),
                         None, "EUR")  # fmt: skip


# --- usage: graduated tiers -----------------------------------------------------------------------

DATA = UsageTariff(
    usage_type="data",
    unit="GB",
    tiers=(Tier(D(1000), D("0.00")), Tier(D(10000), D("0.02")), Tier(None, D("0.01"))),
)


@pytest.mark.parametrize(
    ("gb", "amount"),
    [
        ("0", "0.00"),
        ("800", "0.00"),  # included
        ("1000", "0.00"),
        ("1000.25", "0.01"),  # 0.25 * 0.02 = 0.005, half up
        ("1000.333", "0.01"),  # 0.333 * 0.02 = 0.00666
        ("1500.5", "10.01"),  # 500.5 * 0.02 = 10.010
        ("10000", "180.00"),  # 9000 * 0.02
        ("12000", "200.00"),  # 9000 * 0.02 + 2000 * 0.01 = 180 + 20
        ("10000.5", "180.01"),  # 180 + 0.5 * 0.01 = 180.005, half up
    ],
)
def test_usage_charge_graduated(gb: str, amount: str) -> None:
    charge = usage_charge(D(gb), DATA, "EUR")
    assert charge.amount == D(amount)
    assert str(charge.amount) == amount
    assert charge.quantity == D(gb)


def test_usage_detail_lists_the_tier_breakdown() -> None:
    charge = usage_charge(D("12000"), DATA, "EUR")
    assert charge.detail["tiers"] == [
        {"from": "0", "up_to": "1000", "quantity": "1000", "unit_price": "0.00",
         "amount": "0.00"},
        {"from": "1000", "up_to": "10000", "quantity": "9000", "unit_price": "0.02",
         "amount": "180.00"},
        {"from": "10000", "up_to": None, "quantity": "2000", "unit_price": "0.01",
         "amount": "20.00"},
    ]  # fmt: skip
    assert charge.unit_price is None  # three prices
    assert charge.detail["unit"] == "GB"


def test_usage_within_one_tier_has_its_unit_price() -> None:
    charge = usage_charge(D("800"), DATA, "EUR")
    assert len(charge.detail["tiers"]) == 1
    assert charge.unit_price == D("0.00")
    assert usage_charge(D(0), DATA, "EUR").detail["tiers"] == []


def test_usage_rounds_the_sum_once_not_each_tier() -> None:
    # per tier: 0.5 * 0.01 = 0.005 and 0.5 * 0.01 = 0.005; rounded each: 0.01 + 0.01 = 0.02;
    # rounded once: 0.010 -> 0.01
    tariff = UsageTariff("data", "GB", (Tier(D("0.5"), D("0.01")), Tier(None, D("0.01"))))
    assert usage_charge(D("1.0"), tariff, "EUR").amount == D("0.01")


def test_sub_minor_unit_price() -> None:
    tariff = UsageTariff("data", "GB", (Tier(None, D("0.000125")),))
    assert usage_charge(D(1000), tariff, "EUR").amount == D("0.13")  # 0.125, half up
    assert usage_charge(D(1000), tariff, "EUR").detail["exact_amount"] == "0.125000"


def test_hourly_tariff() -> None:
    tariff = UsageTariff("session", "hour", (Tier(D(10), D("1.50")), Tier(None, D("1.00"))))
    charge = usage_charge(D("12.5"), tariff, "EUR")  # 10 * 1.50 + 2.5 * 1.00
    assert charge.amount == D("17.50")
    assert "12.5 hour" in charge.description


def test_usage_refuses_negative_or_non_decimal_quantity() -> None:
    with pytest.raises(InvalidInput):
        usage_charge(D("-1"), DATA, "EUR")
    with pytest.raises(InvalidInput):
        usage_charge(1.5, DATA, "EUR")  # type: ignore[arg-type]


# --- SLA credits ---------------------------------------------------------------------------------

METRO_SLA = SlaTerms(
    availability_target_percent=D("99.9"),
    latency_target_ms=D(5),
    latency_window_minutes=5,
    credit_tiers=(
        CreditTier(D("99.9"), D(10)),
        CreditTier(D("99.0"), D(25)),
        CreditTier(D(95), D(50)),
    ),
    credit_cap_percent=D(50),
)


@pytest.mark.parametrize("measured", ["100", "99.95", "99.9", "99.900"])
def test_met_sla_gives_no_credit(measured: str) -> None:
    assert sla_credit(D(measured), METRO_SLA, PRICE, "EUR") is None


@pytest.mark.parametrize(
    ("measured", "amount", "percent"),
    [
        ("99.89", "-50.00", "10"),  # 500 * 10 %
        ("99.0", "-50.00", "10"),  # not below 99.0: still the first tier
        ("98.999", "-125.00", "25"),
        ("95", "-125.00", "25"),
        ("94.99", "-250.00", "50"),
        ("0", "-250.00", "50"),
    ],
)
def test_deepest_tier_the_measurement_is_under(measured: str, amount: str, percent: str) -> None:
    credit = sla_credit(D(measured), METRO_SLA, PRICE, "EUR")
    assert credit is not None
    assert credit.amount == D(amount)
    assert credit.detail["credit_percent"] == percent
    assert credit.detail["measured_availability_percent"] == measured
    assert credit.detail["target_availability_percent"] == "99.9"
    assert credit.detail["capped"] is False


def test_credit_is_capped() -> None:
    terms = SlaTerms(
        D("99.9"), None, 5, (CreditTier(D("99.9"), D(10)), CreditTier(D(90), D(80))), D(50)
    )
    credit = sla_credit(D(85), terms, PRICE, "EUR")
    assert credit is not None
    assert credit.amount == D("-250.00")  # 80 % capped at 50 %
    assert credit.detail["capped"] is True


def test_credit_on_a_prorated_charge_rounds_half_up_in_magnitude() -> None:
    credit = sla_credit(D(99), METRO_SLA, D("161.29"), "EUR")  # 16.129 -> 16.13
    assert credit is not None and credit.amount == D("-16.13")
    credit = sla_credit(D(99), METRO_SLA, D("0.05"), "EUR")  # 0.005 -> 0.01
    assert credit is not None and credit.amount == D("-0.01")


def test_zero_credit_is_not_negative_zero() -> None:
    credit = sla_credit(D(99), METRO_SLA, D("0.00"), "EUR")
    assert credit is not None
    assert str(credit.amount) == "0.00"


def test_miss_above_every_credit_tier_gives_no_credit() -> None:
    terms = SlaTerms(D("99.9"), None, 5, (CreditTier(D(99), D(10)),), D(100))
    assert sla_credit(D("99.5"), terms, PRICE, "EUR") is None
    assert sla_credit(D("99.5"), SlaTerms(D("99.9"), None, 5, (), D(100)), PRICE, "EUR") is None


def test_credit_in_yen() -> None:
    credit = sla_credit(D("98.5"), METRO_SLA, D(5001), "JPY")  # 1250.25 -> 1250
    assert credit is not None and str(credit.amount) == "-1250"


# --- tax -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rate", "currency", "expected"),
    [
        ("500.00", "0.19", "EUR", "95.00"),
        ("161.29", "0.19", "EUR", "30.65"),  # 30.6451
        ("0.05", "0.19", "EUR", "0.01"),  # 0.0095
        ("-50.00", "0.19", "EUR", "-9.50"),
        ("100.00", "0.1925", "EUR", "19.25"),
        ("1234", "0.1", "JPY", "123"),  # 123.4
        ("100.00", "0", "EUR", "0.00"),
    ],
)
def test_tax(amount: str, rate: str, currency: str, expected: str) -> None:
    result = tax(D(amount), D(rate), currency)
    assert result == D(expected)
    assert str(result) == expected

from __future__ import annotations

from decimal import Decimal

import pytest

from bss_bridge.money import decimals, minor_units, parse_decimal, quantum, round_money
from oss.errors import InvalidInput


@pytest.mark.parametrize(
    ("currency", "units"),
    [("EUR", 2), ("USD", 2), ("GBP", 2), ("CHF", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3),
     ("BHD", 3)],
)  # fmt: skip
def test_minor_units_follow_iso_4217(currency: str, units: int) -> None:
    assert minor_units(currency) == units


def test_unknown_currency_is_refused_not_guessed() -> None:
    with pytest.raises(InvalidInput, match="unknown currency 'XYZ'"):
        minor_units("XYZ")


def test_lower_case_currency_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInput, match="upper case: EUR"):
        minor_units("eur")


def test_malformed_currency_code_says_what_a_code_looks_like() -> None:
    with pytest.raises(InvalidInput, match="three upper-case letters"):
        minor_units("EURO")


def test_quantum_is_the_smallest_amount() -> None:
    assert quantum("EUR") == Decimal("0.01")
    assert quantum("JPY") == Decimal("1")
    assert quantum("KWD") == Decimal("0.001")


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("161.2903225806", "EUR", "161.29"),
        ("0.005", "EUR", "0.01"),  # half up; half even would give 0.00
        ("0.025", "EUR", "0.03"),  # half even would give 0.02
        ("0.0049999", "EUR", "0.00"),
        ("-0.005", "EUR", "-0.01"),  # half away from zero: a credit mirrors its charge
        ("-16.125", "EUR", "-16.13"),
        ("100.5", "JPY", "101"),
        ("100.49", "JPY", "100"),
        ("1.2345", "KWD", "1.235"),
        ("5", "EUR", "5.00"),
    ],
)
def test_round_money_half_up_to_the_minor_unit(amount: str, currency: str, rounded: str) -> None:
    result = round_money(Decimal(amount), currency)
    assert result == Decimal(rounded)
    assert str(result) == rounded  # the exponent is the minor unit's too


def test_round_money_refuses_non_finite_and_floats() -> None:
    with pytest.raises(InvalidInput, match="finite Decimal"):
        round_money(Decimal("NaN"), "EUR")
    with pytest.raises(InvalidInput, match="finite Decimal"):
        round_money(0.1, "EUR")  # type: ignore[arg-type]


def test_round_money_refuses_an_unknown_currency() -> None:
    with pytest.raises(InvalidInput, match="unknown currency"):
        round_money(Decimal("1.00"), "ABC")


def test_parse_decimal_keeps_the_written_digits() -> None:
    value = parse_decimal("500.00", "price")
    assert value == Decimal("500.00")
    assert str(value) == "500.00"
    assert str(parse_decimal(" 0.000125 ", "price")) == "0.000125"
    assert parse_decimal("-3", "x") == Decimal(-3)
    assert parse_decimal(".5", "x") == Decimal("0.5")


def test_parse_decimal_accepts_int_and_decimal() -> None:
    assert parse_decimal(1000, "up_to") == Decimal(1000)
    assert parse_decimal(Decimal("0.19"), "rate") == Decimal("0.19")


def test_parse_decimal_refuses_floats_and_says_to_quote_them() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_decimal(0.1, "slices.yaml: offerings[0].recurring_price")
    message = str(info.value)
    assert message.startswith("slices.yaml: offerings[0].recurring_price: ")
    assert "float" in message
    assert '"0.1"' in message


@pytest.mark.parametrize(
    "value", [True, None, [], "NaN", "Infinity", "1e3", "1_000", "", "12,50", "abc", "--1"]
)
def test_parse_decimal_refuses_what_is_not_a_plain_number(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"^where\.field: "):
        parse_decimal(value, "where.field")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_parse_decimal_refuses_non_finite_decimals(value: Decimal) -> None:
    with pytest.raises(InvalidInput, match="finite"):
        parse_decimal(value, "q")


def test_decimals_counts_fraction_digits() -> None:
    assert decimals(Decimal("500.00")) == 2
    assert decimals(Decimal("0.000125")) == 6
    assert decimals(Decimal("5")) == 0
    assert decimals(Decimal("1E+3")) == 0

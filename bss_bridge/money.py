"""Money: currencies' minor units, the one rounding rule, and exact decimal input.

Every amount in the BSS is a `Decimal`. Amounts are computed exactly and rounded once, with
`round_money`, to the currency's minor unit (ISO 4217 "exponent": cents for EUR, none for JPY,
fils for KWD). Floats never enter: `parse_decimal` rejects them, because 0.1 as a float is not
0.1 and a bill must add up to the cent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from oss.errors import InvalidInput

# ISO 4217 minor units (the "exponent" column) of the currencies a bill may plausibly be in.
# A currency missing here is refused rather than guessed: a wrong exponent misprices every bill.
_MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {
        # three decimals (dinars and the Omani rial)
        **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
        # no minor unit in use
        **dict.fromkeys(
            ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX"), 0
        ),
        **dict.fromkeys(("UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
        # two decimals: the common case
        **dict.fromkeys(
            (
                "AED", "ARS", "AUD", "BDT", "BGN", "BRL", "CAD", "CHF", "CNY", "COP", "CZK",
                "DKK", "EGP", "EUR", "GBP", "GHS", "HKD", "HUF", "IDR", "ILS", "INR", "KES",
                "KZT", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD", "PEN", "PHP", "PKR", "PLN",
                "QAR", "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH",
                "USD", "ZAR",
            ),
            2,
        ),
    }
)  # fmt: skip

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
# A plain decimal numeral: optional sign, digits, optional fraction. No exponents, no
# underscores, no "NaN": what a person writes for a price or a quantity.
_NUMERAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def minor_units(currency: str) -> int:
    """Decimals of the currency's minor unit (ISO 4217): EUR 2, JPY 0, KWD 3.
    An unknown (or lower-case) code raises InvalidInput."""
    units = _MINOR_UNITS.get(currency) if isinstance(currency, str) else None
    if units is not None:
        return units
    hint = ""
    if isinstance(currency, str) and currency.upper() in _MINOR_UNITS:
        hint = f" (ISO 4217 codes are upper case: {currency.upper()})"
    elif isinstance(currency, str) and not _CURRENCY_CODE.fullmatch(currency):
        hint = " (an ISO 4217 code is three upper-case letters, e.g. EUR)"
    raise InvalidInput(f"unknown currency {currency!r}{hint}")


def known_currencies() -> list[str]:
    return sorted(_MINOR_UNITS)


def quantum(currency: str) -> Decimal:
    """The currency's smallest amount as an exponent template: Decimal("0.01") for EUR."""
    found = _QUANTA.get(currency)
    if found is None:  # a bill run rounds some ten lines per account: look it up once
        found = _QUANTA[currency] = Decimal(1).scaleb(-minor_units(currency))
    return found


_QUANTA: dict[str, Decimal] = {}


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The amount rounded to the currency's minor unit, half up (the one rounding rule).

    Why ROUND_HALF_UP: it is the commercial rounding customers and auditors apply by hand and
    the rule EU law prescribes for euro amounts (Regulation (EC) No 1103/97, art. 5: a half
    cent rounds up). Banker's rounding (half even) suits statistics, not invoices. Python's
    HALF_UP rounds half away from zero, so a credit of -0.005 rounds to -0.01: a credit and
    the charge it mirrors round to the same magnitude.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidInput(f"an amount must be a finite Decimal, not {amount!r}")
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def decimals(value: Decimal) -> int:
    """How many fraction digits the value is written with: 2 for Decimal("500.00"), 0 for 5."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def parse_decimal(value: object, where: str) -> Decimal:
    """An exact Decimal from a str ("500.00"), an int or a Decimal.

    Floats are refused (they are binary approximations: write the number as a string), and so
    are booleans, NaN and infinities. `where` names the input in the error, e.g.
    "catalog.yaml: offerings[0].recurring_price".
    """
    if isinstance(value, bool):  # bool is an int subclass; True is not a price
        raise InvalidInput(f"{where}: must be a decimal number, not a boolean")
    if isinstance(value, float):
        raise InvalidInput(
            f"{where}: must be written as a string or an integer, not the float {value!r} "
            f'(floats are inexact; quote it: "{value}")'
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInput(f"{where}: must be a finite number, not {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _NUMERAL.fullmatch(text):
            raise InvalidInput(f'{where}: {value!r} is not a decimal number like "12.50"')
        return Decimal(text)
    raise InvalidInput(f"{where}: must be a decimal number, not {type(value).__name__}")

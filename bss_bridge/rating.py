"""Rating: billing periods and the pure arithmetic of a charge.

Every function here is pure and exact: amounts are computed in `Decimal` without rounding and
rounded once, at the end, by `money.round_money` (half up to the currency's minor unit). A
`Charge`'s `detail` shows the working and is JSON-ready (decimals and times as strings), so a
bill line can carry it as evidence.

Proration rule (recurring charges), on UTC calendar days:
    days charged = the days from the activation date (inclusive) to the termination date
    (exclusive), within the period; amount = price * days charged / days in the period.
The day a product is activated is charged in full, the day it is terminated is not (the
common telco and Kill Bill convention: a product terminated and re-ordered on the same day is
not charged twice for that day). So a product activated and terminated on the same day costs
no recurring fee; its usage is still charged.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from bss_bridge.catalog import SlaTerms, UsageTariff
from bss_bridge.money import round_money
from oss.errors import InvalidInput

# A billing month, years 1900..2999: the calendar of every period (and the next) stays in
# range of `datetime`, where 0000-01 or 9999-12 would overflow.
MONTH_PATTERN = r"((?:19|2\d)\d{2})-(0[1-9]|1[0-2])"
_MONTH = re.compile(MONTH_PATTERN)
_HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Period:
    """A billing period [start, end): UTC, end exclusive."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "period start")
        _require_aware(self.end, "period end")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))
        if self.end <= self.start:
            raise InvalidInput(f"a period ends after it starts: {self.start} .. {self.end}")

    @property
    def days(self) -> int:
        """Calendar days in the period (a period of billing_period starts and ends at midnight)."""
        return (_day(self.end) - _day(self.start)).days

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end

    def to_json(self) -> dict[str, str]:
        return {"startDateTime": _iso(self.start), "endDateTime": _iso(self.end)}


def billing_period(month: str, billing_day: int) -> Period:
    """The period of `month` ("2026-11") for an account billed on `billing_day` (1..31):
    day 1 gives Nov 1 .. Dec 1, day 15 gives Nov 15 .. Dec 15. A billing day past a month's
    end falls on its last day (day 31: Jan 31 .. Feb 28 .. Mar 31), as Kill Bill does."""
    match = _MONTH.fullmatch(month) if isinstance(month, str) else None
    if match is None:
        raise InvalidInput(f"period {month!r}: must be a month like 2026-11 (1900-01..2999-12)")
    if isinstance(billing_day, bool) or not isinstance(billing_day, int):
        raise InvalidInput(f"billing day {billing_day!r}: must be an integer 1..31")
    if not 1 <= billing_day <= 31:
        raise InvalidInput(f"billing day {billing_day}: must be 1..31")
    year, number = int(match[1]), int(match[2])
    next_year, next_number = (year + 1, 1) if number == 12 else (year, number + 1)
    return Period(
        _midnight(_on_day(year, number, billing_day)),
        _midnight(_on_day(next_year, next_number, billing_day)),
    )


def period_containing(moment: datetime, billing_day: int) -> Period:
    """The billing period that `moment` falls in (the current period for `now`)."""
    _require_aware(moment, "moment")
    moment = moment.astimezone(UTC)
    this = billing_period(f"{moment.year:04d}-{moment.month:02d}", billing_day)
    if moment >= this.start:
        return this
    year, number = (moment.year - 1, 12) if moment.month == 1 else (moment.year, moment.month - 1)
    return billing_period(f"{year:04d}-{number:02d}", billing_day)


@dataclass(frozen=True)
class Charge:
    amount: Decimal  # rounded to the currency's minor unit; negative for a credit
    quantity: Decimal | None
    unit_price: Decimal | None
    description: str
    detail: Mapping[str, Any] = field(default_factory=dict)  # JSON-ready working


def recurring_charge(
    price: Decimal,
    period: Period,
    active_from: datetime,
    active_to: datetime | None,
    currency: str,
) -> Charge:
    """The monthly `price` prorated by the day over the product's active days in the period
    (see the module's proration rule). `quantity` is the days charged. A whole period is
    exactly the price; no active day gives 0."""
    _require_aware(active_from, "active_from")
    if active_to is not None:
        _require_aware(active_to, "active_to")
        if active_to < active_from:
            raise InvalidInput(f"active_to {active_to} is before active_from {active_from}")
    start, end = _whole_days(period)
    first = max(_day(active_from), start)
    last = end if active_to is None else min(_day(active_to), end)
    # The charge depends on these alone, and a bill run meets the same few combinations for
    # most of its products (every product active all month): equal ones share one Charge.
    # The key holds the price's text, not the Decimal: 500 == 500.00, but they print apart.
    key = (str(price), period.start, period.end, first, last, currency)
    charge = _PRORATED.get(key)
    if charge is None:
        if len(_PRORATED) >= _PRORATED_MAX:
            _PRORATED.clear()
        charge = _PRORATED[key] = _prorated(price, period, first, last, currency)
    return charge


# Charges are immutable values (frozen; their `detail` is never modified), so they can be shared.
_PRORATED: dict[tuple[str, datetime, datetime, date, date, str], Charge] = {}
_PRORATED_MAX = 4096


def _whole_days(period: Period) -> tuple[date, date]:
    """The first and the (exclusive) last UTC day of a period of whole UTC days."""
    key = (period.start, period.end)
    days = _PERIOD_DAYS.get(key)
    if days is None:
        start, end = _day(period.start), _day(period.end)
        if _midnight(start) != period.start or _midnight(end) != period.end:
            raise InvalidInput(f"a recurring charge needs a period of whole UTC days, not {period}")
        if len(_PERIOD_DAYS) >= _PRORATED_MAX:
            _PERIOD_DAYS.clear()
        days = _PERIOD_DAYS[key] = (start, end)
    return days


_PERIOD_DAYS: dict[tuple[datetime, datetime], tuple[date, date]] = {}


def _prorated(price: Decimal, period: Period, first: date, last: date, currency: str) -> Charge:
    days = max(0, (last - first).days)
    total = period.days
    exact = price if days == total else price * days / total
    return Charge(
        amount=round_money(exact, currency),
        quantity=Decimal(days),
        unit_price=None,
        description=f"Recurring charge, {days} of {total} days",
        detail={
            "rule": "activation day inclusive, termination day exclusive (UTC days)",
            "monthly_price": str(price),
            "days_charged": days,
            "days_in_period": total,
            "charged_from": first.isoformat() if days else None,
            "charged_until": last.isoformat() if days else None,  # exclusive
            "period": period.to_json(),
        },
    )


def usage_charge(quantity: Decimal, tariff: UsageTariff, currency: str) -> Charge:
    """Graduated tiers: each tier prices the part of the quantity that falls inside it
    (above the previous tier's up_to, up to its own). The tiers' exact amounts are summed
    and rounded once, so the rounding cannot accumulate over the tiers."""
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity < 0:
        raise InvalidInput(f"usage quantity must be a non-negative Decimal, not {quantity!r}")
    breakdown: list[dict[str, Any]] = []
    exact = Decimal(0)
    lower = Decimal(0)
    single: Decimal | None = None  # the one tier's price when the quantity falls in one tier
    for up_to, price, from_text, up_to_text, price_text in _tier_texts(tariff):
        # min(quantity, up_to), spelled out: on a tie min() keeps `quantity` (its digits).
        upper = quantity if up_to is None or not up_to < quantity else up_to
        inside = upper - lower
        if inside > 0:
            amount = inside * price
            exact += amount
            single = price
            breakdown.append(
                {
                    "from": from_text,
                    "up_to": up_to_text,
                    "quantity": str(inside),
                    "unit_price": price_text,
                    "amount": str(amount),  # exact; the charge's amount is the rounded sum
                }
            )
        if up_to is None or quantity <= up_to:
            break
        lower = up_to
    return Charge(
        amount=round_money(exact, currency),
        quantity=quantity,
        unit_price=single if len(breakdown) == 1 else None,
        description=f"Usage {tariff.usage_type}, {quantity} {tariff.unit}",
        detail={
            "usage_type": tariff.usage_type,
            "unit": tariff.unit,
            "quantity": str(quantity),
            "tiers": breakdown,
            "exact_amount": str(exact),
        },
    )


_TierText = tuple[Decimal | None, Decimal, str, str | None, str]


def _tier_texts(tariff: UsageTariff) -> tuple[_TierText, ...]:
    """Each tier's (up_to, price) and the texts of its start, up_to and price, which a bill
    run would otherwise print again for every usage line: they are the tariff's own."""
    known = _TIER_TEXTS.get(id(tariff))
    if known is None or known[0] is not tariff:
        texts = []
        lower = Decimal(0)
        for tier in tariff.tiers:
            up_to = None if tier.up_to is None else str(tier.up_to)
            texts.append((tier.up_to, tier.price, str(lower), up_to, str(tier.price)))
            lower = tier.up_to if tier.up_to is not None else lower
        if len(_TIER_TEXTS) >= _PRORATED_MAX:
            _TIER_TEXTS.clear()
        known = _TIER_TEXTS[id(tariff)] = (tariff, tuple(texts))  # the tariff keeps its id
    return known[1]


_TIER_TEXTS: dict[int, tuple[UsageTariff, tuple[_TierText, ...]]] = {}


def sla_credit(
    availability_percent: Decimal,
    terms: SlaTerms,
    recurring_amount: Decimal,
    currency: str,
) -> Charge | None:
    """The credit for a missed availability target, or None when the target is met (or the
    miss is above every credit tier). The deepest tier whose `below_percent` the measured
    availability is strictly under gives the credit percentage, capped at
    `credit_cap_percent`, of `recurring_amount` (the period's recurring charge). Negative."""
    target = terms.availability_target_percent
    if availability_percent >= target:
        return None
    tier = None
    for candidate in terms.credit_tiers:  # descending below_percent: the last match is deepest
        if availability_percent < candidate.below_percent:
            tier = candidate
    if tier is None:
        return None
    percent = min(tier.credit_percent, terms.credit_cap_percent)
    magnitude = round_money(recurring_amount * percent / _HUNDRED, currency)
    return Charge(
        amount=Decimal(0) - magnitude,  # not -magnitude: a zero credit stays 0.00, not -0.00
        quantity=None,
        unit_price=None,
        description=(
            f"SLA credit: availability {availability_percent} % below the {target} % target, "
            f"{percent} % of the recurring charge"
        ),
        detail={
            "measured_availability_percent": str(availability_percent),
            "target_availability_percent": str(target),
            "tier_below_percent": str(tier.below_percent),
            "tier_credit_percent": str(tier.credit_percent),
            "credit_cap_percent": str(terms.credit_cap_percent),
            "credit_percent": str(percent),
            "capped": percent < tier.credit_percent,
            "recurring_amount": str(recurring_amount),
        },
    )


def tax(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The tax on `amount` at `rate` (0.19 = 19 %), rounded. Apply it to a bill's subtotal per
    rate, not line by line, so the lines' roundings do not add up to a cent off."""
    return round_money(amount * rate, currency)


# --- days ----------------------------------------------------------------------------------------


def _require_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{what} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{what} must be timezone-aware (UTC), not naive {moment}")


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _on_day(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

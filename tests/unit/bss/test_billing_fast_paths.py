"""The bill run's shortcuts must not change a result: charges shared between equal prorations
keep each price's own digits, and the run's gc.freeze() is undone when the last run ends."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime
from decimal import Decimal

from bss_bridge.bill_store import older_objects_frozen
from bss_bridge.billing import compute_lines
from bss_bridge.rating import billing_period, recurring_charge
from tests.unit.bss.test_billing import offering, product

NOV = billing_period("2026-11", 1)
BEFORE = datetime(2026, 10, 1, tzinfo=UTC)


def test_equal_prices_written_differently_keep_their_digits() -> None:
    # 500 == 500.00 (and they hash alike), but the evidence and a whole-period amount print
    # the price as given: a shared charge must not hand one's digits to the other.
    plain = recurring_charge(Decimal("500"), NOV, BEFORE, None, "EUR")
    cents = recurring_charge(Decimal("500.00"), NOV, BEFORE, None, "EUR")
    assert plain.detail["monthly_price"] == "500"
    assert cents.detail["monthly_price"] == "500.00"
    assert str(plain.amount) == str(cents.amount) == "500.00"


def test_equal_prorations_give_equal_lines() -> None:
    off = offering(usage=None, sla=None)
    early = product("p1", off, BEFORE)
    earlier = product("p2", off, datetime(2026, 9, 3, 7, tzinfo=UTC))  # same days charged
    lines = compute_lines(
        bill_id=1, currency="EUR", period=NOV, products=[early, earlier], usage={}, sla={}
    )
    first, second = lines[0], lines[1]
    assert (first.key, second.key) == ("recurring:p1:2026-11-01", "recurring:p2:2026-11-01")
    assert json.dumps(first.evidence) == json.dumps(second.evidence)
    assert first.evidence["days_charged"] == 30
    assert [line.amount for line in lines] == [
        Decimal("500.00"),
        Decimal("500.00"),
        Decimal("190.00"),
    ]


def test_the_old_heap_is_frozen_only_while_runs_last() -> None:
    assert gc.get_freeze_count() == 0
    with older_objects_frozen():
        outer = gc.get_freeze_count()
        assert outer > 0
        with older_objects_frozen():  # a second, concurrent run
            pass
        assert gc.get_freeze_count() >= outer  # still frozen: the first run goes on
    assert gc.get_freeze_count() == 0

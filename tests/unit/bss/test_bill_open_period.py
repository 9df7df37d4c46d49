"""Issue 14, defect 3: a bill of a period that has not ended is a draft that says so, cannot be
issued, and its SLA is measured over the elapsed time only (labelled partial). Real SQLite, an
injected clock (the run's `clock`, compliance's `now`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from bss_bridge import billing
from bss_bridge.billing import DRAFT, ISSUED, BillRun
from bss_bridge.catalog import Catalog
from bss_bridge.rating import billing_period
from bss_bridge.sla import compliance, compliance_many
from bss_bridge.tables import BillRow
from bss_bridge.tmf_bills import customer_bill
from oss.bss_ports import records_for
from oss.errors import Conflict
from oss.store import Database
from tests.bss_rows import add_account, alarm_row, product_row

DEC = billing_period("2026-12", 1)  # 2026-12-01 .. 2027-01-01


def at(day: int, hour: int = 0, minute: int = 0, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class Clock:
    """The injected clock: tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'bills.db'}")
    await database.migrate()
    async with database.transaction() as s:
        await add_account(s)
    try:
        yield database
    finally:
        await database.close()


async def seed_reported_case(db: Database) -> None:
    """The reported case: on 6 December a product active for a few minutes, half of them down."""
    async with db.transaction() as s:
        s.add(product_row(at(6, 10, 0), pid="p-1", service="svc-a"))
        s.add(alarm_row(at(6, 10, 1), at(6, 10, 2)))


def run_at(db: Database, clock: Clock) -> BillRun:
    records = records_for(db)
    return BillRun(
        db,
        Catalog.load(),
        sla=partial(compliance_many, records=records),
        alarms=records.alarms,
        clock=clock,
    )


async def test_an_open_period_draft_says_so_and_cannot_be_issued(db: Database) -> None:
    await seed_reported_case(db)
    clock = Clock(at(6, 10, 2))
    run = run_at(db, clock)

    (summary,) = await run.run("2026-12")

    assert summary.state == DRAFT and summary.period_closed is False
    assert summary.to_json()["periodClosed"] is False
    view = await run.get(summary.bill_id)
    doc = customer_bill(view)
    assert doc["periodClosed"] is False
    assert "2027-01-01T00:00:00+00:00" in doc["periodNote"]
    with pytest.raises(Conflict) as refused:
        await run.issue(summary.bill_id)
    message = str(refused.value)
    assert "2026-12-01 to 2027-01-01" in message and "has not ended" in message
    assert "2027-01-01T00:00:00+00:00" in message
    assert (await run.get(summary.bill_id)).bill.state == DRAFT  # nothing written


async def test_the_sla_credit_of_an_open_period_is_labelled_partial(db: Database) -> None:
    await seed_reported_case(db)
    run = run_at(db, Clock(at(6, 10, 2)))
    (summary,) = await run.run("2026-12")
    lines = (await run.get(summary.bill_id)).lines
    (credit,) = [line for line in lines if line.kind == "sla_credit"]
    sla = credit.evidence["sla"]
    assert sla["partial"] is True
    assert sla["measuredFrom"] == "2026-12-06T10:00:00Z"
    assert sla["measuredUntil"] == "2026-12-06T10:02:00Z"
    assert "partial" in sla["note"]


async def test_a_draft_computed_while_open_is_recomputed_before_it_is_issued(
    db: Database,
) -> None:
    await seed_reported_case(db)
    clock = Clock(at(6, 10, 2))
    run = run_at(db, clock)
    (summary,) = await run.run("2026-12")

    clock.now = at(2, month=1, year=2027)  # the period has ended, the draft is still partial
    view = await run.get(summary.bill_id)
    assert view.period_closed is True
    with pytest.raises(Conflict, match=r"before its period ended: run the bill run for 2026-12"):
        await run.issue(summary.bill_id)

    (again,) = await run.run("2026-12")
    assert again.period_closed is True
    lines = (await run.get(summary.bill_id)).lines
    # over the product's whole time in December, one minute down is no credit any more
    assert not [line for line in lines if line.kind == "sla_credit"]
    issued = await run.issue(summary.bill_id)
    assert issued.state == ISSUED and issued.bill_no == "2027-000001"


def test_check_issuable_is_the_period_end_by_the_clock() -> None:
    bill = BillRow(id=7, period_start=DEC.start, period_end=DEC.end, bill_date=DEC.end)
    with pytest.raises(Conflict, match="has not ended"):
        billing.check_issuable(bill, at(31, 23, 59))
    billing.check_issuable(bill, DEC.end)  # the first moment after the period


async def test_partial_sla_is_measured_over_the_elapsed_time(db: Database) -> None:
    async with db.transaction() as s:
        s.add(product_row(at(1, month=11), pid="p-1", service="svc-a"))
        s.add(alarm_row(at(2, 0), at(2, 12)))
    terms = Catalog.load().get("metro-slice-200").sla
    assert terms is not None

    partial = await compliance(db, "svc-a", terms, DEC, records=records_for(db), now=at(6))
    # 12 h down of the 5 days elapsed (not of 31 days, nor of the minute since a poll)
    assert partial.measured_seconds == Decimal(5 * 86400)
    assert partial.availability_percent == Decimal("90.000")
    assert partial.partial and partial.to_json()["partial"] is True

    whole = await compliance(
        db, "svc-a", terms, DEC, records=records_for(db), now=at(2, month=1, year=2027)
    )
    assert not whole.partial and whole.to_json()["partial"] is False
    assert "note" not in whole.to_json()
    assert whole.measured_seconds == Decimal(31 * 86400)

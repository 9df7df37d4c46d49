"""The bill run's store writes on SQLite and PostgreSQL (where they are one COPY or one UPDATE
over arrays per batch): a bill created twice is a Conflict, a line key written twice an
IntegrityError, as an INSERT's would be; a claim marks only its product's unbilled records of
its period and type; totals change only bills still in the given state."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bss_bridge import bill_store
from bss_bridge.bill_store import NewBill, UsageClaim
from bss_bridge.rating import billing_period
from bss_bridge.tables import BillLineRow, BillRow, UsageRow
from oss.errors import Conflict
from oss.store import Database
from tests.integration.bss.bill_fixtures import SLICE, add_account, add_product, add_usage, at

NOV = billing_period("2026-11", 1)


@dataclass(frozen=True)
class _Line:
    key: str
    kind: str = "recurring"
    product_id: str | None = None
    description: str = "a line"
    amount: Decimal = Decimal("1.00")
    quantity: Decimal | None = None
    unit: str | None = None
    unit_price: Decimal | None = None
    tax_rate: Decimal | None = Decimal("0.19")
    evidence: Any = None


async def _draft(db: Database, account: str) -> int:
    async with db.transaction() as s:
        zero = Decimal("0.00")
        await bill_store.insert_bills(s, [NewBill(account, NOV, "new", "EUR", zero)], at(2, 0, 12))
    async with db.sessions() as s:
        (bill,) = await bill_store.bills_of(s, account, account, lock=False)
    return bill.id


async def test_a_bill_created_twice_is_a_conflict(db: Database) -> None:
    await add_account(db, "acme")
    await _draft(db, "acme")
    with pytest.raises(Conflict, match="another bill run created these bills"):
        await _draft(db, "acme")


async def test_lines_are_written_with_their_evidence_and_a_key_only_once(db: Database) -> None:
    await add_account(db, "acme")
    bill_id = await _draft(db, "acme")
    evidence = {"taxable": "1.00", "tiers": [{"from": "0", "up_to": None}]}
    async with db.transaction() as s:
        lines = [_Line("recurring:p1:2026-11-01", evidence=evidence), _Line("tax:1:0.19")]
        await bill_store.insert_lines(s, [(bill_id, lines)], at(2, 0, 12))
    async with db.sessions() as s:
        rows = (await s.scalars(select(BillLineRow).order_by(BillLineRow.key))).all()
    assert [(r.key, r.amount, r.evidence) for r in rows] == [
        ("recurring:p1:2026-11-01", Decimal("1.00"), evidence),
        ("tax:1:0.19", Decimal("1.00"), None),
    ]
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            await bill_store.insert_lines(s, [(bill_id, [_Line("tax:1:0.19")])], at(2, 0, 12))


async def test_a_claim_marks_its_products_unbilled_records_of_the_period(db: Database) -> None:
    await add_account(db, "acme")
    await add_product(db, "p1", "acme", SLICE, at(1))
    await add_product(db, "p2", "acme", SLICE, at(1))
    await add_usage(db, "in", "p1", "acme", "5", at(3))
    await add_usage(db, "before", "p1", "acme", "6", at(3, month=10))
    await add_usage(db, "rejected", "p1", "acme", "7", at(4))
    await add_usage(db, "other product", "p2", "acme", "8", at(4))
    async with db.transaction() as s:
        rejected = (await s.scalars(select(UsageRow).where(UsageRow.key == "rejected"))).one()
        rejected.state = "rejected"
    bill_id = await _draft(db, "acme")
    async with db.transaction() as s:
        claims = [UsageClaim(bill_id, "p1", "data", NOV)]
        await bill_store.claim_usage(s, claims, billed="billed", rejected="rejected")
    async with db.sessions() as s:
        rows = (await s.execute(select(UsageRow.key, UsageRow.bill_id, UsageRow.state))).all()
    assert sorted(rows) == [
        ("before", None, "rated"),
        ("in", bill_id, "billed"),
        ("other product", None, "rated"),
        ("rejected", None, "rejected"),
    ]


async def test_totals_change_only_bills_in_the_given_state(db: Database) -> None:
    await add_account(db, "acme")
    await add_account(db, "globex")
    acme, globex = await _draft(db, "acme"), await _draft(db, "globex")
    async with db.transaction() as s:
        issued = await s.get(BillRow, globex)
        assert issued is not None
        issued.state, issued.bill_no = "sent", "2026-000001"
    sums = (Decimal("10.00"), Decimal("1.90"), Decimal("11.90"))
    async with db.transaction() as s:
        await bill_store.update_totals(s, {acme: sums, globex: sums}, at(2, 1, 12), state="new")
    async with db.sessions() as s:
        bills = {b.id: b for b in (await s.scalars(select(BillRow))).all()}
    assert (bills[acme].subtotal, bills[acme].tax, bills[acme].total) == sums
    assert bills[acme].updated_at == at(2, 1, 12)
    assert bills[globex].total == Decimal("0.00")


async def test_the_runs_reads_give_the_values_sqlalchemy_gives(db: Database) -> None:
    """The reads go to the driver and convert the values themselves: the same values, types
    and time zones as SQLAlchemy's own result (UTC datetimes, exact decimals, None kept)."""
    await add_account(db, "acme")
    await add_product(db, "p1", "acme", SLICE, at(1, 7))
    await add_usage(db, "in", "p1", "acme", "5.125", at(3, 4))
    await add_usage(db, "before", "p1", "acme", "6", at(3, month=10))
    bill_id = await _draft(db, "acme")
    async with db.transaction() as s:
        claims = [UsageClaim(bill_id, "p1", "data", NOV)]
        await bill_store.claim_usage(s, claims, billed="billed", rejected="rejected")
    async with db.sessions() as s:
        products = await bill_store.products_of(s, "acme", "acme", NOV.start, NOV.end)
        unbilled = await bill_store.unbilled_usage_before(
            s, "acme", "acme", NOV.start, rejected="rejected"
        )
        billed = await bill_store.usage_billed_to(s, [bill_id])
        (bill,) = await bill_store.bills_of(s, "acme", "acme", lock=False)
        stored = (await s.scalars(select(BillRow))).one()
        usage = {u.key: u for u in (await s.scalars(select(UsageRow))).all()}
    assert [p[:2] + p[4:] for p in products] == [("p1", "acme", "active", at(1, 7), None)]
    assert unbilled == [(usage["before"].id, "p1", at(3, month=10), "data")]
    assert billed == [(bill_id, "p1", at(3, 4), Decimal("5.125"), usage["in"].unit)]
    assert [type(v) for v in billed[0]] == [int, str, type(at(3, 4)), Decimal, str]
    assert billed[0][2].utcoffset() is not None
    assert (bill.period_start, bill.subtotal, bill.bill_no) == (
        stored.period_start,
        Decimal("0.00"),
        None,
    )
    assert bill.period_start.tzinfo is not None and bill.total == stored.total

"""The bill run on SQLite and PostgreSQL: a bill with recurring, usage, an SLA credit from real
alarm rows and tax; re-running changes nothing; an issued bill is immutable; late usage becomes
an adjustment on the next bill."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from bss_bridge.billing import DRAFT, ISSUED
from bss_bridge.tables import BillLineRow, BillRow
from oss.errors import Conflict, InvalidInput, NotFound
from oss.store import Database
from tests.integration.bss.bill_fixtures import (
    SLICE,
    VPN,
    add_account,
    add_outage,
    add_product,
    add_usage,
    at,
    bill_of,
    bill_run,
    count,
    lines_of,
    usage_rows,
)

DEC_2 = at(2, month=12)  # the run happens after the period


async def seed_acme(db: Database) -> tuple[int, int]:
    """Account acme: a slice all month (1200 GB, a 2 h outage) and a VPN from Nov 16."""
    await add_account(db, "acme")
    await add_product(db, "p-slice", "acme", SLICE, at(1, month=10), service="slice-acme")
    await add_product(db, "p-vpn", "acme", VPN, at(16, 9))
    await add_usage(db, "u1", "p-slice", "acme", "700", at(3))
    await add_usage(db, "u2", "p-slice", "acme", "500", at(20))
    await add_usage(db, "u-dec", "p-slice", "acme", "10", at(1, month=12))  # December's
    return await add_outage(db, "slice-acme", at(10, 8), at(10, 10))


async def test_a_bill_with_every_kind_of_line(db: Database) -> None:
    root, service_alarm = await seed_acme(db)
    (summary,) = await bill_run(db, DEC_2).run("2026-11")
    assert summary.state == DRAFT and summary.recomputed
    lines = {key: (kind, amount) for key, kind, amount, _ in await lines_of(db, summary.bill_id)}
    assert lines == {
        "recurring:p-slice:2026-11-01": ("recurring", Decimal("500.00")),
        # 1200 GB: 1000 free, 200 at 0.02
        "usage:p-slice:2026-11-01": ("usage", Decimal("4.00")),
        # 2 h of 720 h down: 99.722 % < 99.9 % -> 10 % of 500.00
        "sla:p-slice:2026-11-01": ("sla_credit", Decimal("-50.00")),
        # from Nov 16: 15 of 30 days of 300.00
        "recurring:p-vpn:2026-11-01": ("recurring", Decimal("150.00")),
        # 19 % of 500 + 4 - 50 + 150 = 604.00
        f"tax:{summary.bill_id}:0.19": ("tax", Decimal("114.76")),
    }
    assert (summary.subtotal, summary.tax, summary.total) == (
        Decimal("604.00"),
        Decimal("114.76"),
        Decimal("718.76"),
    )
    bill = await bill_of(db, summary.bill_id)
    assert (bill.subtotal, bill.tax, bill.total, bill.currency) == (
        Decimal("604.00"),
        Decimal("114.76"),
        Decimal("718.76"),
        "EUR",
    )
    async with db.sessions() as s:
        credit = await s.scalar(select(BillLineRow).where(BillLineRow.kind == "sla_credit"))
    assert credit is not None
    evidence = credit.evidence["sla"]
    assert evidence["availability"]["measuredPercent"] == "99.722"
    assert evidence["availability"]["targetPercent"] == "99.9"
    (window,) = evidence["availability"]["outageWindows"]
    assert set(window["alarmIds"]) == {root, service_alarm}
    assert window["durationSeconds"] == "7200"
    billed = {u.key: u.bill_id for u in await usage_rows(db)}
    assert billed == {"u1": summary.bill_id, "u2": summary.bill_id, "u-dec": None}


async def test_running_twice_recomputes_in_place(db: Database) -> None:
    await seed_acme(db)
    run = bill_run(db, DEC_2)
    (first,) = await run.run("2026-11")
    before = await lines_of(db, first.bill_id)
    (second,) = await run.run("2026-11")
    assert second.bill_id == first.bill_id
    assert await lines_of(db, first.bill_id) == before
    assert await count(db, BillRow) == 1

    # more November usage while the bill is a draft: the one usage line grows
    await add_usage(db, "u3", "p-slice", "acme", "300", at(25))
    (third,) = await run.run("2026-11", account="acme")
    lines = {key: amount for key, _, amount, _ in await lines_of(db, first.bill_id)}
    assert lines["usage:p-slice:2026-11-01"] == Decimal("10.00")  # 500 GB at 0.02
    assert sum(1 for key in lines if key.startswith("usage:")) == 1
    assert third.total == first.total + Decimal("7.14")  # 6.00 + 19 %


async def test_an_issued_bill_is_immutable(db: Database) -> None:
    await seed_acme(db)
    run = bill_run(db, DEC_2)
    (summary,) = await run.run("2026-11")
    issued = await run.issue(summary.bill_id)
    assert (issued.state, issued.bill_no, issued.issued_at) == (ISSUED, "2026-000001", DEC_2)
    before = await lines_of(db, summary.bill_id)
    with pytest.raises(Conflict, match="2026-000001"):
        await run.issue(summary.bill_id)
    await add_outage(db, "slice-acme", at(12), at(13))  # would change the credit
    (again,) = await run.run("2026-11")
    assert not again.recomputed and again.state == ISSUED and again.bill_no == "2026-000001"
    assert await lines_of(db, summary.bill_id) == before
    with pytest.raises(NotFound):
        await run.issue(999)
    # even code that changes it through the ORM is refused
    with pytest.raises(Conflict, match="issued"):
        async with db.transaction() as s:
            bill = await s.get(BillRow, summary.bill_id)
            assert bill is not None
            bill.total = Decimal("0.00")
    assert (await bill_of(db, summary.bill_id)).total == issued.total


async def test_bill_numbers_count_up_per_year(db: Database) -> None:
    for name in ("a1", "a2"):
        await add_account(db, name)
        await add_product(db, f"p-{name}", name, VPN, at(1, month=10))
    run = bill_run(db, DEC_2)
    summaries = await run.run("2026-11")
    numbers = [(await run.issue(s.bill_id)).bill_no for s in summaries]
    assert numbers == ["2026-000001", "2026-000002"]


async def test_late_usage_becomes_an_adjustment_on_the_next_bill(db: Database) -> None:
    await seed_acme(db)
    run = bill_run(db, DEC_2)
    (november,) = await run.run("2026-11")
    await run.issue(november.bill_id)
    # arrives after the November bill went out: 1200 GB were billed, 150 more at 0.02
    await add_usage(db, "u-late", "p-slice", "acme", "150", at(29))
    (same,) = await run.run("2026-11")
    assert not same.recomputed
    assert {u.key: u.bill_id for u in await usage_rows(db)}["u-late"] is None

    january = at(2, month=1, year=2027)
    (december,) = await bill_run(db, january).run("2026-12")
    lines = await lines_of(db, december.bill_id)
    (adjustment,) = [line for line in lines if line[1] == "adjustment"]
    key, _, amount, description = adjustment
    assert key == f"adjustment:p-slice:2026-11-01:{december.bill_id}"
    assert amount == Decimal("3.00")
    assert "2026-11-01 to 2026-12-01" in description and "2026-000001" in description
    assert {u.key: u.bill_id for u in await usage_rows(db)}["u-late"] == december.bill_id
    # a re-run of December does not add it twice
    await bill_run(db, january).run("2026-12")
    assert await lines_of(db, december.bill_id) == lines


async def test_late_usage_of_a_draft_period_waits_for_that_draft(db: Database) -> None:
    await seed_acme(db)
    await bill_run(db, DEC_2).run("2026-11")  # November stays a draft
    await add_usage(db, "u-late", "p-slice", "acme", "150", at(29))
    (december,) = await bill_run(db, at(2, month=1, year=2027)).run("2026-12")
    assert all(line[1] != "adjustment" for line in await lines_of(db, december.bill_id))
    (november,) = await bill_run(db, DEC_2).run("2026-11")
    lines = {key: amount for key, _, amount, _ in await lines_of(db, november.bill_id)}
    assert lines["usage:p-slice:2026-11-01"] == Decimal("7.00")  # 350 GB at 0.02


async def test_products_outside_the_period_and_billing_days(db: Database) -> None:
    await add_account(db, "mid", billing_day=15)
    await add_product(db, "p-old", "mid", VPN, at(1, month=9), end=at(10, month=11))
    await add_product(db, "p-now", "mid", VPN, at(20), end=at(5, month=12))
    await add_product(db, "p-later", "mid", VPN, at(20, month=12))
    (summary,) = await bill_run(db, at(16, month=12)).run("2026-11", account="mid")
    assert (summary.period.start, summary.period.end) == (at(15), at(15, month=12))
    lines = {key: amount for key, _, amount, _ in await lines_of(db, summary.bill_id)}
    # p-old ended before Nov 15; p-now: Nov 20 .. Dec 5 = 15 of 30 days; p-later not yet
    assert lines == {
        "recurring:p-now:2026-11-15": Decimal("150.00"),
        f"tax:{summary.bill_id}:0.19": Decimal("28.50"),
    }


async def test_a_product_in_another_currency_names_both(db: Database) -> None:
    await add_account(db, "usd", currency="USD")
    await add_product(db, "p-usd", "usd", VPN, at(1, month=10))
    with pytest.raises(InvalidInput, match=r"EUR.*USD"):
        await bill_run(db, DEC_2).run("2026-11")
    assert await count(db, BillRow) == 0  # the account's transaction rolled back


async def test_an_unknown_account_or_month(db: Database) -> None:
    with pytest.raises(NotFound):
        await bill_run(db, DEC_2).run("2026-11", account="nobody")
    with pytest.raises(InvalidInput):
        await bill_run(db, DEC_2).run("2026-13")

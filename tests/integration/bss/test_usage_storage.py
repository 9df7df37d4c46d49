"""Usage records on both backends (SQLite and a real PostgreSQL): exact decimals, one record per
key under replays and concurrent creates, collection that never writes an hour twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bss_bridge.rating import Period
from bss_bridge.tables import UsageRow
from bss_bridge.usage import UsageDraft, UsageLedger, hour_key, mark_billed, usage_for
from oss.bss_ports import records_for
from oss.errors import Conflict
from oss.store import Database
from oss.store.tables import ServiceResourceRow, ServiceRow
from tests.bss_rows import add_account, product_row
from tests.unit.bss.test_usage import add, at, kpi


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    async with database.transaction() as s:
        await add_account(s)
        s.add(product_row(at(9, 30)))
        service = ServiceRow(name="svc-a", type="slice", customer="acme", state="active", params={})
        s.add(service)
        await s.flush()
        s.add(
            ServiceResourceRow(
                service_id=service.id,
                kind="interface",
                device="r1",
                interface="eth1",
                role="attachment",
            )
        )
    try:
        yield database
    finally:
        await database.close()


async def count(db: Database) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(UsageRow)) or 0)


async def test_collect_twice_writes_each_hour_once(db: Database) -> None:
    await add(
        db,
        kpi("r1:eth1", at(9, 45), 1000),
        *[kpi("r1:eth1", at(10, m), 16_666_667) for m in range(60)],
    )
    ledger = UsageLedger(db, records_for(db))
    assert await ledger.collect(now=at(12)) == 2
    assert await ledger.collect(now=at(12)) == 0
    assert (
        await UsageLedger(db, records_for(db)).collect(now=at(13)) == 0
    )  # another process, same hours
    async with db.sessions() as s:
        rows = (await s.scalars(select(UsageRow).order_by(UsageRow.start_at))).all()
    assert [(r.key, r.quantity) for r in rows] == [
        (hour_key("p-1", at(9)), Decimal("0.000001000")),
        (hour_key("p-1", at(10)), Decimal("1.000000020")),  # exact, not a float
    ]


async def test_concurrent_replays_store_one_record(db: Database) -> None:
    ledger = UsageLedger(db, records_for(db))
    draft = UsageDraft("ext-1", "p-1", "data", "GB", Decimal("0.123456789012"), at(12), at(13))
    results = await asyncio.gather(*(ledger.record(draft) for _ in range(5)))
    assert len({row.id for row, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await count(db) == 1
    with pytest.raises(Conflict):
        await ledger.record(UsageDraft("ext-1", "p-1", "data", "GB", Decimal("1"), at(12), at(13)))
    (row, _) = results[0]
    period = Period(at(0, day=1), at(0, day=30))
    (found,) = await usage_for(db, "p-1", period)
    assert found.quantity == Decimal("0.123456789012")
    async with db.transaction() as s:
        await mark_billed(s, [row.id], bill_id=3)
    assert await usage_for(db, "p-1", period) == []
    assert [r.id for r in await usage_for(db, "p-1", period, bill_id=3)] == [row.id]

"""SLA compliance on both backends (SQLite and a real PostgreSQL): the same exact answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bss_bridge.sla import compliance
from oss.bss_ports import records_for
from oss.store import Database
from tests.bss_rows import add_account
from tests.unit.bss.test_sla import AFTER, NOV, TERMS, alarm, at, product


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    async with database.transaction() as s:
        await add_account(s)
    try:
        yield database
    finally:
        await database.close()


async def test_overlapping_early_and_open_alarms(db: Database) -> None:
    await product(db, start=at(1, month=10))
    link = await alarm(db, at(31, 22, month=10), None, object_type="link", obj="3")
    early = await alarm(db, at(31, 23, month=10), at(1, 1), parent=link)
    a = await alarm(db, at(5, 10), at(5, 10, 30), parent=link)
    b = await alarm(db, at(5, 10, 20), at(5, 11), parent=link)
    still = await alarm(db, at(30, 23), None, parent=link)

    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)

    assert [(w.start, w.end, w.alarm_ids) for w in result.outage_windows] == [
        (at(1), at(1, 1), tuple(sorted((early, link)))),
        (at(5, 10), at(5, 11), tuple(sorted((a, b, link)))),
        (at(30, 23), NOV.end, tuple(sorted((still, link)))),
    ]
    assert {w.cause for w in result.outage_windows} == {"link 3"}
    assert result.outage_seconds == Decimal(10800)
    assert result.availability_percent == Decimal("99.583")


async def test_activation_mid_period(db: Database) -> None:
    await product(db, start=at(16))
    await alarm(db, at(15, 23), at(16, 6))
    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)
    assert [(w.start, w.end) for w in result.outage_windows] == [(at(16), at(16, 6))]
    assert result.availability_percent == Decimal("98.333")

"""Usage records: hourly collection from the in-octets roll-ups of a service's endpoint
interfaces, idempotent creates, the bill run's query, and TMF635 shaping — on real SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bss_bridge import tmf_usage
from bss_bridge.rating import Period
from bss_bridge.tables import ProductRow, UsageRow
from bss_bridge.usage import (
    UsageDraft,
    UsageFilter,
    UsageLedger,
    hour_key,
    mark_billed,
    octets_to_gb,
    usage_for,
)
from oss import tmf
from oss.bss_ports import records_for
from oss.errors import Conflict, InvalidInput, NotFound
from oss.store import Database
from oss.store.tables import KpiMinuteRow, ServiceResourceRow, ServiceRow
from tests.bss_rows import add_account, product_row

SPEC = tmf.spec(tmf.USAGE)


def at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}")
    await database.migrate()
    async with database.transaction() as s:
        await add_account(s)
        s.add(product_row(at(9, 30)))
        service = ServiceRow(name="svc-a", type="slice", customer="acme", state="active", params={})
        s.add(service)
        await s.flush()
        s.add_all(
            [
                ServiceResourceRow(service_id=service.id, kind="device", device="r1", role="pe"),
                ServiceResourceRow(
                    service_id=service.id,
                    kind="interface",
                    device="r1",
                    interface="eth1",
                    role="attachment",
                ),
                ServiceResourceRow(
                    service_id=service.id,
                    kind="interface",
                    device="r2",
                    interface="eth2",
                    role="attachment",
                ),
                ServiceResourceRow(service_id=service.id, kind="link", link_id=3, role="primary"),
            ]
        )
    try:
        yield database
    finally:
        await database.close()


def kpi(obj: str, minute: datetime, octets: float, metric: str = "in-octets") -> KpiMinuteRow:
    return KpiMinuteRow(
        object_type="interface",
        object=obj,
        metric=metric,
        minute=minute,
        count=1,
        sum=octets,
        min=octets,
        max=octets,
        last=octets,
    )


async def add(db: Database, *rows: Any) -> None:
    async with db.transaction() as s:
        s.add_all(rows)


async def records(db: Database) -> list[UsageRow]:
    async with db.sessions() as s:
        return list((await s.scalars(select(UsageRow).order_by(UsageRow.start_at))).all())


def test_octets_become_exact_gigabytes() -> None:
    assert octets_to_gb(1_234_567_890) == Decimal("1.234567890")
    assert str(octets_to_gb(123)) == "1.23E-7"
    assert octets_to_gb(123) == Decimal("0.000000123")


async def test_collect_sums_endpoint_in_octets_per_closed_hour(db: Database) -> None:
    await add(
        db,
        kpi("r1:eth1", at(9, 10), 999),  # before activation (09:30): not the customer's
        kpi("r1:eth1", at(9, 45), 1000),
        *[kpi("r1:eth1", at(10, m), 1_000_000) for m in range(60)],
        kpi("r2:eth2", at(10, 30), 500_000_000),
        kpi("r2:eth2", at(10, 30), 7, metric="out-octets"),  # not what the customer sent
        kpi("r3:eth9", at(10, 30), 10**12),  # not the service's interface
        kpi("r1:eth1", at(11, 0), 123),  # hour 11 still open at 12:01
    )
    ledger = UsageLedger(db, records_for(db))
    assert await ledger.collect(now=at(12, 1)) == 2
    got = [(r.key, r.quantity, r.start_at, r.end_at, r.state) for r in await records(db)]
    assert got == [
        (hour_key("p-1", at(9)), Decimal("0.000001000"), at(9, 30), at(10), "received"),
        (hour_key("p-1", at(10)), Decimal("0.560000000"), at(10), at(11), "received"),
    ]
    assert hour_key("p-1", at(9)) == "data:p-1:2026-11-02T09:00:00Z"
    first = await records(db)
    assert all(r.usage_type == "data" and r.unit == "GB" for r in first)
    assert {(r.account_id, r.service_name) for r in first} == {("acme-1", "svc-a")}

    # The same hours again: nothing new, nothing changed.
    assert await ledger.collect(now=at(12, 1)) == 0
    assert await ledger.collect(now=at(12, 1)) == 0
    assert [(r.id, r.quantity) for r in await records(db)] == [(r.id, r.quantity) for r in first]

    # Hour 11 closes (plus the settling time): one more record.
    assert await ledger.collect(now=at(12, 5)) == 1
    assert [r.quantity for r in await records(db)][-1] == Decimal("0.000000123")
    assert ledger.collected == 3


async def test_collect_stops_at_termination_and_skips_hours_without_data(db: Database) -> None:
    async with db.transaction() as s:
        product = await s.get(ProductRow, "p-1")
        assert product is not None
        product.end_at = at(11, 15)
    await add(
        db,
        kpi("r1:eth1", at(11, 10), 100),
        kpi("r1:eth1", at(11, 20), 5000),  # after termination
        kpi("r1:eth1", at(13, 0), 5000),
    )
    assert (
        await UsageLedger(db, records_for(db)).collect(now=at(15)) == 1
    )  # hours 9 and 10 have no rows
    (only,) = await records(db)
    assert (only.key, only.quantity) == (hour_key("p-1", at(11)), Decimal("0.000000100"))
    assert (only.start_at, only.end_at) == (at(11), at(11, 15))


async def test_record_is_idempotent_by_key(db: Database) -> None:
    ledger = UsageLedger(db, records_for(db))
    draft = UsageDraft("ext-1", "p-1", "data", "GB", Decimal("2.5"), at(12), at(13))
    row, created = await ledger.record(draft)
    assert created and row.state == "received" and row.account_id == "acme-1"
    again, created = await ledger.record(draft)
    assert not created and again.id == row.id
    same_value, created = await ledger.record(
        UsageDraft("ext-1", "p-1", "data", "GB", Decimal("2.50"), at(12), at(13))
    )
    assert not created and same_value.id == row.id
    with pytest.raises(Conflict):
        await ledger.record(UsageDraft("ext-1", "p-1", "data", "GB", Decimal("3"), at(12), at(13)))
    assert len(await records(db)) == 1
    with pytest.raises(NotFound):
        await ledger.record(UsageDraft("ext-2", "p-x", "data", "GB", Decimal(1), at(12), at(13)))
    with pytest.raises(InvalidInput, match="not active"):
        await ledger.record(UsageDraft("ext-3", "p-1", "data", "GB", Decimal(1), at(9), at(10)))
    with pytest.raises(InvalidInput, match="quantity"):
        await ledger.record(UsageDraft("ext-4", "p-1", "data", "GB", Decimal(-1), at(12), at(13)))
    assert len(await records(db)) == 1


async def test_usage_for_the_bill_run(db: Database) -> None:
    ledger = UsageLedger(db, records_for(db))
    rows = []
    for n, start in enumerate((at(12), at(13), at(12, day=30), at(0, day=1) + timedelta(days=30))):
        row, _ = await ledger.record(
            UsageDraft(f"u{n}", "p-1", "data", "GB", Decimal(n + 1), start, start)
        )
        rows.append(row)
    period = Period(at(0, day=1), at(0, day=1) + timedelta(days=30))  # Nov 1 .. Dec 1
    assert [r.id for r in await usage_for(db, "p-1", period)] == [r.id for r in rows[:3]]
    async with db.transaction() as s:
        await mark_billed(s, [rows[0].id], bill_id=7)
    assert [r.id for r in await usage_for(db, "p-1", period)] == [rows[1].id, rows[2].id]
    again = await usage_for(db, "p-1", period, bill_id=7)  # the draft bill 7 re-run
    assert [r.id for r in again] == [r.id for r in rows[:3]]
    assert again[0].state == "billed" and again[0].bill_id == 7
    assert await usage_for(db, "p-2", period) == []

    found, total = await ledger.find(UsageFilter(state="billed"))
    assert total == 1 and [r.id for r in found] == [rows[0].id]
    found, total = await ledger.find(UsageFilter(since=at(13), until=at(0, day=30)), limit=1)
    assert total == 1 and [r.id for r in found] == [rows[1].id]
    found, total = await ledger.find(UsageFilter(product_id="p-1"), limit=2, offset=1)
    assert total == 4 and [r.id for r in found] == [rows[1].id, rows[2].id]


def create_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "usageDate": "2026-11-02T12:00:00Z",
        "usageType": "data",
        "usageCharacteristic": [
            {"name": "key", "value": "ext-9"},
            {"name": "productId", "value": "p-1"},
            {"name": "quantity", "value": "1.25"},
            {"name": "unit", "value": "GB"},
            {"name": "endDate", "value": "2026-11-02T13:00:00+00:00"},
        ],
    }
    body.update(overrides)
    return body


def test_from_tmf_reads_a_usage_create() -> None:
    body = create_body()
    assert SPEC.errors(body, "Usage_Create") == []
    draft = tmf_usage.from_tmf(body)
    assert draft == UsageDraft("ext-9", "p-1", "data", "GB", Decimal("1.25"), at(12), at(13))
    by_ref = create_body(
        usageCharacteristic=[c for c in body["usageCharacteristic"] if c["name"] != "productId"],
        ratedProductUsage=[{"productRef": {"id": "p-1"}}],
    )
    assert tmf_usage.from_tmf(by_ref).product_id == "p-1"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([create_body()], "a batch is N POSTs"),
        (create_body(usageDate="yesterday"), "usageDate"),
        (create_body(status="rated"), "status"),
        (create_body(usageType=7), "usageType"),
        (
            create_body(
                usageCharacteristic=[
                    {"name": "productId", "value": "p-1"},
                    {"name": "quantity", "value": "1"},
                    {"name": "unit", "value": "GB"},
                ]
            ),
            "key",
        ),
        (
            create_body(
                usageCharacteristic=[
                    {"name": "key", "value": "k"},
                    {"name": "productId", "value": "p-1"},
                    {"name": "quantity", "value": 1.5},
                    {"name": "unit", "value": "GB"},
                ]
            ),
            "float",
        ),
        (
            create_body(
                usageCharacteristic=[
                    {"name": "key", "value": "k"},
                    {"name": "key", "value": "k2"},
                ]
            ),
            "given twice",
        ),
        (
            create_body(ratedProductUsage=[{"productRef": {"id": "p-2"}}]),
            "disagree",
        ),
    ],
)
def test_from_tmf_refuses_bad_bodies(body: Any, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        tmf_usage.from_tmf(body)


async def test_to_tmf_is_a_valid_usage(db: Database) -> None:
    ledger = UsageLedger(db, records_for(db))
    row, _ = await ledger.record(tmf_usage.from_tmf(create_body()))
    doc = tmf_usage.to_tmf(row)
    assert SPEC.errors(doc, "Usage") == []
    assert doc["id"] == str(row.id)
    assert doc["href"] == f"/tmf-api/usageManagement/v4/usage/{row.id}"
    assert doc["status"] == "received" and doc["usageDate"] == "2026-11-02T12:00:00Z"
    chars = {c["name"]: c["value"] for c in doc["usageCharacteristic"]}
    assert chars["key"] == "ext-9" and chars["quantity"] == "1.25" and chars["unit"] == "GB"
    assert doc["ratedProductUsage"][0]["productRef"]["id"] == "p-1"
    assert doc["ratedProductUsage"][0]["isBilled"] is False
    # A stored record reads back into the same draft (what a replay compares with).
    assert tmf_usage.from_tmf({k: v for k, v in doc.items() if k not in ("id", "href")}) == (
        tmf_usage.from_tmf(create_body())
    )

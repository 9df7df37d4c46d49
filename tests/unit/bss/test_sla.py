"""SLA compliance from alarms and minute KPIs, on a real SQLite database with rows made by hand:
exact availability, windows, evidence and latency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bss_bridge.catalog import CreditTier, SlaTerms
from bss_bridge.rating import billing_period
from bss_bridge.sla import compliance
from oss.bss_ports import records_for
from oss.errors import NotFound
from oss.store import Database
from oss.store.tables import KpiMinuteRow, ServiceRow
from tests.bss_rows import add_account, alarm_row, product_row

NOV = billing_period("2026-11", 1)  # 2026-11-01 .. 2026-12-01, 30 days
AFTER = datetime(2026, 12, 5, tzinfo=UTC)
TERMS = SlaTerms(
    availability_target_percent=Decimal("99.9"),
    latency_target_ms=None,
    latency_window_minutes=60,
    credit_tiers=(CreditTier(Decimal("99.9"), Decimal("10")),),
    credit_cap_percent=Decimal("50"),
)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'sla.db'}")
    await database.migrate()
    async with database.transaction() as s:
        await add_account(s)
    try:
        yield database
    finally:
        await database.close()


async def product(
    db: Database,
    service: str = "svc-a",
    start: datetime | None = at(1),
    end: datetime | None = None,
    pid: str = "p-1",
) -> None:
    async with db.transaction() as s:
        s.add(product_row(start, end, pid=pid, service=service))


async def alarm(
    db: Database,
    raised: datetime,
    cleared: datetime | None,
    *,
    object_type: str = "service",
    obj: str = "svc-a",
    parent: int | None = None,
    affecting: bool = True,
    causes: list[int] | None = None,
) -> int:
    row = alarm_row(
        raised,
        cleared,
        object_type=object_type,
        obj=obj,
        parent=parent,
        affecting=affecting,
        causes=causes,
    )
    async with db.transaction() as s:
        s.add(row)
        await s.flush()
        return row.id


async def test_no_alarms_is_full_availability(db: Database) -> None:
    await product(db)
    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)
    assert result.availability_percent == Decimal("100.000")
    assert result.met and result.outage_windows == ()
    assert result.measured_until == NOV.end
    assert result.measured_seconds == Decimal(30 * 86400)
    assert result.latency is None


async def test_overlapping_early_and_still_open_alarms(db: Database) -> None:
    await product(db, start=at(1, month=10))
    link = await alarm(db, at(31, 22, month=10), at(1, 1), object_type="link", obj="3")
    early = await alarm(db, at(31, 23, month=10), at(1, 1), parent=link)  # before the period
    node = await alarm(db, at(5, 10), at(5, 11), object_type="device", obj="r2")
    a = await alarm(db, at(5, 10), at(5, 10, 30), parent=link)
    b = await alarm(db, at(5, 10, 20), at(5, 11), parent=node)  # overlaps a
    still = await alarm(db, at(30, 23), None, parent=link)  # still open
    await alarm(db, at(7), at(8), obj="svc-other")  # another service
    await alarm(db, at(9), at(10), affecting=False)  # not service-affecting

    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)

    windows = [
        (w.start, w.end, w.service_alarm_ids, w.root_alarm_ids) for w in result.outage_windows
    ]
    assert windows == [
        (at(1), at(1, 1), (early,), (link,)),
        (at(5, 10), at(5, 11), (a, b), tuple(sorted((link, node)))),
        (at(30, 23), NOV.end, (still,), (link,)),
    ]
    assert result.outage_windows[1].alarm_ids == tuple(sorted((a, b, link, node)))
    assert result.outage_windows[1].cause == "device r2, link 3"
    assert result.outage_windows[0].cause == "link 3"
    # 3 h down of 30 days: 100 * (1 - 10800 / 2592000) = 99.58333... -> 99.583 (rounded down)
    assert result.outage_seconds == Decimal(10800)
    assert result.availability_percent == Decimal("99.583")
    assert not result.met and not result.availability_met
    assert result.target_percent == Decimal("99.9")


async def test_a_still_open_alarm_runs_until_now(db: Database) -> None:
    await product(db)
    first = await alarm(db, at(2), at(2, 2))
    await alarm(db, at(30, 23), None)
    now = at(30, 23, 30)

    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=now)

    assert result.measured_until == now
    assert [(w.start, w.end) for w in result.outage_windows] == [
        (at(2), at(2, 2)),
        (at(30, 23), now),
    ]
    assert result.outage_windows[0].alarm_ids == (first,)
    assert result.outage_windows[0].cause == "unknown (no root cause correlated)"
    # 2.5 h of 29 d 23.5 h: 100 * (1 - 9000 / 2590200) = 99.65253... -> 99.652
    assert result.measured_seconds == Decimal(2590200)
    assert result.availability_percent == Decimal("99.652")


async def test_a_product_activated_mid_period_counts_from_activation(db: Database) -> None:
    await product(db, start=at(16))
    await alarm(db, at(10, 1), at(10, 2))  # before activation: not the customer's time
    await alarm(db, at(15, 23), at(16, 6))  # straddles the activation
    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)
    assert [(w.start, w.end) for w in result.outage_windows] == [(at(16), at(16, 6))]
    # 6 h of 15 days: 100 * (1 - 6 / 360) = 98.333...
    assert result.availability_percent == Decimal("98.333")


async def test_a_terminated_product_counts_until_its_end(db: Database) -> None:
    await product(db, start=at(16), end=at(25))
    await alarm(db, at(20), at(20, 6))
    await alarm(db, at(26), at(27))  # after termination
    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)
    assert result.measured_seconds == Decimal(9 * 86400)
    # 6 h of 9 days: 100 * (1 - 6 / 216) = 97.2222... -> 97.222
    assert result.availability_percent == Decimal("97.222")


async def test_not_active_yet_is_not_a_miss(db: Database) -> None:
    await product(db, start=None)
    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)
    assert result.measured_seconds == 0 and result.availability_percent == Decimal("100.000")
    assert result.met


async def test_without_a_product_the_service_lifetime_counts(db: Database) -> None:
    async with db.transaction() as s:
        s.add(
            ServiceRow(
                name="svc-b",
                type="slice",
                customer="acme",
                state="active",
                params={},
                created_at=at(21),
                updated_at=at(21),
            )
        )
    await alarm(db, at(20), at(21, 1), obj="svc-b")
    result = await compliance(db, "svc-b", TERMS, NOV, records=records_for(db), now=AFTER)
    assert [(w.start, w.end) for w in result.outage_windows] == [(at(21), at(21, 1))]
    assert result.measured_seconds == Decimal(10 * 86400)
    with pytest.raises(NotFound):
        await compliance(db, "nobody", TERMS, NOV, records=records_for(db), now=AFTER)


async def test_latency_windows_over_target_are_missed(db: Database) -> None:
    await product(db)
    terms = SlaTerms(
        availability_target_percent=Decimal("99.9"),
        latency_target_ms=Decimal("20"),
        latency_window_minutes=60,
        credit_tiers=(),
        credit_cap_percent=Decimal("0"),
    )
    assert (
        await compliance(db, "svc-a", terms, NOV, records=records_for(db), now=AFTER)
    ).latency is None  # no probes
    async with db.transaction() as s:
        for minute in range(60):
            for hour, ms in ((2, 30.0), (3, 10.0)):  # hour 2: mean 30 ms, hour 3: 10 ms
                s.add(
                    KpiMinuteRow(
                        object_type="service",
                        object="svc-a",
                        metric="latency-ms",
                        minute=at(2, hour, minute),
                        count=2,
                        sum=2 * ms,
                        min=ms,
                        max=ms,
                        last=ms,
                    )
                )
    result = await compliance(db, "svc-a", terms, NOV, records=records_for(db), now=AFTER)
    assert result.latency is not None
    assert result.latency.windows_measured == 2
    assert [(w.start, w.end, w.mean_ms) for w in result.latency.missed] == [
        (at(2, 2), at(2, 3), Decimal("30.000"))
    ]
    assert result.availability_met and not result.met
    doc = result.to_json()
    assert doc["latency"]["windowsMissed"] == 1
    assert doc["latency"]["missedWindows"][0]["start"] == "2026-11-02T02:00:00Z"


async def test_to_json_carries_the_evidence(db: Database) -> None:
    await product(db)
    link = await alarm(db, at(3), at(3, 1), object_type="link", obj="7")
    svc = await alarm(db, at(3), at(3, 1), parent=link)
    doc = (await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)).to_json()
    assert doc["period"] == {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
    assert doc["availability"]["measuredPercent"] == "99.861"  # 1 h of 720 h
    assert doc["availability"]["outageSeconds"] == "3600"
    assert doc["availability"]["outageWindows"] == [
        {
            "start": "2026-11-03T00:00:00Z",
            "end": "2026-11-03T01:00:00Z",
            "durationSeconds": "3600",
            "alarmIds": sorted([svc, link]),
            "serviceAlarmIds": [svc],
            "rootAlarmIds": [link],
            "cause": "link 7",
        }
    ]
    assert doc["latency"]["measured"] is False
    assert doc["met"] is False


async def test_a_service_cut_by_two_failures_names_both_in_its_window(db: Database) -> None:
    await product(db)
    first = await alarm(db, at(5, 10), at(5, 10, 20), object_type="link", obj="3")
    second = await alarm(db, at(5, 10, 10), at(5, 10, 30), object_type="link", obj="7")
    # the correlator moved the service alarm under the second link when the first came back
    svc = await alarm(db, at(5, 10), at(5, 10, 30), parent=second, causes=[first, second])

    result = await compliance(db, "svc-a", TERMS, NOV, records=records_for(db), now=AFTER)

    [window] = result.outage_windows
    assert (window.start, window.end) == (at(5, 10), at(5, 10, 30))
    assert window.service_alarm_ids == (svc,)
    assert window.root_alarm_ids == tuple(sorted((first, second)))
    assert window.cause == "link 3, link 7"

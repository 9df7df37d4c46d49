"""Minute roll-ups: folded per object, metric and minute; written when a minute closes;
merged with a row already there."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError

from oss.events import Event
from oss.outputs.rollup import MinuteRollup, minute_of, query
from oss.store.database import Database

T0 = int(datetime(2026, 11, 22, 10, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
S = 1_000_000_000


def kpi(at_s: int, bps: float, *, device: str = "r1") -> Event:
    tags = {"device": device, "interface": "eth1"}
    return Event("kpi.interface", T0 + at_s * S, tags, {"in-bps": bps, "availability": 1.0})


async def test_minutes_are_written_when_they_close(migrated_db: Database) -> None:
    rollup = MinuteRollup(migrated_db)
    await rollup.offer([kpi(0, 100.0), kpi(10, 300.0), kpi(50, 200.0)])
    assert await query(migrated_db) == []  # minute 10:00 still open
    await rollup.offer([kpi(61, 50.0)])
    rows = await query(migrated_db, metric="in-bps")
    assert rows == [
        {
            "object_type": "interface",
            "object": "r1:eth1",
            "metric": "in-bps",
            "minute": "2026-11-22T10:00:00+00:00",
            "count": 3,
            "avg": 200.0,
            "min": 100.0,
            "max": 300.0,
            "last": 200.0,
        }
    ]
    await rollup.flush()
    assert [r["minute"] for r in await query(migrated_db, metric="in-bps")] == [
        "2026-11-22T10:00:00+00:00",
        "2026-11-22T10:01:00+00:00",
    ]
    await migrated_db.close()


async def test_a_minute_flushed_twice_is_merged(migrated_db: Database) -> None:
    rollup = MinuteRollup(migrated_db)
    rollup.add([kpi(1, 10.0)])
    await rollup.flush()
    rollup.add([kpi(2, 30.0), Event("interface", T0, {"device": "r1"}, {"x": 1})])
    await rollup.flush()
    [row] = await query(migrated_db, object="r1:eth1", metric="in-bps")
    assert (row["count"], row["avg"], row["min"], row["max"], row["last"]) == (2, 20.0, 10, 30, 30)
    await migrated_db.close()


def test_minute_of() -> None:
    assert minute_of(T0 + 59 * S) == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert minute_of(T0 + 60 * S) == datetime(2026, 11, 22, 10, 1, tzinfo=UTC)


async def test_concurrent_flushes_write_every_event_once(migrated_db: Database) -> None:
    """Per-device pollers flush at the same time (defect 2): none may fail or lose a fold."""
    rollup = MinuteRollup(migrated_db)
    devices = [f"r{n}" for n in range(20)]
    rollup.add([kpi(second, 10.0, device=d) for d in devices for second in (1, 2, 3)])
    await asyncio.gather(*(rollup.flush() for _ in range(5)))
    rows = await query(migrated_db, metric="in-bps")
    assert {r["object"]: r["count"] for r in rows} == {f"{d}:eth1": 3 for d in devices}
    assert len(rows) == len(devices)
    assert rollup.written == 2 * len(devices)  # in-bps and availability, once each
    await migrated_db.close()


async def test_a_failed_write_keeps_the_folds_for_the_next_flush(
    migrated_db: Database, tmp_path: Path
) -> None:
    rollup = MinuteRollup(migrated_db)
    rollup.add([kpi(1, 10.0)])
    rollup.db = Database(f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}")  # no tables
    with pytest.raises(SQLAlchemyError):
        await rollup.flush()
    await rollup.db.close()
    rollup.db = migrated_db
    rollup.add([kpi(2, 30.0)])
    await rollup.flush()
    [row] = await query(migrated_db, object="r1:eth1", metric="in-bps")
    assert (row["count"], row["min"], row["max"], row["last"]) == (2, 10.0, 30.0, 30.0)
    await migrated_db.close()

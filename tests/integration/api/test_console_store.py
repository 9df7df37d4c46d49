"""The console's reads on each backend (SQLite, PostgreSQL): each object's newest KPI minute
in one windowed query, and open alarms summed up per object in one grouped query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oss.faults.summary import Worst, open_by_object
from oss.store import Database
from oss.store.kpi_latest import latest_kpis
from oss.store.tables import KpiMinuteRow
from tests.bss_rows import alarm_row


async def test_latest_kpis_keep_each_objects_newest_minute(db: Database) -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    rows = [
        ("r1:eth1", "in-bps", now - timedelta(minutes=2), 10.0),
        ("r1:eth1", "in-bps", now - timedelta(minutes=1), 20.0),
        ("r1:eth1", "out-bps", now - timedelta(minutes=3), 5.0),
        ("r2:eth1", "in-bps", now - timedelta(hours=2), 99.0),  # before the window
        ("r3:eth1", "errors", now, 1.0),  # another metric
    ]
    async with db.transaction() as s:
        for obj, metric, minute, value in rows:
            s.add(
                KpiMinuteRow(
                    object_type="interface", object=obj, metric=metric, minute=minute,
                    count=1, sum=value, min=value, max=value, last=value,
                )
            )  # fmt: skip
    since = now - timedelta(minutes=10)
    found = await latest_kpis(db, "interface", ("in-bps", "out-bps"), since)
    assert found == {"r1:eth1": {"in-bps": 20.0, "out-bps": 5.0}}
    only = await latest_kpis(db, "interface", ("in-bps",), since, objects=["r2:eth1"])
    assert only == {}


async def test_open_alarms_are_summed_per_object(db: Database) -> None:
    raised = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    async with db.transaction() as s:
        for n, (obj, cleared) in enumerate([("r1", None), ("r1", None), ("r2", raised)]):
            row = alarm_row(raised, cleared, object_type="device", obj=obj)
            row.reduction_key = f"k{n}:{obj}"  # one open alarm per key (ux_alarms_open_key)
            s.add(row)
        critical = alarm_row(raised, None, object_type="device", obj="r1")
        critical.reduction_key, critical.perceived_severity = "k:r1:critical", "critical"
        s.add(critical)
    found = await open_by_object(db)
    assert found.of("device", "r1") == Worst("critical", 3)
    assert found.of("device", "r2") is None  # cleared

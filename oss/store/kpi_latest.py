"""The latest minute roll-up of some KPIs of every object of a type: one query, whose window
function keeps each (object, metric)'s newest minute in the database, so the daemon reads one
row per object and metric however many minutes the window holds."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select

from oss.store.database import Database
from oss.store.tables import KpiMinuteRow


async def latest_kpis(
    db: Database,
    object_type: str,
    metrics: Collection[str],
    since: datetime,
    objects: Collection[str] | None = None,
) -> dict[str, dict[str, float]]:
    """object -> metric -> the last value of its newest minute at or after `since`; only
    these objects' when given (a few: one IN list)."""
    k = KpiMinuteRow
    newest = func.row_number().over(partition_by=(k.object, k.metric), order_by=k.minute.desc())
    where = [k.object_type == object_type, k.metric.in_(list(metrics)), k.minute >= since]
    if objects is not None:
        where.append(k.object.in_(list(objects)))
    ranked = select(k.object, k.metric, k.last, newest.label("newest")).where(*where).subquery()
    query = select(ranked.c.object, ranked.c.metric, ranked.c.last).where(ranked.c.newest == 1)
    found: dict[str, dict[str, float]] = {}
    async with db.read() as session:
        for name, metric, last in (await session.execute(query)).all():
            found.setdefault(name, {})[metric] = float(last)
    return found

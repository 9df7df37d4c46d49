"""What the network did, as others read it back: service-affecting alarms and their causes
(the BSS's SLA outages) and minute KPI roll-ups (usage octets, SLA latency).

Each function reads in a session of its own (`Database.read`: no write turn) and bounds its IN
lists to `IN_CHUNK` values, so a bill run over many services stays a few queries.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import or_, select

from oss.store.base import in_chunks
from oss.store.database import Database
from oss.store.tables import AlarmRow, KpiMinuteRow


async def service_alarms(db: Database, raised_before: Mapping[str, datetime]) -> list[AlarmRow]:
    """The service-affecting alarms raised on each named service (alarmed object type
    "service") before its moment, each service's in the order they were raised."""
    found: list[AlarmRow] = []
    async with db.read() as s:
        for names in in_chunks(list(raised_before)):
            query = (
                select(AlarmRow)
                .where(
                    AlarmRow.alarmed_object_type == "service",
                    AlarmRow.alarmed_object.in_(names),
                    AlarmRow.service_affecting.is_(True),
                    AlarmRow.raised_time < max(raised_before[name] for name in names),
                )
                .order_by(AlarmRow.raised_time, AlarmRow.id)
            )
            for row in (await s.scalars(query)).all():
                if row.raised_time < raised_before[row.alarmed_object]:
                    found.append(row)
    return found


async def services_alarmed(
    db: Database, names: Collection[str], start: datetime, end: datetime
) -> set[str]:
    """Those of `names` with an alarm on the service (alarmed object type "service") raised
    before `end` and open, or cleared after `start`."""
    found: set[str] = set()
    async with db.read() as s:
        for chunk in in_chunks(sorted(names)):
            query = select(AlarmRow.alarmed_object).where(
                AlarmRow.alarmed_object_type == "service",
                AlarmRow.alarmed_object.in_(chunk),
                AlarmRow.raised_time < end,
                or_(
                    AlarmRow.open.is_(True),
                    AlarmRow.cleared_time.is_(None),
                    AlarmRow.cleared_time > start,
                ),
            )
            found.update((await s.scalars(query)).all())
    return found


async def alarms_by_id(db: Database, ids: Collection[int]) -> list[AlarmRow]:
    found: list[AlarmRow] = []
    async with db.read() as s:
        for chunk in in_chunks(sorted(ids)):
            found.extend((await s.scalars(select(AlarmRow).where(AlarmRow.id.in_(chunk)))).all())
    return found


async def kpi_minutes(
    db: Database,
    object_type: str,
    objects: Collection[str],
    metric: str,
    start: datetime,
    end: datetime,
) -> list[tuple[str, datetime, float, int]]:
    """(object, minute, sum, count) of `metric` of these objects, start <= minute < end."""
    found: list[tuple[str, datetime, float, int]] = []
    async with db.read() as s:
        for names in in_chunks(sorted(objects)):
            query = select(
                KpiMinuteRow.object, KpiMinuteRow.minute, KpiMinuteRow.sum, KpiMinuteRow.count
            ).where(
                KpiMinuteRow.object_type == object_type,
                KpiMinuteRow.object.in_(names),
                KpiMinuteRow.metric == metric,
                KpiMinuteRow.minute >= start,
                KpiMinuteRow.minute < end,
            )
            found.extend((o, m, total, n) for o, m, total, n in await s.execute(query))
    return found

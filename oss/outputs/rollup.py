"""Minute roll-ups of KPI events in the database (`kpi_minutes`): count, sum, min, max and last
value per object, metric and minute, enough to compute SLA windows and answer /api/v1/kpis.

Events are folded in memory for the minutes still open and written when a minute closes (or on
`flush`), one upsert per (object, metric, minute) that the database merges with a row already
there (`oss.store.kpi_minutes`): a row per minute, not a write per sample, and two writers of a
minute (in a cluster, a device's old and new owner) add up instead of colliding.

Every batch offered flushes, so flushes overlap: one runs at a time (two writers of the same
minute would both insert its row), and it takes its folds out before its first `await`, so a
fold added meanwhile waits for the next flush. A write that fails puts its folds back: they are
written by the next flush, never lost.

Registered as the "rollup" output, built when assurance is enabled; the assurance pipeline
flushes it once its collectors have stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from oss.events import KPI_INTERFACE, KPI_SERVICE, Event
from oss.outputs.registry import OutputContext, register_output
from oss.store.database import Database
from oss.store.kpi_minutes import add_minutes
from oss.store.tables import KpiMinuteRow


def _interface(tags: Mapping[str, str]) -> str:
    return f"{tags['device']}:{tags['interface']}"


def _service(tags: Mapping[str, str]) -> str:
    return tags["service"]


# event name -> (object type, how the object is named from the tags)
OBJECTS: dict[str, tuple[str, Callable[[Mapping[str, str]], str]]] = {
    KPI_INTERFACE: ("interface", _interface),
    KPI_SERVICE: ("service", _service),
}


@dataclass
class _Fold:
    count: int = 0
    sum: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    last: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.last = value

    def merge_older(self, older: _Fold) -> None:
        """Fold in what an older fold of the same minute holds (its `last` is not the last)."""
        self.count += older.count
        self.sum += older.sum
        self.min = min(self.min, older.min)
        self.max = max(self.max, older.max)


Key = tuple[str, str, str, datetime]  # object type, object, metric, minute


def minute_of(timestamp_ns: int) -> datetime:
    seconds = timestamp_ns // 1_000_000_000
    return datetime.fromtimestamp(seconds - seconds % 60, UTC)


class MinuteRollup:
    name = "rollup"

    def __init__(self, db: Database) -> None:
        self.db = db
        self._open: dict[Key, _Fold] = {}
        self._writing = asyncio.Lock()
        self.written = 0

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            kind = OBJECTS.get(event.name)
            if kind is None:
                continue
            object_type, name_of = kind
            try:
                name = name_of(event.tags)
            except KeyError:
                continue
            minute = minute_of(event.timestamp_ns)
            for metric, value in event.values.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                self._open.setdefault((object_type, name, metric, minute), _Fold()).add(value)

    async def offer(self, events: Sequence[Event]) -> None:
        """Fold, then write the minutes that closed before this batch."""
        self.add(events)
        if events:
            await self.flush(before=minute_of(max(e.timestamp_ns for e in events)))

    async def flush(self, *, before: datetime | None = None) -> None:
        """Write the folded minutes (only those before `before`, when given), merging with a
        row already there (a minute can be flushed twice, e.g. at shutdown and after)."""
        if not any(self._due(key, before) for key in self._open):
            return
        async with self._writing:
            taken = {k: self._open.pop(k) for k in [k for k in self._open if self._due(k, before)]}
            if not taken:
                return
            try:
                await self._write(taken)
            except BaseException:
                self._put_back(taken)
                raise
            self.written += len(taken)

    @staticmethod
    def _due(key: Key, before: datetime | None) -> bool:
        return before is None or key[3] < before

    def _put_back(self, taken: dict[Key, _Fold]) -> None:
        for key, fold in taken.items():
            newer = self._open.get(key)
            if newer is None:
                self._open[key] = fold
            else:
                newer.merge_older(fold)

    async def _write(self, folds: dict[Key, _Fold]) -> None:
        rows = [
            {
                "object_type": key[0],
                "object": key[1],
                "metric": key[2],
                "minute": key[3],
                "count": fold.count,
                "sum": fold.sum,
                "min": fold.min,
                "max": fold.max,
                "last": fold.last,
            }
            for key, fold in folds.items()
        ]
        await self.db.write(lambda conn: add_minutes(conn, rows))


@register_output("rollup")
def _rollup(context: OutputContext) -> MinuteRollup | None:
    if not context.settings.assurance.enabled:
        return None
    return MinuteRollup(context.db)


async def query(
    db: Database,
    *,
    object_type: str | None = None,
    object: str | None = None,
    metric: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> Sequence[dict[str, Any]]:
    async with db.read() as s:
        q = select(KpiMinuteRow).order_by(KpiMinuteRow.minute, KpiMinuteRow.object)
        if object_type:
            q = q.where(KpiMinuteRow.object_type == object_type)
        if object:
            q = q.where(KpiMinuteRow.object == object)
        if metric:
            q = q.where(KpiMinuteRow.metric == metric)
        if since:
            q = q.where(KpiMinuteRow.minute >= since)
        if until:
            q = q.where(KpiMinuteRow.minute < until)
        rows = (await s.scalars(q.limit(limit))).all()
        return [
            {
                "object_type": r.object_type,
                "object": r.object,
                "metric": r.metric,
                "minute": r.minute.isoformat(),
                "count": r.count,
                "avg": r.sum / r.count if r.count else None,
                "min": r.min,
                "max": r.max,
                "last": r.last,
            }
            for r in rows
        ]

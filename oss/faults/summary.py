"""Open alarms summed up per alarmed object: the most severe one and how many, in ONE grouped
query whatever the number of objects (the console's map colours 2,000 devices from it).

    found = await open_by_object(db)
    found.of("interface", "r1:eth1")   # Worst("major", 2) or None

`OpenAlarmIndex` keeps the same summary in memory from the alarm manager's committed changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from oss.faults.reducer import SEVERITIES
from oss.store import Database
from oss.store.tables import AlarmRow

# Most severe first; an unknown severity ranks after every known one.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
_UNKNOWN_RANK = len(SEVERITIES)


def severity_rank(severity: str) -> int:
    """0 for critical, then major, minor, warning, indeterminate: lower is worse."""
    return SEVERITY_RANK.get(severity, _UNKNOWN_RANK)


@dataclass(frozen=True, slots=True)
class Worst:
    """The most severe open alarm's severity on something, and how many open alarms it has."""

    severity: str
    count: int

    def __add__(self, other: Worst | None) -> Worst:
        if other is None:
            return self
        worse = min(self.severity, other.severity, key=severity_rank)
        return Worst(worse, self.count + other.count)


def worst_of(found: Iterable[Worst | None]) -> Worst | None:
    """The sum of several objects' summaries (a device and its interfaces, say)."""
    total: Worst | None = None
    for item in found:
        if item is not None:
            total = item if total is None else total + item
    return total


class OpenAlarms:
    """Open alarms by (alarmed object type, alarmed object)."""

    def __init__(self, by_object: dict[tuple[str, str], Worst]) -> None:
        self._by_object = by_object

    def of(self, object_type: str, name: str) -> Worst | None:
        return self._by_object.get((object_type, name))

    def items(self) -> Iterable[tuple[tuple[str, str], Worst]]:
        return self._by_object.items()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OpenAlarms) and other._by_object == self._by_object

    __hash__ = None  # type: ignore[assignment]  # mutable content: equal, not hashable


async def open_by_object(db: Database) -> OpenAlarms:
    """Every open alarm, grouped by object and severity in the database (rows: objects x
    severities, not alarms)."""
    query = (
        select(
            AlarmRow.alarmed_object_type,
            AlarmRow.alarmed_object,
            AlarmRow.perceived_severity,
            func.count(),
        )
        .where(AlarmRow.open.is_(True))
        .group_by(
            AlarmRow.alarmed_object_type, AlarmRow.alarmed_object, AlarmRow.perceived_severity
        )
    )
    by_object: dict[tuple[str, str], Worst] = {}
    async with db.read() as session:
        for object_type, name, severity, count in (await session.execute(query)).all():
            key = (object_type, name)
            here = Worst(severity, int(count))
            before = by_object.get(key)
            by_object[key] = here if before is None else before + here
    return OpenAlarms(by_object)


class OpenAlarmIndex:
    """The open alarms kept in memory from the alarm manager's committed changes
    (`AlarmManager.listeners`, told synchronously, before any reader can see its `revision`
    move on), so a reader gets the summary without a query after every change.

    It is read once from the database on first use; a change heard while that read runs
    makes the read start again (its rows might predate the change or not), a few times at
    most, after which the summary is answered from the read alone and the index stays
    unloaded. An alarm's newer `sequence` wins, so a change is never undone by an older one."""

    LOAD_ATTEMPTS = 5

    def __init__(self, db: Database) -> None:
        self._db = db
        self._open: dict[int, tuple[str, str, str]] | None = None  # id -> type, object, sev.
        self._sequence: dict[int, int] = {}
        self._heard_while_loading = False
        self._loading = asyncio.Lock()

    def heard(self, change: tuple[Any, dict[str, Any]]) -> None:
        """One committed change (event, TMF642 document), as the alarm manager publishes it."""
        _, doc = change
        if self._open is None:
            self._heard_while_loading = True
            return
        alarm_id, sequence = int(doc["id"]), int(doc["sequence"])
        if sequence < self._sequence.get(alarm_id, -1):
            return
        if doc["state"] == "cleared":
            self._open.pop(alarm_id, None)
            self._sequence.pop(alarm_id, None)
            return
        self._sequence[alarm_id] = sequence
        kind, name = str(doc["alarmedObjectType"]), str(doc["alarmedObject"]["id"])
        self._open[alarm_id] = (kind, name, str(doc["perceivedSeverity"]))

    def forget(self) -> None:
        """Changes may have been missed (another instance's): read the open alarms again on
        next use (a read under way starts again)."""
        self._open = None
        self._sequence = {}
        self._heard_while_loading = True

    async def summary(self) -> OpenAlarms:
        if self._open is None:
            async with self._loading:
                if self._open is None:
                    rows = await self._load()
                    if self._open is None:  # changes kept coming: this read alone
                        return _summed(rows)
        by_object: dict[tuple[str, str], Worst] = {}
        for kind, name, severity in self._open.values():
            key = (kind, name)
            by_object[key] = Worst(severity, 1) + by_object.get(key)
        return OpenAlarms(by_object)

    async def _load(self) -> list[tuple[int, str, str, str, int]]:
        rows: list[tuple[int, str, str, str, int]] = []
        for _ in range(self.LOAD_ATTEMPTS):
            self._heard_while_loading = False
            rows = await _open_rows(self._db)
            if not self._heard_while_loading:
                self._open = {i: (kind, name, sev) for i, kind, name, sev, _ in rows}
                self._sequence = {i: seq for i, _, _, _, seq in rows}
                break
        return rows


async def _open_rows(db: Database) -> list[tuple[int, str, str, str, int]]:
    query = select(
        AlarmRow.id,
        AlarmRow.alarmed_object_type,
        AlarmRow.alarmed_object,
        AlarmRow.perceived_severity,
        AlarmRow.sequence,
    ).where(AlarmRow.open.is_(True))
    async with db.read() as session:
        return [(int(i), k, n, s, int(q)) for i, k, n, s, q in await session.execute(query)]


def _summed(rows: list[tuple[int, str, str, str, int]]) -> OpenAlarms:
    by_object: dict[tuple[str, str], Worst] = {}
    for _, kind, name, severity, _ in rows:
        by_object[(kind, name)] = Worst(severity, 1) + by_object.get((kind, name))
    return OpenAlarms(by_object)

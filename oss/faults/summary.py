"""Open alarms summed up per alarmed object: the most severe one and how many, in ONE grouped
query whatever the number of objects (the console's map colours 2,000 devices from it).

    found = await open_by_object(db)
    found.of("interface", "r1:eth1")   # Worst("major", 2) or None
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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

"""Alarm rows in bulk, with Core statements: what makes a trap storm's batch cheap.

A batch of alarm changes costs a few statements whatever its size: one look-up of the open
alarms per `IN_CHUNK` keys, one insert of the new alarms (numbered as `insert_numbered` does),
one executemany update of the others, one look-up of their children. Rows travel as
`PlainAlarm`s (the columns of `AlarmRow`, no ORM state), which the alarm state machine
(`oss.faults.reducer`) changes in memory in between.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from oss.store.base import IN_CHUNK
from oss.store.driver_rows import DriverStatement, SqliteSelect
from oss.store.numbering import insert_numbered_rows
from oss.store.tables import AlarmRow

_TABLE = cast(Table, AlarmRow.__table__)


@dataclass(slots=True)
class PlainAlarm:
    """The values of one `alarms` row (`id` None until it is inserted)."""

    reduction_key: str
    open: bool
    alarm_type: str
    perceived_severity: str
    probable_cause: str
    specific_problem: str
    alarmed_object_type: str
    alarmed_object: str
    state: str
    ack_state: str
    raised_time: datetime
    changed_time: datetime
    ack_user_id: str | None = None
    cleared_time: datetime | None = None
    service_affecting: bool = False
    affected_services: Any = field(default_factory=list)
    impact: Any = None
    parent_id: int | None = None
    is_root_cause: bool = False
    count: int = 1
    sequence: int = 1
    details: Any = None
    id: int | None = None


# What a change of an existing alarm's state touches (oss.faults.reducer: count, severity,
# times, state, details, sequence): the update sets these only.
STATE_COLUMNS = (
    "open",
    "state",
    "perceived_severity",
    "changed_time",
    "cleared_time",
    "count",
    "sequence",
    "details",
)
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values({name: bindparam(f"new_{name}") for name in STATE_COLUMNS})
)
# Built once: a statement made per batch costs more to construct and key than to run. Its
# columns in `PlainAlarm`'s field order: a row makes one positionally (a tenth of the cost of
# one made by keyword from a row mapping).
_OPEN = (
    select(*(_TABLE.c[f.name] for f in fields(PlainAlarm)))
    .where(_TABLE.c.reduction_key.in_(bindparam("keys", expanding=True)), _TABLE.c.open)
    .order_by(_TABLE.c.id)
)
# SQLite: through the driver, the values converted cheaper (oss.store.driver_rows).
_OPEN_ON_SQLITE = SqliteSelect(_OPEN, "keys")
# (parent, child) of the alarms correlated under `ids`.
CHILDREN = (
    select(AlarmRow.parent_id, AlarmRow.id)
    .where(AlarmRow.parent_id.in_(bindparam("ids", expanding=True)))
    .order_by(AlarmRow.id)
)
_CHILDREN_ON_SQLITE = SqliteSelect(CHILDREN, "ids")


def open_alarms(conn: Connection, keys: Collection[str]) -> dict[str, list[PlainAlarm]]:
    """The open alarms of each key (every key present), oldest first (normally one at most)."""
    ordered = sorted(keys)
    found: dict[str, list[PlainAlarm]] = {key: [] for key in ordered}
    sqlite = conn.dialect.name == "sqlite"
    for start in range(0, len(ordered), IN_CHUNK):
        chunk = ordered[start : start + IN_CHUNK]
        rows = _OPEN_ON_SQLITE.rows(conn, chunk) if sqlite else conn.execute(_OPEN, {"keys": chunk})
        for row in rows:
            alarm = PlainAlarm(*row)
            found[alarm.reduction_key].append(alarm)
    return found


def insert_alarms(conn: Connection, alarms: Sequence[PlainAlarm]) -> None:
    """Insert new alarms in one statement; each gets its id, in order."""
    rows = [_inserted_values(alarm) for alarm in alarms]
    ids = insert_numbered_rows(conn, AlarmRow, _INSERT, rows)
    for alarm, row_id in zip(alarms, ids, strict=True):
        alarm.id = row_id


def update_alarms(conn: Connection, alarms: Sequence[PlainAlarm]) -> None:
    """Write the state (`STATE_COLUMNS`) of existing alarms back, in one executemany of the
    driver's."""
    _UPDATE_ROWS.executemany(conn, [_update_values(a) for a in alarms])


def children_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[int]]:
    """The ids of the alarms correlated under each of `ids` (those that have any)."""
    if not ids:
        return {}
    if conn.dialect.name != "sqlite":
        return by_parent(conn.execute(CHILDREN, {"ids": list(ids)}))
    found: dict[int, list[int]] = {}
    for start in range(0, len(ids), IN_CHUNK):  # SQLite's bound-parameter limit
        for parent, children in by_parent(
            _CHILDREN_ON_SQLITE.rows(conn, ids[start : start + IN_CHUNK])
        ).items():
            found.setdefault(parent, []).extend(children)
    return found


def by_parent(rows: Iterable[Any]) -> dict[int, list[int]]:
    """(parent, child) rows (`CHILDREN`) grouped by parent."""
    found: dict[int, list[int]] = {}
    for parent, child in rows:
        if parent is not None:
            found.setdefault(parent, []).append(child)
    return found


# A row's values read with one attrgetter each (C), not a getattr per column: a storm batch
# inserts and updates hundreds of alarms.
_INSERTED = tuple(f.name for f in fields(PlainAlarm) if f.name != "id")
_inserted_values = attrgetter(*_INSERTED)
_UPDATE_KEYS = ("row_id", *(f"new_{name}" for name in STATE_COLUMNS))
_update_values = attrgetter("id", *STATE_COLUMNS)
# The storm's bulk writes as the driver's executemany of tuple rows (oss.store.driver_rows).
_INSERT = DriverStatement(insert(_TABLE), ("id", *_INSERTED), _TABLE)
_UPDATE_ROWS = DriverStatement(_UPDATE, _UPDATE_KEYS, _TABLE)

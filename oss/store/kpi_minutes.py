"""Writing minute roll-ups (`kpi_minutes`): one upsert per row that merges with what is there.

Two writers of one minute (a flush at shutdown and after; in a cluster the old and the new
owner of a device just after it moved) must add up, never collide on the primary key: the
database merges them in the statement (INSERT ... ON CONFLICT DO UPDATE), where a read then an
insert would race.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, func
from sqlalchemy.dialects import postgresql, sqlite

from oss.store.tables import KpiMinuteRow

KEY = ("object_type", "object", "metric", "minute")


def add_minutes(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Add each roll-up (`object_type`, `object`, `metric`, `minute`, `count`, `sum`, `min`,
    `max`, `last`) to its minute's row, creating it if there is none, in one executemany."""
    if not rows:
        return
    table = cast(Table, KpiMinuteRow.__table__)
    statement: Any
    smaller: Any
    larger: Any
    if conn.dialect.name == "postgresql":
        statement, smaller, larger = postgresql.insert(table), func.least, func.greatest
    else:  # SQLite's min and max of two arguments are scalar functions
        statement, smaller, larger = sqlite.insert(table), func.min, func.max
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY),
        set_={
            "count": table.c.count + new["count"],
            "sum": table.c.sum + new["sum"],
            "min": smaller(table.c.min, new["min"]),
            "max": larger(table.c.max, new["max"]),
            "last": new["last"],
        },
    )
    conn.execute(statement, list(rows))

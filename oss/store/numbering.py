"""Id numbering of new rows, in one place: bulk inserts that return the new rows' ids in the
order of the rows given, and the ids the ORM's new rows get on SQLite."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select

from oss.store.base import Base
from oss.store.driver_rows import DriverStatement


def reserve_ids(conn: Connection, model: type[Base], count: int) -> range | None:
    """The ids the next `count` rows of `model`'s table get, numbered in the connection's
    transaction; None where the database numbers them itself and returns them in order
    (PostgreSQL's sequence)."""
    # SQLite cannot promise the order of a multi-row RETURNING. The caller's transaction holds
    # the write lock from its BEGIN IMMEDIATE (Database.transaction, Database.write), so the
    # rows are numbered here as SQLite would (largest id + 1; the tables have no AUTOINCREMENT).
    if conn.dialect.name != "sqlite":
        return None
    top = int(conn.scalar(_largest_id(cast(Table, model.__table__))) or 0)
    return range(top + 1, top + 1 + count)


def insert_numbered(
    conn: Connection, model: type[Base], rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert `rows` into the table of `model` (integer primary key `id`) in one statement,
    in the connection's transaction; their ids, in order."""
    table = cast(Table, model.__table__)
    if not rows:
        return []
    ids = reserve_ids(conn, model, len(rows))
    if ids is not None:
        conn.execute(insert(table), [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
        return list(ids)
    result = conn.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)
    )
    return list(result.scalars().all())


def insert_numbered_rows(
    conn: Connection, model: type[Base], statement: DriverStatement, rows: Sequence[tuple[Any, ...]]
) -> list[int]:
    """`insert_numbered` for rows as tuples: `statement` inserts `model`'s columns named by its
    `names`, `id` first; each row holds the values of the others. On SQLite the rows go through
    the driver's executemany with the ids numbered here; elsewhere through `insert_numbered`
    (the database numbers them and returns the ids in order)."""
    if not rows:
        return []
    ids = reserve_ids(conn, model, len(rows))
    if ids is None:
        names = statement.names[1:]
        return insert_numbered(conn, model, [dict(zip(names, r, strict=True)) for r in rows])
    statement.executemany(conn, [(i, *r) for i, r in zip(ids, rows, strict=True)])
    return list(ids)


@functools.cache
def _largest_id(table: Table) -> Any:
    return select(func.max(table.c.id))  # built once per table

"""Rows written through the database driver's own `executemany`: a Core statement compiled once
per dialect, its rows given as plain tuples and converted to the driver's form by the columns'
own bind processors (so the stored values are those the ORM or a Core execute would store).

SQLAlchemy's executemany builds a parameter dictionary per row and processes it generically
(about 25 us per row of a storm batch); here a row costs its few type conversions. The storm
path's bulk writes (`oss.store.alarm_rows`, `oss.store.outbox`) use it; the statement and the
order of its values stay readable Core.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Boolean, Connection, Select, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from oss.store.base import UtcDateTime

Row = tuple[Any, ...]
_Convert = Callable[[Row], Row]


class DriverStatement:
    """`statement` (Core, its bind parameters named `names`) for `executemany` with tuple rows
    holding the values of `names` in that order. `table` gives each name's column type (a name
    `new_x` or `b_x` is column `x`'s value); the statement is compiled once per dialect."""

    def __init__(self, statement: ClauseElement, names: Sequence[str], table: Table) -> None:
        self.statement = statement
        self.names = tuple(names)
        self.table = table
        self._compiled: dict[tuple[str, str], tuple[str, _Convert]] = {}

    def executemany(self, conn: Connection, rows: Sequence[Row]) -> None:
        """Run the statement once per row, in the connection's transaction."""
        if not rows:
            return
        sql, convert = self._for(conn.dialect)
        conn.exec_driver_sql(sql, [convert(row) for row in rows])

    def _for(self, dialect: Dialect) -> tuple[str, _Convert]:
        key = (dialect.name, dialect.driver)  # a driver has its paramstyle (asyncpg, psycopg)
        known = self._compiled.get(key)
        if known is None:
            known = self._compiled[key] = self._compile(dialect)
        return known

    def _compile(self, dialect: Dialect) -> tuple[str, _Convert]:
        compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect))
        processors = [self._processor(dialect, name) for name in self.names]
        if not compiled.positional:
            names = self.names

            def as_mapping(row: Row) -> Any:
                return dict(zip(names, _processed(row, processors), strict=True))

            return compiled.string, as_mapping
        order = list(compiled.positiontup or ())
        if sorted(order) != sorted(self.names):  # a literal bound by itself, or a repeat
            raise RuntimeError(f"statement binds {order}, not {list(self.names)}")
        pick = itemgetter(*(self.names.index(name) for name in order))
        if not any(processors) and order == list(self.names):
            return compiled.string, _same
        if len(order) == 1:
            return compiled.string, lambda row: (pick(_processed(row, processors)),)
        return compiled.string, lambda row: pick(_processed(row, processors))

    def _processor(self, dialect: Dialect, name: str) -> Callable[[Any], Any] | None:
        column = name
        for prefix in ("new_", "b_", "row_"):
            if name.startswith(prefix) and name[len(prefix) :] in self.table.c:
                column = name[len(prefix) :]
                break
        if column not in self.table.c:
            raise RuntimeError(f"{name!r} names no column of {self.table.name}")
        column_type = self.table.c[column].type
        if dialect.name == "sqlite":
            # SQLite's processors, done cheaper (~12 us per datetime, ~16 us per JSON value
            # there): the same text for datetimes; JSON without the blanks (the same value).
            if isinstance(column_type, UtcDateTime):
                return _sqlite_utc_datetime
            if isinstance(column_type, JSON):
                return _json_text
            if isinstance(column_type, Boolean):
                return None  # sqlite3 stores a bool as the integer SQLAlchemy would
        process: Callable[[Any], Any] | None = column_type.dialect_impl(dialect).bind_processor(
            dialect
        )
        return process


def _sqlite_utc_datetime(value: datetime | None) -> str | None:
    """A `UtcDateTime` as SQLAlchemy stores it in SQLite: UTC, "YYYY-MM-DD HH:MM:SS.ffffff"."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _json_text(value: Any) -> str:
    """A JSON column's text (None is JSON null, as SQLAlchemy's JSON type stores it)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _same(row: Row) -> Row:
    return row


def _processed(row: Row, processors: Sequence[Callable[[Any], Any] | None]) -> list[Any]:
    return [value if p is None else p(value) for value, p in zip(row, processors, strict=True)]


class SqliteSelect:
    """A Core select of table columns with one expanding IN parameter, run on SQLite through
    the driver, each value converted as SQLAlchemy's result processors would convert it (UTC
    datetimes, JSON, booleans), at a fraction of their cost (a storm batch reads hundreds of
    open alarms). On another dialect the caller executes the statement itself."""

    def __init__(self, statement: Select[*tuple[Any, ...]], parameter: str) -> None:
        self.statement = statement
        self._marker = f"__[POSTCOMPILE_{parameter}]"
        self._sql: str | None = None
        converters = [_sqlite_result(column.type) for column in statement.selected_columns]
        self._convert = _row_converter(converters)

    def rows(self, conn: Connection, values: Sequence[Any]) -> list[Row]:
        """The rows for `values` (at most SQLite's bound-parameter limit), converted."""
        if self._sql is None:
            self._sql = str(self.statement.compile(dialect=conn.dialect))
            if self._marker not in self._sql:
                raise RuntimeError(f"no {self._marker} in {self._sql}")
        sql = self._sql.replace(self._marker, ", ".join("?" * len(values)))
        cursor = conn.exec_driver_sql(sql, tuple(values))
        convert = self._convert
        return [convert(row) for row in cursor.fetchall()]


def _sqlite_result(column_type: Any) -> Callable[[Any], Any] | None:
    if isinstance(column_type, UtcDateTime):
        return _sqlite_read_datetime
    if isinstance(column_type, JSON):
        return _read_json
    if isinstance(column_type, Boolean):
        return _read_bool
    return None


def _row_converter(converters: Sequence[Callable[[Any], Any] | None]) -> _Convert:
    pairs = [(i, c) for i, c in enumerate(converters) if c is not None]

    def convert(row: Row) -> Row:
        values = list(row)
        for i, c in pairs:
            values[i] = c(values[i])
        return tuple(values)

    return convert


def _sqlite_read_datetime(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _read_json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def _read_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)

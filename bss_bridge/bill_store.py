"""The bill run's storage: every row a run reads or writes (bills, bill lines, usage records,
products), in Core statements behind named functions, so that `bss_bridge.billing` reads as
the rating and posting it is. A batch's functions share the caller's session: one database
transaction per batch of accounts.

The hot path lives here, not in the domain code: the statements a run executes once per row
are compiled once per call for the session's dialect and executed with parameters already in
the driver's form (see "writing many rows straight to the driver" below), and a run keeps the
heap that existed before it out of the collector's full passes (`older_objects_frozen`).

Accounts of a batch are named by their id range (`first`, `last`): a batch is every account
from its first to its last id, read in id order (see `_in_range`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any, Protocol, cast

import orjson
from sqlalchemy import (
    Column,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ColumnElement, ValuesBase

from bss_bridge import bill_store_pg
from bss_bridge.rating import Period
from bss_bridge.tables import BillingAccountRow, BillLineRow, BillRow, ProductRow, UsageRow
from oss.errors import Conflict
from oss.store.base import DecimalText, UtcDateTime

_USAGE = cast(Table, UsageRow.__table__)
_BILLS = cast(Table, BillRow.__table__)
# Core (not ORM) inserts: executemany straight to the driver, no per-row ORM bookkeeping.
_LINES = cast(Table, BillLineRow.__table__)


@dataclass(frozen=True)
class StoredBill:
    """What the run needs of a bill row (read with Core: no ORM objects per account)."""

    id: int
    account_id: str
    period_start: datetime
    state: str
    currency: str
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    bill_no: str | None


@dataclass(frozen=True)
class NewBill:
    """A bill to create: an account's zero-total draft for its period."""

    account_id: str
    period: Period
    state: str
    currency: str
    zero: Decimal


@dataclass(frozen=True)
class UsageClaim:
    """Mark a product's unbilled, unrejected usage records of one type in a period as billed
    to a bill."""

    bill_id: int
    product_id: str
    usage_type: str
    period: Period


class LineToWrite(Protocol):
    """What is written of a computed bill line (`bss_bridge.billing.Line`)."""

    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def product_id(self) -> str | None: ...
    @property
    def description(self) -> str: ...
    @property
    def amount(self) -> Decimal: ...
    @property
    def quantity(self) -> Decimal | None: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def unit_price(self) -> Decimal | None: ...
    @property
    def tax_rate(self) -> Decimal | None: ...
    @property
    def evidence(self) -> Any: ...


# ------------------------------------------------------------------------------ reading


async def accounts(
    s: AsyncSession, *, only: str | None, after: str, limit: int
) -> Sequence[Row[str, str, int]]:
    """(id, currency, billing day) of the account `only`, or else of the next `limit` accounts
    after the id `after`, in id order."""
    query = select(
        BillingAccountRow.id, BillingAccountRow.currency, BillingAccountRow.billing_day
    ).order_by(BillingAccountRow.id)
    if only is not None:
        query = query.where(BillingAccountRow.id == only)
    else:
        query = query.where(BillingAccountRow.id > after).limit(limit)
    return (await s.execute(query)).all()


async def bills_of(s: AsyncSession, first: str, last: str, *, lock: bool) -> list[StoredBill]:
    """Every bill of the accounts `first`..`last`. `lock`: FOR UPDATE (on PostgreSQL), against
    a concurrent issue."""
    query = _BILL_COLUMNS.where(_in_range(_BILLS.c.account_id, first, last))
    if lock:
        query = query.with_for_update()
    return [StoredBill(*row) for row in await _plain_rows(s, query)]


async def products_of(
    s: AsyncSession, first: str, last: str, earliest: datetime, latest: datetime
) -> list[tuple[str, str, str, str | None, str, datetime | None, datetime | None]]:
    """The activated products of the accounts `first`..`last` active at some time in
    [earliest, latest), by account, start and id: (id, account id, offering id, service
    name, state, start, end)."""
    query = (
        select(
            ProductRow.id,
            ProductRow.account_id,
            ProductRow.offering_id,
            ProductRow.service_name,
            ProductRow.state,
            ProductRow.start_at,
            ProductRow.end_at,
        )
        .where(
            _in_range(ProductRow.account_id, first, last),
            ProductRow.start_at.is_not(None),
            ProductRow.start_at < latest,
            or_(ProductRow.end_at.is_(None), ProductRow.end_at > earliest),
        )
        .order_by(ProductRow.account_id, ProductRow.start_at, ProductRow.id)
    )
    return await _plain_rows(s, query)


async def unbilled_usage_before(
    s: AsyncSession, first: str, last: str, before: datetime, *, rejected: str
) -> list[tuple[int, str, datetime, str]]:
    """The unbilled records of the accounts `first`..`last` that started before `before` and
    were not rejected: (id, product id, start, usage type)."""
    query = select(UsageRow.id, UsageRow.product_id, UsageRow.start_at, UsageRow.usage_type).where(
        _in_range(UsageRow.account_id, first, last),
        # `bill_id + 0`, not `bill_id`: the same test, but no index on it. SQLite (no
        # planner statistics) would otherwise walk ix_usage_records_bill_id for NULL, i.e.
        # every unbilled record of every account, in each batch: quadratic in a first run.
        (UsageRow.bill_id + 0).is_(None),
        UsageRow.state != rejected,
        UsageRow.start_at < before,
    )
    return await _plain_rows(s, query)


async def usage_billed_to(
    s: AsyncSession, bill_ids: Sequence[int]
) -> list[tuple[int | None, str, datetime, Decimal, str]]:
    """The usage records billed to these bills: (bill id, product id, start, quantity, unit)."""
    out: list[tuple[int | None, str, datetime, Decimal, str]] = []
    for i in range(0, len(bill_ids), 500):
        query = select(
            UsageRow.bill_id,
            UsageRow.product_id,
            UsageRow.start_at,
            UsageRow.quantity,
            UsageRow.unit,
        ).where(UsageRow.bill_id.in_(bill_ids[i : i + 500]))
        out.extend(await _plain_rows(s, query))
    return out


async def quantity_billed_elsewhere(
    s: AsyncSession, product_id: str, period: Period, other_than: int
) -> Decimal:
    """The quantity of a product's records in `period` billed to a bill other than
    `other_than`."""
    already = await s.scalars(
        select(UsageRow.quantity).where(
            UsageRow.product_id == product_id,
            UsageRow.bill_id.is_not(None),
            UsageRow.bill_id != other_than,
            UsageRow.start_at >= period.start,
            UsageRow.start_at < period.end,
        )
    )
    return sum(already.all(), Decimal(0))


def _in_range(column: Any, first: str, last: str) -> ColumnElement[bool]:
    """`column` (an account id) is one of a batch's: the accounts were read in id order, so
    they are every account from the first to the last. A range, not an IN list of a thousand
    ids: the same rows, without SQLAlchemy expanding and binding each id. (An account created
    since the batch was read may fall in the range; the callers skip what is not theirs.)"""
    return cast(ColumnElement[bool], column.between(first, last))


_BILL_COLUMNS = select(*(_BILLS.c[name] for name in StoredBill.__dataclass_fields__))


# --- reading many rows straight from the driver -------------------------------------------
#
# A run reads some eight rows per account (bills, products, usage). Through SQLAlchemy's
# result every value goes through its type's result processor (UtcDateTime, DecimalText: a
# Python call per value) and every row through the result's machinery: a fifth of the run's
# CPU at 20k accounts. So the reads are compiled by SQLAlchemy for the session's dialect (the
# same SQL and parameters it would send), executed as the driver's own statement, and their
# columns converted a column at a time, to the values SQLAlchemy's processors give.


async def _plain_rows(s: AsyncSession, query: Select[*tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of `query` as plain tuples, each value as its column's type reads it."""
    conn = await s.connection()
    dialect = conn.dialect
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    # An IN list's expanded values (`name_1`, `name_2`, ...) have no bind of their own: they
    # are ids, which no driver converts.
    values = {
        name: _bound(dialect, compiled.binds[name], value) if name in compiled.binds else value
        for name, value in params.items()
    }
    order = compiled.positiontup
    args: Any = values if order is None else tuple(values[name] for name in order)
    rows: list[Any] = list((await conn.exec_driver_sql(compiled.string, args)).all())
    readers = [_reader(dialect, column.type) for column in query.selected_columns]
    if not rows or not any(readers):
        return rows
    columns = [
        list(values) if read is None else list(map(read, values))
        for read, values in zip(readers, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*columns, strict=True))


def _reader(dialect: Dialect, column_type: Any) -> Callable[[Any], Any] | None:
    """What turns the driver's value of a column of `column_type` into the column's value;
    None: the driver's value is it. Only the types the run reads: anything else is an
    error here, not a wrong value later."""
    if isinstance(column_type, UtcDateTime):
        return _sqlite_utc if dialect.name == "sqlite" else _aware_utc
    if isinstance(column_type, DecimalText):
        return _decimal
    if isinstance(column_type, (String, Integer)):
        return None
    raise TypeError(f"no plain reader for {column_type!r}")


@lru_cache(maxsize=65_536)
def _sqlite_utc(value: str | None) -> datetime | None:
    """SQLite's DATETIME text (UTC, no zone) as UtcDateTime reads it; cached: a batch reads
    the same period bounds and product starts many times."""
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# ------------------------------------------------------------------------------ writing


async def insert_bills(s: AsyncSession, bills: Sequence[NewBill], now: datetime) -> None:
    """Create these bills (dated `now`). Another run creating one of them at the same time is
    a Conflict."""
    dialect = (await s.connection()).dialect
    moment = _bound(dialect, _BILLS.c.bill_date, now)
    periods: dict[Period, tuple[Any, Any]] = {}
    rows = []
    for b in bills:
        bound = periods.get(b.period)
        if bound is None:
            bound = periods[b.period] = (
                _bound(dialect, _BILLS.c.period_start, b.period.start),
                _bound(dialect, _BILLS.c.period_end, b.period.end),
            )
        zero = str(b.zero)
        rows.append((b.account_id, *bound, b.state, b.currency, zero, zero, zero, moment, moment))
    conn = await s.connection()
    try:
        if conn.dialect.driver == bill_store_pg.DRIVER:
            await bill_store_pg.copy_rows(conn, _BILLS.name, _BILL_COLUMNS_NEW, rows)
        else:
            await _executemany(s, _INSERT_BILLS, rows)
    except IntegrityError as exc:
        raise Conflict("another bill run created these bills at the same time; run again") from exc


async def delete_lines(s: AsyncSession, bill_ids: Sequence[int]) -> None:
    await s.execute(delete(BillLineRow).where(BillLineRow.bill_id.in_(bill_ids)))


async def claim_usage(
    s: AsyncSession, claims: Iterable[UsageClaim], *, billed: str, rejected: str
) -> None:
    """Mark each claim's records `billed` to its bill (records in state `rejected` stay)."""
    dialect = (await s.connection()).dialect
    bounds: dict[Period, tuple[Any, Any]] = {}  # a batch has one period per billing day
    rows = []
    for c in claims:
        bound = bounds.get(c.period)
        if bound is None:
            bound = bounds[c.period] = (
                _bound(dialect, _USAGE.c.start_at, c.period.start),
                _bound(dialect, _USAGE.c.start_at, c.period.end),
            )
        rows.append((c.bill_id, billed, c.product_id, rejected, c.usage_type, *bound))
    if not rows:
        return
    conn = await s.connection()
    if conn.dialect.driver == bill_store_pg.DRIVER:
        bills, _, products, _, types, starts, ends = map(list, zip(*rows, strict=True))
        arrays = (bills, products, types, starts, ends)
        await bill_store_pg.execute(conn, bill_store_pg.CLAIM_USAGE, *arrays, billed, rejected)
    else:
        await _executemany(s, _CLAIM_USAGE, rows)


async def claim_records(s: AsyncSession, bill_of_record: Mapping[int, int], *, billed: str) -> None:
    """Mark these records (by id: the bill each goes to) `billed`, those still unbilled."""
    if bill_of_record:
        await s.execute(
            update(_USAGE)
            .where(_USAGE.c.id == bindparam("r_id"), _USAGE.c.bill_id.is_(None))
            .values(bill_id=bindparam("r_bill"), state=billed),
            [{"r_id": record, "r_bill": bill} for record, bill in bill_of_record.items()],
        )


async def insert_lines(
    s: AsyncSession, lines: Iterable[tuple[int, Iterable[LineToWrite]]], now: datetime
) -> None:
    """Write each bill's lines (bill id, its lines), created `now`."""
    conn = await s.connection()
    rows = _LineRows(conn.dialect, now)
    for bill_id, of_bill in lines:
        rows.add(bill_id, of_bill)
    if not rows.rows:
        return
    if conn.dialect.driver == bill_store_pg.DRIVER:
        await bill_store_pg.copy_rows(conn, _LINES.name, _LINE_COLUMNS, rows.rows)
    else:
        await _executemany(s, _INSERT_LINES, rows.rows)


async def update_totals(
    s: AsyncSession,
    totals: Mapping[int, tuple[Decimal, Decimal, Decimal]],
    now: datetime,
    *,
    state: str,
) -> None:
    """Set each bill's (subtotal, tax, total), dated `now`, if it is still in `state`."""
    if not totals:
        return
    conn = await s.connection()
    moment = _bound(conn.dialect, _BILLS.c.updated_at, now)
    if conn.dialect.driver == bill_store_pg.DRIVER:
        ids, subtotals, taxes, sums = [], [], [], []
        for bill_id, (subtotal, tax, total) in totals.items():
            ids.append(bill_id)
            subtotals.append(str(subtotal))
            taxes.append(str(tax))
            sums.append(str(total))
        sql = bill_store_pg.UPDATE_TOTALS
        await bill_store_pg.execute(conn, sql, ids, subtotals, taxes, sums, moment, state)
        return
    rows = [
        (str(subtotal), str(tax), str(total), moment, moment, bill_id, state)
        for bill_id, (subtotal, tax, total) in totals.items()
    ]
    await _executemany(s, _UPDATE_TOTALS, rows)


# --- writing many rows straight to the driver ---------------------------------------------
#
# A bill run writes some four lines per account. Through SQLAlchemy's executemany every value
# of every row goes through its type's bind processing (DecimalText, JSON, UtcDateTime) and
# every row through the compiler's parameter assembly: most of the run's time at 100k
# accounts. So the hot statements are compiled by SQLAlchemy for the session's own dialect
# (the same SQL, bind casts and placeholders it would send) and executed with parameters
# already in the driver's form: decimals as their canonical text (what DecimalText stores),
# evidence as JSON text (`evidence_json`: the value the column's bind processor would give),
# and the batch's few distinct datetimes converted once each by the column's own processor (a
# datetime for asyncpg, the dialect's text for SQLite), so both backends get the same values.


def _insert(table: Table, names: Sequence[str]) -> ValuesBase:
    return insert(table).values({name: bindparam(name) for name in names})


_LINE_COLUMNS = (
    "bill_id", "key", "kind", "product_id", "description", "quantity", "unit", "unit_price",
    "amount", "tax_rate", "evidence", "created_at",
)  # fmt: skip
_INSERT_LINES = (_insert(_LINES, _LINE_COLUMNS), _LINE_COLUMNS)
_UPDATE_TOTALS = (
    update(_BILLS)
    .where(_BILLS.c.id == bindparam("id"), _BILLS.c.state == bindparam("draft"))
    .values(
        subtotal=bindparam("subtotal"),
        tax=bindparam("tax"),
        total=bindparam("total"),
        bill_date=bindparam("bill_date"),
        updated_at=bindparam("updated_at"),
    ),
    ("subtotal", "tax", "total", "bill_date", "updated_at", "id", "draft"),
)
_BILL_COLUMNS_NEW = (
    "account_id", "period_start", "period_end", "state", "currency", "subtotal", "tax",
    "total", "bill_date", "updated_at",
)  # fmt: skip
_INSERT_BILLS = (_insert(_BILLS, _BILL_COLUMNS_NEW), _BILL_COLUMNS_NEW)
_CLAIM_USAGE = (
    update(_USAGE)
    .where(
        _USAGE.c.product_id == bindparam("product"),
        _USAGE.c.bill_id.is_(None),
        _USAGE.c.state != bindparam("rejected"),
        _USAGE.c.usage_type == bindparam("usage_type"),
        _USAGE.c.start_at >= bindparam("start"),
        _USAGE.c.start_at < bindparam("end"),
    )
    .values(bill_id=bindparam("bill"), state=bindparam("billed")),
    ("bill", "billed", "product", "rejected", "usage_type", "start", "end"),
)


async def _executemany(
    s: AsyncSession, statement: tuple[Any, Sequence[str]], rows: list[tuple[Any, ...]]
) -> None:
    """Execute `statement` (a Core statement and the names of its bind parameters) once per
    row, in the session's transaction. Each row holds the values of `names`, in that order,
    already in the driver's form (see above)."""
    query, names = statement
    conn = await s.connection()
    compiled = query.compile(dialect=conn.dialect)
    if not compiled.positional:
        await conn.exec_driver_sql(
            compiled.string, [dict(zip(names, r, strict=True)) for r in rows]
        )
        return
    order = list(compiled.positiontup or ())
    if sorted(order) != sorted(names):  # a literal SQLAlchemy bound by itself, or a repeat
        raise RuntimeError(f"statement binds {order}, not {list(names)}")
    if order != list(names):
        pick = itemgetter(*(names.index(name) for name in order))
        rows = [pick(r) for r in rows]
    await conn.exec_driver_sql(compiled.string, rows)


def _bound(dialect: Dialect, column: Column[Any] | ColumnElement[Any], value: Any) -> Any:
    """`value` in the driver's form, as the column's type would bind it on this dialect."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return value if process is None else process(value)


class _LineRows:
    """The bill_lines rows of one batch, in the driver's form."""

    def __init__(self, dialect: Dialect, now: datetime) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self._created_at = _bound(dialect, _LINES.c.created_at, now)
        # Lines may share one evidence object (rating caches the charges of equal proration):
        # each is serialised once. The object is kept with its text so its id stays its own.
        self._serialised: dict[int, tuple[Any, Any]] = {}

    def add(self, bill_id: int, lines: Iterable[LineToWrite]) -> None:
        created_at, append = self._created_at, self.rows.append
        for line in lines:
            quantity, unit_price, rate = line.quantity, line.unit_price, line.tax_rate
            append(
                (
                    bill_id, line.key, line.kind, line.product_id, line.description,
                    None if quantity is None else str(quantity), line.unit,
                    None if unit_price is None else str(unit_price), str(line.amount),
                    None if rate is None else str(rate), self._evidence(line.evidence),
                    created_at,
                )
            )  # fmt: skip

    def _evidence(self, evidence: Any) -> Any:
        known = self._serialised.get(id(evidence))
        if known is None:
            known = self._serialised[id(evidence)] = (evidence, evidence_json(evidence))
        return known[1]


def evidence_json(evidence: Any) -> str:
    """A line's evidence as the text its JSON column stores, on both backends (the column's
    own bind processor is `json.dumps`; orjson writes the same value, without the blanks
    after `:` and `,`, in a tenth of the time: some 50k documents per 10k accounts). None is
    JSON `null`, as the column stores it."""
    return orjson.dumps(evidence).decode()


# ------------------------------------------------------------------------------ the heap

_freezes = 0  # bill runs (tasks of this process) inside older_objects_frozen()


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """Keep the objects that existed before the run out of the collector's full passes while
    it runs (gc.freeze), and hand them back after (gc.unfreeze). Garbage collection stays on.

    Why: a run allocates and drops millions of small objects; the survivors of each batch push
    the collector into a full pass every few batches, and a full pass walks the whole heap,
    the daemon's included (measured: ~80 ms CPU per pass over a 110k-object heap, three
    passes per 10k accounts: ~7 % of the run's time, ~1 % frozen). Frozen, the
    old heap is skipped; the run's own garbage is collected as usual. Cycles that were garbage
    already when the run started wait for its end. Nested or concurrent runs unfreeze when the
    last one ends."""
    global _freezes
    if _freezes == 0:
        gc.freeze()
    _freezes += 1
    try:
        yield
    finally:
        _freezes -= 1
        if _freezes == 0:
            gc.unfreeze()

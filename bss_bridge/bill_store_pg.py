"""The bill run's many-row writes on PostgreSQL (asyncpg): one statement per batch.

asyncpg's `executemany` pipelines, yet each row is still a statement the server plans and
runs: measured at 20k accounts, the lines' INSERT, the totals' UPDATE and the usage claims'
UPDATE cost 12, 8 and 4 s per run (server time the bill run waits for), far over the reads.
Here the bills and the lines go in with one `COPY` each per batch and the two updates are
one `UPDATE ... FROM unnest(arrays)` each: the same rows and values, the same conditions, in
the batch's transaction (a COPY's unique violation raises SQLAlchemy's IntegrityError, as the
INSERT did). `bss_bridge.bill_store` calls these when the session's driver is asyncpg; every
other driver (SQLite) keeps its executemany. Values come in the driver's form (see there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

DRIVER = "asyncpg"

# Each claim names one product of one draft (a product is one account's): no record matches
# two claims, so one UPDATE over them all marks the rows the per-claim UPDATEs would. Each
# claim finds its records through ix_usage_records_product_period (`OFFSET 0` keeps the
# planner from flattening the lateral subquery into a hash join over every usage record,
# a sequential scan of the whole table per batch: quadratic over a run).
CLAIM_USAGE = """
UPDATE usage_records AS u SET bill_id = m.bill_id, state = $6
FROM (
  SELECT c.bill_id, r.id
  FROM unnest($1::integer[], $2::varchar[], $3::varchar[], $4::timestamptz[], $5::timestamptz[])
       AS c(bill_id, product_id, usage_type, period_start, period_end)
  CROSS JOIN LATERAL (
    SELECT id FROM usage_records
    WHERE product_id = c.product_id AND start_at >= c.period_start AND start_at < c.period_end
      AND usage_type = c.usage_type
    OFFSET 0
  ) AS r
) AS m
WHERE u.id = m.id AND u.bill_id IS NULL AND u.state <> $7
"""

UPDATE_TOTALS = """
UPDATE customer_bills AS b
SET subtotal = t.subtotal, tax = t.tax, total = t.total, bill_date = $5, updated_at = $5
FROM unnest($1::integer[], $2::varchar[], $3::varchar[], $4::varchar[])
     AS t(id, subtotal, tax, total)
WHERE b.id = t.id AND b.state = $6
"""


async def execute(conn: AsyncConnection, sql: str, *params: Any) -> None:
    """One statement with positional parameters ($1...), lists for its arrays."""
    await conn.exec_driver_sql(sql, params)


async def copy_rows(
    conn: AsyncConnection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """COPY `rows` (values of `columns`, in order) into `table`, in the connection's
    transaction."""
    # SQLAlchemy's asyncpg adapter sends BEGIN with its first statement: one has gone before
    # COPY, which is asyncpg's own call and would otherwise run outside the transaction.
    await conn.exec_driver_sql("SELECT 1")
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out connection has its driver's
    try:
        await driver.copy_records_to_table(table, records=rows, columns=list(columns))
    except Exception as exc:
        if str(getattr(exc, "sqlstate", "")).startswith(_INTEGRITY_VIOLATION):
            # What SQLAlchemy raises for the same violation by an INSERT: callers catch that.
            raise IntegrityError(f"COPY {table}", None, exc) from exc
        raise


_INTEGRITY_VIOLATION = "23"  # SQLSTATE class 23: unique, foreign key, not null, check

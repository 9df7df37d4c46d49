"""A bill run killed with SIGKILL in the middle of a batch (written, not committed), on both
backends: nothing of that batch stays (nor its audit entry), and the re-run bills every product
and usage record exactly once.

The child injects the run's `before_commit` hook: after 10 accounts are committed it writes the
next batch, then creates a marker file and sleeps before committing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bss_bridge.tables import BillLineRow, BillRow, UsageRow
from oss.store import Database
from oss.store.tables import AuditRow
from tests.integration.bss.bill_fixtures import (
    SLICE,
    add_account,
    add_outage,
    add_product,
    add_usage,
    at,
    bill_run,
)

REPO = Path(__file__).resolve().parents[3]
ACCOUNTS = 30
COMMITTED_BEFORE_KILL = 10
BATCH = 5

CHILD = """
import asyncio, pathlib, sys
from functools import partial
from bss_bridge.billing import BillRun
from bss_bridge.catalog import Catalog
from bss_bridge.sla import compliance_many
from oss.bss_ports import records_for
from oss.store import Database

async def stall(done: int) -> None:
    if done >= int(sys.argv[3]):
        pathlib.Path(sys.argv[4]).touch()
        await asyncio.sleep(3600)

async def main(url: str) -> None:
    db = Database(url)
    try:
        records = records_for(db)
        run = BillRun(
            db, Catalog.load(), sla=partial(compliance_many, records=records),
            alarms=records.alarms,
            batch_size=int(sys.argv[2]),
            before_commit=stall,
        )
        await run.run("2026-11")
    finally:
        await db.close()

asyncio.run(main(sys.argv[1]))
"""


async def seed(db: Database) -> None:
    for n in range(ACCOUNTS):
        account = f"acct-{n:03d}"
        await add_account(db, account)
        await add_product(db, f"p-{n:03d}", account, SLICE, at(1, month=10), service=f"s-{n}")
        await add_usage(db, f"u-{n}-a", f"p-{n:03d}", account, "800", at(5))
        await add_usage(db, f"u-{n}-b", f"p-{n:03d}", account, "400", at(6))
        if n % 3 == 0:
            await add_outage(db, f"s-{n}", at(7, 1), at(7, 4))


def kill_mid_batch(url: str, marker: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(BATCH), str(COMMITTED_BEFORE_KILL), str(marker)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if child.poll() is not None:
                _, err = child.communicate()
                pytest.fail(f"the bill run ended before the seam: {err.decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the bill run never reached the seam")
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()


async def run_entries(db: Database) -> list[AuditRow]:
    async with db.sessions() as s:
        query = select(AuditRow).where(AuditRow.object_type == "billRun")
        return list((await s.scalars(query)).all())


async def scalar(db: Database, query: object) -> object:
    async with db.sessions() as s:
        return await s.scalar(query)  # type: ignore[call-overload]


async def test_a_killed_bill_run_leaves_no_half_batch_and_reruns_exactly_once(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    await seed(db)
    kill_mid_batch(database_url, tmp_path / "stalled")

    # Only the committed batches are there; the killed one rolled back completely.
    assert await scalar(db, select(func.count()).select_from(BillRow)) == COMMITTED_BEFORE_KILL
    billed = select(func.count()).select_from(UsageRow).where(UsageRow.bill_id.is_not(None))
    assert await scalar(db, billed) == 2 * COMMITTED_BEFORE_KILL
    orphans = (
        select(func.count())
        .select_from(BillLineRow)
        .where(BillLineRow.bill_id.not_in(select(BillRow.id)))
    )
    assert await scalar(db, orphans) == 0
    # each batch's audit entry is in the batch's transaction: the killed batch has none
    audited = await run_entries(db)
    assert len(audited) == COMMITTED_BEFORE_KILL // BATCH
    assert sum(len(e.after["bills"]) for e in audited) == COMMITTED_BEFORE_KILL

    await bill_run(db, at(2, month=12)).run("2026-11")
    assert len(await run_entries(db)) == COMMITTED_BEFORE_KILL // BATCH + 1  # one batch of 500

    assert await scalar(db, select(func.count()).select_from(BillRow)) == ACCOUNTS
    async with db.sessions() as s:
        lines = (await s.scalars(select(BillLineRow))).all()
        usage = (await s.scalars(select(UsageRow))).all()
    for kind, expected in (("recurring", ACCOUNTS), ("usage", ACCOUNTS), ("tax", ACCOUNTS)):
        assert sum(1 for line in lines if line.kind == kind) == expected, kind
    recurring_keys = [line.key for line in lines if line.kind == "recurring"]
    assert len(set(recurring_keys)) == ACCOUNTS  # one charge per (product, period)
    assert sum(1 for line in lines if line.kind == "sla_credit") == len(range(0, ACCOUNTS, 3))
    # every usage record billed once, and the usage lines count exactly them
    assert all(u.bill_id is not None and u.state == "billed" for u in usage)
    assert sum((line.quantity or Decimal(0)) for line in lines if line.kind == "usage") == sum(
        u.quantity for u in usage
    )
    bills_of_usage = {u.product_id: u.bill_id for u in usage}
    for line in lines:
        if line.kind == "usage":
            assert line.product_id is not None
            assert bills_of_usage[line.product_id] == line.bill_id

"""A bill run holds the `bill-runs` job for its length (the `Jobs` port: in a cluster, one bill
run at a time across the instances, its writes fenced by the job's lease); one refused because
another instance runs it is a Conflict naming that instance, audited `run.refused`, and
writes no bill. Real SQLite, a fake port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bss_bridge.billing import BILL_RUNS, BillRun
from bss_bridge.catalog import Catalog
from bss_bridge.sla import compliance_many
from bss_bridge.tables import BillRow
from oss.bss_ports import records_for
from oss.errors import Conflict
from oss.store import Database
from oss.store.tables import AuditRow
from tests.bss_rows import add_account


class Jobs:
    """Records what is held; refuses while `busy_on` names another instance."""

    def __init__(self, busy_on: str | None = None) -> None:
        self.busy_on = busy_on
        self.held: list[str] = []
        self.holding = False

    def exclusive(self, job: str) -> AbstractAsyncContextManager[None]:
        @asynccontextmanager
        async def hold() -> AsyncIterator[None]:
            if self.busy_on is not None:
                raise Conflict(f"{job} is running on instance {self.busy_on!r}")
            self.held.append(job)
            self.holding = True
            try:
                yield
            finally:
                self.holding = False

        return hold()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'bills.db'}")
    await database.migrate()
    async with database.transaction() as s:
        await add_account(s)
    try:
        yield database
    finally:
        await database.close()


def bill_run(db: Database, jobs: Jobs) -> BillRun:
    records = records_for(db)
    return BillRun(
        db,
        Catalog.load(),
        sla=partial(compliance_many, records=records),
        alarms=records.alarms,
        jobs=jobs,
    )


async def count(db: Database, query: object) -> int:
    async with db.read() as s:
        return int(await s.scalar(query) or 0)  # type: ignore[call-overload]


async def test_a_bill_run_holds_the_job_while_it_runs(db: Database) -> None:
    jobs = Jobs()
    held_while_writing: list[bool] = []

    async def before_commit(done: int) -> None:
        held_while_writing.append(jobs.holding)

    run = bill_run(db, jobs)
    run.before_commit = before_commit
    summaries = await run.run("2026-11", actor="alice")
    assert jobs.held == [BILL_RUNS]
    assert held_while_writing and all(held_while_writing)
    assert not jobs.holding
    assert len(summaries) == 1


async def test_a_bill_run_running_elsewhere_is_refused_and_audited(db: Database) -> None:
    with pytest.raises(Conflict, match="bill-runs is running on instance 'b'"):
        await bill_run(db, Jobs(busy_on="b")).run("2026-11", "acme-1", actor="alice")
    assert await count(db, select(func.count()).select_from(BillRow)) == 0
    async with db.read() as s:
        (entry,) = (await s.scalars(select(AuditRow))).all()
    assert (entry.actor, entry.action, entry.object_type) == ("alice", "run.refused", "billRun")
    assert entry.object_id == "2026-11:acme-1"
    assert entry.after == {"reason": "bill-runs is running on instance 'b'"}

"""Drives the NOC feed the way the alarm manager does (oss.faults.alarms): the feed's rows
written in the alarm transaction's connection, handed over once that transaction committed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from oss.faults.noc_feed import FeedWrite, NocFeed
from oss.store.database import Database

Change = tuple[dict[str, Any], Any]  # (alarm, event), the event as the tests spell it


async def write_one_by_one(db: Database, feed: NocFeed, *changes: Change) -> None:
    """One `write_changes` call per change, all in one transaction (`Database.write`, the
    storm path's), then `committed` with each call's rows."""

    def work(conn: Connection) -> list[FeedWrite]:
        return [feed.write_changes(conn, [change]) for change in changes]

    for written in await db.write(work):
        feed.committed(written)


async def write_batch(
    db: Database, feed: NocFeed, changes: Sequence[Change], *, fail: bool = False
) -> None:
    """All the changes in one `write_changes` call and one transaction, then `committed`;
    `fail`: the transaction fails after writing them (rolled back, nothing committed)."""

    def work(conn: Connection) -> FeedWrite:
        written = feed.write_changes(conn, changes)
        if fail:
            raise RuntimeError("the alarm transaction failed after writing its rows")
        return written

    feed.committed(await db.write(work))

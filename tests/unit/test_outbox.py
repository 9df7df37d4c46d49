"""The one outbox writer (oss/store/outbox.py) on a real SQLite database: messages added in a
session are numbered in order and handed over once that session commits, all of a transaction's
together; a rollback drops them; on a synchronous connection the caller hands them over."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from oss.store.database import Database
from oss.store.outbox import Message, Outbox, OutboxMessage, count_unsent, unsent


class Taken:
    def __init__(self) -> None:
        self.batches: list[list[OutboxMessage]] = []

    def __call__(self, rows: Sequence[OutboxMessage]) -> None:
        self.batches.append(list(rows))


async def test_added_messages_are_handed_over_once_committed(migrated_db: Database) -> None:
    taken = Taken()
    outbox = Outbox(taken)
    async with migrated_db.transaction() as session:
        first = await outbox.add(session, [Message("a/1", "x", retain=True), Message("a/2", "")])
        second = await outbox.add(session, [Message("b/1", "y")])
        assert taken.batches == []  # not before the commit
    assert taken.batches == [first + second]
    assert [row[0] for row in first + second] == [1, 2, 3]
    assert first[0] == (1, "a/1", "x", True, 1) and first[1] == (2, "a/2", "", False, 1)
    assert await unsent(migrated_db, 10) == first + second


async def test_a_rollback_hands_nothing_over_and_leaves_nothing(migrated_db: Database) -> None:
    taken = Taken()
    outbox = Outbox(taken)
    with pytest.raises(RuntimeError):
        async with migrated_db.transaction() as session:
            await outbox.add(session, [Message("a/1", "x")])
            raise RuntimeError("the change failed")
    async with migrated_db.transaction() as session:
        kept = await outbox.add(session, [Message("a/2", "y")])
    assert taken.batches == [kept]
    assert await count_unsent(migrated_db) == 1


async def test_on_a_connection_the_caller_hands_over_after_its_commit(
    migrated_db: Database,
) -> None:
    taken = Taken()
    outbox = Outbox(taken)
    written = await migrated_db.write(lambda conn: outbox.write(conn, [Message("c/1", "z")]))
    assert taken.batches == []
    outbox.committed(written)
    assert taken.batches == [written] and await unsent(migrated_db, 10) == written


async def test_without_a_receiver_rows_wait_for_the_publisher_s_read(migrated_db: Database) -> None:
    async with migrated_db.transaction() as session:
        await Outbox().add(session, [Message("d/1", "w")])
    assert await count_unsent(migrated_db) == 1

"""The outbox: messages for the outside (MQTT) written in the transaction of the change they
report, and sent in id order by the publisher once that transaction committed.

`Outbox` is the one writer. `add` inserts the messages in the caller's session and hands them
to `on_commit` (the publisher's `offer`) once the session commits; a rollback drops them, so
a message of a change that did not happen never goes out. `write` does the same on a
synchronous connection (`Database.write`), where the caller calls `committed` after its commit.
The other functions are the publisher's and the feed's queries, kept here with the table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from oss.store.base import IN_CHUNK, utcnow
from oss.store.database import Database
from oss.store.driver_rows import DriverStatement
from oss.store.notify import OUTBOX, Notifications
from oss.store.numbering import insert_numbered_rows
from oss.store.tables import OutboxRow

CHANNEL = "mqtt"
# One outbox row as the publisher sends it: id, topic, payload, retain, qos.
OutboxMessage = tuple[int, str, str, bool, int]
OnCommit = Callable[[Sequence[OutboxMessage]], None]
_OFFERED = "outbox_offered"  # Session.info key: the rows the open transaction wrote


class Message(NamedTuple):
    """One message to write. An empty payload with `retain` deletes the retained message.
    A tuple: cheaper to make than a frozen dataclass and, of plain values only, soon untracked
    by the garbage collector (a storm batch writes thousands)."""

    topic: str
    payload: str
    retain: bool = False
    qos: int = 1


class Outbox:
    """The one outbox writer, with its after-commit hand-over (`on_commit`; None: the rows
    wait in the table for the publisher's next read). In cluster mode (`notifications`) each
    write also NOTIFYs the other instances, whose publisher may be the one running."""

    def __init__(
        self, on_commit: OnCommit | None = None, notifications: Notifications | None = None
    ) -> None:
        self.on_commit = on_commit
        self.notifications = notifications

    async def add(self, session: AsyncSession, messages: Sequence[Message]) -> list[OutboxMessage]:
        """Insert `messages` in the session's transaction (at once: their ids follow the calls'
        order and a later read in the same transaction sees them); offered once it commits."""
        written = await session.run_sync(lambda sync: self.write(sync.connection(), messages))
        self.offer_after_commit(session, written)
        return written

    def offer_after_commit(self, session: AsyncSession, written: Sequence[OutboxMessage]) -> None:
        """Hand `written` (rows `write` inserted in the session's transaction) to `on_commit`
        once that transaction commits; a rollback drops them."""
        if not written or self.on_commit is None:
            return
        sync = session.sync_session
        sync.info.setdefault(_OFFERED, []).extend(written)
        if not sqlalchemy_event.contains(sync, "after_commit", self._session_committed):
            sqlalchemy_event.listen(sync, "after_commit", self._session_committed, once=True)
            sqlalchemy_event.listen(sync, "after_soft_rollback", _rolled_back, once=True)

    def write(self, conn: Connection, messages: Sequence[Message]) -> list[OutboxMessage]:
        """Insert `messages` in the connection's transaction; the caller hands the result to
        `committed` once that transaction committed."""
        if not messages:
            return []
        now = utcnow()
        rows = [(CHANNEL, m.topic, m.payload, m.retain, m.qos, now, None) for m in messages]
        ids = insert_numbered_rows(conn, OutboxRow, _INSERT, rows)
        if self.notifications is not None:
            self.notifications.send(conn, OUTBOX)  # one per transaction: PostgreSQL folds them
        return [
            (row_id, m.topic, m.payload, m.retain, m.qos)
            for row_id, m in zip(ids, messages, strict=True)
        ]

    def committed(self, written: Sequence[OutboxMessage]) -> None:
        """After the transaction of `write` committed: hand its rows over."""
        if written and self.on_commit is not None:
            self.on_commit(written)

    def _session_committed(self, session: Session) -> None:
        self.committed(session.info.pop(_OFFERED, []))


def _rolled_back(session: Session, _previous: Any) -> None:
    session.info.pop(_OFFERED, None)  # never offered: a rolled-back row must not go out


_TABLE = cast(Table, OutboxRow.__table__)
# One outbox row's values, `id` first (numbered by insert_numbered_rows): the driver's
# executemany of tuples (oss.store.driver_rows), a storm batch writes hundreds.
_INSERT = DriverStatement(
    insert(_TABLE),
    ("id", "channel", "topic", "payload", "retain", "qos", "created_at", "sent_at"),
    _TABLE,
)


def _last_retained_query() -> Any:
    """(id, topic, payload) of the newest retained outbox row of each of `topics` (an
    expanding parameter: up to IN_CHUNK at a time) that has one."""
    newest = (
        select(func.max(OutboxRow.id))
        .where(
            # `|| ''` keeps the planner off the channel-led index (one value for all rows: it
            # scanned the whole outbox for an alarm without history) and on the topic's.
            OutboxRow.channel.concat("") == CHANNEL,
            OutboxRow.retain.is_(True),
            OutboxRow.topic.in_(bindparam("topics", expanding=True)),
        )
        .group_by(OutboxRow.topic)
    )
    return select(OutboxRow.id, OutboxRow.topic, OutboxRow.payload).where(
        OutboxRow.id.in_(newest.scalar_subquery())
    )


_LAST_RETAINED = _last_retained_query()  # built once: cheaper than building it per batch


def last_retained(conn: Connection, topics: Sequence[str]) -> dict[str, tuple[int, str, str]]:
    """{topic: (id, topic, payload)} of the newest retained row of each topic that has one,
    this transaction's own rows included (a few statements however many topics)."""
    found: dict[str, tuple[int, str, str]] = {}
    for start in range(0, len(topics), IN_CHUNK):
        chunk = {"topics": list(topics[start : start + IN_CHUNK])}
        for row in conn.execute(_LAST_RETAINED, chunk).all():
            found[row[1]] = (row[0], row[1], row[2])
    return found


_NEWEST = select(func.max(OutboxRow.id))


def newest_id(conn: Connection) -> int:
    """The highest outbox row id committed (or written in this transaction); 0 when empty."""
    return int(conn.execute(_NEWEST).scalar() or 0)


async def unsent(database: Database, limit: int) -> list[OutboxMessage]:
    """The oldest `limit` rows not yet sent, in id order."""
    async with database.sessions() as session:
        result = await session.execute(
            select(
                OutboxRow.id, OutboxRow.topic, OutboxRow.payload, OutboxRow.retain, OutboxRow.qos
            )
            .where(OutboxRow.channel == CHANNEL, OutboxRow.sent_at.is_(None))
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        return [(r.id, r.topic, r.payload, r.retain, r.qos) for r in result]


async def mark_sent(database: Database, ids: Sequence[int]) -> None:
    if not ids:
        return
    statement = update(OutboxRow).where(OutboxRow.id.in_(ids)).values(sent_at=utcnow())
    await database.write(lambda conn: conn.execute(statement))


async def count_unsent(database: Database) -> int:
    async with database.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.channel == CHANNEL, OutboxRow.sent_at.is_(None))
        )
        return int(count or 0)


async def prune_sent(database: Database, before: datetime) -> None:
    """Delete the rows sent before `before` (the outbox stays small)."""
    async with database.transaction() as session:
        await session.execute(
            delete(OutboxRow).where(OutboxRow.channel == CHANNEL, OutboxRow.sent_at < before)
        )

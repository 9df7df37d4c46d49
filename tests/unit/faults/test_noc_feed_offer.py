"""The publisher's hand-over path: rows committed through the outbox's writer are sent from
memory, in order, without reading the outbox back; rolled-back rows never go out; a backlog or
a writer that only wakes it makes it read the outbox again, and nothing is sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from oss.faults.noc_feed import NocFeed
from oss.outputs.mqtt_outbox import NocPublisher
from oss.settings import NocFeedSettings
from oss.store.database import Database
from oss.store.outbox import Outbox, OutboxMessage
from tests.noc_feed_writes import write_batch
from tests.unit.faults.test_noc_feed import FakeBroker, alarm, outbox

SETTINGS = NocFeedSettings(prefix="noc", batch_size=4, poll_interval_s=30.0)


class CountingPublisher(NocPublisher):
    """Counts its reads of the outbox."""

    reads = 0

    async def _unsent(self, limit: int) -> Sequence[OutboxMessage]:
        self.reads += 1
        return await super()._unsent(limit)


@asynccontextmanager
async def running(db: Database, broker: FakeBroker) -> AsyncIterator[CountingPublisher]:
    @asynccontextmanager
    async def connect() -> AsyncIterator[FakeBroker]:
        yield broker

    publisher = CountingPublisher(db, SETTINGS, connector=connect)
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(10):
        while not await check():  # noqa: ASYNC110 - polls state that has no event
            await asyncio.sleep(0.01)


def offering(publisher: NocPublisher) -> NocFeed:
    """The feed as the daemon wires it: its outbox offers committed rows to the publisher."""
    return NocFeed(SETTINGS, Outbox(publisher.offer))


async def commit(db: Database, feed: NocFeed, *alarms: dict[str, Any], fail: bool = False) -> None:
    await write_batch(db, feed, [(a, "raised") for a in alarms], fail=fail)


async def test_committed_rows_go_out_from_memory_in_order(db: Database) -> None:
    broker = FakeBroker()
    async with running(db, broker) as publisher:
        feed = offering(publisher)
        await until(lambda: _true(publisher.connected and publisher.reads > 0))
        reads = publisher.reads
        for n in range(6):
            await commit(db, feed, alarm(alarm_id=n))
        await until(lambda: _true(len(broker.received) == 12))
        assert publisher.reads == reads  # none of them read back
        await until(lambda: _true(publisher.idle))  # marked sent by a task of its own
        assert await publisher.pending() == 0
    assert [t for t, _, _ in broker.received] == [t for t, _, _ in await outbox(db)]


async def test_rolled_back_rows_never_go_out(db: Database) -> None:
    broker = FakeBroker()
    async with running(db, broker) as publisher:
        feed = offering(publisher)
        await until(lambda: _true(publisher.connected))
        with pytest.raises(RuntimeError):
            await commit(db, feed, alarm(alarm_id=1), fail=True)
        await commit(db, feed, alarm(alarm_id=2))
        await until(lambda: _true(len(broker.received) == 2))
        await asyncio.sleep(0.05)
    assert {t for t, _, _ in broker.received} == {"noc/alarms/major/r1/2", "noc/events/raised/r1/2"}


async def test_a_backlog_and_a_bare_wake_are_read_from_the_outbox_once(db: Database) -> None:
    broker = FakeBroker()
    async with running(db, broker) as publisher:
        feed = offering(publisher)
        await until(lambda: _true(publisher.connected))
        # More than batch_size x 10 rows offered at once: memory gives up, the outbox has them.
        await commit(db, feed, *(alarm(alarm_id=n) for n in range(30)))
        # A writer that does not offer its rows (the BSS orders) only wakes the publisher.
        await write_batch(db, NocFeed(SETTINGS), [(alarm(alarm_id=99), "raised")])
        publisher.wake()
        await until(lambda: _true(len(broker.received) == 62))
        await until(lambda: _true(publisher.idle))
        assert await publisher.pending() == 0
    topics = [t for t, _, _ in broker.received]
    assert topics == [t for t, _, _ in await outbox(db)]  # each once, in id order


async def _true(value: bool) -> bool:
    return value

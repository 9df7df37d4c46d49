"""The MQTT side of the outbox: `NocPublisher` sends the outbox's rows to the broker, at least
once and in id order; `OrderEventsOutbox` writes the BSS's order events into it.

The publisher sends with QoS 1 and marks a row sent only once the broker acknowledged it (its
PUBACK, seen through `mqtt_client`). Rows not marked sent are sent again after a broker outage
or a daemon restart; consumers de-duplicate (an alarm's `id` and `sequence`, an order event's
`eventId`). What goes into the outbox, and when it is offered, is `oss.store.outbox`'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from oss.backoff import Backoff
from oss.errors import Fenced
from oss.outputs import mqtt_client
from oss.outputs.mqtt_client import MqttLink, NocFeedError, describe
from oss.outputs.mqtt_topics import order_topic
from oss.settings import NocFeedSettings
from oss.store import outbox
from oss.store.base import utcnow
from oss.store.database import Database
from oss.store.outbox import Message, Outbox, OutboxMessage

log = logging.getLogger(__name__)

MARK_LINGER_S = 0.1  # acknowledged rows gather this long before they are marked sent
PRUNE_INTERVAL_S = 60.0  # how often sent rows older than keep_sent_s are deleted

Connector = Callable[[], AbstractAsyncContextManager[MqttLink]]


class NocPublisher:
    """Drains the outbox to the broker; run `run()` as one supervised task of the daemon.

    The database is the truth; memory is a shortcut. Writers that commit rows hand them over
    with `offer()` (`oss.store.outbox.Outbox` does once their transaction committed), and the
    publisher sends those without reading them back. It reads the outbox itself
    (`publish_pending`) whenever memory may lack rows: at each (re)connection, after a failed
    round, after `wake()` (a writer that did not offer its rows), when the offered rows
    overflow `batch_size` x 10, and at every `poll_interval_s` of quiet.

    `shared` (cluster mode): other instances write rows too, and one instance publishes them
    all (a singleton). Rows offered from memory could then overtake another instance's rows
    committed just before (whose notice is still on its way), so an offer only wakes the
    publisher and every round reads the outbox, in id order: the alarm lock makes the alarm
    rows of every instance commit in id order. Other instances' rows wake it through their
    notices (`wake`, oss.store.notify)."""

    def __init__(
        self,
        database: Database,
        settings: NocFeedSettings,
        *,
        connector: Connector | None = None,
        shared: bool = False,
    ) -> None:
        self.database = database
        self.settings = settings
        self.shared = shared
        self.broker = f"{settings.host}:{settings.port}"
        self._connector = connector or self.connect
        self._wake = asyncio.Event()
        self.published = 0  # rows acknowledged by the broker, since start
        self.connected = False
        self._fresh: deque[OutboxMessage] = deque()  # offered, committed, not yet sent
        self._fresh_limit = settings.batch_size * 10
        self._resync = True  # memory may lack rows: read the outbox next
        self._from_db: set[int] = set()  # ids of the last outbox read (offered twice, sent once)
        self._pruned_at = float("-inf")
        # Acknowledged rows not yet marked sent: marked by a task of their own, so the next
        # round does not wait for the database's write turn (a crash before the mark sends
        # them again: at least once).
        self._unmarked: list[int] = []
        self._marker: asyncio.Task[None] | None = None
        self._draining = False

    @property
    def idle(self) -> bool:
        """Nothing offered waits, no round and no marking is under way (the outbox is not
        consulted: a row committed without an offer shows in `pending()`)."""
        marking = self._marker is not None and not self._marker.done()
        return not (self._fresh or self._unmarked or self._draining or marking)

    def wake(self) -> None:
        """Tell the publisher new rows were committed (saves waiting for the next poll)."""
        self._resync = True
        self._wake.set()

    async def heard(self, _notice: Mapping[str, Any]) -> None:
        """Another instance committed outbox rows (oss.store.notify): read the outbox."""
        self.wake()

    async def resync(self) -> None:
        """Notices may have been missed: read the outbox."""
        self.wake()

    def offer(self, rows: Sequence[OutboxMessage]) -> None:
        """Rows just committed, in id order: sent from memory unless the outbox must be read
        anyway (then they are found there; always so when `shared`)."""
        if self.shared:
            self.wake()
            return
        if not self._resync:
            if len(self._fresh) + len(rows) > self._fresh_limit:
                self._resync = True  # a backlog: the outbox has them, in order
                self._fresh.clear()
            else:
                self._fresh.extend(rows)
        self._wake.set()

    async def run(self) -> None:
        """Connect, drain, wait for work; reconnect with exponential backoff after any
        broker or database failure. Runs until cancelled."""
        try:
            await self._serve()
        finally:
            if self._marker is not None:
                self._marker.cancel()

    async def _serve(self) -> None:
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)
        while True:
            try:
                async with self._connector() as client:
                    self.connected = True
                    log.info("NOC feed connected", extra={"broker": self.broker})
                    backoff.succeeded()
                    self._resync = True
                    while True:
                        await self._drain(client)
                        if time.monotonic() - self._pruned_at >= PRUNE_INTERVAL_S:
                            await self.prune()
                            self._pruned_at = time.monotonic()
                        await self._wait_for_work()
            except (NocFeedError, SQLAlchemyError, OSError) as exc:
                if backoff.failed():  # once per outage, not once per attempt
                    log.warning(
                        "NOC feed interrupted, retrying with backoff: %s",
                        describe(exc),
                        extra={"broker": self.broker},
                    )
            finally:
                self.connected = False
                self._resync = True
            await asyncio.sleep(backoff.pause())

    async def _wait_for_work(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval_s)
        except TimeoutError:
            self._resync = True  # the safety net: rows nobody announced
        finally:
            self._wake.clear()

    async def _drain(self, client: MqttLink) -> None:
        """Send until nothing is left: from the outbox while memory may lack rows, then from
        memory."""
        batch = self.settings.batch_size
        self._draining = True
        try:
            while True:
                if self._resync:
                    await self._flush_marks()  # or the read would find them unsent
                    # Cleared before the read: a row committed meanwhile is offered again and
                    # then skipped if the read saw it (`_from_db`).
                    self._resync = False
                    self._fresh.clear()
                    rows = await self._unsent(batch)
                    # More there than one round, or a wake (or an overflow) during the read.
                    self._resync = self._resync or len(rows) == batch
                    self._from_db = {row[0] for row in rows}
                else:
                    rows = self._take_fresh(batch)
                if not rows:
                    return
                await self._round(client, rows, defer_mark=True)
        except BaseException:
            self._resync = True
            raise
        finally:
            self._draining = False

    def _mark_later(self, ids: list[int]) -> None:
        self._unmarked += ids
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark_unmarked())

    async def _mark_unmarked(self, *, linger: bool = True) -> None:
        if linger:
            # Many rounds' rows in one UPDATE: each write transaction waits its turn behind
            # the alarm manager's.
            await asyncio.sleep(MARK_LINGER_S)
        while self._unmarked:
            ids, self._unmarked = self._unmarked, []
            try:
                await self._mark_sent(ids)
            except SQLAlchemyError as exc:
                log.warning(
                    "NOC feed: %d sent rows not marked (they will be sent again): %s",
                    len(ids),
                    describe(exc),
                )
            except Fenced as exc:  # a task of its own: said here, the lease's holder acts on it
                log.warning(
                    "NOC feed: %d sent rows not marked (the feed's next holder sends them "
                    "again): %s",
                    len(ids),
                    exc,
                )
                return

    async def _flush_marks(self) -> None:
        marker = self._marker
        if marker is not None and not marker.done():
            await asyncio.shield(marker)
        await self._mark_unmarked(linger=False)

    def _take_fresh(self, limit: int) -> list[OutboxMessage]:
        rows: list[OutboxMessage] = []
        fresh, seen = self._fresh, self._from_db
        while fresh and len(rows) < limit:
            row = fresh.popleft()
            if row[0] not in seen:
                rows.append(row)
        return rows

    async def publish_pending(self, client: MqttLink) -> int:
        """Publish every unsent row of the outbox in id order; returns how many rows were done
        (acknowledged by the broker, or superseded). On a failure, the rows done before the
        first failed one are marked sent and the error is raised: the rest go again, in order,
        after reconnecting (a retained state must never be overtaken by an older one)."""
        total = 0
        while True:
            rows = await self._unsent(self.settings.batch_size)
            if not rows:
                return total
            total += await self._round(client, rows)

    async def _round(
        self, client: MqttLink, rows: Sequence[OutboxMessage], *, defer_mark: bool = False
    ) -> int:
        """Publish one round of rows (in order, acknowledgements awaited together) and mark
        the done ones sent; raises on the first failure after marking the rows before it.

        A retained state followed in the same round by a newer state of the same topic is
        superseded: the broker would keep only the newer one, so it is marked sent without
        being published (under a storm an alarm's state changes faster than it is sent; every
        change still goes out on its event topic)."""
        superseded = _superseded(rows)
        outgoing = [row for i, row in enumerate(rows) if i not in superseded]
        timeout = self.settings.publish_timeout_s
        messages = [(topic, payload, qos, retain) for _, topic, payload, retain, qos in outgoing]
        results = await client.publish_round(messages, wait_s=timeout)
        failed_at = next(
            (row[0] for row, r in zip(outgoing, results, strict=True) if _failed(r)), None
        )
        failure = next((r for r in results if _failed(r)), None)
        # Every row before the first failure is done, superseded ones included: the row
        # superseding one is still unsent then, and carries the newer state.
        done = [row[0] for row in rows if failed_at is None or row[0] < failed_at]
        if defer_mark:
            self._mark_later(done)
        else:
            await self._mark_sent(done)
        self.published += sum(1 for row in outgoing if failed_at is None or row[0] < failed_at)
        if isinstance(failure, BaseException):
            if isinstance(failure, OSError | OverflowError):
                raise NocFeedError(
                    f"MQTT broker {self.broker}: publish failed: {describe(failure)}"
                ) from failure
            raise failure
        return len(done)

    async def _unsent(self, limit: int) -> Sequence[OutboxMessage]:
        return await outbox.unsent(self.database, limit)

    async def _mark_sent(self, ids: list[int]) -> None:
        await outbox.mark_sent(self.database, ids)

    async def pending(self) -> int:
        return await outbox.count_unsent(self.database)

    async def prune(self) -> None:
        """Forget rows sent longer ago than `keep_sent_s` (the outbox stays small)."""
        await outbox.prune_sent(
            self.database, utcnow() - timedelta(seconds=self.settings.keep_sent_s)
        )

    def connect(self) -> AbstractAsyncContextManager[MqttLink]:
        """One session with the broker; NocFeedAuthError when it refuses the credentials."""
        return mqtt_client.connect(self.settings, self.settings.client_id)


def _superseded(rows: Sequence[tuple[int, str, str, bool, int]]) -> set[int]:
    """Indexes of the retained states that a later retained message of the same topic replaces:
    a newer state, or a delete (an alarm raised and cleared within the round). Deletes
    (zero-length) always go out: an earlier round may have retained a state."""
    newest: dict[str, int] = {}
    for index, (_, topic, _, retain, _) in enumerate(rows):
        if retain:
            newest[topic] = index
    return {
        index
        for index, (_, topic, payload, retain, _) in enumerate(rows)
        if retain and payload and newest[topic] > index
    }


def _failed(result: object) -> bool:
    return isinstance(result, BaseException)


class OrderEventsOutbox:
    """The BSS's order-events port (`bss_bridge.ports.OrderEvents`): a TMF622 state-change
    event into the outbox, in the caller's transaction, on `<prefix>/orders/<order-id>` (QoS 1,
    not retained)."""

    def __init__(self, settings: NocFeedSettings, writer: Outbox) -> None:
        self.prefix = settings.prefix
        self.writer = writer

    async def add(self, session: AsyncSession, order_id: str, event: Mapping[str, Any]) -> None:
        payload = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
        await self.writer.add(session, [Message(order_topic(self.prefix, order_id), payload)])

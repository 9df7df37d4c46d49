"""Alarms: signals in, reduced and correlated TMF642 alarms out.

A `Signal` says "this problem is present (raise) / gone (clear) on this object". The
`AlarmManager` applies signals with the alarm state machine (`oss.faults.reducer`: repeats of
one problem on one object fold into one open alarm, a clear closes it), lets the correlator
(`oss.faults.correlate`) attach the alarm to a root cause, and writes every changed alarm's
NOC feed messages in the same database transaction as the change (so the change and its
messages commit together). A batch the correlator leaves alone takes the storm path
(`oss.faults.uncorrelated`: plain rows, the store's bulk statements); the others go through
the ORM (`oss.faults.transaction.AlarmTx`). Once the transaction has committed the feed is told
and the changes are broadcast to live subscribers (the SSE stream).

Several instances (PostgreSQL, cluster mode): every alarm transaction takes the cluster's alarm
lock first (`oss.store.cluster_locks.lock_alarms`), so reduction and correlation see one order
across the instances, and NOTIFYs the alarms it changed (`oss.store.notify`); the other
instances read those alarms back and tell their own listeners (`remote_changed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, case, func, or_, select

from oss import audit
from oss.broadcast import Broadcast
from oss.errors import Conflict, NotFound
from oss.faults.correlate import Correlator, GraphProvider, ServicesProvider
from oss.faults.documents import HREF_BASE, to_tmf
from oss.faults.reducer import FeedEvent, Runs, moment
from oss.faults.reducer import Signal as Signal
from oss.faults.summary import SEVERITY_RANK
from oss.faults.transaction import AlarmTx, children_in
from oss.faults.uncorrelated import apply_uncorrelated
from oss.store import Database
from oss.store.base import in_chunks
from oss.store.cluster_locks import lock_alarms
from oss.store.notify import ALARMS, Notifications
from oss.store.tables import AlarmRow

log = logging.getLogger(__name__)

DEVICE_REMOVED = "device removed from inventory"  # why a removed device's alarms closed
OPEN_ON_LIMIT = 200  # alarms of one object's panel: the worst ones, a page's worth


class AlarmFeed(Protocol):
    """What the alarm manager needs of the NOC feed (oss.faults.noc_feed.NocFeed): the messages
    of a transaction's alarm changes written in that transaction, and word once it committed."""

    def write_changes(
        self, conn: Connection, changes: Sequence[tuple[dict[str, Any], FeedEvent]]
    ) -> Any:
        """On the transaction's connection; returns what `committed` is given."""
        ...

    def committed(self, written: Any) -> None: ...


def _on_device(device: str, links: Sequence[int]) -> Any:
    """The alarms on a device, on its interfaces ("device:interface") and on these links."""
    return or_(
        and_(AlarmRow.alarmed_object_type == "device", AlarmRow.alarmed_object == device),
        and_(
            AlarmRow.alarmed_object_type == "interface",
            AlarmRow.alarmed_object.startswith(f"{device}:", autoescape=True),
        ),
        and_(
            AlarmRow.alarmed_object_type == "link",
            AlarmRow.alarmed_object.in_([str(link) for link in links]),
        ),
    )


# --------------------------------------------------------------------------------- manager


class Correlating(Protocol):
    """What the manager needs from a correlator (oss.faults.correlate.Correlator)."""

    async def context(self, s: Signal) -> Any: ...

    def inert(self, s: Signal, context: Any) -> bool:
        """True when `correlate` would change nothing for this signal in this context."""
        ...

    async def correlate(
        self, tx: AlarmTx, s: Signal, row: AlarmRow | None, context: Any
    ) -> None: ...

    async def after_manual_clear(self, tx: AlarmTx, row: AlarmRow) -> None: ...


@dataclass(frozen=True)
class AlarmFilter:
    perceived_severity: str | None = None
    state: str | None = None
    ack_state: str | None = None
    alarmed_object: str | None = None
    alarmed_object_type: str | None = None
    open: bool | None = None
    is_root_cause: bool | None = None


class AlarmManager:
    def __init__(
        self,
        db: Database,
        graph_provider: GraphProvider,
        services_provider: ServicesProvider,
        feed: AlarmFeed,
        *,
        correlator: Correlating | None = None,
        href_base: str = HREF_BASE,
        notifications: Notifications | None = None,
    ) -> None:
        self.db = db
        self.notifications = notifications  # cluster mode: other instances hear our changes
        self.feed = feed
        self.href_base = href_base
        self.broadcast: Broadcast[tuple[FeedEvent, dict[str, Any]]] = Broadcast("alarm")
        # Moves on after every committed change: what a reader caches from the open alarms
        # (the console's map) is current while this is unchanged.
        self.revision = 0
        # Told each committed change at once, in order, before `revision` can be read moved
        # on (an in-memory index of open alarms: oss.faults.summary.OpenAlarmIndex). Must
        # not block; what one raises is logged.
        self.listeners: list[Callable[[tuple[FeedEvent, dict[str, Any]]], None]] = []
        # Told when changes may have been missed (another instance's, while this one was not
        # listening): what a listener keeps must be read again. Must not block.
        self.resync_listeners: list[Callable[[], None]] = []
        self.correlator: Correlating = (
            Correlator(graph_provider, services_provider) if correlator is None else correlator
        )
        # One signal at a time: reduction reads then writes the open alarm of a key, and two
        # concurrent raises of one key must not both create it.
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self.broadcast.close()

    async def signal(self, s: Signal) -> list[tuple[FeedEvent, dict[str, Any]]]:
        """Apply one signal; returns the alarm changes it made (as sent to the feed)."""
        return await self.signals([s])

    async def signals(self, batch: Sequence[Signal]) -> list[tuple[FeedEvent, dict[str, Any]]]:
        """Apply signals in order in ONE database transaction (a trap storm costs one commit
        per batch, not one per trap); returns the alarm changes, as sent to the feed.

        The alarms end exactly as if each signal had been applied alone, in order. The feed
        hears each changed alarm once per batch, in its final state (`count` tells how many
        repeats were folded in, `sequence` moves on once): an alarm raised and cleared within
        the batch is sent once, as "cleared". A failure rolls the whole batch back.
        """
        if not batch:
            return []
        async with self._lock:
            # The graph and service lookups happen before the transaction opens, as for one.
            contexts = await self._contexts(batch)
            if all(self.correlator.inert(s, c) for s, c in zip(batch, contexts, strict=True)):
                return await self._uncorrelated(batch)

            async def work(tx: AlarmTx) -> None:
                await tx.prefetch(s.reduction_key for s in batch)
                # Signals the correlator leaves alone touch only their own key's alarm, so
                # between two others their order across keys does not matter and a run of
                # raises of one key folds into one (a storm's repeats cost one change, not
                # one each). Correlated signals are applied one by one, in order, after the
                # folded runs before them.
                runs = Runs()
                for s, context in zip(batch, contexts, strict=True):
                    if self.correlator.inert(s, context):
                        runs.add(s)
                        continue
                    for run in runs.take():
                        await tx.apply(run)
                    await self._apply(tx, s, context)
                for run in runs.take():
                    await tx.apply(run)

            return await self._transact(work)

    async def _contexts(self, batch: Sequence[Signal]) -> list[Any]:
        """The correlator's context of each signal; a storm's repeats (same kind, key and
        object) share one look-up."""
        known: dict[tuple[str, str, str], Any] = {}
        contexts = []
        for s in batch:
            key = (s.kind, s.reduction_key, s.object)
            if key not in known:
                known[key] = await self.correlator.context(s)
            contexts.append(known[key])
        return contexts

    async def _uncorrelated(
        self, batch: Sequence[Signal]
    ) -> list[tuple[FeedEvent, dict[str, Any]]]:
        """A batch the correlator leaves alone entirely: no ORM (oss.faults.uncorrelated)."""
        runs = Runs()
        for s in batch:
            runs.add(s)
        taken, href_base, feed = runs.take(), self.href_base, self.feed

        def work(conn: Connection) -> tuple[list[tuple[FeedEvent, dict[str, Any]]], Any]:
            published = apply_uncorrelated(conn, taken, href_base)
            self._announce(conn, published)
            return published, _write_feed(feed, conn, published)

        published, written = await self.db.write(work, first=self._cluster_turn)
        return self._committed(published, written)

    async def _apply(self, tx: AlarmTx, s: Signal, context: Any) -> None:
        """One signal the correlator acts on: the alarm needs its id at once."""
        row: AlarmRow | None
        if s.kind == "raise":
            row = await tx.raise_(s)
        else:
            row = await tx.open_by_key(s.reduction_key)
            if row is not None:
                tx.clear(row, moment(s.time_ns))
        await tx.ensure_ids()
        await self.correlator.correlate(tx, s, row, context)

    async def acknowledge(self, alarm_id: int, user: str) -> dict[str, Any]:
        async def work(tx: AlarmTx) -> None:
            row = await tx.get(alarm_id)
            if row.ack_state == "acknowledged" and row.ack_user_id == user:
                return
            before = {"ackState": row.ack_state, "ackUserId": row.ack_user_id}
            row.ack_state = "acknowledged"
            row.ack_user_id = user
            row.changed_time = datetime.now(UTC)
            tx.changed(row, "changed")
            audit.record(
                tx.session,
                actor=user,
                action="acknowledge",
                object_type="alarm",
                object_id=str(alarm_id),
                before=before,
                after={"ackState": row.ack_state, "ackUserId": user},
            )

        async with self._lock:
            await self._transact(work)
        return await self.get(alarm_id)

    async def clear(self, alarm_id: int, user: str) -> dict[str, Any]:
        """An operator's clear: the alarm and the alarms correlated under it."""

        async def work(tx: AlarmTx) -> None:
            row = await tx.get(alarm_id)
            if not row.open:
                raise Conflict(f"alarm {alarm_id} is already cleared")
            before = {"state": row.state, "severity": row.perceived_severity}
            row.details = {**(row.details or {}), "clearUserId": user}
            await tx.clear_tree(row, datetime.now(UTC))
            await self.correlator.after_manual_clear(tx, row)
            audit.record(
                tx.session,
                actor=user,
                action="clear",
                object_type="alarm",
                object_id=str(alarm_id),
                before=before,
                after={"state": row.state, "severity": row.perceived_severity},
            )

        async with self._lock:
            await self._transact(work)
        return await self.get(alarm_id)

    async def close_removed_device(
        self, device: str, links: Sequence[int], *, reason: str, user: str | None = None
    ) -> list[tuple[FeedEvent, dict[str, Any]]]:
        """Close the open alarms on a device that left the inventory and on its objects (its
        interfaces, the links it had), with the reason (and who removed it). The alarms they
        explained on other objects (a neighbour's interface, a device cut off behind it) stay
        open: under another open cause if they have one, else on their own."""

        async def work(tx: AlarmTx) -> None:
            rows = await tx.open_where(_on_device(device, links))
            now = datetime.now(UTC)
            why = {"clearReason": reason, **({"clearUserId": user} if user else {})}
            for row in rows:
                row.details = {**(row.details or {}), **why}
                tx.clear(row, now)
            closed = [row.id for row in rows]
            for child in await tx.open_where(AlarmRow.parent_id.in_(closed)) if closed else []:
                # Every closed alarm is no open cause any more: none needs skipping (id 0).
                other = await tx.other_open_cause(child, 0)
                if other is not None:
                    tx.adopt(other, child)
                else:
                    child.parent_id = None
                    tx.changed(child, "changed")

        async with self._lock:
            return await self._transact(work)

    async def get(self, alarm_id: int) -> dict[str, Any]:
        async with self.db.read() as session:
            row = await session.get(AlarmRow, alarm_id)
            if row is None:
                raise NotFound(f"alarm {alarm_id} not found")
            children = await children_in(session, [alarm_id])
            return to_tmf(row, children.get(alarm_id, ()), href_base=self.href_base)

    async def open_on(
        self,
        objects: Sequence[tuple[str, str]],
        *,
        interfaces_of: str | None = None,
        limit: int = OPEN_ON_LIMIT,
    ) -> list[dict[str, Any]]:
        """The open alarms on these (alarmed object type, object) and, with `interfaces_of`,
        on that device's interfaces: most severe first, then newest; at most `limit`."""
        wanted = [
            and_(AlarmRow.alarmed_object_type == kind, AlarmRow.alarmed_object == name)
            for kind, name in objects
        ]
        if interfaces_of is not None:
            wanted.append(
                and_(
                    AlarmRow.alarmed_object_type == "interface",
                    AlarmRow.alarmed_object.startswith(f"{interfaces_of}:", autoescape=True),
                )
            )
        if not wanted:
            return []
        rank = case(SEVERITY_RANK, value=AlarmRow.perceived_severity, else_=len(SEVERITY_RANK))
        query = (
            select(AlarmRow)
            .where(AlarmRow.open.is_(True), or_(*wanted))
            .order_by(rank, AlarmRow.id.desc())
            .limit(limit)
        )
        async with self.db.read() as session:
            rows = list((await session.scalars(query)).all())
            children = await children_in(session, [r.id for r in rows])
            return [to_tmf(r, children.get(r.id, ()), href_base=self.href_base) for r in rows]

    async def find(
        self, where: AlarmFilter = AlarmFilter(), *, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of alarms, newest first, and how many match in all."""
        conditions: list[Any] = []
        for column, value in (
            (AlarmRow.perceived_severity, where.perceived_severity),
            (AlarmRow.state, where.state),
            (AlarmRow.ack_state, where.ack_state),
            (AlarmRow.alarmed_object, where.alarmed_object),
            (AlarmRow.alarmed_object_type, where.alarmed_object_type),
            (AlarmRow.open, where.open),
            (AlarmRow.is_root_cause, where.is_root_cause),
        ):
            if value is not None:
                conditions.append(column == value)
        async with self.db.read() as session:
            total = await session.scalar(
                select(func.count()).select_from(AlarmRow).where(*conditions)
            )
            query = select(AlarmRow).where(*conditions).order_by(AlarmRow.id.desc())
            rows = list((await session.scalars(query.limit(limit).offset(offset))).all())
            children = await children_in(session, [r.id for r in rows])
            docs = [to_tmf(r, children.get(r.id, ()), href_base=self.href_base) for r in rows]
        return docs, int(total or 0)

    async def _transact(
        self, work: Callable[[AlarmTx], Awaitable[None]]
    ) -> list[tuple[FeedEvent, dict[str, Any]]]:
        async with self.db.transaction(first=self._cluster_turn) as session:
            tx = AlarmTx(session, self.href_base)
            await work(tx)
            published = await tx.flush()
            feed = self.feed

            def write(conn: Connection) -> Any:
                self._announce(conn, published)
                return _write_feed(feed, conn, published)

            written = await session.run_sync(lambda sync: write(sync.connection()))
        return self._committed(published, written)

    @property
    def _cluster_turn(self) -> Callable[[Connection], None] | None:
        """Cluster mode: the alarm transactions of every instance take turns (one process's
        already do, under `_lock`), before the open alarms are read; the database checks the
        transaction's fences once the turn came (`Database.write`'s `first`)."""
        return lock_alarms if self.notifications is not None else None

    def _announce(self, conn: Connection, published: Sequence[tuple[FeedEvent, Any]]) -> None:
        """Cluster mode: NOTIFY the changed alarms' ids and events in the transaction."""
        if self.notifications is not None and published:
            items = [[int(doc["id"]), event] for event, doc in published]
            self.notifications.send_items(conn, ALARMS, "alarms", items)

    async def remote_changed(self, notice: Mapping[str, Any]) -> None:
        """Another instance committed changes of these alarms: read them (as they are now,
        never older than what was sent) and tell the live listeners and the broadcast, as for
        a change made here (the feed checks its own memory against the outbox: NocFeed)."""
        events: dict[int, str] = {}
        for alarm_id, event in notice.get("alarms", ()):
            events[int(alarm_id)] = str(event)
        if not events:
            return
        async with self.db.read() as session:
            rows: list[AlarmRow] = []
            for chunk in in_chunks(sorted(events)):
                query = select(AlarmRow).where(AlarmRow.id.in_(chunk))
                rows += (await session.scalars(query)).all()
            children = await children_in(session, [r.id for r in rows])
            docs = [to_tmf(r, children.get(r.id, ()), href_base=self.href_base) for r in rows]
        changes = [(_remote_event(events[int(doc["id"])], doc), doc) for doc in docs]
        async with self._lock:  # after a local change under way: its listeners first
            self._committed(changes, None, local=False)

    async def remote_resync(self) -> None:
        """Another instance's changes may have been missed: listeners read the alarms again,
        and live streams end (their clients reconnect and catch up, as after a drop)."""
        async with self._lock:
            self.revision += 1
            for listener in self.resync_listeners:
                try:
                    listener()
                except Exception:
                    log.exception("an alarm resync listener failed")
            self.broadcast.close()

    def _committed(
        self, published: list[tuple[FeedEvent, dict[str, Any]]], written: Any, *, local: bool = True
    ) -> list[tuple[FeedEvent, dict[str, Any]]]:
        """After the commit: the feed is told (of a change made here), then live listeners
        hear what committed."""
        if published:
            self.revision += 1
            if local:
                self.feed.committed(written)
        for change in published:
            self.broadcast.publish(change)
            for listener in self.listeners:
                try:
                    listener(change)
                except Exception:  # the change committed: a listener's fault is its own
                    log.exception("an alarm change listener failed")
        return published


def _remote_event(sent: str, doc: Mapping[str, Any]) -> FeedEvent:
    """The event of another instance's change, as the alarm reads now (it may have been
    cleared since)."""
    if doc.get("state") == "cleared":
        return "cleared"
    return "raised" if sent == "raised" else "changed"


def _write_feed(
    feed: AlarmFeed, conn: Connection, published: Sequence[tuple[FeedEvent, dict[str, Any]]]
) -> Any:
    """The feed's messages of the changes, in the transaction (none: nothing written)."""
    if not published:
        return None
    return feed.write_changes(conn, [(doc, event) for event, doc in published])

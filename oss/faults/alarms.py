"""Alarms: signals in, reduced and correlated TMF642 alarms out.

A `Signal` says "this problem is present (raise) / gone (clear) on this object". The
`AlarmManager` folds repeats of one problem on one object into one open alarm (its reduction
key), clears the matching open alarm on a clear, lets the correlator (`oss.faults.correlate`)
attach the alarm to a root cause, and hands every changed alarm to the NOC feed in the same
database transaction as the change (so the change and its messages commit together). Once the
transaction has committed the changes are broadcast to live subscribers (the SSE stream).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast, runtime_checkable

from sqlalchemy import Connection, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from oss import audit
from oss.errors import Conflict, InvalidInput, NotFound
from oss.store import Database
from oss.store.base import IN_CHUNK
from oss.store.tables import AlarmRow
from topology.graph import InventoryGraph

log = logging.getLogger(__name__)

FeedEvent = Literal["raised", "changed", "cleared"]
SignalKind = Literal["raise", "clear"]
HREF_BASE = "/tmf-api/alarm/v4/alarm"
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate", "cleared")
DEVICE_REMOVED = "device removed from inventory"  # why a removed device's alarms closed

# Which object types the graph or the service inventory can point at (alarmedObject.href).
_OBJECT_HREFS = {
    "device": "/api/v1/devices/{}",
    "link": "/api/v1/links/{}",
    "service": "/api/v1/services/{}",
}


@dataclass(frozen=True, slots=True)
class Signal:
    """A problem on an object, present ("raise") or gone ("clear")."""

    kind: SignalKind
    reduction_key: str  # one open alarm per key: same problem, same object
    alarm_type: str  # X.733 event type, e.g. "communicationsAlarm"
    severity: str  # critical, major, minor, warning, indeterminate
    probable_cause: str
    specific_problem: str
    object_type: str  # device, interface, link, service
    object: str  # "r1", "r1:eth1", "3", "svc-a"
    time_ns: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("raise", "clear"):
            raise InvalidInput(f"signal kind must be raise or clear, not {self.kind!r}")
        if self.kind == "raise" and self.severity not in SEVERITIES[:-1]:
            raise InvalidInput(f"unknown severity {self.severity!r}")


class AlarmFeed(Protocol):
    """The NOC feed (oss.faults.noc_feed.NocFeed): adds its messages in the caller's session."""

    async def enqueue(
        self, session: AsyncSession, alarm: dict[str, Any], event: FeedEvent
    ) -> None: ...


@runtime_checkable
class BatchAlarmFeed(AlarmFeed, Protocol):
    """A feed that takes a transaction's changes at once (NocFeed: one look-up, one insert)."""

    async def enqueue_many(
        self, session: AsyncSession, changes: Sequence[tuple[dict[str, Any], FeedEvent]]
    ) -> object: ...


@runtime_checkable
class PlainLaneFeed(Protocol):
    """A feed that writes a batch's changes on a synchronous connection (NocFeed), which lets
    the alarm manager apply uncorrelated batches without the ORM (oss.faults.uncorrelated)."""

    def write_changes(
        self, conn: Connection, changes: Sequence[tuple[dict[str, Any], FeedEvent]]
    ) -> Any:
        """In the caller's transaction; returns what `committed` is given once it commits."""
        ...

    def committed(self, written: Any) -> None: ...


class ServicesProvider(Protocol):
    """oss.provisioning.services.ServiceManager's impact query."""

    async def services_on(
        self, *, link_id: int | None = None, device: str | None = None
    ) -> list[dict[str, Any]]: ...


GraphProvider = Callable[[], InventoryGraph]


def moment(time_ns: int) -> datetime:
    return datetime.fromtimestamp(time_ns / 1e9, UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


ALARM_COLUMNS = tuple(c.name for c in AlarmRow.__table__.columns)


def to_tmf(
    row: AlarmRow, children: Sequence[int] = (), *, href_base: str = HREF_BASE
) -> dict[str, Any]:
    """The TMF642 `Alarm` document of a row. `children`: ids of the alarms correlated under it."""
    return tmf_document({c: getattr(row, c) for c in ALARM_COLUMNS}, children, href_base)


def tmf_document(
    row: Mapping[str, Any], children: Sequence[int] = (), href_base: str = HREF_BASE
) -> dict[str, Any]:
    """The TMF642 `Alarm` document of an alarm's column values (`ALARM_COLUMNS`).

    The spec's schemas allow additional properties; `count` and `sequence` (what consumers
    de-duplicate on) travel as such. Absent values are left out rather than sent as null,
    because the spec types them as plain strings.
    """
    alarm_id = row["id"]
    object_type = row["alarmed_object_type"]
    alarmed: dict[str, Any] = {"id": row["alarmed_object"], "@referredType": object_type}
    template = _OBJECT_HREFS.get(object_type)
    if template is not None:
        alarmed["href"] = template.format(row["alarmed_object"])
    parent = row["parent_id"]
    doc: dict[str, Any] = {
        "id": alarm_id,
        "href": f"{href_base}/{alarm_id}",
        "@type": "Alarm",
        "alarmType": row["alarm_type"],
        "perceivedSeverity": row["perceived_severity"],
        "probableCause": row["probable_cause"],
        "specificProblem": row["specific_problem"],
        "alarmedObject": alarmed,
        "alarmedObjectType": object_type,
        "state": row["state"],
        "ackState": row["ack_state"],
        "alarmRaisedTime": _iso(row["raised_time"]),
        "alarmChangedTime": _iso(row["changed_time"]),
        "serviceAffecting": bool(row["service_affecting"]),
        "affectedService": [_service_ref(s) for s in row["affected_services"] or []],
        "correlatedAlarm": [_alarm_ref(i, href_base) for i in children],
        "parentAlarm": [] if parent is None else [_alarm_ref(parent, href_base)],
        "isRootCause": bool(row["is_root_cause"]),
        "count": row["count"],
        "sequence": row["sequence"],
        "reductionKey": row["reduction_key"],
    }
    if row["ack_user_id"] is not None:
        doc["ackUserId"] = row["ack_user_id"]
    if row["cleared_time"] is not None:
        doc["alarmClearedTime"] = _iso(row["cleared_time"])
    if row["impact"]:
        doc["impact"] = row["impact"]
    details = dict(row["details"] or {})
    clear_user = details.pop("clearUserId", None)
    if clear_user is not None:
        doc["clearUserId"] = str(clear_user)
    if details:
        doc["alarmDetails"] = ", ".join(f"{k}={v}" for k, v in sorted(details.items()))
    return doc


def _alarm_ref(alarm_id: int, href_base: str) -> dict[str, str]:
    return {"id": str(alarm_id), "href": f"{href_base}/{alarm_id}", "@referredType": "Alarm"}


def _service_ref(service: Mapping[str, Any]) -> dict[str, Any]:
    ref: dict[str, Any] = {"id": str(service.get("name", service.get("id"))), "@type": "Service"}
    if "id" in service:
        ref["href"] = f"/api/v1/services/{service['id']}"
    return ref


# --------------------------------------------------------------------------- transaction


class AlarmTx:
    """The alarm changes of one database transaction; `flush()` sends each changed alarm to the
    feed once, with its sequence number moved on once, however many times it changed."""

    def __init__(self, session: AsyncSession, feed: AlarmFeed, href_base: str) -> None:
        self.session = session
        self._feed = feed
        self._href_base = href_base
        # Keyed by the row object's identity (the session holds one object per row): a new
        # alarm may not have its id yet (see `raise_(defer_id=True)`).
        self._changed: dict[int, tuple[AlarmRow, FeedEvent]] = {}
        self._new: set[int] = set()
        self._unflushed: list[AlarmRow] = []  # new alarms added without their id yet
        # The open alarm of a reduction key as this transaction knows it (None: none open).
        # Every change of `open` in a transaction goes through raise_() and clear(), which keep
        # it exact, so a batch's repeated lookups cost no database round trips.
        self._open: dict[str, AlarmRow | None] = {}
        # For the keys whose open alarms were all read (prefetched): the older open ones,
        # oldest first (normally none), so that a clear knows what stays open without asking.
        self._older: dict[str, list[AlarmRow]] = {}
        self.published: list[tuple[FeedEvent, dict[str, Any]]] = []

    async def prefetch(self, reduction_keys: Iterable[str]) -> None:
        """Look the open alarms of many keys up at once (a batch's, before applying it)."""
        keys = sorted({k for k in reduction_keys if k not in self._open})
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            query = select(AlarmRow).where(AlarmRow.reduction_key.in_(chunk), AlarmRow.open)
            rows: dict[str, list[AlarmRow]] = {k: [] for k in chunk}
            for row in (await self.session.scalars(query.order_by(AlarmRow.id))).all():
                rows[row.reduction_key].append(row)
            for key, open_rows in rows.items():
                self._open[key] = open_rows.pop() if open_rows else None  # the newest
                self._older[key] = open_rows

    async def open_by_key(self, reduction_key: str) -> AlarmRow | None:
        if reduction_key in self._open:
            return self._open[reduction_key]
        query = select(AlarmRow).where(AlarmRow.reduction_key == reduction_key, AlarmRow.open)
        row = (await self.session.scalars(query.order_by(AlarmRow.id.desc()).limit(1))).first()
        self._open[reduction_key] = row
        return row

    async def open_where(self, *conditions: Any) -> list[AlarmRow]:
        query = select(AlarmRow).where(AlarmRow.open, *conditions).order_by(AlarmRow.id)
        return list((await self.session.scalars(query)).all())

    async def get(self, alarm_id: int) -> AlarmRow:
        row = await self.session.get(AlarmRow, alarm_id)
        if row is None:
            raise NotFound(f"alarm {alarm_id} not found")
        return row

    async def raise_(
        self,
        s: Signal,
        *,
        defer_id: bool = False,
        repeats: int = 1,
        first_ns: int | None = None,
        **extra: Any,
    ) -> AlarmRow:
        """A new alarm, or the open one of the same key counted once more.

        A new alarm gets its id at once (an INSERT), unless `defer_id`: then its insert waits
        for the next `ensure_ids()` or query, so a batch's new alarms go in together. Only a
        caller that reads no id before calling `ensure_ids()` may defer.

        `repeats` > 1 applies that many raises of the key at once, `s` being the last of them
        (its severity and time) with the details of all merged, and `first_ns` the time of the
        first (a new alarm's raise time): as if they had come one by one."""
        when = moment(s.time_ns)
        row = await self.open_by_key(s.reduction_key)
        if row is not None:
            row.count += repeats
            row.perceived_severity = s.severity
            row.changed_time = when
            row.state = "updated"
            if s.details:
                row.details = {**(row.details or {}), **s.details}
            self.changed(row, "changed")
            return row
        row = AlarmRow(
            reduction_key=s.reduction_key,
            open=True,
            alarm_type=s.alarm_type,
            perceived_severity=s.severity,
            probable_cause=s.probable_cause,
            specific_problem=s.specific_problem,
            alarmed_object_type=s.object_type,
            alarmed_object=s.object,
            state="raised" if repeats == 1 else "updated",
            ack_state="unacknowledged",
            raised_time=when if first_ns is None else moment(first_ns),
            changed_time=when,
            service_affecting=bool(extra.pop("service_affecting", False)),
            affected_services=list(extra.pop("affected_services", [])),
            impact=extra.pop("impact", None),
            parent_id=extra.pop("parent_id", None),
            is_root_cause=bool(extra.pop("is_root_cause", False)),
            count=repeats,
            sequence=1,
            details=dict(s.details) or None,
        )
        if extra:
            raise TypeError(f"unknown alarm fields: {', '.join(sorted(extra))}")
        self.session.add(row)
        self._unflushed.append(row)
        if not defer_id:
            await self.ensure_ids()  # the id, for children and the feed
        self._open[row.reduction_key] = row  # the newest open alarm of its key
        self._new.add(id(row))
        self.changed(row, "raised")
        return row

    async def ensure_ids(self) -> None:
        """Insert the new alarms still waiting for their ids (all in one flush)."""
        if not self._unflushed:
            return
        if self.session.get_bind().dialect.name == "sqlite":
            # The ORM inserts rows one by one to learn their ids (SQLite cannot promise the
            # order of a multi-row RETURNING). This transaction holds SQLite's write lock from
            # its BEGIN IMMEDIATE (Database.transaction), so it can number the rows itself as
            # SQLite would (largest id + 1, the table has no AUTOINCREMENT) and the flush
            # becomes one executemany. PostgreSQL's sequence is left to do its own numbering.
            # Rows an autoflush already inserted have their ids: only the pending ones count.
            new = self.session.new  # a fresh set per call: taken once
            pending = [row for row in self._unflushed if row in new]
            if pending:
                with self.session.no_autoflush:
                    top = await self.session.scalar(select(func.max(AlarmRow.id)))
                for next_id, row in enumerate(pending, start=int(top or 0) + 1):
                    row.id = next_id
        self._unflushed.clear()
        await self.session.flush()

    def clear(self, row: AlarmRow, when: datetime, *, by: str | None = None) -> None:
        if not row.open:
            return
        row.open = False
        key = row.reduction_key
        if self._open.get(key) is row:
            older = self._older.get(key)
            if older is None:
                # Not None: an older open alarm of the key (if any) is the database's to tell.
                del self._open[key]
            else:
                while older and not older[-1].open:
                    older.pop()
                self._open[key] = older.pop() if older else None
        row.state = "cleared"
        row.perceived_severity = "cleared"
        row.cleared_time = when
        row.changed_time = when
        if by is not None:
            row.details = {**(row.details or {}), "clearedBy": by}
        self.changed(row, "cleared")

    async def clear_tree(self, root: AlarmRow, when: datetime) -> None:
        """Clear an alarm and every open alarm correlated under it (the ones it explains).

        A child that another open failure explains as well (its `causes`, see `add_cause`)
        moves under that one instead: a service cut by two failures is down until both end."""
        await self.ensure_ids()  # the children are found by the root's id
        self.clear(root, when)
        for child in await self.open_where(AlarmRow.parent_id == root.id):
            other = await self._other_open_cause(child, root.id)
            if other is not None:
                self.adopt(other, child)
            else:
                await self.clear_tree(child, when)

    def add_cause(self, child: AlarmRow, cause: AlarmRow) -> None:
        """Note that `cause` explains `child` too (it stays under its first parent)."""
        _need_ids(child, cause)
        causes = list((child.details or {}).get("causes", []))
        if child.parent_id is not None and child.parent_id not in causes:
            causes.append(child.parent_id)
        if cause.id in causes:
            return
        causes.append(cause.id)
        child.details = {**(child.details or {}), "causes": causes}
        self.changed(child, "changed")

    async def _other_open_cause(self, child: AlarmRow, cleared: int) -> AlarmRow | None:
        for cause_id in (child.details or {}).get("causes", []):
            if cause_id == cleared:
                continue
            cause = await self.session.get(AlarmRow, cause_id)
            if cause is not None and cause.open:
                return cause
        return None

    def adopt(self, parent: AlarmRow, child: AlarmRow) -> None:
        """Correlate `child` under `parent`; a former root cause stops being one."""
        _need_ids(parent, child)
        if child.id == parent.id or child.parent_id == parent.id:
            return
        child.parent_id = parent.id
        child.is_root_cause = False
        child.changed_time = max(child.changed_time, parent.changed_time)
        self.changed(child, "changed")
        self.changed(parent, "changed")

    def changed(self, row: AlarmRow, event: FeedEvent) -> None:
        previous = self._changed.get(id(row))
        if previous is not None:
            event = stronger(previous[1], event)
        self._changed[id(row)] = (row, event)

    async def flush(self) -> None:
        """Number and send every changed alarm (children rendered as they are now)."""
        if not self._changed:
            return
        await self.ensure_ids()
        children = await _children_of(self.session, [row.id for row, _ in self._changed.values()])
        changes: list[tuple[FeedEvent, dict[str, Any]]] = []
        for identity, (row, event) in self._changed.items():
            if identity not in self._new:
                row.sequence += 1
            doc = to_tmf(row, children.get(row.id, ()), href_base=self._href_base)
            changes.append((event, doc))
        # The feed queries the database (the alarms' last retained topics); without autoflush
        # those queries do not write out the alarm rows first: everything goes out together at
        # commit (batched inserts and updates). Safe because each alarm is sent once per
        # flush, so no alarm's lookup needs its own pending rows.
        with self.session.no_autoflush:
            if isinstance(self._feed, BatchAlarmFeed):
                await self._feed.enqueue_many(self.session, [(d, e) for e, d in changes])
            else:
                for event, doc in changes:
                    await self._feed.enqueue(self.session, doc, event)
        self.published += changes
        self._changed.clear()
        self._new.clear()


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


def _need_ids(*rows: AlarmRow) -> None:
    if any(row.id is None for row in rows):
        raise RuntimeError("alarm without its id yet: call AlarmTx.ensure_ids() first")


def stronger(a: FeedEvent, b: FeedEvent) -> FeedEvent:
    order = {"changed": 0, "raised": 1, "cleared": 2}
    return a if order[a] >= order[b] else b


# (parent, child) of the alarms correlated under `ids` (built once: cheaper than per batch).
CHILDREN = (
    select(AlarmRow.parent_id, AlarmRow.id)
    .where(AlarmRow.parent_id.in_(bindparam("ids", expanding=True)))
    .order_by(AlarmRow.id)
)


async def _children_of(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[int]]:
    return by_parent((await session.execute(CHILDREN, {"ids": list(ids)})).all())


def by_parent(rows: Iterable[Any]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for parent, child in rows:
        if parent is not None:
            found.setdefault(parent, []).append(child)
    return found


@dataclass(slots=True)
class Run:
    """Consecutive raises of one key folded into one (or a single clear)."""

    kind: SignalKind
    last: Signal
    first_ns: int
    count: int = 1
    details: dict[str, Any] | None = None  # merged over the run, when more than one has any


class _Runs:
    """The uncorrelated signals of a batch as runs per key (raise, raise, clear, raise ->
    raise x2, clear, raise x1), in the order each run began: new alarms are numbered as if the
    signals had come one by one."""

    def __init__(self) -> None:
        self._last: dict[str, Run] = {}
        self._runs: list[Run] = []

    def add(self, s: Signal) -> None:
        last = self._last.get(s.reduction_key)
        if s.kind == "raise" and last is not None and last.kind == "raise":
            if s.details:
                base = last.details if last.details is not None else dict(last.last.details)
                base.update(s.details)
                last.details = base
            elif last.details is None and last.last.details:
                last.details = dict(last.last.details)
            last.last = s
            last.count += 1
        else:
            run = Run(s.kind, s, s.time_ns)
            self._last[s.reduction_key] = run
            self._runs.append(run)

    def take(self) -> list[Run]:
        out, self._runs = self._runs, []
        self._last.clear()
        return out


# ------------------------------------------------------------------------------ broadcast


class Subscription:
    """One live listener. A listener too slow to keep up is dropped (`lost` is set) rather than
    letting its backlog grow: it re-reads the alarm list when it comes back."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[tuple[FeedEvent, dict[str, Any]]] = asyncio.Queue(size)
        self.lost = False
        self.closed = asyncio.Event()

    async def get(self) -> tuple[FeedEvent, dict[str, Any]] | None:
        """The next change, or None once this subscription was dropped."""
        if self.queue.empty() and self.closed.is_set():
            return None
        getter = asyncio.ensure_future(self.queue.get())
        closer = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closer.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None


class Broadcast:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        sub = Subscription(self._queue_size)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every live stream (the daemon is stopping)."""
        for sub in self._subscribers:
            sub.closed.set()
        self._subscribers.clear()

    def publish(self, event: FeedEvent, alarm: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait((event, alarm))
            except asyncio.QueueFull:
                log.warning("alarm stream listener too slow: dropped")
                sub.lost = True
                sub.closed.set()
                self._subscribers.discard(sub)


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
    ) -> None:
        self.db = db
        self.feed = feed
        self.href_base = href_base
        self.broadcast = Broadcast()
        if correlator is None:
            from oss.faults.correlate import Correlator  # correlate imports this module

            correlator = Correlator(graph_provider, services_provider)
        self.correlator = correlator
        from oss.faults.uncorrelated import apply_uncorrelated  # it imports this module

        self._apply_uncorrelated = apply_uncorrelated
        # Batches no correlation acts on skip the ORM; False: every batch goes through
        # AlarmTx (the reference the tests compare the plain lane with).
        self.plain_lane = True
        self._plain_feed: tuple[AlarmFeed, bool] | None = None
        # One signal at a time: reduction reads then writes the open alarm of a key, and two
        # concurrent raises of one key must not both create it.
        self._lock = asyncio.Lock()

    def close(self) -> None:
        self.broadcast.close()

    def _feed_writes_plain(self) -> bool:
        """Whether the feed is a PlainLaneFeed; remembered per feed object, because a runtime
        check against a Protocol costs more than a small batch's other bookkeeping."""
        if self._plain_feed is None or self._plain_feed[0] is not self.feed:
            self._plain_feed = (self.feed, isinstance(self.feed, PlainLaneFeed))
        return self._plain_feed[1]

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
            plain = self.plain_lane and self._feed_writes_plain()
            if plain and all(
                self.correlator.inert(s, c) for s, c in zip(batch, contexts, strict=True)
            ):
                return await self._uncorrelated(batch)

            async def work(tx: AlarmTx) -> None:
                await tx.prefetch(s.reduction_key for s in batch)
                # Signals the correlator leaves alone touch only their own key's alarm, so
                # between two others their order across keys does not matter and a run of
                # raises of one key folds into one (a storm's repeats cost one change, not
                # one each). Correlated signals are applied one by one, in order, after the
                # folded runs before them.
                runs = _Runs()
                for s, context in zip(batch, contexts, strict=True):
                    if self.correlator.inert(s, context):
                        runs.add(s)
                        continue
                    await self._apply_runs(tx, runs)
                    await self._apply(tx, s, context)
                await self._apply_runs(tx, runs)

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
        feed = cast(PlainLaneFeed, self.feed)
        runs = _Runs()
        for s in batch:
            runs.add(s)
        taken, href_base, apply = runs.take(), self.href_base, self._apply_uncorrelated
        published, written = await self.db.write(lambda conn: apply(conn, taken, feed, href_base))
        feed.committed(written)
        for event, doc in published:  # live listeners hear only what committed
            self.broadcast.publish(event, doc)
        return published

    async def _apply_runs(self, tx: AlarmTx, runs: _Runs) -> None:
        for run in runs.take():
            if run.kind == "raise":
                s = run.last if run.details is None else replace(run.last, details=run.details)
                await tx.raise_(s, defer_id=True, repeats=run.count, first_ns=run.first_ns)
            else:
                row = await tx.open_by_key(run.last.reduction_key)
                if row is not None:
                    tx.clear(row, moment(run.last.time_ns))

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
                other = await tx._other_open_cause(child, 0)
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
            children = await _children_of(session, [alarm_id])
            return to_tmf(row, children.get(alarm_id, ()), href_base=self.href_base)

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
            children = await _children_of(session, [r.id for r in rows])
            docs = [to_tmf(r, children.get(r.id, ()), href_base=self.href_base) for r in rows]
        return docs, int(total or 0)

    async def _transact(
        self, work: Callable[[AlarmTx], Awaitable[None]]
    ) -> list[tuple[FeedEvent, dict[str, Any]]]:
        async with self.db.transaction() as session:
            tx = AlarmTx(session, self.feed, self.href_base)
            await work(tx)
            await tx.flush()
        # Live listeners hear only what committed.
        for event, doc in tx.published:
            self.broadcast.publish(event, doc)
        return tx.published

"""The NOC feed: alarm changes published over MQTT, at least once, through a database outbox.

`NocFeed.enqueue` turns one alarm change into outbox rows inside the caller's transaction, so the
alarm and its messages commit (or roll back) together. `NocPublisher` drains the outbox in id
order to the broker with QoS 1 and marks a row sent only once the broker acknowledged it (aiomqtt's
`publish` awaits the PUBACK for QoS 1). Rows not marked sent are sent again after a broker outage
or a daemon restart; consumers de-duplicate by alarm `id` and `sequence`, both in every payload.

Topics (segments made MQTT-safe: `/`, `+`, `#` become `_`):

    <prefix>/alarms/<severity>/<device>/<alarm-id>   the alarm's current TMF642 JSON, retained
    <prefix>/events/<event>/<device>/<alarm-id>      the same JSON for raised|changed|cleared

The device is `alarm["device"]` when the alarm carries that key, otherwise the part of
`alarm["alarmedObject"]["id"]` before the first ":" ("r1:eth1" -> "r1"). Exactly one retained
message exists per open alarm: a severity change deletes the retained message at the old
severity's topic (zero-length retained publish); a cleared alarm is closed, so its retained
message is deleted and only the "cleared" event carries its final state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import aiomqtt
import paho.mqtt.client as mqtt
from aiomqtt.exceptions import MqttConnectError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from oss.errors import InvalidInput, OssError
from oss.store.base import IN_CHUNK, utcnow
from oss.store.database import Database
from oss.store.numbering import insert_numbered
from oss.store.tables import OutboxRow

log = logging.getLogger(__name__)

CHANNEL = "mqtt"
# One outbox row as the publisher sends it: id, topic, payload, retain, qos.
OutboxMessage = tuple[int, str, str, bool, int]
AlarmEvent = Literal["raised", "changed", "cleared"]
# X.733 / TMF642 perceived severities; the topics a retained message of an alarm can live at.
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate", "cleared")
# CONNACK reasons meaning "your credentials": MQTT 3.1.1 codes 4/5, MQTT 5 codes 134/135.
_AUTH_REFUSALS = {4, 5, 134, 135}
MARK_LINGER_S = 0.1  # acknowledged rows gather this long before they are marked sent
PRUNE_INTERVAL_S = 60.0  # how often sent rows older than keep_sent_s are deleted


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttTlsSettings(_Section):
    ca_file: Path | None = Field(default=None, description="CA bundle; None: the system's")
    cert_file: Path | None = Field(default=None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(default=None, description="key of the client certificate")
    insecure: bool = Field(
        default=False,
        description="skip verifying the broker's certificate and name; lab use only",
    )


class NocFeedSettings(_Section):
    """Where and how the NOC feed publishes. The password is a SecretStr: never printed."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    prefix: str = Field(default="oss", description="topic prefix, e.g. 'oss' or 'noc/site1'")
    client_id: str = Field(default="oss-noc-feed", min_length=1, max_length=64)
    username: str | None = None
    password: SecretStr | None = None
    tls: MqttTlsSettings | None = Field(default=None, description="None: plain TCP")
    keepalive: int = Field(default=30, ge=5, le=65535, description="seconds")
    publish_timeout_s: float = Field(default=10.0, gt=0, description="wait for one PUBACK")
    batch_size: int = Field(default=500, ge=1, description="rows in flight per round")
    poll_interval_s: float = Field(default=1.0, gt=0, description="outbox check when not woken")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    keep_sent_s: float = Field(default=86400.0, ge=0, description="sent rows kept this long")

    @field_validator("prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not value or any(c in value for c in "+#\0"):
            raise ValueError("prefix must be a non-empty topic without wildcards (+, #)")
        return value


class NocFeedError(OssError, ConnectionError):
    """The broker could not be reached or dropped the session. Names the broker, never the
    password."""

    status = 502
    slug = "mqtt-broker-unavailable"
    title = "MQTT broker unavailable"


class NocFeedAuthError(NocFeedError, PermissionError):
    slug = "mqtt-broker-auth-failed"
    title = "MQTT broker refused the credentials"


_UNSAFE = re.compile("[/+#\0]")


def topic_segment(value: object) -> str:
    """One topic level: MQTT separators and wildcards would change the topic's meaning."""
    text = str(value)
    return _UNSAFE.sub("_", text) or "_"


def alarm_device(alarm: Mapping[str, Any]) -> str:
    device = alarm.get("device")
    if device:
        return str(device)
    alarmed = alarm.get("alarmedObject") or {}
    object_id = str(alarmed.get("id", "")) if isinstance(alarmed, Mapping) else ""
    if not object_id:
        raise InvalidInput("alarm has neither 'device' nor 'alarmedObject.id'")
    return object_id.split(":", 1)[0]


class NocFeed:
    """Writes the MQTT messages of alarm changes into the outbox (the alarm engine's side)."""

    def __init__(self, settings: NocFeedSettings) -> None:
        self.prefix = settings.prefix

    def state_topic(self, severity: str, device: str, alarm_id: str) -> str:
        parts = (severity.lower(), device, alarm_id)
        return f"{self.prefix}/alarms/" + "/".join(topic_segment(p) for p in parts)

    def event_topic(self, event: str, device: str, alarm_id: str) -> str:
        parts = (event, device, alarm_id)
        return f"{self.prefix}/events/" + "/".join(topic_segment(p) for p in parts)

    async def enqueue(
        self, session: AsyncSession, alarm: Mapping[str, Any], event: AlarmEvent
    ) -> None:
        await self.enqueue_many(session, [(alarm, event)])

    async def enqueue_many(
        self, session: AsyncSession, changes: Sequence[tuple[Mapping[str, Any], AlarmEvent]]
    ) -> list[OutboxMessage]:
        """The messages of many alarm changes, in order, as `enqueue` one by one would write
        them, with one look-up of the alarms' last retained topics (chunked) and one bulk
        insert: a batch of alarm changes costs a few statements, not a few per alarm.

        The rows are inserted at once (not left pending in the session), so their ids follow
        the calls' order and a later call in the same transaction sees them. Returns them as
        written, ids included, for `NocPublisher.offer` once the transaction has committed."""
        return await session.run_sync(lambda sync: self.write_changes(sync.connection(), changes))

    def write_changes(
        self, conn: Connection, changes: Sequence[tuple[Mapping[str, Any], AlarmEvent]]
    ) -> list[OutboxMessage]:
        """`enqueue_many` on a synchronous connection, in its transaction (`Database.write`:
        the alarm engine's plain lane; `enqueue_many` runs it in its session's)."""
        planned = [self._plan(alarm, event) for alarm, event in changes]  # all valid, or none
        if not planned:
            return []
        found: dict[str, tuple[int, str, str]] = {}
        topics = sorted(_lookup_topics(planned))
        for start in range(0, len(topics), IN_CHUNK):
            chunk = {"topics": topics[start : start + IN_CHUNK]}
            for row in conn.execute(_LAST_RETAINED, chunk).all():
                found[row[1]] = (row[0], row[1], row[2])
        rows = _outbox_rows(planned, found)
        return _messages(insert_numbered(conn, OutboxRow, rows), rows)

    def committed(self, written: Sequence[OutboxMessage]) -> None:
        """After `write_changes` committed: nothing to tell (no publisher in this process)."""

    def _plan(self, alarm: Mapping[str, Any], event: AlarmEvent) -> _Planned:
        try:
            alarm_id = str(alarm["id"])
            severity = str(alarm["perceivedSeverity"]).lower()
            int(alarm["sequence"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"alarm for the NOC feed lacks a valid {exc}") from None
        device = alarm_device(alarm)
        tail = f"{topic_segment(device)}/{topic_segment(alarm_id)}"
        state_topic = f"{self.prefix}/alarms/{topic_segment(severity)}/{tail}"
        return _Planned(
            device=device,
            alarm_id=alarm_id,
            state_topic=state_topic,
            event_topic=f"{self.prefix}/events/{topic_segment(event)}/{tail}",
            candidates=frozenset(
                {f"{self.prefix}/alarms/{s}/{tail}" for s in SEVERITIES} | {state_topic}
            ),
            payload=json.dumps(alarm, sort_keys=True, separators=(",", ":"), default=str),
            closed=event == "cleared" or str(alarm.get("state", "")).lower() == "cleared",
            # Sequence 1: never published before (it moves on with each change sent), so
            # nothing of it is retained, even when its first message is a "cleared".
            new=event == "raised" or int(alarm["sequence"]) == 1,
        )


@dataclass(frozen=True, slots=True)
class _Planned:
    """One alarm change, ready for the outbox."""

    device: str
    alarm_id: str
    state_topic: str
    event_topic: str
    candidates: frozenset[str]  # every topic a retained message of this alarm can live at
    payload: str
    closed: bool
    new: bool


def _stale_topics(p: _Planned, last: tuple[str, str] | None) -> list[str]:
    """Retained topics of this alarm that must be emptied before (or instead of) its new
    state. The outbox is the memory of what was retained last (`last`: its newest retained row
    among the alarm's topics, this transaction's own rows included)."""
    if last is None:
        # No history: a new alarm has nothing retained; for an older one the rows were
        # pruned, so empty every other severity's topic rather than leave a stale one.
        if p.new:
            return []
        return sorted(t for t in p.candidates if p.closed or t != p.state_topic)
    topic, last_payload = last
    if last_payload == "":
        return []
    return [topic] if p.closed or topic != p.state_topic else []


def _lookup_topics(planned: Sequence[_Planned]) -> set[str]:
    """The topics whose last retained message matters: a new alarm has nothing retained."""
    return {t for p in planned if not p.new for t in p.candidates}


def _last_retained_query() -> Any:
    """(id, topic, payload) of the newest retained outbox row of each of `topics` (an
    expanding parameter: up to IN_CHUNK at a time) that has one."""
    newest = (
        select(func.max(OutboxRow.id))
        .where(
            # `|| ''` keeps the planner off the channel index (one value for all rows: it
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


def _outbox_rows(
    planned: Sequence[_Planned], last: Mapping[str, tuple[int, str, str]]
) -> list[dict[str, Any]]:
    """The rows of the planned changes, in order, given the last retained row of each looked
    up topic (`last`)."""
    # The last retained message (topic, payload) of each alarm, carried through the changes
    # (an alarm may change more than once in one call).
    latest: dict[tuple[str, str], tuple[str, str] | None] = {}
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for p in planned:
        key = (p.device, p.alarm_id)
        if key not in latest:
            found = [last[t] for t in p.candidates if t in last]
            latest[key] = max(found)[1:] if found else None  # the newest row: highest id
        stale = _stale_topics(p, latest[key])
        retained = [_row(t, "", now, retain=True) for t in stale]
        if not p.closed:
            retained.append(_row(p.state_topic, p.payload, now, retain=True))
        if retained:
            latest[key] = (retained[-1]["topic"], retained[-1]["payload"])
        rows += retained
        rows.append(_row(p.event_topic, p.payload, now, retain=False))
    return rows


def _messages(ids: Sequence[int], rows: Sequence[Mapping[str, Any]]) -> list[OutboxMessage]:
    return [
        (row_id, r["topic"], r["payload"], r["retain"], r["qos"])
        for row_id, r in zip(ids, rows, strict=True)
    ]


def _row(topic: str, payload: str, now: datetime, *, retain: bool) -> dict[str, Any]:
    """One outbox row's values (a bulk insert's parameters)."""
    return {
        "channel": CHANNEL,
        "topic": topic,
        "payload": payload,
        "retain": retain,
        "qos": 1,
        "created_at": now,
    }


class MqttLink(Protocol):
    """What the publisher needs of a connected client (aiomqtt.Client fits)."""

    async def publish(
        self,
        /,
        topic: str,
        payload: str | None = None,
        qos: int = 0,
        retain: bool = False,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - aiomqtt's own signature
    ) -> None: ...


Connector = Callable[[], AbstractAsyncContextManager[MqttLink]]


class NocPublisher:
    """Drains the outbox to the broker; run `run()` as one supervised task of the daemon.

    The database is the truth; memory is a shortcut. Writers that commit rows hand them over
    with `offer()` (the alarm engine does, through the runtime's feed), and the publisher sends
    those without reading them back. It reads the outbox itself (`publish_pending`) whenever
    memory may lack rows: at each (re)connection, after a failed round, after `wake()` (a
    writer that did not offer its rows), when the offered rows overflow `batch_size` x 10, and
    at every `poll_interval_s` of quiet."""

    def __init__(
        self,
        database: Database,
        settings: NocFeedSettings,
        *,
        connector: Connector | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
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

    def offer(self, rows: Sequence[OutboxMessage]) -> None:
        """Rows just committed, in id order: sent from memory unless the outbox must be read
        anyway (then they are found there)."""
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
        backoff = self.settings.backoff_initial_s
        failing = False
        while True:
            try:
                async with self._connector() as client:
                    self.connected = True
                    log.info("NOC feed connected", extra={"broker": self.broker})
                    failing, backoff = False, self.settings.backoff_initial_s
                    self._resync = True
                    while True:
                        await self._drain(client)
                        if time.monotonic() - self._pruned_at >= PRUNE_INTERVAL_S:
                            await self.prune()
                            self._pruned_at = time.monotonic()
                        await self._wait_for_work()
            except (NocFeedError, aiomqtt.MqttError, SQLAlchemyError, OSError) as exc:
                # Log once per outage, not once per attempt.
                if not failing:
                    log.warning(
                        "NOC feed interrupted, retrying with backoff: %s",
                        _describe(exc),
                        extra={"broker": self.broker},
                    )
                failing = True
            finally:
                self.connected = False
                self._resync = True
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.settings.backoff_max_s)

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
                    self._resync = len(rows) == batch  # more there than one round
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
            # the alarm engine's.
            await asyncio.sleep(MARK_LINGER_S)
        while self._unmarked:
            ids, self._unmarked = self._unmarked, []
            try:
                await self._mark_sent(ids)
            except SQLAlchemyError as exc:
                log.warning(
                    "NOC feed: %d sent rows not marked (they will be sent again): %s",
                    len(ids),
                    _describe(exc),
                )

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
        results: Sequence[object]
        if isinstance(client, PahoLink):
            messages = [
                (topic, payload or None, qos, retain) for _, topic, payload, retain, qos in outgoing
            ]
            results = await client.publish_round(messages, wait_s=timeout)
        else:
            # One task per row, created in id order: aiomqtt hands each to paho before its
            # first await, so the wire order is the id order while PUBACKs are awaited together.
            results = await asyncio.gather(
                *(
                    client.publish(topic, payload or None, qos=qos, retain=retain, timeout=timeout)
                    for _, topic, payload, retain, qos in outgoing
                ),
                return_exceptions=True,
            )
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
            if isinstance(failure, aiomqtt.MqttError | OSError):
                raise NocFeedError(
                    f"MQTT broker {self.broker}: publish failed: {_describe(failure)}"
                ) from failure
            raise failure
        return len(done)

    async def _unsent(self, limit: int) -> Sequence[tuple[int, str, str, bool, int]]:
        async with self.database.sessions() as session:
            result = await session.execute(
                select(
                    OutboxRow.id,
                    OutboxRow.topic,
                    OutboxRow.payload,
                    OutboxRow.retain,
                    OutboxRow.qos,
                )
                .where(OutboxRow.channel == CHANNEL, OutboxRow.sent_at.is_(None))
                .order_by(OutboxRow.id)
                .limit(limit)
            )
            return [(r.id, r.topic, r.payload, r.retain, r.qos) for r in result]

    async def _mark_sent(self, ids: list[int]) -> None:
        if not ids:
            return
        statement = update(OutboxRow).where(OutboxRow.id.in_(ids)).values(sent_at=utcnow())
        await self.database.write(lambda conn: conn.execute(statement))

    async def pending(self) -> int:
        async with self.database.sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.channel == CHANNEL, OutboxRow.sent_at.is_(None))
            )
            return int(count or 0)

    async def prune(self) -> None:
        """Forget rows sent longer ago than `keep_sent_s` (the outbox stays small)."""
        cutoff = utcnow() - timedelta(seconds=self.settings.keep_sent_s)
        async with self.database.transaction() as session:
            await session.execute(
                delete(OutboxRow).where(OutboxRow.channel == CHANNEL, OutboxRow.sent_at < cutoff)
            )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[MqttLink]:
        """One session with the broker; NocFeedAuthError when it refuses the credentials."""
        s = self.settings
        client = aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            identifier=s.client_id,
            # The outbox is the durable queue; a clean session avoids paho re-sending stale
            # in-flight messages out of order next to the outbox's own retries.
            clean_session=True,
            # Rounds are bounded by batch_size; paho's own bound would re-scan its queue on
            # every PUBACK.
            max_inflight_messages=0,
            keepalive=s.keepalive,
            timeout=s.publish_timeout_s,
            tls_params=_tls_params(s.tls),
            tls_insecure=s.tls.insecure if s.tls else None,
        )
        # A batch in flight is normal here, not the leak aiomqtt warns about by default.
        client.pending_calls_threshold = s.batch_size
        try:
            async with AsyncExitStack() as stack:
                try:
                    await stack.enter_async_context(client)
                except aiomqtt.MqttError as exc:
                    raise self._connect_error(exc) from None
                yield PahoLink(client)
        finally:
            # aiomqtt stores why the broker dropped us in a future it never reads again once
            # the session is over; read it so asyncio does not report it as unhandled.
            dropped = client._disconnected
            if dropped.done() and not dropped.cancelled():
                dropped.exception()

    def _connect_error(self, exc: aiomqtt.MqttError) -> NocFeedError:
        rc = getattr(exc, "rc", None)
        code = getattr(rc, "value", rc)
        if isinstance(exc, MqttConnectError) and code in _AUTH_REFUSALS:
            user = self.settings.username
            who = f"user {user!r}" if user else "anonymous clients"
            return NocFeedAuthError(
                f"MQTT broker {self.broker} refused {who}: {_describe(exc)}",
                broker=self.broker,
            )
        return NocFeedError(
            f"cannot connect to MQTT broker {self.broker}: {_describe(exc)}", broker=self.broker
        )


class PahoLink:
    """A connected aiomqtt client whose rounds of QoS 1 publishes go through its paho client
    directly: handed over in order, PUBACKs counted in one callback. aiomqtt's `publish`
    (a future, a timeout and a scan of its pending calls per message) costs 3-4x the CPU, which
    a trap storm's NOC feed cannot afford. Relies on aiomqtt 2.x internals (`_client`,
    `_disconnected`; the version is pinned in pyproject.toml); tested against Mosquitto."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self._paho = client._client
        self._waiting: dict[int, int] = {}  # message id -> index in the round
        self._all_acked: asyncio.Future[None] | None = None
        aiomqtt_callback = self._paho.on_publish

        def on_publish(*args: Any) -> None:
            if aiomqtt_callback is not None:
                aiomqtt_callback(*args)  # aiomqtt's own publish() calls still work
            self._acked(args[2])

        self._paho.on_publish = on_publish
        # A round is many small packets: without this, Nagle holds each one back until the
        # broker acknowledges the previous segment (a delayed ACK: up to 40 ms per round).
        sock = self._paho.socket()
        if isinstance(sock, socket.socket):  # TLS included (ssl.SSLSocket)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def publish(
        self,
        /,
        topic: str,
        payload: str | None = None,
        qos: int = 0,
        retain: bool = False,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - aiomqtt's own signature
    ) -> None:
        await self.client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout)

    async def publish_round(
        self, messages: Sequence[tuple[str, str | None, int, bool]], *, wait_s: float
    ) -> list[BaseException | None]:
        """(topic, payload, qos, retain) in order; per message None (acknowledged) or why
        not."""
        results: list[BaseException | None] = [None] * len(messages)
        waiting: dict[int, int] = {}
        done = asyncio.get_running_loop().create_future()
        self._waiting, self._all_acked = waiting, done
        try:
            for index, (topic, payload, qos, retain) in enumerate(messages):
                info = self._paho.publish(topic, payload, qos, retain)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    refused = aiomqtt.MqttCodeError(info.rc, "Could not publish message")
                    results[index:] = [refused] * (len(messages) - index)
                    break
                if qos and not info.is_published():
                    waiting[info.mid] = index
            if waiting:
                dropped = self.client._disconnected
                await asyncio.wait({done, dropped}, timeout=wait_s, return_when="FIRST_COMPLETED")
                if waiting:
                    lost = aiomqtt.MqttError(
                        "connection lost" if dropped.done() else "no PUBACK in time"
                    )
                    for index in waiting.values():
                        results[index] = lost
        finally:
            self._waiting, self._all_acked = {}, None
        return results

    def _acked(self, mid: int) -> None:
        if self._waiting.pop(mid, None) is not None and not self._waiting:
            done = self._all_acked
            if done is not None and not done.done():
                done.set_result(None)


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


def _tls_params(tls: MqttTlsSettings | None) -> aiomqtt.TLSParameters | None:
    if tls is None:
        return None
    return aiomqtt.TLSParameters(
        ca_certs=str(tls.ca_file) if tls.ca_file else None,
        certfile=str(tls.cert_file) if tls.cert_file else None,
        keyfile=str(tls.key_file) if tls.key_file else None,
        cert_reqs=ssl.CERT_NONE if tls.insecure else ssl.CERT_REQUIRED,
    )


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__

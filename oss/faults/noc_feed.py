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
import ssl
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from oss.errors import InvalidInput, OssError
from oss.store.base import utcnow
from oss.store.database import Database
from oss.store.tables import OutboxRow

log = logging.getLogger(__name__)

CHANNEL = "mqtt"
AlarmEvent = Literal["raised", "changed", "cleared"]
# X.733 / TMF642 perceived severities; the topics a retained message of an alarm can live at.
SEVERITIES = ("critical", "major", "minor", "warning", "indeterminate", "cleared")
# CONNACK reasons meaning "your credentials": MQTT 3.1.1 codes 4/5, MQTT 5 codes 134/135.
_AUTH_REFUSALS = {4, 5, 134, 135}
_IN_CHUNK = 500  # topics per IN (...) look-up: under SQLite's bound-parameter limit


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
    batch_size: int = Field(default=200, ge=1, description="rows in flight per round")
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


def topic_segment(value: object) -> str:
    """One topic level: MQTT separators and wildcards would change the topic's meaning."""
    text = str(value)
    for char in "/+#\0":
        text = text.replace(char, "_")
    return text or "_"


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
    ) -> None:
        """The messages of many alarm changes, in order, as `enqueue` one by one would write
        them, with one look-up of the alarms' last retained topics (chunked) and one bulk
        insert: a batch of alarm changes costs a few statements, not a few per alarm.

        The rows are inserted at once (not left pending in the session), so their ids follow
        the calls' order and a later call in the same transaction sees them."""
        planned = [self._plan(alarm, event) for alarm, event in changes]  # all valid, or none
        if not planned:
            return
        last = await _last_retained(session, {t for p in planned for t in p.candidates})
        # The last retained message (topic, payload) of each alarm, carried through the
        # changes of this call (an alarm may change more than once in one call).
        latest: dict[tuple[str, str], tuple[str, str] | None] = {}
        rows: list[dict[str, Any]] = []
        for p in planned:
            key = (p.device, p.alarm_id)
            if key not in latest:
                found = [last[t] for t in p.candidates if t in last]
                latest[key] = max(found)[1:] if found else None  # the newest row: highest id
            stale = _stale_topics(p, latest[key])
            retained = [_row(t, "", retain=True) for t in stale]
            if not p.closed:
                retained.append(_row(p.state_topic, p.payload, retain=True))
            if retained:
                latest[key] = (retained[-1]["topic"], retained[-1]["payload"])
            rows += retained
            rows.append(_row(p.event_topic, p.payload, retain=False))
        await session.execute(insert(OutboxRow), rows)

    def _plan(self, alarm: Mapping[str, Any], event: AlarmEvent) -> _Planned:
        try:
            alarm_id = str(alarm["id"])
            severity = str(alarm["perceivedSeverity"]).lower()
            int(alarm["sequence"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"alarm for the NOC feed lacks a valid {exc}") from None
        device = alarm_device(alarm)
        state_topic = self.state_topic(severity, device, alarm_id)
        return _Planned(
            device=device,
            alarm_id=alarm_id,
            state_topic=state_topic,
            event_topic=self.event_topic(event, device, alarm_id),
            candidates=frozenset(
                {self.state_topic(s, device, alarm_id) for s in SEVERITIES} | {state_topic}
            ),
            payload=json.dumps(alarm, sort_keys=True, separators=(",", ":"), default=str),
            closed=event == "cleared" or str(alarm.get("state", "")).lower() == "cleared",
            new=event == "raised",
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


async def _last_retained(
    session: AsyncSession, topics: Collection[str]
) -> dict[str, tuple[int, str, str]]:
    """Topic -> (id, topic, payload) of the newest retained outbox row of each topic that has
    one: one query per chunk of topics."""
    ordered = sorted(topics)
    found: dict[str, tuple[int, str, str]] = {}
    for start in range(0, len(ordered), _IN_CHUNK):
        newest = (
            select(func.max(OutboxRow.id))
            .where(
                # `|| ''` keeps the planner off the channel index (one value for all rows:
                # it scanned the whole outbox for an alarm without history) and on the topic's.
                OutboxRow.channel.concat("") == CHANNEL,
                OutboxRow.retain.is_(True),
                OutboxRow.topic.in_(ordered[start : start + _IN_CHUNK]),
            )
            .group_by(OutboxRow.topic)
        )
        query = select(OutboxRow.id, OutboxRow.topic, OutboxRow.payload).where(
            OutboxRow.id.in_(newest.scalar_subquery())
        )
        for row_id, topic, payload in (await session.execute(query)).all():
            found[topic] = (row_id, topic, payload)
    return found


def _row(topic: str, payload: str, *, retain: bool) -> dict[str, Any]:
    """One outbox row's values (a bulk insert's parameters)."""
    return {
        "channel": CHANNEL,
        "topic": topic,
        "payload": payload,
        "retain": retain,
        "qos": 1,
        "created_at": utcnow(),
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
    """Drains the outbox to the broker; run `run()` as one supervised task of the daemon."""

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

    def wake(self) -> None:
        """Tell the publisher new rows were committed (saves waiting for the next poll)."""
        self._wake.set()

    async def run(self) -> None:
        """Connect, drain, wait for work; reconnect with exponential backoff after any
        broker or database failure. Runs until cancelled."""
        backoff = self.settings.backoff_initial_s
        failing = False
        while True:
            try:
                async with self._connector() as client:
                    self.connected = True
                    log.info("NOC feed connected", extra={"broker": self.broker})
                    failing, backoff = False, self.settings.backoff_initial_s
                    while True:
                        await self.publish_pending(client)
                        await self.prune()
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
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.settings.backoff_max_s)

    async def _wait_for_work(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval_s)
        except TimeoutError:
            return
        finally:
            self._wake.clear()

    async def publish_pending(self, client: MqttLink) -> int:
        """Publish every unsent row in id order; returns how many rows were done (acknowledged
        by the broker, or superseded). On a failure, the rows done before the first failed one
        are marked sent and the error is raised: the rest go again, in order, after
        reconnecting (a retained state must never be overtaken by an older one).

        A retained state followed in the same round by a newer state of the same topic is
        superseded: the broker would keep only the newer one, so it is marked sent without
        being published (under a storm an alarm's state changes faster than it is sent; every
        change still goes out on its event topic)."""
        total = 0
        while True:
            rows = await self._unsent(self.settings.batch_size)
            if not rows:
                return total
            superseded = _superseded(rows)
            outgoing = [row for i, row in enumerate(rows) if i not in superseded]
            # One task per row, created in id order: aiomqtt hands each to paho before its
            # first await, so the wire order is the id order while PUBACKs are awaited together.
            results = await asyncio.gather(
                *(
                    client.publish(
                        topic,
                        payload or None,
                        qos=qos,
                        retain=retain,
                        timeout=self.settings.publish_timeout_s,
                    )
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
            await self._mark_sent(done)
            total += len(done)
            self.published += sum(1 for row in outgoing if failed_at is None or row[0] < failed_at)
            if failure is not None:
                if isinstance(failure, aiomqtt.MqttError | OSError):
                    raise NocFeedError(
                        f"MQTT broker {self.broker}: publish failed: {_describe(failure)}"
                    ) from failure
                raise failure

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
        async with self.database.transaction() as session:
            await session.execute(
                update(OutboxRow).where(OutboxRow.id.in_(ids)).values(sent_at=utcnow())
            )

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
                yield client
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


def _superseded(rows: Sequence[tuple[int, str, str, bool, int]]) -> set[int]:
    """Indexes of the retained states that a later retained state of the same topic replaces
    (deletes, zero-length, always go out: a consumer may be told a state is gone)."""
    newest: dict[str, int] = {}
    for index, (_, topic, payload, retain, _) in enumerate(rows):
        if retain and payload:
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

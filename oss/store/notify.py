"""Change notices between the instances of a cluster: PostgreSQL NOTIFY in the writer's
transaction, LISTEN on one connection per instance.

A writer calls `Notifications.send(conn, channel, ...)` inside the transaction that makes the
change: PostgreSQL delivers the notice to every listening session when (and only if) that
transaction commits, in commit order. `Notifications.run` LISTENs on one dedicated connection
and hands each notice of another instance to its channel's handler, one at a time, in order
(an instance ignores its own: its writers told their listeners in memory already). A notice
carries what changed (ids, names), not the state: the handler reads the state, committed, from
the database.

Notices sent while this instance was not listening are lost (NOTIFY keeps nothing). So after
every (re)connection, the first one included (the gap since start-up's reads), each channel's
`resync` runs: it reads again what the channel's handler would have been told. A notice too
long for PostgreSQL (8000 bytes) is split (`send_items`) or replaced by a resync request
(`RESYNC`). SQLite is one instance: `notify` does nothing there and no listener runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from oss.backoff import Backoff
from oss.components import Stage

log = logging.getLogger(__name__)

# The channels (PostgreSQL identifiers) and what their notices carry besides the instance.
ALARMS = "oss_alarms"  # "alarms": [[id, "raised" | "changed" | "cleared"], ...]
INVENTORY = "oss_inventory"  # "sites", "devices", "interfaces", "links": the objects touched
OUTBOX = "oss_outbox"  # nothing: rows were committed; the publisher reads the outbox
MAP_VIEWS = "oss_map_views"  # "view": the saved layout changed
SHARES = "oss_shares"  # the leader moved device shares (oss.cluster)
CHANNELS = (ALARMS, INVENTORY, OUTBOX, MAP_VIEWS, SHARES)

INSTANCE = "instance"  # the sender, in every notice
RESYNC = "resync"  # a notice with this key set: read the channel's state again
PAYLOAD_LIMIT = 7900  # bytes; PostgreSQL refuses a payload of 8000 or more
QUEUE_LIMIT = 10_000  # notices waiting for their handler; past it the channel resyncs instead
KEEPALIVE_S = 5.0  # the listening connection is checked this often (a silent peer loss)
BACKOFF_INITIAL_S, BACKOFF_MAX_S = 0.5, 10.0

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]
Resync = Callable[[], Awaitable[None]]

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def notify(conn: Connection, channel: str, payload: Mapping[str, Any]) -> None:
    """NOTIFY `channel` with `payload` (JSON) in the caller's transaction: delivered to the
    listeners once it commits, never if it rolls back. No-op on SQLite (one instance). A
    payload longer than PostgreSQL takes goes as a resync request (same sender)."""
    if conn.dialect.name != "postgresql":
        return
    body = _encoded(payload)
    if len(body.encode()) > PAYLOAD_LIMIT:
        body = _encoded({INSTANCE: payload.get(INSTANCE), RESYNC: True})
    conn.execute(_NOTIFY, {"channel": channel, "payload": body})


def _encoded(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)


@dataclass
class _Channel:
    handler: Handler
    resync: Resync | None


class Notifications:
    """This instance's side of the notices: `send` in a writer's transaction; `on` registers a
    channel's handler and resync; `run` is the listening runtime component."""

    name = "notifications"
    stage = Stage.WORKERS

    def __init__(self, url: URL, instance: str) -> None:
        self._url = url
        self.instance = instance
        self._channels: dict[str, list[_Channel]] = {}
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._overflowed: set[str] = set()  # channels whose notices were dropped: resync
        self._work = asyncio.Event()
        self.listening = asyncio.Event()  # set while LISTENing (tests wait for it)
        self.server_pid: int | None = None  # the listening session's backend (pg_stat_activity)
        self.heard: dict[str, int] = dict.fromkeys(CHANNELS, 0)  # other instances' notices
        self.resyncs = 0  # resync rounds run (after each connection, or an overflow)

    # ------------------------------------------------------------------------------ sending

    def send(self, conn: Connection, channel: str, **fields: Any) -> None:
        """A notice from this instance, in the caller's transaction (see `notify`)."""
        notify(conn, channel, {INSTANCE: self.instance, **fields})

    def send_items(self, conn: Connection, channel: str, key: str, items: Sequence[Any]) -> None:
        """`items` under `key`, in as many notices as PostgreSQL's payload limit needs (a
        storm batch's hundreds of alarms); none for no items."""
        if conn.dialect.name != "postgresql" or not items:
            return
        head = len(_encoded({INSTANCE: self.instance, key: []}).encode())
        chunk: list[Any] = []
        size = head
        for item in items:
            item_size = len(_encoded(item).encode()) + 1  # and its comma
            if chunk and size + item_size > PAYLOAD_LIMIT:
                self.send(conn, channel, **{key: chunk})
                chunk, size = [], head
            chunk.append(item)
            size += item_size
        self.send(conn, channel, **{key: chunk})

    # ---------------------------------------------------------------------------- listening

    def on(self, channel: str, handler: Handler, resync: Resync | None = None) -> None:
        """Hand other instances' notices on `channel` to `handler` (after the handlers
        registered before); `resync` reads the channel's state again when notices may have
        been missed."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown notification channel {channel!r}")
        self._channels.setdefault(channel, []).append(_Channel(handler, resync))

    async def run(self, stop: asyncio.Event) -> None:
        """LISTEN until `stop`; reconnect with backoff after any loss, then resync."""
        worker = asyncio.create_task(self._handle_forever())
        try:
            await self._listen_until(stop)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def _listen_until(self, stop: asyncio.Event) -> None:
        backoff = Backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S)
        # Its own engine without a pool: the listening connection is held for the daemon's
        # life and must not take one of the writers' pooled connections.
        engine = create_async_engine(self._url, poolclass=NullPool)
        try:
            while not stop.is_set():
                try:
                    async with engine.connect() as conn:
                        raw: Any = (await conn.get_raw_connection()).driver_connection
                        lost = _on_close(raw)
                        for channel in CHANNELS:  # all: a handler may register later
                            await raw.add_listener(channel, self._heard)
                        if backoff.succeeded():
                            log.info("cluster notifications: listening again")
                        self.server_pid = raw.get_server_pid()
                        self.listening.set()
                        self._request_resync(self._channels)  # what was missed meanwhile
                        await self._hold(raw, lost, stop)
                except Exception as exc:  # noqa: BLE001  (the database went away: logged)
                    if backoff.failed():
                        log.warning(
                            "cluster notifications: not listening, retrying with backoff: %s",
                            _first_line(exc),
                            extra={"database": self._url.render_as_string(hide_password=True)},
                        )
                finally:
                    self.listening.clear()
                    self.server_pid = None
                if not stop.is_set():
                    await _wait(stop, backoff.pause())
        finally:
            await engine.dispose()

    async def _hold(self, raw: Any, lost: asyncio.Event, stop: asyncio.Event) -> None:
        """Stay connected until `stop` or the connection is lost (checked every keepalive)."""
        while not stop.is_set():
            if await _wait_any(stop, lost, KEEPALIVE_S):
                if lost.is_set():
                    raise ConnectionError("the listening connection was closed")
                return
            await asyncio.wait_for(raw.execute("SELECT 1"), KEEPALIVE_S)

    def _heard(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        try:
            notice = json.loads(payload)
        except ValueError:
            log.warning("cluster notifications: %s: a notice that is not JSON ignored", channel)
            return
        if not isinstance(notice, dict) or notice.get(INSTANCE) == self.instance:
            return
        self.heard[channel] = self.heard.get(channel, 0) + 1
        if notice.get(RESYNC):
            self._request_resync([channel])
        elif len(self._queue) >= QUEUE_LIMIT:
            self._request_resync([channel])  # its resync reads what the dropped ones said
        else:
            self._queue.append((channel, notice))
        self._work.set()

    def _request_resync(self, channels: Iterable[str]) -> None:
        self._overflowed.update(channels)
        self._work.set()

    async def _handle_forever(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            await self.handle_pending()

    async def handle_pending(self) -> None:
        """Run the handlers of the notices heard so far, in order, and the resyncs asked for
        (a resync before the notices queued after it: they are newer than what it reads)."""
        while self._overflowed or self._queue:
            if self._overflowed:
                channels, self._overflowed = self._overflowed, set()
                self._queue = deque((c, n) for c, n in self._queue if c not in channels)
                self.resyncs += 1
                for channel in sorted(channels):
                    await self._resync(channel)
                continue
            channel, notice = self._queue.popleft()
            await self._handle(channel, notice)

    async def _handle(self, channel: str, notice: Mapping[str, Any]) -> None:
        for registered in self._channels.get(channel, ()):
            try:
                await registered.handler(notice)
            except Exception:  # the change committed elsewhere: read it whole again
                log.exception("cluster notifications: %s: a notice failed; resyncing", channel)
                self._overflowed.add(channel)

    async def _resync(self, channel: str) -> None:
        for registered in self._channels.get(channel, ()):
            if registered.resync is None:
                continue
            try:
                await registered.resync()
            except Exception:  # logged; the next notice or reconnection tries again
                log.exception("cluster notifications: %s: resync failed", channel)


def _first_line(exc: BaseException) -> str:
    """The error's kind and first line (SQLAlchemy appends the statement and a link)."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _on_close(raw: Any) -> asyncio.Event:
    """An event set when the driver's connection closes (the server ended it, say)."""
    lost = asyncio.Event()
    raw.add_termination_listener(lambda _conn: lost.set())
    return lost


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, lost: asyncio.Event, seconds: float) -> bool:
    """True once `stop` or `lost` is set; False after `seconds` of neither."""
    waiters = {asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())}
    done, pending = await asyncio.wait(
        waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    return bool(done)

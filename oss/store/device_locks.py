"""Locks that hold across instances (PostgreSQL advisory locks): one per device for the life of
a provisioning transaction, and one for placement and reservation.

A device lock is a session-level advisory lock keyed (namespace, stable hash of the device
name), taken on a connection of its own that is held for the transaction's life (never one of
the pool's, and outside any database transaction, so no idle-in-transaction timeout ends it).
The server releases it when the transaction ends, and when the instance's process dies and its
connection closes; a paused process keeps it, which is the point: nobody recovers a change
that its instance may still be pushing. The connection is named `oss-locks:<instance>`, so a
wait that times out names who holds the device (pg_locks + pg_stat_activity).

Placement and reservation take a transaction-level advisory lock in the reserving transaction
(`lock_placement`): two instances never hold the same bandwidth or VLAN, and a paused holder's
lock ends with its transaction. SQLite has one instance, whose in-process locks suffice."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from oss.errors import Conflict, StorageError

# Advisory lock namespaces (the first int4 of a two-key lock): "OSSd" and "OSSp".
DEVICE_NAMESPACE = 0x4F535364
PLACEMENT_NAMESPACE = 0x4F535370
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock wait that hit lock_timeout
APPLICATION_PREFIX = "oss-locks:"
NO_INSTANCE = "-"  # the name of a daemon not in cluster mode, in its connections' names
KEPT_CONNECTIONS = 4  # lock connections kept open between transactions


class DevicesBusy(Conflict):
    """A device is held by another transaction (here or on another instance) past the wait."""


def device_key(device: str) -> int:
    """The device's advisory lock key: a stable signed 32-bit hash of its name (the same on
    every instance and every run; Python's hash() is salted per process)."""
    digest = hashlib.blake2b(device.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_order(devices: Iterable[str]) -> list[tuple[int, str]]:
    """(key, device) in the one order every locker takes them: by key, then name. Keys (not
    names) decide, so two devices whose names hash alike never make two lockers wait for each
    other in a circle."""
    return sorted({(device_key(d), d) for d in devices})


async def lock_placement(session: AsyncSession) -> None:
    """Serialise placement and reservation across instances until `session`'s transaction
    ends (PostgreSQL; SQLite has one writer and one instance)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": PLACEMENT_NAMESPACE})


# The server probes an idle lock connection (a holder waiting for its devices): locks held by a
# host that vanished (no FIN, no RST) go within about 25 s, not the kernel's two hours. A
# stopped process's kernel still answers the probes: a paused instance keeps its locks.
_SESSION = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}


class AdvisoryDeviceLocks:
    """Device locks on PostgreSQL: `holding(devices, wait_s)` takes every device's lock on a
    connection of its own and keeps it until the block ends."""

    def __init__(self, url: Any, instance: str | None) -> None:
        self.instance = instance or NO_INSTANCE
        self.application = APPLICATION_PREFIX + self.instance
        # Not the daemon's pool (its connections serve everyone, and waiters would drain it):
        # a pool of its own, a connection per holder, never idle inside a transaction (no
        # timeout ends a holder's locks), back in the pool only once it holds none. A few are
        # kept open: opening one took 60-100 ms on a loaded host, more than the locks.
        self._engine: AsyncEngine = create_async_engine(
            url,
            isolation_level="AUTOCOMMIT",
            pool_size=KEPT_CONNECTIONS,
            max_overflow=-1,  # a holder never waits for a connection
            pool_pre_ping=True,
            connect_args={"server_settings": _SESSION | {"application_name": self.application}},
        )

    @asynccontextmanager
    async def holding(self, devices: Iterable[str], *, wait_s: float | None) -> AsyncIterator[None]:
        """Every device's lock, in `lock_order`, in one statement, waiting at most `wait_s` for
        any one of them (None: as long as it takes; 0: only if all are free now);
        `DevicesBusy` names the device and its holder."""
        order = lock_order(devices)
        if not order:
            yield
            return
        try:
            conn = await self._engine.connect()
        except (DBAPIError, OSError) as exc:
            raise StorageError(f"device locks: cannot connect to the database: {exc}") from exc
        try:
            await _lock_all(conn, order, wait_s)
            yield
        finally:
            await asyncio.shield(_release(conn))

    async def close(self) -> None:
        await self._engine.dispose()


# Every key in one statement, in key order (the sorted subquery feeds the aggregate in its
# order): a transaction's locks cost one round trip whatever its number of devices.
_ORDERED = "(SELECT k FROM unnest(CAST(:keys AS integer[])) AS k ORDER BY k) AS ordered"
_LOCK_ALL = text(f"SELECT count(pg_advisory_lock(:ns, k)) FROM {_ORDERED}")
_TRY_ALL = text(f"SELECT bool_and(pg_try_advisory_lock(:ns, k)) FROM {_ORDERED}")
_HOLDERS = text(
    "SELECT l.objid::bigint AS objid, a.application_name, a.pid FROM pg_locks l"
    " JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()"
    " AND l.classid::bigint = :ns AND l.objsubid = 2 AND l.objid::bigint = ANY(:objids)"
)


async def _lock_all(
    conn: AsyncConnection, order: list[tuple[int, str]], wait_s: float | None
) -> None:
    args = {"ns": DEVICE_NAMESPACE, "keys": sorted({key for key, _ in order})}
    if wait_s is not None and wait_s <= 0:
        if not await conn.scalar(_TRY_ALL, args):
            raise await _busy(conn, order, 0.0)
        return
    # lock_timeout bounds each server-side wait (0: none); a statement of its own, since the
    # connection is in autocommit and SET LOCAL would end with its one-statement transaction.
    timeout_ms = 0 if wait_s is None else max(int(wait_s * 1000), 1)
    await conn.execute(text(f"SET lock_timeout = {timeout_ms}"))
    try:
        await conn.execute(_LOCK_ALL, args)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise StorageError(f"device locks: {exc.orig}") from exc
        raise await _busy(conn, order, wait_s or 0.0) from None


async def _busy(
    conn: AsyncConnection, order: list[tuple[int, str]], waited_s: float
) -> DevicesBusy:
    """The refusal: the first device another session holds, its instance and backend pid."""
    objids = sorted({key & 0xFFFFFFFF for key, _ in order})
    held = {
        int(row.objid): row
        for row in await conn.execute(_HOLDERS, {"ns": DEVICE_NAMESPACE, "objids": objids})
    }
    busy = [(device, held[key & 0xFFFFFFFF]) for key, device in order if key & 0xFFFFFFFF in held]
    if not busy:
        device, holder = order[0][1], "another transaction (released since)"
    else:
        device, row = busy[0]
        name = str(row.application_name or "")
        who = name.removeprefix(APPLICATION_PREFIX) if name.startswith(APPLICATION_PREFIX) else ""
        if who == NO_INSTANCE:
            holder = "a transaction of another daemon on this database (not in cluster mode)"
        else:
            holder = f"a transaction of instance {who}" if who else "another session"
        holder += f" (database backend pid {row.pid})"
    return DevicesBusy(
        f"device {device} is being changed by {holder}; waited {waited_s:g} s",
        device=device,
    )


async def _release(conn: AsyncConnection) -> None:
    """Every lock of the connection, then the connection back to the pool; one that cannot
    say it let go of them all is closed for good (the server releases a session's locks)."""
    released = False
    try:
        with contextlib.suppress(DBAPIError, OSError):  # broken: the server let go with it
            if not conn.closed and not conn.invalidated:
                await conn.execute(text("SELECT pg_advisory_unlock_all()"))
                released = True
    finally:
        if not released:  # broken, or interrupted mid-statement: never back to the pool
            with contextlib.suppress(DBAPIError, OSError):
                await conn.invalidate()
        with contextlib.suppress(DBAPIError, OSError):
            await conn.close()

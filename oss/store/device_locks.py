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
import hashlib
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from oss.errors import Conflict, StorageError

# Advisory lock namespaces (the first int4 of a two-key lock): "OSSd" and "OSSp".
DEVICE_NAMESPACE = 0x4F535364
PLACEMENT_NAMESPACE = 0x4F535370
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock wait that hit lock_timeout
APPLICATION_PREFIX = "oss-locks:"


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


class AdvisoryDeviceLocks:
    """Device locks on PostgreSQL: `holding(devices, wait_s)` takes every device's lock on a
    new connection and keeps it until the block ends."""

    def __init__(self, url: Any, instance: str | None) -> None:
        self.instance = instance or "-"
        # A connection per holder, opened and closed with it: the pool's connections come and
        # go (and would carry the lock with them), and waiters must not drain the pool.
        self._engine: AsyncEngine = create_async_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "server_settings": {"application_name": APPLICATION_PREFIX + self.instance}
            },
        )

    @asynccontextmanager
    async def holding(self, devices: Iterable[str], *, wait_s: float | None) -> AsyncIterator[None]:
        """Every device's lock, in `lock_order`, waiting at most `wait_s` in all (None: as long
        as it takes; 0: only if free now); `DevicesBusy` names the device and its holder."""
        order = lock_order(devices)
        if not order:
            yield
            return
        deadline = None if wait_s is None else time.monotonic() + wait_s
        try:
            conn = await self._engine.connect()
        except (DBAPIError, OSError) as exc:
            raise StorageError(f"device locks: cannot connect to the database: {exc}") from exc
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for key, device in order:
                await _lock_one(conn, key, device, deadline)
            yield
        finally:
            await asyncio.shield(_release(conn))

    async def close(self) -> None:
        await self._engine.dispose()


async def _lock_one(conn: AsyncConnection, key: int, device: str, deadline: float | None) -> None:
    args = {"ns": DEVICE_NAMESPACE, "key": key}
    left_ms = None if deadline is None else int((deadline - time.monotonic()) * 1000)
    if left_ms is not None and left_ms <= 0:
        if await conn.scalar(text("SELECT pg_try_advisory_lock(:ns, :key)"), args):
            return
        raise await _busy(conn, key, device, 0.0)
    # lock_timeout bounds the server-side wait (0: none); a statement of its own, since the
    # connection is in autocommit and SET LOCAL would end with its one-statement transaction.
    await conn.execute(text(f"SET lock_timeout = {left_ms or 0}"))
    try:
        await conn.execute(text("SELECT pg_advisory_lock(:ns, :key)"), args)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise StorageError(f"device locks: {exc.orig}") from exc
        raise await _busy(conn, key, device, (left_ms or 0) / 1000) from None


async def _busy(conn: AsyncConnection, key: int, device: str, waited_s: float) -> DevicesBusy:
    """The refusal, naming the holder's instance and backend pid when the server says."""
    row = (
        await conn.execute(
            text(
                "SELECT a.application_name, a.pid FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.classid::bigint = :ns AND l.objid::bigint = :objid AND l.objsubid = 2"
                " LIMIT 1"
            ),
            {"ns": DEVICE_NAMESPACE, "objid": key & 0xFFFFFFFF},
        )
    ).first()
    if row is None:
        holder = "another transaction (released since)"
    else:
        name = str(row.application_name or "")
        who = name.removeprefix(APPLICATION_PREFIX) if name.startswith(APPLICATION_PREFIX) else ""
        holder = f"a transaction of instance {who}" if who else "another session"
        holder += f" (database backend pid {row.pid})"
    return DevicesBusy(
        f"device {device} is being changed by {holder}; waited {waited_s:g} s",
        device=device,
    )


async def _release(conn: AsyncConnection) -> None:
    """Every lock of the connection, then the connection (closing alone would release them
    too, once the server notices)."""
    try:
        if not conn.closed and not conn.invalidated:
            await conn.execute(text("SELECT pg_advisory_unlock_all()"))
    except DBAPIError:
        pass  # the connection broke: the server released its locks with the session
    finally:
        await conn.close()

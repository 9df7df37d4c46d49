"""What every driver shares: the connection target, worker threads for blocking libraries,
per-device session reuse with a concurrency limit, and the driver contracts.

Blocking libraries (ncclient, netmiko, pygnmi) run in a bounded thread pool. A call has a
timeout; when it times out or its task is cancelled, the driver's `abort` hook closes the
transport so the thread's call returns promptly, and the timeout or cancellation re-raises.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, Self, TypeVar

from drivers.credentials import Credentials

log = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


@dataclass(frozen=True)
class Target:
    """Where and how to reach one device with one protocol."""

    name: str  # the inventory's device name: used in every message
    host: str
    port: int
    credentials: Credentials = field(default_factory=Credentials)
    timeout_s: float = 30.0  # for each call
    options: Mapping[str, Any] = field(default_factory=dict)  # protocol-specific knobs

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


class BlockingCalls:
    """A bounded pool of worker threads for one blocking library."""

    def __init__(self, name: str, max_workers: int = 16) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        time_limit: float,
        abort: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> T:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        # One waiter woken by the call's end or by a timer: what wait_for(shield(...)) does,
        # without its task and futures (a provisioning transaction makes thousands of calls).
        # The call itself is never cancelled: a timeout or a cancellation aborts it instead.
        waiter = loop.create_future()

        def wake(_: object) -> None:
            if not waiter.done():
                waiter.set_result(None)

        future.add_done_callback(wake)
        timer = loop.call_later(time_limit, wake, None)
        try:
            await waiter
        except asyncio.CancelledError:
            _abandon(future, abort)
            raise
        finally:
            timer.cancel()
            future.remove_done_callback(wake)
        if not future.done():
            _abandon(future, abort)
            raise TimeoutError(f"no answer within {time_limit:g} s")
        return future.result()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _abandon(future: asyncio.Future[Any], abort: Callable[[], None] | None) -> None:
    """Give up on a call still running in its thread: abort it, and take its outcome when it
    ends (nobody else will: asyncio would log an exception never retrieved)."""
    future.add_done_callback(_outcome_taken)
    if abort is not None:
        abort()


def _outcome_taken(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class SessionPool(Generic[S]):
    """One open session per device, reused across calls; at most `per_device` borrowers of a
    device's session at a time, so one device is never flooded.

    A pooled session is replaced, before it is lent, when the device closed it while it sat
    idle (`is_alive` says no) or when the device's target changed (new address, port or
    credentials). A session whose use raised a broken-session error (`is_broken`) is closed
    at once and reopened on the next borrow."""

    def __init__(
        self,
        opener: Callable[[Target], Awaitable[S]],
        closer: Callable[[S], Awaitable[None]],
        *,
        per_device: int = 1,
        is_broken: Callable[[BaseException], bool] = lambda exc: True,
        is_alive: Callable[[S], bool] = lambda session: True,
    ) -> None:
        self._open, self._close = opener, closer
        self._is_broken, self._is_alive = is_broken, is_alive
        self._per_device = per_device
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._sessions: dict[str, tuple[Target, S]] = {}

    @asynccontextmanager
    async def borrow(self, target: Target) -> AsyncIterator[S]:
        limit = self._limits.setdefault(target.name, asyncio.Semaphore(self._per_device))
        async with limit:
            session = await self._get(target)
            try:
                yield session
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError) or self._is_broken(exc):
                    await self.discard(target.name)
                raise

    async def _get(self, target: Target) -> S:
        lock = self._locks.setdefault(target.name, asyncio.Lock())
        async with lock:
            entry = self._sessions.get(target.name)
            if entry is not None:
                opened_for, session = entry
                if opened_for != target:
                    reason = "its target changed"
                elif not self._is_alive(session):
                    reason = "the device closed it while idle"
                else:
                    return session
                log.info("replacing the session to %s: %s", target, reason)
                await self.discard(target.name)
            session = await self._open(target)
            self._sessions[target.name] = (target, session)
            return session

    async def discard(self, name: str) -> None:
        entry = self._sessions.pop(name, None)
        if entry is not None:
            try:
                await self._close(entry[1])
            except Exception as exc:  # noqa: BLE001  (closing a dead session may fail; it is gone)
                log.debug("closing the session of %s failed: %s", name, exc)

    async def close_all(self) -> None:
        for name in list(self._sessions):
            await self.discard(name)

    def __len__(self) -> int:
        return len(self._sessions)


class PooledDriver(Generic[S]):
    """The lifecycle every blocking-library driver shares: sessions lent from its pool, worker
    threads for its library, both closed with the driver (`async with Driver() as d`)."""

    _pool: SessionPool[S]
    _calls: BlockingCalls

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def connect(self, target: Target) -> AbstractAsyncContextManager[S]:
        return self._pool.borrow(target)

    async def close(self) -> None:
        await self._pool.close_all()
        self._calls.close()


Datastore = Literal["running", "candidate", "startup"]
EditOperation = Literal["merge", "replace", "delete"]


class ConfigDriver(Protocol[S_co]):
    """A configuration protocol's driver: sessions on devices, lent by `connect`, all closed by
    `close`. What a session offers differs by protocol; provisioning's adapter for the protocol
    speaks it (`oss.provisioning.protocols` registers the two together)."""

    def connect(self, target: Target) -> AbstractAsyncContextManager[S_co]: ...

    async def close(self) -> None: ...

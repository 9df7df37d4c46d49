"""Work that runs on exactly one instance at a time, each job under its own lease.

`Singleton(job, component, ...)` is a runtime component: while this instance is a live member
it tries to take the lease `singleton:<job>`; holding it, it runs the wrapped component inside
`fenced(Fence(...))`, so every write the component makes carries the token and the database
refuses it once the lease is someone else's. It renews every lease_s/3 and stops the component
(cancelled, logged at WARNING with why) when the lease is lost, a write is refused (`Fenced`),
or the membership ends; then it tries again. The leader is one of these, under `leader`.

`Exclusive.hold(job)` is the same for one-off work (a bill run the API starts): the lease for
the length of the block, fenced; `Conflict` naming the holder when another instance has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from oss.backoff import Backoff
from oss.cluster.lease_store import HeldLeases, LeaseStore, describe_loss
from oss.components import Component, Stage
from oss.errors import Conflict, Fenced, NotReady, OssError
from oss.store.fencing import Fence, fenced

log = logging.getLogger(__name__)

# What a lease operation may fail with besides losing the lease: the database is away.
STORE_ERRORS = (SQLAlchemyError, OSError, OssError)


def singleton_lease(job: str) -> str:
    return f"singleton:{job}"


class Standing(Protocol):
    """This instance's membership as lease holders see it."""

    async def joined(self) -> asyncio.Event:
        """Wait until this instance is a live member; the event is set when that membership
        ends (lost, or stepped down)."""
        ...

    def suspect(self) -> None:
        """A write was refused (`Fenced`): check the membership lease now."""
        ...


class Singleton:
    """`component` on one instance at a time, under `lease` (default `singleton:<job>`)."""

    def __init__(
        self,
        job: str,
        component: Component,
        leases: LeaseStore,
        standing: Standing,
        held: HeldLeases,
        *,
        instance: str,
        lease_s: float,
        lease: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self.component = component
        self.name: str = component.name
        self.stage: Stage = component.stage
        self.lease = lease or singleton_lease(job)
        self.leases = leases
        self.standing = standing
        self.held = held
        self.instance = instance
        self.lease_s = lease_s
        self.tick_s = lease_s / 3
        self._clock = clock
        self.token: int | None = None  # while held
        self.terms = 0  # times it took the lease (tests, status)
        self._outage = Backoff(self.tick_s, self.tick_s)  # for its one warning per outage

    async def run(self, stop: asyncio.Event) -> None:
        self.held.claim(self.lease)
        try:
            while not stop.is_set():
                ended = await _joined(self.standing, stop)
                if ended is None:
                    return
                token = await self._acquire()
                if token is None:
                    await _wait(stop, ended, within_s=self.tick_s)
                    continue
                if await self._hold(token, stop, ended):
                    return  # stopped, or the component returned (the runtime's to report)
        finally:
            self.held.unclaim(self.lease)

    async def _acquire(self) -> int | None:
        try:
            token = await self.leases.acquire(self.lease, self.instance, self.lease_s)
        except STORE_ERRORS as exc:
            if self._outage.failed():  # once per outage
                log.warning("cluster: cannot take lease %r (retrying): %s", self.lease, exc)
            return None
        self._outage.succeeded()
        return token

    async def _hold(self, token: int, stop: asyncio.Event, ended: asyncio.Event) -> bool:
        """Run the component under the lease until the lease goes (False: try again) or the
        daemon stops (True)."""
        self.token, self.terms = token, self.terms + 1
        self.held.held(self.lease, token)
        renewed = self._clock()
        log.info("cluster: %s holds lease %r (token %d)", self.instance, self.lease, token)
        inner_stop = asyncio.Event()
        with fenced(Fence(self.lease, self.instance, token)):  # the task inherits the fence
            task = asyncio.create_task(self.component.run(inner_stop), name=f"{self.job}-held")
        why: str | None = None
        try:
            while why is None:
                await _wait(stop, ended, task=task, within_s=self.tick_s)
                if stop.is_set() and not task.done():
                    inner_stop.set()
                    await asyncio.wait([task])  # the runtime's stage budget bounds this
                if task.done():
                    why = _why_ended(task)
                    if why is None:
                        return True  # stopped as asked, or returned: the runtime reports it
                    self.standing.suspect()
                elif ended.is_set():
                    why = "this instance's membership ended"
                else:
                    why, renewed = await self._renew(token, renewed)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.token = None
            self.held.dropped(self.lease, lost=why is not None)
            await self._release(token)
        log.warning("cluster: %s steps down from %r: %s", self.instance, self.lease, why)
        return False

    async def _renew(self, token: int, renewed: float) -> tuple[str | None, float]:
        """(why it is lost, or None; when it was last renewed)."""
        try:
            ok = await self.leases.renew(self.lease, self.instance, token, self.lease_s)
        except STORE_ERRORS as exc:
            late = self._clock() - renewed
            if late < self.lease_s:
                log.warning("cluster: cannot renew lease %r (retrying): %s", self.lease, exc)
                return None, renewed
            why = f"lease {self.lease!r} token {token} not renewed for {late:.1f} s: {exc}"
            return why, renewed
        if ok:
            return None, self._clock()
        return await self._describe(token, renewed), renewed

    async def _describe(self, token: int, renewed: float) -> str:
        try:
            now = await self.leases.lease(self.lease)
        except STORE_ERRORS:
            now = None
        return describe_loss(
            self.lease, self.instance, token, now, self._clock() - renewed, self.lease_s
        )

    async def _release(self, token: int) -> None:
        """Give the lease up now (whether or not it is still ours: a stale token matches
        nothing), so a successor need not wait for it to expire."""
        with contextlib.suppress(*STORE_ERRORS):
            await self.leases.release(self.lease, self.instance, token)


def _why_ended(task: asyncio.Task[None]) -> str | None:
    """Why the held component ended, when that is a loss (a refused write); None when it
    stopped as asked or returned. Any other failure is a crash: raised, as any component's."""
    if task.cancelled():
        return None
    exc = task.exception()
    if exc is None:
        return None
    if isinstance(exc, Fenced):
        return str(exc)
    raise exc


class Exclusive:
    """One-off work held alone across the cluster: `async with exclusive.hold("bill-runs")`."""

    def __init__(
        self,
        leases: LeaseStore,
        held: HeldLeases,
        *,
        instance: str,
        lease_s: float,
        is_member: Callable[[], bool],
    ) -> None:
        self.leases = leases
        self.held = held
        self.instance = instance
        self.lease_s = lease_s
        self.is_member = is_member

    @asynccontextmanager
    async def hold(self, job: str) -> AsyncIterator[None]:
        name = singleton_lease(job)
        if not self.is_member():
            raise NotReady(f"{job}: this instance ({self.instance}) is not a live cluster member")
        self.held.claim(name)  # Conflict: running here already
        try:
            token = await self.leases.acquire(name, self.instance, self.lease_s)
            if token is None:
                raise Conflict(await self._busy(job, name))
            self.held.held(name, token)
            renewer = asyncio.create_task(self._renew(name, token), name=f"{job}-renew")
            try:
                with fenced(Fence(name, self.instance, token)):
                    yield
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                self.held.dropped(name, lost=False)
                with contextlib.suppress(*STORE_ERRORS):
                    await self.leases.release(name, self.instance, token)
        finally:
            self.held.unclaim(name)

    async def _busy(self, job: str, name: str) -> str:
        lease = await self.leases.lease(name)
        if lease is None or not lease.live:
            return f"{job} could not take its lease; try again"
        return (
            f"{job} is running on instance {lease.holder!r} (lease token {lease.token}, "
            f"expires in {lease.expires_in_s:.1f} s unless renewed); try again when it ends"
        )

    async def _renew(self, name: str, token: int) -> None:
        """Keep the lease while the block runs. A loss is logged: the block's next write is
        refused by its fence (the database decides, not this task)."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if await self.leases.renew(name, self.instance, token, self.lease_s):
                    renewed = time.monotonic()
                    continue
            except STORE_ERRORS as exc:
                log.warning("cluster: cannot renew lease %r (retrying): %s", name, exc)
                continue
            now = await self.leases.lease(name)
            why = describe_loss(
                name, self.instance, token, now, time.monotonic() - renewed, self.lease_s
            )
            log.warning("cluster: %s: %s; the work's next write will be refused", name, why)
            self.held.dropped(name, lost=True)
            return


async def _joined(standing: Standing, stop: asyncio.Event) -> asyncio.Event | None:
    """`standing.joined()`, or None once `stop` is set first."""
    joined = asyncio.ensure_future(standing.joined())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({joined, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        joined.cancel()
    if stop.is_set() or joined.cancelled():
        return None
    return joined.result()


async def _wait(
    *events: asyncio.Event, task: asyncio.Task[None] | None = None, within_s: float
) -> None:
    """Until one of `events` is set, `task` ends, or `within_s` seconds passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    pending: set[asyncio.Future[Any]] = {*waiters}
    if task is not None:
        pending.add(task)
    try:
        await asyncio.wait(pending, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

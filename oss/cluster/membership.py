"""This instance as a member of the cluster: the lease `member:<instance>`, its row in
`cluster_members`, and the devices the leader gave it.

`join()` (an open hook: before any component runs) takes the lease, registers the member and
sets `db.member_fence`, so every write of this process carries the membership's token from then
on; then it renews every lease_s/3 (sooner when a write was refused) and reads its device
shares in the same transaction. `leave()` (a close hook: after every component stopped) gives
the lease up, so the others take the devices over at once rather than after the lease period.

When the lease is lost (a pause or a partition past the lease period, or a newer incarnation
under the same name): log why at WARNING, step down (no devices; the singletons and the
leadership stop, as they watch `joined()`), and register again under a new token. The old
fence stays in place until then: this process's writes are refused, not sent unfenced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable

from sqlalchemy import Connection

from oss import __version__
from oss.backoff import Backoff
from oss.cluster.lease_store import HeldLeases, StoredLeases, describe_loss
from oss.cluster.singleton import STORE_ERRORS
from oss.store import Database, leases
from oss.store.fencing import Fence

log = logging.getLogger(__name__)

TWIN_TAKEOVERS = 3  # takeovers by a process of the same name before it is called an error


class Membership:
    def __init__(
        self,
        db: Database,
        store: StoredLeases,
        held: HeldLeases,
        *,
        instance: str,
        lease_s: float,
        api_url: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.store = store
        self.held = held
        self.instance = instance
        self.lease = leases.member_lease(instance)
        self.lease_s = lease_s
        self.tick_s = lease_s / 3
        self.api_url = api_url
        self._clock = clock
        self.owned: frozenset[str] = frozenset()
        self.token: int | None = None
        self.live_members = 0  # as the last renewal read them (oss_cluster_members_live)
        self._renewed = 0.0
        self._listeners: list[Callable[[], None]] = []
        self._joined = asyncio.Event()
        self._ended = asyncio.Event()
        self._check_now = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._outage = Backoff(self.tick_s, self.tick_s)  # for its one warning per outage
        self._takeovers: list[float] = []  # when a process of the same name took our lease
        self._twin_told = False

    # --- what the others watch ---------------------------------------------------------------

    @property
    def member(self) -> bool:
        return self._joined.is_set()

    async def joined(self) -> asyncio.Event:
        await self._joined.wait()
        return self._ended

    def suspect(self) -> None:
        self._check_now.set()

    def on_shares_changed(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The renewing task (the cluster's component reports its crash)."""
        return self._task

    # --- open and close ----------------------------------------------------------------------

    async def join(self) -> None:
        await self._register()
        self._task = asyncio.create_task(self._keep(), name="cluster-membership")

    async def leave(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        token = self.token
        self._end()
        self.held.dropped(self.lease, lost=False)
        if token is not None:
            with contextlib.suppress(*STORE_ERRORS):
                await self.store.release(self.lease, self.instance, token)
            log.info("cluster: %s left the cluster (lease %r released)", self.instance, self.lease)

    # --- the lease ---------------------------------------------------------------------------

    async def _register(self) -> None:
        def register(conn: Connection) -> tuple[int | None, frozenset[str]]:
            token = leases.acquire(conn, self.lease, self.instance, self.lease_s)
            if token is None:
                return None, frozenset()
            leases.register_member(conn, self.instance, self.api_url, os.getpid(), __version__)
            return token, frozenset(leases.owned_by(conn, self.instance))

        token, owned = await self.store.run(register)
        if token is None:  # a live holder of another name under our lease: impossible today
            raise RuntimeError(f"cluster: lease {self.lease!r} is held by another holder")
        self.token, self._renewed = token, self._clock()
        self.db.member_fence = Fence(self.lease, self.instance, token)
        self.held.held(self.lease, token)
        self._ended = asyncio.Event()
        self._joined.set()
        log.info(
            "cluster: %s joined (lease %r token %d, %d devices)",
            self.instance,
            self.lease,
            token,
            len(owned),
        )
        self._set_owned(owned)

    async def _keep(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_now.wait(), self.tick_s)
            self._check_now.clear()
            try:
                if self.member:
                    await self._renew()
                else:
                    await self._register()
            except STORE_ERRORS as exc:
                self._unreachable(exc)
                continue
            if self._outage.succeeded():
                log.info("cluster: %s reaches the database again", self.instance)

    async def _renew(self) -> None:
        token = self.token
        assert token is not None

        def renew(conn: Connection) -> tuple[frozenset[str], int] | None:
            if not leases.renew(conn, self.lease, self.instance, token, self.lease_s):
                return None
            owned = frozenset(leases.owned_by(conn, self.instance))
            return owned, len(leases.live_members(conn))

        found = await self.store.run(renew)
        if found is None:
            now = await self.store.lease(self.lease)
            why = describe_loss(
                self.lease, self.instance, token, now, self._clock() - self._renewed, self.lease_s
            )
            self._step_down(why)
            if now is not None and now.holder == self.instance and now.token != token:
                self._taken_by_namesake()
            return
        self._renewed = self._clock()
        owned, self.live_members = found
        self._set_owned(owned)

    def _taken_by_namesake(self) -> None:
        """Two processes under one instance name take the lease from each other at every
        renewal (a copied settings file, hosts with one host name): said once, as an error."""
        now = self._clock()
        window = TWIN_TAKEOVERS * 3 * self.lease_s
        self._takeovers = [t for t in self._takeovers if now - t < window] + [now]
        if len(self._takeovers) >= TWIN_TAKEOVERS and not self._twin_told:
            self._twin_told = True
            log.error(
                "cluster: another process runs as instance %r (it took lease %r %d times in "
                "%.0f s): give each instance its own cluster.instance",
                self.instance,
                self.lease,
                len(self._takeovers),
                window,
            )

    def _unreachable(self, exc: BaseException) -> None:
        """The database did not answer: past the lease period the lease is as good as lost
        (the database will refuse the writes anyway): stop collecting before it says so."""
        late = self._clock() - self._renewed
        if self.member and late >= self.lease_s:
            self._step_down(f"lease {self.lease!r} not renewed for {late:.1f} s: {exc}")
        elif self._outage.failed():  # once per outage, not once per attempt
            log.warning(
                "cluster: cannot reach the database to renew %r (retrying every %.1f s): %s",
                self.lease,
                self.tick_s,
                exc,
            )

    def _step_down(self, why: str) -> None:
        log.warning("cluster: %s steps down: %s; registering again", self.instance, why)
        self.held.dropped(self.lease, lost=True)
        self._end()
        self._check_now.set()  # register again at once

    def _end(self) -> None:
        self._joined.clear()
        self._ended.set()
        self._set_owned(frozenset())

    def _set_owned(self, owned: frozenset[str]) -> None:
        if owned == self.owned:
            return
        gained, lost = len(owned - self.owned), len(self.owned - owned)
        self.owned = owned
        log.info("cluster: %s polls %d devices (+%d, -%d)", self.instance, len(owned), gained, lost)
        for listener in self._listeners:
            listener()

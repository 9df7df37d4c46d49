"""The leases as the coordination uses them: acquire, renew, release, look one up. `StoredLeases`
runs `oss.store.leases` on the database (the bookkeeping is not fenced by itself), on a small
connection pool of its own: a renewal never queues behind the work it fences (a trap storm's
writes can hold every connection of the daemon's pool), and each one is bounded in time, so a
database that stops answering costs the lease on time rather than never; a unit test hands a
fake. `HeldLeases` is what this process holds, for /metrics and to keep two holders in
one process from taking one lease (the same holder re-acquiring gets a new token and would
fence the other out)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from oss.errors import Conflict
from oss.store import Database, leases
from oss.store.leases import Lease

T = TypeVar("T")
POOL_SIZE = 2  # the membership's renewal, and a singleton's or the leader's at the same time


class LeaseStore(Protocol):
    async def acquire(self, name: str, holder: str, lease_s: float) -> int | None:
        """The new token, or None while another holder's lease is unexpired."""
        ...

    async def renew(self, name: str, holder: str, token: int, lease_s: float) -> bool:
        """False: lost (expired, or taken with a newer token)."""
        ...

    async def release(self, name: str, holder: str, token: int) -> None: ...

    async def lease(self, name: str) -> Lease | None:
        """The lease as the database sees it now (None: never taken)."""
        ...


class StoredLeases:
    """`LeaseStore` over the database (PostgreSQL: the database's clock decides). Each call
    is one transaction, given up after `limit_s` (TimeoutError, an OSError: the database is
    away)."""

    def __init__(self, db: Database, *, limit_s: float) -> None:
        self.limit_s = limit_s
        # A process paused inside a renewal would keep the lease's row locked, and a successor
        # waiting to take it over: the server ends such a session after `limit_s`.
        idle_ms = str(max(1, round(limit_s * 1000)))
        self.engine: AsyncEngine = create_async_engine(
            db.url,
            pool_size=POOL_SIZE,
            max_overflow=POOL_SIZE,
            pool_pre_ping=True,
            connect_args={"server_settings": {"idle_in_transaction_session_timeout": idle_ms}},
        )

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """`fn` in one transaction on the bookkeeping's own connections, within `limit_s`."""
        try:
            async with asyncio.timeout(self.limit_s), self.engine.begin() as conn:
                return await conn.run_sync(fn)
        except TimeoutError:  # said with its bound: a bare TimeoutError prints as nothing
            raise TimeoutError(f"the database did not answer within {self.limit_s:.1f} s") from None

    async def acquire(self, name: str, holder: str, lease_s: float) -> int | None:
        return await self.run(lambda conn: leases.acquire(conn, name, holder, lease_s))

    async def renew(self, name: str, holder: str, token: int, lease_s: float) -> bool:
        return await self.run(lambda conn: leases.renew(conn, name, holder, token, lease_s))

    async def release(self, name: str, holder: str, token: int) -> None:
        await self.run(lambda conn: leases.release(conn, name, holder, token))

    async def lease(self, name: str) -> Lease | None:
        found = await self.run(leases.all_leases)
        return next((lease for lease in found if lease.name == name), None)

    async def close(self) -> None:
        await self.engine.dispose()


class HeldLeases:
    """The leases this process holds now (name -> token) and how many it lost, by name."""

    def __init__(self) -> None:
        self.tokens: dict[str, int] = {}
        self.lost: Counter[str] = Counter()
        self._claimed: set[str] = set()
        self._known: set[str] = set()  # every lease held once: its gauge stays, at 0

    def claim(self, name: str) -> None:
        """Reserve `name` for one holder in this process; Conflict while another has it."""
        if name in self._claimed:
            raise Conflict(f"{name.removeprefix('singleton:')} is already running on this instance")
        self._claimed.add(name)

    def unclaim(self, name: str) -> None:
        self._claimed.discard(name)

    def held(self, name: str, token: int) -> None:
        self.tokens[name] = token
        self._known.add(name)

    def dropped(self, name: str, *, lost: bool) -> None:
        self.tokens.pop(name, None)
        if lost:
            self.lost[name] += 1

    def gauges(self) -> dict[str, int]:
        """oss_cluster_lease_held{lease}: 1 held, 0 once held and no more."""
        return {name: int(name in self.tokens) for name in sorted(self._known)}


def describe_loss(
    name: str, holder: str, token: int, now: Lease | None, renewed_ago_s: float, lease_s: float
) -> str:
    """Why a held lease is gone, for the log: which lease, which token, how late, who has it."""
    late = renewed_ago_s - lease_s
    timing = f"last renewed here {renewed_ago_s:.1f} s ago, lease {lease_s:g} s"
    if late > 0:
        timing += f": {late:.1f} s late"
    if now is None:
        state = "the lease row is gone"
    elif now.token != token and now.holder == holder:
        state = f"taken with token {now.token} by another process named {holder!r}"
    elif now.token != token:
        state = f"now held by {now.holder!r} with token {now.token}"
    elif not now.live:
        state = f"expired {-now.expires_in_s:.1f} s ago"
    else:
        state = "the database no longer renews it"
    return f"lease {name!r} token {token} lost ({timing}; {state})"

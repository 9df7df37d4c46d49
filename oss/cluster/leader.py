"""The leader's work: every lease_s/3, read who is live, which devices there are and who owns
what (one transaction: the devices from the database, not this instance's graph, which may lag
another instance's change), plan the device shares (`shares.plan`) and write the moves. It
runs inside the `leader` lease (a `Singleton` under the lease `leader`), so the write carries
the leader's fence and the membership's: a paused leader that wakes up after its successor
took over is refused by the database.

Each move is logged once at INFO, grouped ("shares: 3 devices from b (lease expired 0.4 s
ago) to a, c"); the leader's own membership and the other instances (NOTIFY `oss_shares`) read
their shares at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from oss.backoff import Backoff
from oss.cluster.shares import Affinity, DeviceFacts, Plan, plan
from oss.cluster.singleton import STORE_ERRORS
from oss.components import Stage
from oss.errors import Fenced
from oss.store import Database, leases, notify
from oss.store.fencing import current_fences
from oss.store.leases import MEMBER_PREFIX, Lease
from oss.store.tables import DeviceRow

log = logging.getLogger(__name__)

LEADER_LEASE = "leader"


@dataclass(frozen=True)
class _Facts:
    leases: list[Lease]
    shares: dict[str, str]
    devices: list[DeviceFacts]


class SharePlanner:
    """The leader's component (run under the `leader` lease by a `Singleton`)."""

    name = "cluster-leader"
    stage = Stage.WORKERS

    def __init__(
        self,
        db: Database,
        *,
        instance: str,
        lease_s: float,
        affinity: Sequence[Affinity] = (),
        planned: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.instance = instance
        self.lease_s = lease_s
        self.affinity = tuple(affinity)
        self.planned = planned  # after moves were written (this instance reads its shares)
        self._clock = clock
        self._seen: dict[tuple[str, int], float] = {}  # (member, token) -> first seen live
        # devices left without a live owner by the last round (its write failed, or no live
        # member): oss_cluster_devices_unassigned
        self.unassigned = 0
        self._outage = Backoff(lease_s, lease_s)  # for its one warning per outage
        self._stranded: set[Affinity] = set()  # rules none of whose instances is live

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.plan_once()
            except Fenced:
                raise  # no longer the leader: the lease's holder stops this component
            except STORE_ERRORS as exc:  # the database is away: the next round tries again
                if self._outage.failed():
                    log.warning("cluster: the leader cannot plan the shares (retrying): %s", exc)
            else:
                self._outage.succeeded()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.lease_s / 3)

    async def plan_once(self) -> Plan:
        """One round: read, plan, write the moves (fenced by the leader's lease)."""
        facts = await self.db.write(_read_facts, fenced=False)
        devices = facts.devices
        live = self._live(facts.leases)
        result = plan(
            devices,
            facts.shares,
            live,
            lease_s=self.lease_s,
            affinity=self.affinity,
            gone=_gone(facts.leases),
        )
        self.unassigned = sum(1 for d in devices if facts.shares.get(d.name) not in live)
        self._tell_stranded(devices, live)
        if not result.moves:
            return result
        token = _leader_token()

        def assign(conn: Connection) -> None:
            leases.assign_shares(conn, result.moves, token)
            notify.notify(conn, notify.SHARES, {notify.INSTANCE: self.instance})

        await self.db.write(assign)
        self.unassigned -= sum(1 for d in result.moves if facts.shares.get(d) not in live)
        for change in result.changes:
            log.info("%s", change.describe())
        self.planned()
        return result

    def _tell_stranded(self, devices: list[DeviceFacts], live: Mapping[str, float]) -> None:
        """An affinity rule whose devices fall back to any instance (none of its own is live)
        is said once at WARNING, and once at INFO when one of its instances is back."""
        stranded = {
            rule
            for rule in self.affinity
            if not any(i in live for i in rule.instances) and any(map(rule.matches, devices))
        }
        for rule in stranded - self._stranded:
            log.warning(
                "cluster: affinity %s: none of %s is live; its devices go to any live instance",
                rule.describe(),
                ", ".join(rule.instances),
            )
        for rule in self._stranded - stranded:
            log.info("cluster: affinity %s: its instances are live again", rule.describe())
        self._stranded = stranded

    def _live(self, found: list[Lease]) -> dict[str, float]:
        """Each live member and how long this leader has seen it live under its token."""
        now = self._clock()
        live: dict[str, float] = {}
        seen: dict[tuple[str, int], float] = {}
        for lease in found:
            if lease.name.startswith(MEMBER_PREFIX) and lease.live:
                key = (lease.holder, lease.token)
                seen[key] = self._seen.get(key, now)
                live[lease.holder] = now - seen[key]
        self._seen = seen
        return live


def _read_facts(conn: Connection) -> _Facts:
    table = DeviceRow.__table__
    rows = conn.execute(select(table.c.name, table.c.site, table.c.role))
    devices = [DeviceFacts(str(name), site, role) for name, site, role in rows]
    return _Facts(leases.all_leases(conn), leases.shares(conn), devices)


def _gone(found: list[Lease]) -> Mapping[str, str]:
    """Why each expired member is not live, for the log."""
    return {
        lease.holder: f"lease expired {-lease.expires_in_s:.1f} s ago"
        for lease in found
        if lease.name.startswith(MEMBER_PREFIX) and not lease.live
    }


def _leader_token() -> int:
    """The token of the `leader` lease this code runs under (the Singleton's fence)."""
    for fence in current_fences():
        if fence.lease == LEADER_LEASE:
            return fence.token
    raise RuntimeError("the share planner runs only under the leader lease")

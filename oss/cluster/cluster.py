"""What the composition root and the API use of the coordination: `Cluster` (several instances
on one PostgreSQL database) or `Solo` (one instance: it owns every device, its singletons run
plain). Both answer `instance`, `owns(device)`, `on_shares_changed(listener)`,
`singleton(job, component)`, `exclusive(job)`, `components()`, `open()`/`close()` (the
runtime's hooks) and `status()`, the document of `GET /api/v1/cluster`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import Connection

from oss.cluster.leader import LEADER_LEASE, SharePlanner
from oss.cluster.lease_store import HeldLeases, StoredLeases
from oss.cluster.membership import Membership
from oss.cluster.shares import Affinity
from oss.cluster.singleton import Exclusive, Singleton, singleton_lease
from oss.components import Component, Stage
from oss.metrics import Metrics
from oss.settings import ClusterSettings
from oss.store import Database, leases
from oss.store.leases import MEMBER_PREFIX, Lease, Member
from topology.model import Device

SINGLETON_PREFIX = singleton_lease("")
Devices = Callable[[], Iterable[Device]]


class Cluster:
    """One instance of a cluster: membership, the leader (when elected), the singletons."""

    enabled = True

    def __init__(
        self, settings: ClusterSettings, db: Database, devices: Devices, *, api_url: str | None
    ) -> None:
        self.db = db
        self.instance = settings.instance
        self.lease_s = settings.lease_s
        self.devices = devices
        self.held = HeldLeases()
        self.store = StoredLeases(db, limit_s=self.lease_s / 2)
        self.membership = Membership(
            db,
            self.store,
            self.held,
            instance=self.instance,
            lease_s=self.lease_s,
            api_url=settings.api_url or api_url,
        )
        self.planner = planner = SharePlanner(
            db,
            instance=self.instance,
            lease_s=self.lease_s,
            affinity=affinity_rules(settings),
            planned=self.membership.suspect,  # read our own new shares at once
        )
        self.leader = self._held(LEADER_LEASE, planner, lease=LEADER_LEASE)
        self._exclusive = Exclusive(
            self.store,
            self.held,
            instance=self.instance,
            lease_s=self.lease_s,
            is_member=lambda: self.membership.member,
        )
        self.jobs: set[str] = set()  # the singletons' and the exclusive jobs' names

    def owns(self, device: str) -> bool:
        return device in self.membership.owned

    def on_shares_changed(self, listener: Callable[[], None]) -> None:
        self.membership.on_shares_changed(listener)

    def singleton(self, job: str, component: Component) -> Component:
        self.jobs.add(job)
        return self._held(job, component)

    def exclusive(self, job: str) -> AbstractAsyncContextManager[None]:
        self.jobs.add(job)
        return self._exclusive.hold(job)

    async def shares_moved(self, notice: Mapping[str, Any] | None = None) -> None:
        """Another instance's leader moved shares (NOTIFY `oss_shares`, or a resync after the
        listener reconnected): read ours now rather than at the next renewal."""
        self.membership.suspect()

    def components(self) -> list[Component]:
        return [_Coordination(self.leader, self.membership)]

    async def open(self) -> None:
        await self.membership.join()

    async def close(self) -> None:
        await self.membership.leave()
        await self.store.close()

    def _held(self, job: str, component: Component, *, lease: str | None = None) -> Singleton:
        return Singleton(
            job,
            component,
            self.store,
            self.membership,
            self.held,
            instance=self.instance,
            lease_s=self.lease_s,
            lease=lease,
        )

    def watch(self, metrics: Metrics) -> None:
        metrics.watch_counts(
            "oss_cluster_lease_held",
            "1 while this instance holds the lease (member:<instance>, leader, singleton:<job>)",
            "lease",
            self.held.gauges,
        )
        metrics.watch_counters(
            "oss_cluster_lease_lost",
            "Leases this instance lost (expired, taken, or a write refused by its fence)",
            "lease",
            lambda: self.held.lost,
        )
        owned = Gauge(
            "oss_cluster_devices_owned",
            "Devices this instance owns (polls, subscribes to, raises reachability for)",
            registry=metrics.registry,
        )
        owned.set_function(lambda: len(self.membership.owned))
        live = Gauge(
            "oss_cluster_members_live",
            "Instances whose membership lease is unexpired, as this instance last read",
            registry=metrics.registry,
        )
        live.set_function(lambda: self.membership.live_members)
        unassigned = Gauge(
            "oss_cluster_devices_unassigned",
            "Devices no live instance owns after the leader's last round (0 but on the leader)",
            registry=metrics.registry,
        )
        unassigned.set_function(
            lambda: self.planner.unassigned if self.leader.token is not None else 0
        )

    async def status(self) -> dict[str, Any]:
        def read(conn: Connection) -> tuple[list[Lease], list[Member], dict[str, str]]:
            return leases.all_leases(conn), leases.members(conn), leases.shares(conn)

        found, members, shares = await self.db.write(read, fenced=False)
        by_name = {lease.name: lease for lease in found}
        leader = by_name.get(LEADER_LEASE)
        leader_name = leader.holder if leader is not None and leader.live else None
        singletons = {
            lease.name.removeprefix(SINGLETON_PREFIX): lease
            for lease in found
            if lease.name.startswith(SINGLETON_PREFIX)
        }
        owned: dict[str, int] = {}
        for instance in shares.values():
            owned[instance] = owned.get(instance, 0) + 1
        live = {lease.holder for lease in found if _is_member(lease) and lease.live}
        devices = [device.name for device in self.devices()]
        return {
            "enabled": True,
            "instance": self.instance,
            "lease_s": self.lease_s,
            "leader": leader_name,
            "instances": [
                _instance(m, by_name, leader_name, singletons, owned.get(m.instance, 0))
                for m in members
            ],
            "singletons": [
                _singleton(job, singletons.get(job)) for job in sorted({*singletons, *self.jobs})
            ],
            "unassigned_devices": sum(1 for d in devices if shares.get(d) not in live),
        }


class Solo:
    """One instance, no cluster: it owns every device and runs every job itself."""

    enabled = False

    def __init__(self, settings: ClusterSettings, devices: Devices, *, api_url: str | None):
        self.instance = settings.instance
        self.lease_s = settings.lease_s
        self.api_url = settings.api_url or api_url
        self.devices = devices
        self.jobs: set[str] = set()  # the singletons' and the exclusive jobs' names
        self.started_at = datetime.now(UTC)

    def owns(self, device: str) -> bool:
        return True

    def on_shares_changed(self, listener: Callable[[], None]) -> None:
        """Shares never change: this instance owns every device."""

    def singleton(self, job: str, component: Component) -> Component:
        self.jobs.add(job)
        return component

    def exclusive(self, job: str) -> AbstractAsyncContextManager[None]:
        self.jobs.add(job)
        return _here()

    async def shares_moved(self, notice: Mapping[str, Any] | None = None) -> None:
        """No leader, no shares."""

    def components(self) -> list[Component]:
        return []

    async def open(self) -> None:
        """Nothing to join."""

    async def close(self) -> None:
        """Nothing to leave."""

    def watch(self, metrics: Metrics) -> None:
        """The cluster's metrics exist in cluster mode only."""

    async def status(self) -> dict[str, Any]:
        jobs = sorted(self.jobs)
        return {
            "enabled": False,
            "instance": self.instance,
            "lease_s": self.lease_s,
            "leader": self.instance,
            "instances": [
                {
                    "instance": self.instance,
                    "alive": True,
                    "roles": ["leader", *jobs],
                    "devices": sum(1 for _ in self.devices()),
                    "lease_age_s": None,
                    "expires_in_s": None,
                    "api_url": self.api_url,
                    "started_at": self.started_at,
                    "pid": os.getpid(),
                }
            ],
            "singletons": [
                {"job": job, "holder": self.instance, "token": None, "expires_in_s": None}
                for job in jobs
            ],
            "unassigned_devices": 0,
        }


def build_cluster(
    settings: ClusterSettings, db: Database, devices: Devices, *, api_url: str | None
) -> Cluster | Solo:
    """`Cluster` when `cluster.enabled` (the settings checked it is PostgreSQL), else `Solo`."""
    if settings.enabled:
        return Cluster(settings, db, devices, api_url=api_url)
    return Solo(settings, devices, api_url=api_url)


def affinity_rules(settings: ClusterSettings) -> Sequence[Affinity]:
    return tuple(
        Affinity(tuple(rule.instances), site=rule.site, role=rule.role)
        for rule in settings.affinity
    )


class _Coordination:
    """The cluster as a runtime component: the leader's lease holder, and a watch on the
    membership's renewing task (started by the open hook): its crash is the daemon's."""

    name = "cluster"
    stage = Stage.WORKERS

    def __init__(self, leader: Singleton, membership: Membership) -> None:
        self.leader = leader
        self.membership = membership

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.leader.run(stop), name="cluster-leader")
            tasks.create_task(self._watch(stop), name="cluster-membership-watch")

    async def _watch(self, stop: asyncio.Event) -> None:
        renewing = self.membership.task
        stopped = asyncio.ensure_future(stop.wait())
        try:
            waiting: set[asyncio.Future[Any]] = {stopped}
            if renewing is not None:
                waiting.add(renewing)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if renewing is not None and renewing.done() and not renewing.cancelled():
            renewing.result()  # a crash shows here


@asynccontextmanager
async def _here() -> AsyncIterator[None]:
    yield


def _is_member(lease: Lease) -> bool:
    return lease.name.startswith(MEMBER_PREFIX)


def _instance(
    member: Member,
    by_name: Mapping[str, Lease],
    leader: str | None,
    singletons: Mapping[str, Lease],
    devices: int,
) -> dict[str, Any]:
    lease = by_name.get(leases.member_lease(member.instance))
    alive = lease is not None and lease.live
    jobs = sorted(j for j, s in singletons.items() if s.holder == member.instance and s.live)
    return {
        "instance": member.instance,
        "alive": alive,
        "roles": (["leader"] if leader == member.instance and alive else []) + jobs,
        "devices": devices,
        "lease_age_s": round(lease.age_s, 3) if lease is not None else None,
        "expires_in_s": round(lease.expires_in_s, 3) if lease is not None else None,
        "api_url": member.api_url,
        "started_at": member.started_at,
        "pid": member.pid,
    }


def _singleton(job: str, lease: Lease | None) -> dict[str, Any]:
    if lease is None:
        return {"job": job, "holder": None, "token": None, "expires_in_s": None}
    return {
        "job": job,
        "holder": lease.holder,
        "token": lease.token,
        "expires_in_s": round(lease.expires_in_s, 3),
    }

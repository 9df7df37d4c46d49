"""The singleton wrapper and `Exclusive` (oss/cluster/singleton.py) against a fake lease
store: the wrapped component runs only while the lease is held, under its fence; a lost lease
or a refused write stops it (logged with why) and it takes the lease again later."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest

from oss.cluster.lease_store import HeldLeases
from oss.cluster.singleton import Exclusive, Singleton
from oss.components import Stage
from oss.errors import Conflict, Fenced
from oss.store.fencing import Fence, current_fences
from oss.store.leases import Lease

LEASE_S = 0.3  # ticks every 0.1 s


@dataclass
class _Row:
    holder: str
    token: int
    live: bool = True


@dataclass
class FakeLeases:
    """Leases that expire only when a test says so."""

    rows: dict[str, _Row] = field(default_factory=dict)
    renewed: asyncio.Event = field(default_factory=asyncio.Event)
    released: list[tuple[str, int]] = field(default_factory=list)

    async def acquire(self, name: str, holder: str, lease_s: float) -> int | None:
        row = self.rows.get(name)
        if row is not None and row.live and row.holder != holder:
            return None
        token = (row.token if row else 0) + 1
        self.rows[name] = _Row(holder, token)
        return token

    async def renew(self, name: str, holder: str, token: int, lease_s: float) -> bool:
        self.renewed.set()
        row = self.rows.get(name)
        return row is not None and row.live and (row.holder, row.token) == (holder, token)

    async def release(self, name: str, holder: str, token: int) -> None:
        self.released.append((name, token))
        row = self.rows.get(name)
        if row is not None and (row.holder, row.token) == (holder, token):
            row.live = False

    async def lease(self, name: str) -> Lease | None:
        row = self.rows.get(name)
        if row is None:
            return None
        return Lease(name, row.holder, row.token, 0.1, 5.0 if row.live else -1.5)

    def steal(self, name: str, holder: str) -> None:
        row = self.rows[name]
        self.rows[name] = _Row(holder, row.token + 1)


class FakeStanding:
    def __init__(self) -> None:
        self._joined = asyncio.Event()
        self.ended = asyncio.Event()
        self.suspected = 0
        self._joined.set()

    async def joined(self) -> asyncio.Event:
        await self._joined.wait()
        return self.ended

    def suspect(self) -> None:
        self.suspected += 1

    def end(self) -> None:
        self._joined.clear()
        self.ended.set()

    def rejoin(self) -> None:
        self.ended = asyncio.Event()
        self._joined.set()


class Job:
    """A component that records its runs and the fences it ran under."""

    name = "noc-feed"
    stage = Stage.WORKERS

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.runs: list[tuple[Fence, ...]] = []
        self.cancelled = 0
        self.stopped_cleanly = 0
        self.fail_with: BaseException | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self.runs.append(current_fences())
        self.started.set()
        try:
            if self.fail_with is not None:
                raise self.fail_with
            await stop.wait()
            self.stopped_cleanly += 1
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def wrap(job: Job, store: FakeLeases, standing: FakeStanding, held: HeldLeases) -> Singleton:
    return Singleton("noc-feed", job, store, standing, held, instance="a", lease_s=LEASE_S)


async def started(job: Job) -> None:
    await asyncio.wait_for(job.started.wait(), 5)
    job.started.clear()


async def test_runs_under_its_lease_and_fence_and_releases_on_stop() -> None:
    store, standing, held, job = FakeLeases(), FakeStanding(), HeldLeases(), Job()
    singleton = wrap(job, store, standing, held)
    assert (singleton.name, singleton.stage) == ("noc-feed", Stage.WORKERS)
    stop = asyncio.Event()
    task = asyncio.create_task(singleton.run(stop))
    await started(job)
    assert job.runs == [(Fence("singleton:noc-feed", "a", 1),)]
    assert held.gauges() == {"singleton:noc-feed": 1}
    stop.set()
    await asyncio.wait_for(task, 5)
    assert job.stopped_cleanly == 1
    assert store.released == [("singleton:noc-feed", 1)]
    assert held.gauges() == {"singleton:noc-feed": 0}
    assert held.lost == {}


async def test_waits_while_another_instance_holds_it() -> None:
    store, standing, held, job = FakeLeases(), FakeStanding(), HeldLeases(), Job()
    store.rows["singleton:noc-feed"] = _Row("b", 7)
    stop = asyncio.Event()
    task = asyncio.create_task(wrap(job, store, standing, held).run(stop))
    await asyncio.sleep(LEASE_S)  # a few attempts, none of which may run it
    assert job.runs == []
    store.rows["singleton:noc-feed"].live = False  # b's lease expired
    await started(job)
    assert job.runs == [(Fence("singleton:noc-feed", "a", 8),)]
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_lost_lease_cancels_it_logs_why_and_it_takes_the_lease_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, standing, held, job = FakeLeases(), FakeStanding(), HeldLeases(), Job()
    stop = asyncio.Event()
    task = asyncio.create_task(wrap(job, store, standing, held).run(stop))
    await started(job)
    with caplog.at_level(logging.WARNING, logger="oss.cluster.singleton"):
        store.steal("singleton:noc-feed", "b")  # b took it over (a paused past its lease)
        store.renewed.clear()
        await asyncio.wait_for(store.renewed.wait(), 5)
        store.rows["singleton:noc-feed"].live = False  # then b's lease expires
        await started(job)
    assert job.cancelled == 1
    assert held.lost == {"singleton:noc-feed": 1}
    (line,) = [r.getMessage() for r in caplog.records if "steps down" in r.getMessage()]
    assert "lease 'singleton:noc-feed' token 1 lost" in line
    assert "now held by 'b' with token 2" in line
    assert job.runs[-1] == (Fence("singleton:noc-feed", "a", 3),)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_write_refused_by_its_fence_stops_it_and_checks_the_membership(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, standing, held, job = FakeLeases(), FakeStanding(), HeldLeases(), Job()
    refusal = "write refused by the database: lease 'singleton:noc-feed' token 1 held by 'a'"
    job.fail_with = Fenced(refusal)
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="oss.cluster.singleton"):
        task = asyncio.create_task(wrap(job, store, standing, held).run(stop))
        await started(job)
        job.fail_with = None
        await started(job)  # taken again, under a new token
    assert standing.suspected == 1
    assert [r[-1] for r in job.runs] == [
        Fence("singleton:noc-feed", "a", 1),
        Fence("singleton:noc-feed", "a", 2),
    ]
    assert any(refusal in r.getMessage() for r in caplog.records)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_the_end_of_the_membership_stops_it_until_it_joins_again() -> None:
    store, standing, held, job = FakeLeases(), FakeStanding(), HeldLeases(), Job()
    stop = asyncio.Event()
    task = asyncio.create_task(wrap(job, store, standing, held).run(stop))
    await started(job)
    standing.end()
    for _ in range(50):
        if job.cancelled:
            break
        await asyncio.sleep(0.02)
    assert job.cancelled == 1
    assert store.released == [("singleton:noc-feed", 1)]
    standing.rejoin()
    await started(job)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_crash_of_the_component_is_the_daemons() -> None:
    store, standing, held, job = FakeLeases(), FakeStanding(), HeldLeases(), Job()
    job.fail_with = ValueError("bug")
    with pytest.raises(ValueError, match="bug"):
        await asyncio.wait_for(wrap(job, store, standing, held).run(asyncio.Event()), 5)
    assert store.released == [("singleton:noc-feed", 1)]


async def test_exclusive_holds_the_lease_fenced_and_refuses_a_second_holder() -> None:
    store, held = FakeLeases(), HeldLeases()
    exclusive = Exclusive(store, held, instance="a", lease_s=LEASE_S, is_member=lambda: True)
    async with exclusive.hold("bill-runs"):
        assert current_fences() == (Fence("singleton:bill-runs", "a", 1),)
        with pytest.raises(Conflict, match="already running on this instance"):
            async with exclusive.hold("bill-runs"):
                pytest.fail("two bill runs at once in one process")
    assert current_fences() == ()
    assert store.released == [("singleton:bill-runs", 1)]

    store.rows["singleton:bill-runs"] = _Row("b", 4)
    with pytest.raises(Conflict, match="running on instance 'b' \\(lease token 4"):
        async with exclusive.hold("bill-runs"):
            pytest.fail("b holds it")

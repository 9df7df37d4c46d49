"""The coordination core (oss/cluster) on a real PostgreSQL: two `Cluster`s in one process, each
on its own `Database` (its own sessions and member fence, as two instances have), sharing one
database. One leader; the devices split between them, each exactly once; a dead member's
devices taken over and the move logged with why; a lost lease makes its holder step down and
say why; the database refuses a stale holder's write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Connection, insert, text

from oss.cluster import Cluster
from oss.cluster.lease_store import StoredLeases
from oss.components import Component, Stage
from oss.errors import Conflict, Fenced
from oss.inventory import Inventory
from oss.metrics import Metrics
from oss.settings import ClusterSettings
from oss.store import Database, leases
from oss.store.fencing import Fence, fenced
from oss.store.tables import AuditRow
from tests.peers.postgres import PostgresServer, create_database
from topology.model import Device, Site

pytestmark = pytest.mark.serial  # lease periods of a second: make test runs it alone

LEASE_S = 1.0  # the smallest the settings allow: ticks every 0.33 s
WAIT_S = 15.0  # an upper bound for what should take a few lease periods, never a measure
DEVICES = 12
_numbers = iter(range(1, 10_000))


class Job:
    """A singleton's work: counts the instances running it at once."""

    def __init__(self, instance: str, running: dict[str, int]) -> None:
        self.name = "usage"
        self.stage = Stage.WORKERS
        self.instance = instance
        self.running = running

    async def run(self, stop: asyncio.Event) -> None:
        self.running["now"] = self.running.get("now", 0) + 1
        self.running["most"] = max(self.running.get("most", 0), self.running["now"])
        self.running[self.instance] = self.running.get(self.instance, 0) + 1
        try:
            await stop.wait()
        finally:
            self.running["now"] -= 1
            self.running[self.instance] -= 1


@dataclass
class Node:
    """One instance: its database handle, its cluster, its running components."""

    db: Database
    cluster: Cluster
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ended: bool = False

    @property
    def owned(self) -> frozenset[str]:
        return self.cluster.membership.owned

    @property
    def leads(self) -> bool:
        return self.cluster.leader.token is not None

    async def stop_orderly(self) -> None:
        if self.ended:
            await self.cluster.store.close()  # a dead one's lease pool (idempotent)
            return
        self.ended = True
        self.stop.set()
        await asyncio.gather(*self.tasks)
        await self.cluster.close()
        await self.db.close()

    async def die(self) -> None:
        """As kill -9: everything stops at once, no lease is given up."""
        self.ended = True
        membership = self.cluster.membership.task
        for task in [*self.tasks, *([membership] if membership else [])]:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if membership is not None:
            await asyncio.gather(membership, return_exceptions=True)
        await self.db.close()


@pytest.fixture
async def url(postgres: PostgresServer) -> str:
    return create_database(postgres, f"oss_coordination_{next(_numbers)}")


@pytest.fixture
async def inventory(url: str) -> AsyncIterator[Inventory]:
    """The network both instances share: DEVICES devices on two sites."""
    db = Database(url)
    await db.migrate()
    inv = Inventory(db)
    await inv.load()
    for site in ("north", "south"):
        await inv.add_site(Site(name=site), actor="test")
    for i in range(DEVICES):
        site = "north" if i % 2 else "south"
        await inv.add_device(Device(name=f"r{i:02}", site=site), actor="test")
    try:
        yield inv
    finally:
        await db.close()


@pytest.fixture
async def start(url: str, inventory: Inventory) -> AsyncIterator[Callable[..., Any]]:
    nodes: list[Node] = []

    async def start_node(instance: str, *jobs: Callable[[str], Component]) -> Node:
        db = Database(url, idle_in_transaction_s=LEASE_S)
        settings = ClusterSettings(enabled=True, instance=instance, lease_s=LEASE_S)
        cluster = Cluster(settings, db, lambda: inventory.graph.devices(), api_url=None)
        components = [*cluster.components()]
        components += [cluster.singleton("usage", job(instance)) for job in jobs]
        await cluster.open()
        node = Node(db, cluster)
        node.tasks = [asyncio.create_task(c.run(node.stop)) for c in components]
        nodes.append(node)
        return node

    yield start_node
    for node in nodes:
        await node.stop_orderly()


async def until(what: str, found: Callable[[], object]) -> None:
    """Wait (a bounded poll, not a measure) until `found()` is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not found():
        assert loop.time() < deadline, f"never happened within {WAIT_S:g} s: {what}"
        await asyncio.sleep(0.05)


def split(inventory: Inventory, *nodes: Node) -> bool:
    """Every device owned by exactly one of `nodes`, evenly (a spread of one at most)."""
    everything = {d.name for d in inventory.graph.devices()}
    owned = [node.owned for node in nodes]
    disjoint = sum(len(o) for o in owned) == len(set().union(*owned))
    even = max(map(len, owned)) - min(map(len, owned)) <= 1
    return disjoint and set().union(*owned) == everything and even


def audit(conn: Connection) -> None:
    conn.execute(
        insert(AuditRow), {"actor": "t", "action": "t", "object_type": "t", "object_id": "1"}
    )


def expire(conn: Connection, name: str) -> None:
    conn.execute(
        text("UPDATE cluster_leases SET expires_at = clock_timestamp() WHERE name = :n"),
        {"n": name},
    )


async def test_one_leader_and_every_device_owned_by_exactly_one_instance(
    start: Callable[..., Any], inventory: Inventory
) -> None:
    a, b = await start("a"), await start("b")
    await until("the devices split between a and b", lambda: split(inventory, a, b))
    assert [a.leads, b.leads].count(True) == 1
    doc = await a.cluster.status()
    leader = "a" if a.leads else "b"
    assert (doc["enabled"], doc["instance"], doc["lease_s"]) == (True, "a", LEASE_S)
    assert doc["leader"] == leader
    assert doc["unassigned_devices"] == 0
    by_name = {i["instance"]: i for i in doc["instances"]}
    assert set(by_name) == {"a", "b"}
    assert by_name["a"]["devices"] == len(a.owned)
    assert by_name["b"]["devices"] == len(b.owned)
    assert all(i["alive"] and i["expires_in_s"] > 0 for i in doc["instances"])
    assert [i["instance"] for i in doc["instances"] if "leader" in i["roles"]] == [leader]
    assert (await b.cluster.status())["leader"] == leader  # every instance says the same


async def test_a_dead_instances_devices_are_taken_over_and_the_move_is_logged_once(
    start: Callable[..., Any], inventory: Inventory, caplog: pytest.LogCaptureFixture
) -> None:
    a = await start("a")
    await until("a leads", lambda: a.leads)
    b = await start("b")
    await until("the devices split between a and b", lambda: split(inventory, a, b))
    orphans = set(b.owned)
    with caplog.at_level(logging.INFO, logger="oss.cluster"):
        caplog.clear()
        await b.die()
        await until("a owns every device", lambda: len(a.owned) == DEVICES)
    moves = [r.getMessage() for r in caplog.records if r.getMessage().startswith("shares:")]
    assert len(moves) == 1, moves
    assert moves[0].startswith(f"shares: {len(orphans)} devices from b (lease expired ")
    assert moves[0].endswith(" ago) to a")
    doc = await a.cluster.status()
    b_row = next(i for i in doc["instances"] if i["instance"] == "b")
    assert (b_row["alive"], b_row["devices"]) == (False, 0)
    assert b_row["expires_in_s"] < 0


async def test_a_returning_instance_gets_its_share_back_without_flapping(
    start: Callable[..., Any], inventory: Inventory, caplog: pytest.LogCaptureFixture
) -> None:
    a = await start("a")
    await until("a owns every device", lambda: len(a.owned) == DEVICES)
    with caplog.at_level(logging.INFO, logger="oss.cluster"):
        caplog.clear()
        b = await start("b")
        await until("the devices split between a and b", lambda: split(inventory, a, b))
        held = set(b.owned)
        await asyncio.sleep(3 * LEASE_S)  # more rounds of the leader: nothing moves again
    assert b.owned == held
    moves = [r.getMessage() for r in caplog.records if r.getMessage().startswith("shares:")]
    assert moves == [f"shares: {DEVICES // 2} devices from a (rebalance) to b"]


async def test_a_lost_leader_lease_steps_down_says_why_and_its_writes_are_refused(
    start: Callable[..., Any], inventory: Inventory, caplog: pytest.LogCaptureFixture
) -> None:
    a = await start("a")
    await until("a leads", lambda: a.leads)
    b = await start("b")
    await until("the devices split between a and b", lambda: split(inventory, a, b))
    stale = a.cluster.leader.token
    assert stale is not None
    with caplog.at_level(logging.WARNING, logger="oss.cluster"):
        caplog.clear()

        # a pauses past its lease (its lease expires) and b takes over meanwhile
        def take_over(conn: Connection) -> int | None:
            expire(conn, "leader")
            return leases.acquire(conn, "leader", "b", LEASE_S)

        assert await b.db.write(take_over, fenced=False) == stale + 1
        await until("a stepped down", lambda: not a.leads)
        await until("b leads", lambda: b.leads)
    (line,) = [r.getMessage() for r in caplog.records if "steps down" in r.getMessage()]
    assert line.startswith(f"cluster: a steps down from 'leader': lease 'leader' token {stale}")
    assert "now held by 'b'" in line
    # what a wrote as the old leader is refused by the database, not by a check in Python
    with fenced(Fence("leader", "a", stale)), pytest.raises(Fenced, match="'leader'"):
        await a.db.write(lambda conn: leases.assign_shares(conn, {"r00": "a"}, stale))


async def test_a_lost_membership_steps_down_and_registers_again_under_a_new_token(
    start: Callable[..., Any], inventory: Inventory, caplog: pytest.LogCaptureFixture
) -> None:
    a = await start("a")
    await until("a owns every device", lambda: len(a.owned) == DEVICES)
    first = a.db.member_fence
    assert first is not None
    with caplog.at_level(logging.WARNING, logger="oss.cluster"):
        caplog.clear()
        # a second process registers under the same name: the first one's token is stale
        taken = await a.db.write(
            lambda conn: leases.acquire(conn, "member:a", "a", LEASE_S), fenced=False
        )
        assert taken == first.token + 1
        await until(
            "a registered again",
            lambda: a.db.member_fence is not None and a.db.member_fence.token > taken,
        )
    down = [r.getMessage() for r in caplog.records if "a steps down:" in r.getMessage()]
    assert len(down) == 1
    assert f"lease 'member:a' token {first.token} lost" in down[0]
    assert f"taken with token {taken} by another process named 'a'" in down[0]
    await until("a owns every device again", lambda: len(a.owned) == DEVICES)
    # a write under the stale member token is refused
    with fenced(first), pytest.raises(Fenced, match="member:a"):
        await a.db.write(audit)


async def test_a_singleton_runs_on_one_instance_and_moves_when_its_holder_dies(
    start: Callable[..., Any],
) -> None:
    running: dict[str, int] = {}
    a = await start("a", lambda i: Job(i, running))
    b = await start("b", lambda i: Job(i, running))
    await until("the job runs", lambda: running.get("now") == 1)
    holder, other = (a, "b") if running.get("a") else (b, "a")
    await holder.die()
    await until(f"the job runs on {other}", lambda: running.get(other) == 1)
    assert running["most"] == 1  # never on both at once


async def test_exclusive_work_refused_elsewhere_and_fenced_when_its_lease_goes(
    start: Callable[..., Any],
) -> None:
    a, b = await start("a"), await start("b")
    await until("both joined", lambda: a.cluster.membership.member and b.cluster.membership.member)
    async with a.cluster.exclusive("bill-runs"):
        await a.db.write(audit)  # held: written
        with pytest.raises(Conflict, match="bill-runs is running on instance 'a'"):
            async with b.cluster.exclusive("bill-runs"):
                pytest.fail("b ran a bill run while a did")

        def take_over(conn: Connection) -> int | None:
            expire(conn, "singleton:bill-runs")
            return leases.acquire(conn, "singleton:bill-runs", "b", LEASE_S)

        assert await b.db.write(take_over, fenced=False) is not None
        with pytest.raises(Fenced, match="singleton:bill-runs"):
            await a.db.write(audit)


async def test_a_device_added_by_another_instance_is_assigned_and_the_metrics_say_so(
    start: Callable[..., Any], inventory: Inventory, url: str
) -> None:
    a, b = await start("a"), await start("b")
    await until("the devices split between a and b", lambda: split(inventory, a, b))
    # another instance adds a device: the leader plans from the database, not from its graph
    # (which hears of it only through that instance's notice)
    elsewhere = Database(url)
    try:
        other = Inventory(elsewhere)
        await other.load()
        await other.add_device(Device(name="r99", site="north"), actor="test")
    finally:
        await elsewhere.close()
    await until("r99 owned", lambda: "r99" in a.owned | b.owned)
    assert "r99" not in {d.name for d in inventory.graph.devices()}
    metrics = Metrics()
    a.cluster.watch(metrics)
    text_ = metrics.exposition().decode()
    assert 'oss_cluster_lease_held{lease="member:a"} 1.0' in text_
    assert f"oss_cluster_devices_owned {float(len(a.owned))}" in text_
    assert "oss_cluster_members_live 2.0" in text_
    leader_held = 'oss_cluster_lease_held{lease="leader"} 1.0' in text_
    assert leader_held == a.leads
    assert "oss_cluster_devices_unassigned 0.0" in text_


async def test_a_holder_paused_inside_a_renewal_does_not_keep_its_successor_out(
    start: Callable[..., Any],
) -> None:
    a = await start("a")
    await until("a leads", lambda: a.leads)
    store = a.cluster.store
    # a stops where a renewal holds the lease's row (SIGSTOP between its UPDATE and COMMIT)
    paused = await store.engine.connect()
    await paused.begin()
    await paused.execute(text("SELECT 1 FROM cluster_leases WHERE name = 'leader' FOR UPDATE"))
    await a.die()
    try:
        b = await start("b")
        # the server ends a's idle session (idle_in_transaction_session_timeout): b takes over
        await until("b leads", lambda: b.leads)
    finally:
        with contextlib.suppress(Exception):  # the server closed it under us
            await paused.close()


async def test_a_long_fenced_transaction_does_not_cost_its_instance_the_membership(
    start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    a = await start("a")
    await until("a owns every device", lambda: len(a.owned) == DEVICES)
    token = a.cluster.membership.token
    with caplog.at_level(logging.WARNING, logger="oss.cluster"):
        caplog.clear()
        # a write (a bill run's batch, a big import) busy for 3 lease periods: its fence holds
        # the member lease's row, and the renewals must still go through
        async with a.db.transaction() as session:
            await session.execute(text("SELECT pg_sleep(:s)"), {"s": 3 * LEASE_S})
            session.add(AuditRow(actor="t", action="long", object_type="t", object_id="1"))
    assert not [r for r in caplog.records if "steps down" in r.getMessage()]
    assert a.cluster.membership.token == token
    assert a.cluster.membership.member


async def test_two_processes_under_one_instance_name_are_called_an_error(
    start: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    def told() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.ERROR and "another process runs as instance" in r.getMessage()
        ]

    with caplog.at_level(logging.WARNING, logger="oss.cluster"):
        await start("a")
        await start("a")  # the same settings file copied to a second host
        await until("the clash is said", told)
    assert told()[0].startswith("cluster: another process runs as instance 'a' (it took lease ")
    assert told()[0].endswith("give each instance its own cluster.instance")


async def test_a_bookkeeping_call_past_its_bound_says_how_long_it_waited(url: str) -> None:
    """A renewal the database does not answer in time is given up with its bound named (a
    bare TimeoutError printed as nothing in the step-down and outage warnings)."""
    db = Database(url)
    store = StoredLeases(db, limit_s=0.2)
    try:
        with pytest.raises(TimeoutError, match=r"did not answer within 0\.2 s"):
            await store.run(lambda conn: conn.execute(text("SELECT pg_sleep(2)")))
    finally:
        await store.close()
        await db.close()

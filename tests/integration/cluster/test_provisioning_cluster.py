"""Provisioning across instances (issue 18) on a real PostgreSQL and the simulated chain lab
(real NETCONF, gNMI and CLI devices over loopback): two service managers on two database
handles are two instances, "a" and "b", with their own device sessions and device locks.

- Two instances changing the same devices take turns (the database's advisory locks), and two
  creates placed at once never get the same VLAN (the placement lock).
- A transaction journaled by "b", whose membership lease expired, is left alone while "b"
  still holds its devices (paused), then finished or rolled back by "a"'s txn-recovery once
  "b" is gone; every device then reads back what the journal's outcome says.

The kill -9 of a real `oss serve` is tests/integration/cluster/test_cluster_processes.py's.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from oss import audit
from oss.errors import Conflict, Fenced
from oss.inventory import Inventory
from oss.provisioning.access import DeviceAccess
from oss.provisioning.cluster_locks import device_locks_for
from oss.provisioning.engine import Engine, Step, StepEvent
from oss.provisioning.orphans import OrphanRecovery
from oss.provisioning.services import ServiceManager
from oss.store import Database, leases
from oss.store.device_locks import AdvisoryDeviceLocks, DevicesBusy
from oss.store.fencing import Fence
from tests.integration.provisioning.conftest import (
    LOOPBACK,
    TIMEOUT_S,
    ChainLab,
    Stack,
    running_chain_lab,
    snapshot,
)
from tests.peers.postgres import PostgresServer, create_database
from topology.clab import parse_clab

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # lease periods of seconds

SLICE = {"customer": "acme", "from": "west", "to": "east", "bandwidth": "100M"}
GUARD_S = 60.0  # only so a broken lock cannot hang the suite; never reached when it works
_numbers = itertools.count(1)


@dataclass
class Instance:
    name: str
    stack: Stack

    @property
    def services(self) -> ServiceManager:
        return self.stack.services

    @property
    def db(self) -> Database:
        return self.stack.db


@pytest.fixture(scope="module")
def chain_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainLab]:
    with running_chain_lab(tmp_path_factory.mktemp("cluster-chain-lab"), "cluster-lab") as lab:
        yield lab


@pytest.fixture
def url(postgres: PostgresServer) -> str:
    return create_database(postgres, f"oss_prov_cluster_{next(_numbers)}")


@pytest.fixture
async def cluster(chain_lab: ChainLab, url: str) -> AsyncIterator[tuple[Instance, Instance]]:
    """Instances "a" (live) and "b" (live until a test lets its lease lapse) on one database,
    the chain lab's inventory imported once (by "a"), loaded by both."""
    first = Database(url)
    await first.migrate()
    topo = parse_clab(chain_lab.clab_file.read_text(), str(chain_lab.clab_file))
    await Inventory(first).import_topology(topo, actor="test", source="chain5.clab.yml")
    await first.close()
    made: list[Instance] = []
    try:
        for name in ("a", "b"):
            made.append(await _instance(name, url, chain_lab))
            token = await made[-1].db.write(
                lambda c, n=name: leases.acquire(c, leases.member_lease(n), n, 60.0),
                fenced=False,
            )
            assert token is not None
            # as the membership does: every write of the instance carries its lease
            made[-1].db.member_fence = Fence(leases.member_lease(name), name, token)
        yield made[0], made[1]
    finally:
        for instance in made:
            await instance.services.close()
            await instance.stack.access.close()
            await instance.db.close()


async def _instance(name: str, url: str, lab: ChainLab) -> Instance:
    db = Database(url)
    inventory = Inventory(db)
    await inventory.load()
    access = DeviceAccess(
        device_of=inventory.graph.device,
        allowed=LOOPBACK,
        ports=lab.lab.ports.as_dict(),
        timeout_s=TIMEOUT_S,
    )
    engine = Engine(access, locks=device_locks_for(db, name), lock_wait_s=GUARD_S)
    services = ServiceManager(db, inventory, engine, instance=name)
    return Instance(name, Stack(db, inventory, access, engine, services))


class Steps:
    """One observer per instance, all writing to one log in the order things happen; the first
    confirmation of any instance waits for `release` (a transaction holding its devices)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, Step, StepEvent]] = []
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    def of(self, instance: str) -> Any:
        async def observe(device: str, step: Step, event: StepEvent, error: str | None) -> None:
            self.log.append((instance, device, step, event))
            if step == "confirm" and event == "start" and not self.release.is_set():
                self.holding.set()
                await self.release.wait()

        return observe


async def until_waiting_for_a_lock(db: Database) -> None:
    """Until some session waits for an advisory lock (bounded: the guard only)."""
    for _ in range(int(GUARD_S / 0.05)):
        async with db.engine.connect() as conn:
            waiting = await conn.scalar(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("nobody ever waited for a device lock")


async def test_two_instances_changing_the_same_devices_take_turns(
    cluster: tuple[Instance, Instance],
) -> None:
    a, b = cluster
    steps = Steps()
    creates = [
        asyncio.create_task(i.services.create("slice", SLICE, actor="t", observer=steps.of(i.name)))
        for i in (a, b)
    ]
    await asyncio.wait_for(steps.holding.wait(), GUARD_S)  # one holds its devices, confirming
    await until_waiting_for_a_lock(a.db)  # the other one waits for them in the database
    first = steps.log[-1][0]
    assert {who for who, *_ in steps.log} == {first}, "the other touched a device meanwhile"
    steps.release.set()
    done = await asyncio.wait_for(asyncio.gather(*creates), GUARD_S)

    # Every device's steps: all of one transaction, then all of the other (never interleaved).
    for device in {d for _, d, _, _ in steps.log}:
        order = [who for who, d, _, _ in steps.log if d == device]
        assert order == sorted(order, key=lambda who: who != first), (device, order)
    vlans = {r["service"]["vlan"] for r in done}
    assert len(vlans) == 2, "two creates placed at once got one VLAN"
    for r, i in zip(done, (a, b), strict=True):  # each journaled with the instance running it
        assert (await a.services.transaction(r["transaction"]["id"]))["instance"] == i.name
    for r in done:  # the devices hold both services
        assert (await a.services.drift(r["service"]["id"]))["in_sync"], r["service"]["name"]
    for r, i in zip(done, (a, b), strict=True):
        await i.services.delete(r["service"]["id"], actor="t")


async def test_two_instances_never_reserve_the_same_bandwidth(
    cluster: tuple[Instance, Instance],
) -> None:
    """Both instances place a 600M slice on the same empty network at once (each probe done
    before either reserves): the placement lock makes the second re-check the links' room
    after the first reserved, and refuse; no link holds more than its capacity."""
    a, b = cluster
    probed = asyncio.Barrier(2)
    for i in (a, b):
        probe = i.services._probe

        async def probe_together(*args: Any, probe: Any = probe) -> Any:
            placed = await probe(*args)
            await probed.wait()  # the other has placed too, on the same empty network
            return placed

        i.services._probe = probe_together  # type: ignore[method-assign]
    big = {**SLICE, "bandwidth": "600M"}
    results = await asyncio.wait_for(
        asyncio.gather(
            *(i.services.create("slice", big, actor="t") for i in (a, b)), return_exceptions=True
        ),
        GUARD_S,
    )
    [created] = [r for r in results if isinstance(r, dict)]
    [refused] = [r for r in results if isinstance(r, Conflict)]
    assert "another instance reserved the room" in str(refused)
    assert "bit/s free, 600000000 bit/s needed" in str(refused)
    graph = a.stack.inventory.graph
    for link, bps in (await a.services.reserved()).items():
        assert bps <= graph.link(link).capacity_bps, link
    await a.services.delete(created["service"]["id"], actor="t")


async def expire(instance: Instance) -> None:
    """The instance's membership lease lapses (a pause, a partition, a death)."""

    def lapse(conn: Any) -> None:
        [lease] = [x for x in leases.all_leases(conn) if x.name == f"member:{instance.name}"]
        leases.release(conn, lease.name, lease.holder, lease.token)

    await instance.db.write(lapse, fenced=False)


async def create_stopping_at(instance: Instance, stopped_at: Step) -> tuple[int, int]:
    """A slice created by `instance` (as "alice") that stops for good when its devices start
    `stopped_at`, as a process stopped there would: (transaction id, service id)."""
    reached = asyncio.Event()

    async def stop_there(device: str, step: Step, event: StepEvent, error: str | None) -> None:
        if step == stopped_at and event == "start":
            reached.set()
            await asyncio.Event().wait()  # stopped: never goes on

    started: list[tuple[int, int]] = []
    instance.services.spawn(
        instance.services.create(
            "slice",
            SLICE,
            actor="alice",
            observer=stop_there,
            on_started=lambda t, s: started.append((t, s)),
        )
    )
    await asyncio.wait_for(reached.wait(), GUARD_S)
    [(txn_id, service_id)] = started
    return txn_id, service_id


@pytest.mark.parametrize(
    ("stopped_at", "outcome"),
    [("confirm", "committed"), ("verify", "rolled-back")],
)
async def test_a_transaction_of_an_instance_gone_is_resolved_by_another(
    cluster: tuple[Instance, Instance],
    chain_lab: ChainLab,
    caplog: pytest.LogCaptureFixture,
    stopped_at: Step,
    outcome: str,
) -> None:
    """ "b" stops at `stopped_at` (every device verified, or every device committed and not
    verified): confirmed by persist id, or undone from the journal's pre-images, by "a"."""
    a, b = cluster
    before = await snapshot(a.stack)
    txn_id, service_id = await create_stopping_at(b, stopped_at)
    await expire(b)
    recovery = OrphanRecovery(a.services, a.db, "a", interval_s=1.0)

    # "b" is not live but still holds the devices (a paused process): left alone, said why.
    with caplog.at_level(logging.WARNING, logger="oss.provisioning.orphans"):
        assert await recovery.sweep() == []
    assert f"transaction {txn_id} of instance b (lease expired" in caplog.text
    assert "is being changed by a transaction of instance b" in caplog.text
    assert (await a.services.transaction(txn_id))["state"] not in ("committed", "rolled-back")

    await b.services.close()  # "b" is gone: its device sessions and its locks with it
    [resolved] = await recovery.sweep()
    assert (resolved["id"], resolved["state"], resolved["instance"]) == (txn_id, outcome, "b")
    assert await recovery.sweep() == []  # once

    service = await a.services.get(service_id)
    assert service["state"] == ("active" if outcome == "committed" else "failed")
    assert (await a.services.transaction(txn_id))["state"] == outcome
    if outcome == "committed":  # the devices hold the service, as the journal says
        assert (await a.services.drift(service_id))["in_sync"]
    else:  # every device is as it was before the change
        assert await snapshot(a.stack) == before
    entries, _ = await audit.list_entries(
        a.db, limit=10, offset=0, object_type="service", object_id=service["name"]
    )
    assert [(e.action, e.actor) for e in entries] == [("create", "alice")]
    [recovered], _ = await audit.list_entries(
        a.db, limit=10, offset=0, object_type="transaction", object_id=str(txn_id)
    )
    assert (recovered.action, recovered.actor) == ("recover", "txn-recovery@a")
    assert recovered.after["instance"] == "b" and recovered.after["state"] == outcome
    if outcome == "committed":
        await a.services.delete(service_id, actor="t")
        assert await snapshot(a.stack) == before


async def test_a_paused_instance_resuming_is_refused_by_its_fence_and_another_resolves(
    cluster: tuple[Instance, Instance],
) -> None:
    """ "b" pauses holding its devices (before its confirmation) past its lease; "a"'s
    txn-recovery waits for the devices. "b" resumes: its confirmation reaches the devices (a
    device cannot check a fence), then its journal write is refused by the database, and it
    lets the devices go without another step. "a" then takes the transaction over (a fenced
    write of its own) and resolves it from the journal, which never recorded the confirmation:
    the re-confirmation by persist id finds nothing pending on the NETCONF devices, so every
    device is undone from the pre-images."""
    a, b = cluster
    before = await snapshot(a.stack)
    steps = Steps()
    started: list[tuple[int, int]] = []
    change = asyncio.create_task(
        b.services.create(
            "slice",
            SLICE,
            actor="alice",
            observer=steps.of("b"),
            on_started=lambda t, s: started.append((t, s)),
        )
    )
    await asyncio.wait_for(steps.holding.wait(), GUARD_S)
    [(txn_id, service_id)] = started
    await expire(b)
    recovery = OrphanRecovery(a.services, a.db, "a", interval_s=1.0, lock_wait_s=GUARD_S)
    sweep = asyncio.create_task(recovery.sweep())
    await until_waiting_for_a_lock(a.db)  # "a" waits for the devices "b" holds
    held = len(steps.log)
    steps.release.set()  # "b" resumes
    with pytest.raises(Fenced, match="member:b"):
        await asyncio.wait_for(change, GUARD_S)
    assert {step for who, _, step, _ in steps.log[held:]} == {"confirm"}  # nothing more
    [resolved] = await asyncio.wait_for(sweep, GUARD_S)

    assert (resolved["id"], resolved["instance"], resolved["state"]) == (txn_id, "b", "rolled-back")
    assert await snapshot(a.stack) == before
    assert (await a.services.get(service_id))["state"] == "failed"
    assert (await a.services.transaction(txn_id))["instance"] == "a"  # claimed by its resolver


async def test_start_up_recovery_does_not_wait_for_devices_another_instance_holds(
    cluster: tuple[Instance, Instance],
) -> None:
    """ "b" restarts while another instance holds a device of its unfinished transaction: its
    start goes on, and the transaction is resolved in the background once the device is free."""
    a, b = cluster
    before = await snapshot(a.stack)
    txn_id, _ = await create_stopping_at(b, "verify")
    await b.services.close()  # "b" stops
    locks = AdvisoryDeviceLocks(a.db.url, "a")
    other = locks.holding(["pe1"], wait_s=0)
    await other.__aenter__()
    engine = Engine(b.stack.access, locks=device_locks_for(b.db, "b"), lock_wait_s=GUARD_S)
    restarted = ServiceManager(b.db, b.stack.inventory, engine, instance="b")
    try:
        assert await restarted.recover() == []  # not held up by pe1
        assert (await restarted.transaction(txn_id))["state"] == "verifying"
        await other.__aexit__(None, None, None)
        await asyncio.wait_for(asyncio.gather(*restarted._tasks), GUARD_S)
        assert (await restarted.transaction(txn_id))["state"] == "rolled-back"
        assert await snapshot(a.stack) == before
    finally:
        await restarted.close()
        await locks.close()


async def test_a_device_lock_names_its_holder_and_dies_with_its_connection(url: str) -> None:
    """The server releases a session's device locks when its connection goes (as when the
    instance's process dies); while held, a refusal names the holding instance."""
    db = Database(url)
    await db.migrate()
    held, other = AdvisoryDeviceLocks(db.url, "b"), AdvisoryDeviceLocks(db.url, "a")
    try:
        holding = held.holding(["pe1", "p1"], wait_s=0)
        await holding.__aenter__()
        with pytest.raises(DevicesBusy, match=r"device p1 is being changed by .* instance b \("):
            async with other.holding(["p1"], wait_s=0.05):
                raise AssertionError("p1 is held")
        with pytest.raises(DevicesBusy, match=r"device pe1 is being changed by .* instance b"):
            async with other.holding(["pe2", "pe1", "p2"], wait_s=0):  # free now, or refused
                raise AssertionError("pe1 is held")
        async with other.holding(["pe2", "p2"], wait_s=0):  # the others were let go
            pass
        single = AdvisoryDeviceLocks(db.url, None)  # a daemon not in cluster mode
        try:
            async with single.holding(["pe2"], wait_s=0):
                with pytest.raises(DevicesBusy, match="another daemon on this database"):
                    async with other.holding(["pe2"], wait_s=0):
                        raise AssertionError("pe2 is held")
        finally:
            await single.close()
        async with db.engine.connect() as conn:  # the holder's connection ends on the server
            ended = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'oss-locks:b'"
                )
            )
        assert ended == 1
        async with other.holding(["pe1", "p1"], wait_s=GUARD_S):
            pass
        await holding.__aexit__(None, None, None)  # its connection is gone already: no error
    finally:
        await held.close()
        await other.close()
        await db.close()

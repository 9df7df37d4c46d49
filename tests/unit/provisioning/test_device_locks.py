"""Device locks (in this process, and the keys of the database's advisory locks across
instances) and a transaction that finds its devices busy past its wait. The engine runs against
the in-memory devices of test_engine; the advisory locks themselves are exercised on a real
PostgreSQL in tests/integration/cluster/test_provisioning_cluster.py."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from oss.errors import Fenced, StorageError
from oss.provisioning.engine import TERMINAL, DeviceLocks, Engine, TransactionFailed
from oss.provisioning.orphans import OrphanRecovery, _why_orphaned
from oss.provisioning.plan import DevicePlan
from oss.store import journal_rows
from oss.store.device_locks import DevicesBusy, device_key, lock_order
from oss.store.journal_rows import Unfinished
from oss.store.leases import Lease
from tests.unit.provisioning.test_engine import (
    GUARD_S,
    FakeAccess,
    FakeDevice,
    FakeJournal,
    transaction,
)

NAMES = ["pe1", "p1", "p2", "agg-17", "a" * 64]


def test_a_device_key_is_the_same_in_every_process() -> None:
    """Two instances must compute the same key for a device: the key may not depend on
    Python's per-process string hash."""
    code = (
        f"from oss.store.device_locks import device_key;print([device_key(n) for n in {NAMES!r}])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert other.stdout.strip() == str([device_key(n) for n in NAMES])
    assert all(-(2**31) <= device_key(n) < 2**31 for n in NAMES)  # an int4 of pg_advisory_lock


def test_the_lock_order_is_by_key_so_names_that_hash_alike_cannot_deadlock() -> None:
    """Names are taken in key order (then name), duplicates once: two lockers whose devices
    share a key still take them in one global order."""
    seen: dict[int, str] = {}
    for n in itertools.count():  # a birthday search: two names with one 32-bit key
        name = f"dev{n}"
        if device_key(name) in seen:
            twin = seen[device_key(name)]
            break
        seen[device_key(name)] = name
    order = lock_order([name, "pe1", twin, name])
    assert [d for _, d in order].count(name) == 1
    assert [k for k, _ in order] == sorted(k for k, _ in order)
    shared = [d for k, d in order if k == device_key(name)]
    assert shared == sorted([name, twin])


async def test_a_busy_device_is_refused_after_the_wait_naming_it() -> None:
    locks = DeviceLocks()
    async with locks.holding(["p1"]):
        with pytest.raises(DevicesBusy, match="device p1 is being changed by another"):
            async with locks.holding(["pe1", "p1"], wait_s=0.01):
                raise AssertionError("p1 is held")
        async with locks.holding(["pe1"], wait_s=0):  # the devices not held are free
            pass
    async with locks.holding(["pe1", "p1"], wait_s=0):  # and every lock was let go
        pass


async def test_a_transaction_whose_device_stays_busy_fails_having_touched_nothing() -> None:
    devices = {n: FakeDevice(n) for n in ("pe1", "p1", "pe2")}
    access = FakeAccess(*devices.values())
    engine = Engine(access, lock_wait_s=0.01)
    first_reading, release = asyncio.Event(), asyncio.Event()

    async def hold(p: DevicePlan) -> None:
        first_reading.set()
        await release.wait()

    devices["p1"].hooks["read"] = hold
    first = asyncio.create_task(engine.run(transaction(["pe1", "p1"], 1, "t1"), FakeJournal()))
    await asyncio.wait_for(first_reading.wait(), GUARD_S)
    journal = FakeJournal()
    with pytest.raises(TransactionFailed) as failed:
        await engine.run(transaction(["p1", "pe2"], 2, "t2"), journal)
    assert failed.value.transaction.state == "rolled-back"
    assert "device p1 is being changed" in str(failed.value)
    assert "nothing was changed" in str(failed.value)
    assert access.steps(payload="t2") == []
    assert journal.states == ["rolled-back"]
    release.set()
    assert (await asyncio.wait_for(first, GUARD_S)).state == "committed"


def test_the_store_s_ended_states_are_the_engine_s() -> None:
    """The store cannot import the engine: its list of ended journal states must match."""
    assert set(journal_rows.ENDED) == set(TERMINAL)


def test_an_orphan_s_reason_says_why_its_instance_is_not_live() -> None:
    def entry(instance: str | None) -> Unfinished:
        return Unfinished(12, "create", 3, instance)

    expired = {"b": Lease("member:b", "b", 4, 13.0, -3.04)}
    assert _why_orphaned(entry("b"), expired) == "lease expired 3.0 s ago"
    assert _why_orphaned(entry("c"), expired) == "not a member"
    assert _why_orphaned(entry(None), expired) == "recorded by a daemon not in cluster mode"


class Rounds(OrphanRecovery):
    """OrphanRecovery whose rounds raise the given errors in turn; the round after the last one
    stops the component."""

    def __init__(self, errors: list[BaseException], stop: asyncio.Event) -> None:
        super().__init__(None, None, "a", interval_s=0.001)  # type: ignore[arg-type]
        self.errors, self.stop, self.rounds = errors, stop, 0

    async def sweep(self) -> list[dict[str, Any]]:
        self.rounds += 1
        if self.errors:
            raise self.errors.pop(0)
        self.stop.set()
        return []


async def test_txn_recovery_rides_out_the_database_and_tells_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    rounds = Rounds([StorageError("connection refused"), StorageError("connection refused")], stop)
    with caplog.at_level(logging.INFO, logger="oss.provisioning.orphans"):
        await asyncio.wait_for(rounds.run(stop), GUARD_S)
    assert rounds.rounds == 3
    assert caplog.text.count("cannot read the journal: connection refused") == 1
    assert "the database answers again" in caplog.text


async def test_txn_recovery_stops_on_a_lost_lease() -> None:
    """Fenced: its singleton's lease is someone else's now; the singleton holder stops it."""
    stop = asyncio.Event()
    with pytest.raises(Fenced):
        await asyncio.wait_for(Rounds([Fenced("write refused")], stop).run(stop), GUARD_S)

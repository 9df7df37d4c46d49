"""The moments between a transaction's ends and its service's state.

A client follows a change by polling its transaction (`GET /api/v1/transactions/{id}`, the
CLI's follow, an order) and then reads the service: once the transaction says it ended, the
service must say how it ended, and the change must be audited. The engine here pauses right
after it returns (or raises) and before the service manager writes the service's state, and
looks at what a client would see there; a daemon stopped in that moment must leave the change
to recovery, not a committed transaction with its service provisioning forever. At the other
end, the moment the API answers 202 with the transaction's id, the service already names it.

On the mixed-protocol chain lab (real NETCONF, gNMI and CLI devices over loopback).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from oss import audit
from oss.errors import Conflict
from oss.provisioning.engine import (
    TERMINAL,
    Engine,
    Journal,
    Observer,
    Transaction,
    TransactionFailed,
)
from oss.provisioning.journal import DbJournal
from oss.provisioning.services import ServiceManager
from tests.integration.provisioning.conftest import Stack
from tests.integration.provisioning.test_failure_matrix import _hand_config

pytestmark = pytest.mark.integration

SLICE = {"customer": "acme", "from": "west", "to": "east", "bandwidth": "100M"}


@dataclass(frozen=True)
class Seen:
    """What a client reads: the transaction's state, its service's, the service's audit."""

    transaction: str
    finished_at: str | None
    service: str
    audited: int


class PausingEngine(Engine):
    """The real engine; once a transaction ends it records what a client sees, and, when
    `hold` is set, waits there (as a loaded machine may, between two database writes)."""

    seen: list[Seen]
    services: ServiceManager
    reached: asyncio.Event
    hold: asyncio.Event | None = None

    async def run(
        self, txn: Transaction, journal: Journal, observer: Observer | None = None
    ) -> Transaction:
        try:
            return await super().run(txn, journal, observer)
        finally:
            self.seen.append(await client_view(self.services, txn.id))
            self.reached.set()
            if self.hold is not None:
                await self.hold.wait()


async def client_view(services: ServiceManager, txn_id: int) -> Seen:
    txn = await services.transaction(txn_id)  # what GET /api/v1/transactions/{id} answers
    service = await services.get(int(txn["service_id"]))
    return Seen(
        txn["state"], txn["finished_at"], service["state"], await audited(services, service)
    )


async def audited(services: ServiceManager, service: dict[str, Any]) -> int:
    _, total = await audit.list_entries(
        services.db, limit=1, offset=0, object_type="service", object_id=service["name"]
    )
    return total


@pytest.fixture
async def paused(stack: Stack) -> AsyncIterator[tuple[ServiceManager, PausingEngine]]:
    engine = PausingEngine(stack.access)
    engine.seen, engine.reached = [], asyncio.Event()
    services = ServiceManager(stack.db, stack.inventory, engine)
    engine.services = services
    try:
        yield services, engine
    finally:
        await services.close()


def the_moment(engine: PausingEngine) -> Seen:
    [seen] = engine.seen
    engine.seen.clear()
    return seen


def assert_not_reported_ended(seen: Seen, service_state: str, audited_before: int) -> None:
    """The service is not settled yet: the transaction must not say it ended."""
    assert seen.service == service_state, seen
    assert seen.audited == audited_before, seen
    assert seen.transaction not in TERMINAL, (
        f"transaction reported {seen.transaction} while its service is still {seen.service}"
    )
    assert seen.finished_at is None, seen


async def test_a_committed_transaction_is_seen_with_its_settled_service(
    paused: tuple[ServiceManager, PausingEngine],
) -> None:
    """create, modify, reconcile and delete: each transaction reads `committed` only together
    with the service's settled state and the change's audit entry."""
    services, engine = paused
    created = await services.create("slice", SLICE, actor="test")
    service_id, txn_id = created["service"]["id"], created["transaction"]["id"]
    assert_not_reported_ended(the_moment(engine), "provisioning", 0)
    settled = await client_view(services, txn_id)
    assert (settled.transaction, settled.service, settled.audited) == ("committed", "active", 1)
    assert settled.finished_at is not None

    steps: list[tuple[str, str, str]] = [  # (kind, service state in flight, settled)
        ("modify", "provisioning", "active"),
        ("reconcile", "active", "active"),
        ("delete", "terminating", "terminated"),
    ]
    for number, (kind, in_flight, final) in enumerate(steps, start=1):
        if kind == "modify":
            result = await services.modify(service_id, {"bandwidth": "200M"}, actor="test")
        elif kind == "reconcile":
            result = await services.reconcile(service_id, actor="test")
        else:
            result = await services.delete(service_id, actor="test")
        assert_not_reported_ended(the_moment(engine), in_flight, number)
        settled = await client_view(services, result["transaction"]["id"])
        assert (settled.transaction, settled.service) == ("committed", final), kind
        assert settled.audited == number + 1, kind


async def test_a_rolled_back_transaction_is_seen_with_its_failed_service(
    paused: tuple[ServiceManager, PausingEngine], stack: Stack
) -> None:
    """p2 (CLI) refuses the slice's VLAN: the transaction reads `rolled-back` only together
    with the service `failed` and the create's audit entry."""
    services, engine = paused
    await _hand_config(stack, "p2", "eth1", vlan=100, create=True)
    try:
        with pytest.raises(TransactionFailed) as failed:
            await services.create("slice", SLICE, actor="test")
    finally:
        await _hand_config(stack, "p2", "eth1", vlan=100, create=False)
    assert_not_reported_ended(the_moment(engine), "provisioning", 0)
    settled = await client_view(services, failed.value.transaction.id)
    assert (settled.transaction, settled.service, settled.audited) == ("rolled-back", "failed", 1)


async def test_a_daemon_stopped_before_the_settle_leaves_the_change_to_recovery(
    paused: tuple[ServiceManager, PausingEngine], stack: Stack
) -> None:
    """The daemon stops (its background changes are cancelled) after the devices confirmed
    and before the service was written: the next start's recovery finishes the change, so the
    service ends active and audited instead of provisioning forever."""
    services, engine = paused
    engine.hold = asyncio.Event()  # never set: the change waits there until it is cancelled
    started: list[tuple[int, int]] = []
    task = services.spawn(
        services.create(
            "slice", SLICE, actor="alice", on_started=lambda t, s: started.append((t, s))
        )
    )
    await engine.reached.wait()
    await services.close()  # what the daemon's shutdown does
    assert task.cancelled()
    [(txn_id, service_id)] = started

    restarted = ServiceManager(stack.db, stack.inventory, Engine(stack.access))
    assert await restarted.recover() == [{"id": txn_id, "kind": "create", "state": "committed"}]
    service = await restarted.get(service_id)
    assert service["state"] == "active"
    entries, _ = await audit.list_entries(
        stack.db, limit=10, offset=0, object_type="service", object_id=service["name"]
    )
    assert [(e.action, e.actor) for e in entries] == [("create", "alice")]
    await restarted.delete(service_id, actor="test")


def stored_service(stack: Stack, service_id: int) -> tuple[str, int | None]:
    """The service's state and transaction as the database holds them now (read from outside
    the daemon's connection: what any client's read would find)."""
    path = stack.db.url.database
    assert path is not None
    with sqlite3.connect(path) as conn:
        state, txn = conn.execute(
            "SELECT state, transaction_id FROM services WHERE id = ?", (service_id,)
        ).fetchone()
    return str(state), txn


async def test_the_service_names_its_transaction_when_its_id_is_told(stack: Stack) -> None:
    """`on_started` is the moment the API answers 202 with the transaction's id (Location):
    a client that reads the service then finds it in flight and naming that transaction, not
    `reserved` with no transaction, or with the previous, committed one."""
    services = stack.services
    told: list[tuple[int, tuple[str, int | None]]] = []

    def on_started(txn_id: int, service_id: int) -> None:
        told.append((txn_id, stored_service(stack, service_id)))

    created = await services.create("slice", SLICE, actor="test", on_started=on_started)
    service_id = created["service"]["id"]
    await services.modify(service_id, {"bandwidth": "200M"}, actor="test", on_started=on_started)
    await services.reconcile(service_id, actor="test", on_started=on_started)
    await services.delete(service_id, actor="test", on_started=on_started)
    in_flight = ["provisioning", "provisioning", "active", "terminating"]
    assert [seen for _, seen in told] == [
        (state, txn_id) for (txn_id, _), state in zip(told, in_flight, strict=True)
    ]


class HoldingJournal(DbJournal):
    """The real journal; opening a transaction of kind `kind` waits (never released), as a
    daemon stopping there would leave it."""

    kind: str
    reached: asyncio.Event

    async def add(
        self, session: AsyncSession, kind: str, service_id: int | None, actor: str
    ) -> int:
        if kind == self.kind:
            self.reached.set()
            await asyncio.Event().wait()
        return await super().add(session, kind, service_id, actor)


async def test_a_daemon_stopped_before_a_modify_is_journaled_keeps_the_old_service(
    stack: Stack,
) -> None:
    """A modification's new parameters and resources are stored with its journal entry, or
    not at all: a daemon stopped before the transaction was journaled (no device touched)
    leaves the service as it was, active with its old parameters and reservations; before, it
    stayed `reserved` with the new ones and no transaction, which nothing would settle."""
    services = stack.services
    created = await services.create("slice", SLICE, actor="test")
    service_id = created["service"]["id"]
    reserved = await services.reserved()
    await stopped_before_journaled(
        stack, "modify", lambda m: m.modify(service_id, {"bandwidth": "200M"}, actor="test")
    )

    assert await services.recover() == []  # nothing was journaled
    service = await services.get(service_id)
    assert (service["state"], service["params"]) == ("active", created["service"]["params"])
    assert service["transaction_id"] == created["transaction"]["id"]
    assert await services.reserved() == reserved
    await services.delete(service_id, actor="test")


async def test_a_daemon_stopped_before_a_create_is_journaled_leaves_no_service(
    stack: Stack,
) -> None:
    """A new service is stored with its reservation and its journal entry, or not at all: a
    daemon stopped before the transaction was journaled leaves no service holding bandwidth
    (before, a `reserved` one with no transaction stayed, which nothing would settle)."""
    await stopped_before_journaled(stack, "create", lambda m: m.create("slice", SLICE, actor="t"))
    assert await stack.services.recover() == []
    assert await stack.services.find() == []
    assert await stack.services.reserved() == {}


async def stopped_before_journaled(
    stack: Stack, kind: str, change: Callable[[ServiceManager], Awaitable[Any]]
) -> None:
    """Run `change` on a service manager whose journal holds the opening of `kind`, and stop
    it there as the daemon's shutdown does (background changes cancelled)."""
    journal = HoldingJournal(stack.db)
    journal.kind, journal.reached = kind, asyncio.Event()
    stopping = ServiceManager(stack.db, stack.inventory, stack.engine, journal=journal)

    async def run() -> None:
        await change(stopping)

    task = stopping.spawn(run())
    await journal.reached.wait()
    await stopping.close()
    assert task.cancelled()


async def test_of_two_changes_loaded_together_only_one_starts(stack: Stack) -> None:
    """Two modifications that both read the service while it was active (as two requests at
    once do): the first to be journaled runs, the second is refused (409) when it would start,
    instead of running a second transaction planned from parameters no longer current."""
    services = stack.services
    created = await services.create("slice", SLICE, actor="test")
    service_id = created["service"]["id"]
    load, loaded, both = services._load, [0], asyncio.Event()

    async def load_together(*args: Any, **kwargs: Any) -> Any:
        stored = await load(*args, **kwargs)
        loaded[0] += 1
        if loaded[0] == 2:
            both.set()
        await both.wait()
        return stored

    services._load = load_together  # type: ignore[method-assign]
    results = await asyncio.gather(
        services.modify(service_id, {"bandwidth": "200M"}, actor="test"),
        services.modify(service_id, {"bandwidth": "300M"}, actor="test"),
        return_exceptions=True,
    )
    services._load = load  # type: ignore[method-assign]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 1, results
    [done] = [r for r in results if isinstance(r, dict)]
    assert "another change is running" in str(refused[0])
    service = await services.get(service_id)
    assert (service["state"], service["params"]) == ("active", done["service"]["params"])
    await services.delete(service_id, actor="test")

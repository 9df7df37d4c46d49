"""Product orders with a fake provisioning side (a real SQLite database): our validation rules
with the field named, idempotency (replay, conflict, a concurrent duplicate), cancellation,
and processing: completed with an active product, failed with the reason and nothing active,
all-or-nothing across items, a cancellation while running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import select

from bss_bridge.customers import Customers
from bss_bridge.orders import Orders
from bss_bridge.ports import OssPorts
from bss_bridge.tables import ProductOrderRow, ProductRow
from oss import tmf
from oss.bss_ports import ServiceDesk, records_for
from oss.errors import Conflict, InvalidInput, NotFound
from oss.provisioning.engine import Transaction, TransactionFailed
from oss.provisioning.service_types import load_service_types
from oss.store.database import Database
from oss.store.tables import ServiceRow

SPEC = tmf.spec(tmf.PRODUCT_ORDERING)
FINISHED = datetime(2026, 11, 3, 10, 0, 5, tzinfo=UTC)


@dataclass(frozen=True)
class FakeOffering:
    id: str
    service_type: str
    parameters: Any
    order_parameters: tuple[str, ...]


class FakeCatalog:
    def __init__(self) -> None:
        fixed = MappingProxyType({"bandwidth": "200M"})
        self.offerings = {
            "metro": FakeOffering("metro", "slice", fixed, ("from", "to")),
            "flex": FakeOffering(
                "flex", "slice", MappingProxyType({}), ("from", "to", "bandwidth")
            ),
        }

    def get(self, offering_id: str) -> FakeOffering:
        try:
            return self.offerings[offering_id]
        except KeyError:
            raise NotFound(f"no offering {offering_id}") from None


@dataclass
class FakeServices:
    """Provisioning as the orders see it: services stored, transactions that finish at
    FINISHED; `fail` names services whose transaction fails; `run` False keeps spawned work
    from running (an order stays acknowledged)."""

    db: Database
    types: dict[str, Any] = field(default_factory=load_service_types)
    run: bool = True
    fail: set[str] = field(default_factory=set)
    gate: asyncio.Event | None = None  # when set, creates wait for it
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)
    txn: int = 0

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any] | None:
        if not self.run:
            work.close()
            return None
        task = asyncio.create_task(work)
        self.tasks.add(task)
        return task

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)

    async def create(self, type_name: str, params: Any, *, name: str, actor: str) -> Any:
        self.calls.append(("create", name))
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        self.txn += 1
        failed = name in self.fail
        async with self.db.transaction() as s:
            s.add(
                ServiceRow(
                    name=name,
                    type=type_name,
                    customer=params["customer"],
                    state="failed" if failed else "active",
                    params=dict(params),
                    transaction_id=self.txn,
                    error="device pe2, step prepare: refused" if failed else None,
                )
            )
        if failed:
            txn = Transaction(
                self.txn, "create", [], "rolled-back", "device pe2, step prepare: refused"
            )
            raise TransactionFailed(txn)
        return {"transaction": {"id": self.txn}}

    async def delete(self, ref: str, *, actor: str) -> Any:
        self.calls.append(("delete", ref))
        self.txn += 1
        async with self.db.transaction() as s:
            row = await s.scalar(select(ServiceRow).where(ServiceRow.name == ref))
            assert row is not None
            row.state = "terminated"
        return {"transaction": {"id": self.txn}}

    async def transaction(self, txn_id: int) -> dict[str, Any]:
        return {"id": txn_id, "finished_at": FINISHED.isoformat()}


@dataclass
class World:
    db: Database
    services: FakeServices
    orders: Orders


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    await db.migrate()
    customers = Customers(db)
    await customers.create_customer("acme", "Acme Ltd")
    await customers.create_account("acme", "main", "EUR", id="acme-main")
    await customers.create_customer("other", "Other Ltd")
    await customers.create_account("other", "main", "EUR", id="other-main")
    services = FakeServices(db)
    catalog = FakeCatalog()
    # The OSS's real adapters over the fake: failed and refused changes become outcomes there.
    ports = OssPorts(records_for(db), ServiceDesk(services))  # type: ignore[arg-type]
    orders = Orders(db, ports, lambda: catalog, None)  # MQTT off: no order events
    yield World(db, services, orders)
    await db.close()


def add_item(item_id: str = "1", offering: str = "metro", **params: Any) -> dict[str, Any]:
    chars = [{"name": k, "value": v} for k, v in (params or {"from": "west", "to": "east"}).items()]
    return {
        "id": item_id,
        "action": "add",
        "productOffering": {"id": offering},
        "product": {"productCharacteristic": chars},
    }


def order(*items: dict[str, Any], account: str = "acme-main", **extra: Any) -> dict[str, Any]:
    return {
        "billingAccount": {"id": account},
        "productOrderItem": list(items) or [add_item()],
        **extra,
    }


async def refused(world: World, body: Any) -> str:
    with pytest.raises(InvalidInput) as exc:
        await world.orders.create(body, actor="t")
    return str(exc.value)


async def test_rules_name_the_field(world: World) -> None:
    assert "productOrderItem" in await refused(world, {"billingAccount": {"id": "acme-main"}})
    assert "billingAccount.id: required" in await refused(world, {"productOrderItem": [add_item()]})
    assert "no billing account nobody" in await refused(world, order(account="nobody"))
    message = await refused(world, order(add_item(offering="teleport")))
    assert "productOrderItem[0].productOffering.id" in message and "teleport" in message
    message = await refused(world, order(add_item(colour="red")))
    assert "productCharacteristic[0].name" in message and "colour" in message
    message = await refused(world, order(add_item(customer="evil", to="east")))
    assert "customer" in message
    message = await refused(world, order(add_item(offering="flex", bandwidth="lots")))
    assert "productOrderItem[0].product.productCharacteristic" in message
    assert "bandwidth" in message
    message = await refused(world, order(add_item(), add_item()))
    assert "productOrderItem[1].id" in message
    modify = {**add_item(), "action": "modify"}
    assert "productOrderItem[0].action" in await refused(world, order(modify))
    assert "productOrderItem[0].id" in await refused(world, order(add_item("a b")))
    nameless = add_item()
    nameless["product"]["productCharacteristic"][0].pop("value")
    assert "productCharacteristic[0].value" in await refused(world, order(nameless))
    delete = {"id": "1", "action": "delete", "product": {"id": "nope"}}
    assert "productOrderItem[0].product.id" in await refused(world, order(delete))
    async with world.db.transaction() as s:
        assert list(await s.scalars(select(ProductOrderRow))) == []


async def test_an_order_completes_with_an_active_product(world: World) -> None:
    doc, created = await world.orders.create(order(), actor="t")
    assert created and doc["state"] == "acknowledged"
    await world.services.settle()
    done = await world.orders.get(doc["id"])
    assert done["state"] == "completed"
    assert SPEC.errors(done, "ProductOrder") == []
    async with world.db.transaction() as s:
        [product] = list(await s.scalars(select(ProductRow)))
    assert product.state == "active" and product.start_at == FINISHED
    assert product.customer_id == "acme" and product.params == {"from": "west", "to": "east"}
    name = world.services.calls[0][1]
    assert name == f"acme-{doc['id'][:8]}-1"
    states = [e["state"] for e in await world.orders.events(doc["id"]) if e["item"] is None]
    assert states == ["acknowledged", "inProgress", "completed"]
    # a listing looks the services up for the whole page: the same documents as one by one
    item = done["productOrderItem"][0]
    assert item["product"]["realizingService"][0]["name"] == name
    assert await world.orders.find() == ([done], 1)
    listed, total = await world.orders.service_orders()
    assert total == 1 and listed == [await world.orders.service_order(listed[0]["id"])]
    assert listed[0]["serviceOrderItem"][0]["service"]["state"] == "active"
    # deleting a product of another account is refused
    other = {"id": "1", "action": "delete", "product": {"id": product.id}}
    message = await refused(world, order(other, account="other-main"))
    assert "no product" in message and "other-main" in message


async def test_a_failed_item_undoes_the_order(world: World) -> None:
    body = order(add_item("1"), add_item("2", **{"from": "west", "to": "pe2"}))
    doc, _ = await world.orders.create(body, actor="t")
    world.services.fail.add(f"acme-{doc['id'][:8]}-2")
    await world.services.settle()
    failed = await world.orders.get(doc["id"])
    assert failed["state"] == "failed"
    assert SPEC.errors(failed, "ProductOrder") == []
    assert [n["text"] for n in failed["note"]] == ["item 2: device pe2, step prepare: refused"]
    assert [i["state"] for i in failed["productOrderItem"]] == ["cancelled", "failed"]
    # item 1's service was removed again; its product never became active
    first = f"acme-{doc['id'][:8]}-1"
    assert ("delete", first) in world.services.calls
    async with world.db.transaction() as s:
        products = list(await s.scalars(select(ProductRow)))
    assert [p.state for p in products] == ["cancelled"]


async def test_idempotency(world: World) -> None:
    world.services.run = False
    key = "k-1"
    first, created = await world.orders.create(order(), actor="t", idempotency_key=key)
    again, created_again = await world.orders.create(order(), actor="t", idempotency_key=key)
    assert created and not created_again and again["id"] == first["id"]
    with pytest.raises(Conflict, match="different body"):
        await world.orders.create(order(description="x"), actor="t", idempotency_key=key)
    # concurrent: the unique key lets one in; the others get that order
    results = await asyncio.gather(
        *(world.orders.create(order(), actor="t", idempotency_key="k-2") for _ in range(4))
    )
    assert len({doc["id"] for doc, _ in results}) == 1
    assert sorted(c for _, c in results) == [False, False, False, True]
    async with world.db.transaction() as s:
        assert len(list(await s.scalars(select(ProductOrderRow)))) == 2
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        await world.orders.create(order(), actor="t", idempotency_key="x" * 200)


async def test_cancel_before_start_and_while_running(world: World) -> None:
    world.services.run = False
    doc, _ = await world.orders.create(order(), actor="t")
    cancel = await world.orders.cancel(doc["id"], reason="changed my mind", actor="t")
    assert cancel["state"] == "done"
    assert SPEC.errors(cancel, "CancelProductOrder") == []
    cancelled = await world.orders.get(doc["id"])
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancellationReason"] == "changed my mind"
    assert SPEC.errors(cancelled, "ProductOrder") == []
    assert await world.orders.cancellation(doc["id"]) == cancel | {
        "effectiveCancellationDate": cancelled["cancellationDate"]
    }
    with pytest.raises(Conflict, match="cancelled"):
        await world.orders.cancel(doc["id"], actor="t")

    # running: the transaction in flight finishes, then the order is undone and cancelled
    world.services.run = True
    world.services.gate = asyncio.Event()
    doc, _ = await world.orders.create(order(), actor="t")
    async with asyncio.timeout(10):
        await world.services.called.wait()
    pending = await world.orders.cancel(doc["id"], reason="too slow", actor="t")
    assert pending["state"] == "inProgress"
    assert (await world.orders.get(doc["id"]))["state"] == "pendingCancellation"
    world.services.gate.set()
    await world.services.settle()
    final = await world.orders.get(doc["id"])
    assert final["state"] == "cancelled"
    assert world.services.calls[-1][0] == "delete"
    async with world.db.transaction() as s:
        assert [p.state for p in await s.scalars(select(ProductRow))] == ["cancelled"]

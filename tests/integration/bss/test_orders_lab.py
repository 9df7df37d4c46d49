"""TMF622 orders on the simulated lab through the REST API: an order becomes a provisioned
slice (TMF641 service order, TMF638 service, an active product, events), a device that is
down fails the order with the transaction's reason and nothing active, an Idempotency-Key makes
a retried create (also a concurrent one) one order and one service, and a restart resumes an
order left in progress. Every TMF document validates against the official schema."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from bss_bridge.tables import OrderItemRow, ProductOrderRow, ProductRow
from oss import tmf
from tests.integration.bss import lab_fixtures
from tests.integration.bss.lab_fixtures import PO, SI, SO, Daemon
from tests.integration.provisioning.conftest import ChainLab

pytestmark = pytest.mark.integration
bss_lab = lab_fixtures.bss_lab
daemon = lab_fixtures.daemon

PRODUCT_ORDERING = tmf.spec(tmf.PRODUCT_ORDERING)
SERVICE_ORDERING = tmf.spec(tmf.SERVICE_ORDERING)
SERVICE_INVENTORY = tmf.spec(tmf.SERVICE_INVENTORY)


def slice_order(account: str, **extra: Any) -> dict[str, Any]:
    return {
        "billingAccount": {"id": account},
        "productOrderItem": [
            {
                "id": "1",
                "action": "add",
                "productOffering": {"id": "metro-slice-200"},
                "product": {
                    "productCharacteristic": [
                        {"name": "from", "value": "west"},
                        {"name": "to", "value": "east"},
                    ]
                },
            }
        ],
        **extra,
    }


async def products_of(d: Daemon, account: str) -> list[ProductRow]:
    async with d.parts.db.transaction() as s:
        return list(await s.scalars(select(ProductRow).where(ProductRow.account_id == account)))


async def test_order_becomes_an_active_slice(daemon: Daemon) -> None:
    d = daemon
    await d.customer_and_account("acme", "acme-main")
    r = await d.operator.post(f"{PO}/productOrder", json=slice_order("acme-main"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] == "acknowledged"
    assert r.headers["location"] == created["href"]
    assert PRODUCT_ORDERING.errors(created, "ProductOrder") == []

    order = await d.wait_order(created["id"])
    assert order["state"] == "completed", order
    assert PRODUCT_ORDERING.errors(order, "ProductOrder") == []
    [item] = order["productOrderItem"]
    assert item["state"] == "completed"
    assert item["product"]["status"] == "active"
    [realizing] = item["product"]["realizingService"]
    assert order["relatedParty"][0]["id"] == "acme"

    # the product: active from the moment its transaction finished
    [product] = await products_of(d, "acme-main")
    assert product.state == "active" and product.id == item["product"]["id"]
    service = await d.parts.services.get(realizing["name"])
    assert service["state"] == "active" and service["customer"] == "acme"
    txn = await d.parts.services.transaction(service["transaction_id"])
    assert product.start_at == datetime.fromisoformat(txn["finished_at"])
    r = await d.viewer.get(item["product"]["href"])  # the order's link to the product resolves
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active" and r.json()["service"] == realizing["name"]
    r = await d.viewer.get("/api/v1/products", params={"account": "acme-main"})
    assert [p["id"] for p in r.json()["items"]] == [product.id]

    # the TMF641 service order and the TMF638 service
    r = await d.viewer.get(f"{SO}/serviceOrder")
    [so] = r.json()
    assert r.headers["x-total-count"] == "1"
    assert SERVICE_ORDERING.errors(so, "ServiceOrder") == []
    assert so["state"] == "completed" and so["serviceOrderItem"][0]["service"]["state"] == "active"
    r = await d.viewer.get(f"{SO}/serviceOrder/{so['id']}")
    assert r.status_code == 200 and r.json() == so
    r = await d.viewer.get(f"{SI}/service/{realizing['id']}")
    svc = r.json()
    assert SERVICE_INVENTORY.errors(svc, "Service") == []
    assert svc["state"] == "active" and svc["name"] == realizing["name"]
    assert svc["relatedParty"][0]["id"] == "acme"
    entities = {e["role"]: e["id"] for e in svc["relatedEntity"]}
    assert entities == {"product": product.id, "billingAccount": "acme-main"}
    chars = {c["name"]: c["value"] for c in svc["serviceCharacteristic"]}
    assert chars["bandwidth"] == 200_000_000 and chars["customer"] == "acme"
    r = await d.viewer.get(f"{SI}/service", params={"relatedParty.id": "acme"})
    assert [s["id"] for s in r.json()] == [realizing["id"]]
    assert all(SERVICE_INVENTORY.errors(s, "Service") == [] for s in r.json())

    # events: acknowledged -> inProgress -> completed (plus the item's own)
    r = await d.viewer.get(f"{PO}/productOrder/{order['id']}/events")
    states = [e["state"] for e in r.json() if e["item"] is None]
    assert states == ["acknowledged", "inProgress", "completed"]
    assert [e["state"] for e in r.json() if e["item"] == "1"] == ["inProgress", "completed"]

    # the customer in the graph: the impact of its path's first PE names it
    r = await d.viewer.get("/api/v1/topology/impact", params={"device": "pe1"})
    assert "acme" in r.json()["customers"]

    # lists and filters
    r = await d.viewer.get(f"{PO}/productOrder", params={"state": "completed"})
    assert [o["id"] for o in r.json()] == [order["id"]]
    assert r.headers["x-total-count"] == "1" and r.headers["x-result-count"] == "1"
    r = await d.viewer.get(f"{PO}/productOrder", params={"billingAccount.id": "nobody"})
    assert r.json() == [] and r.headers["x-total-count"] == "0"

    # a completed order cannot be cancelled
    r = await d.operator.post(
        f"{PO}/cancelProductOrder", json={"productOrder": {"id": order["id"]}}
    )
    assert r.status_code == 409 and "completed" in r.json()["message"]

    # deleting the product through an order terminates it and removes the service
    delete = {
        "billingAccount": {"id": "acme-main"},
        "productOrderItem": [{"id": "1", "action": "delete", "product": {"id": product.id}}],
    }
    r = await d.operator.post(f"{PO}/productOrder", json=delete)
    assert r.status_code == 201, r.text
    done = await d.wait_order(r.json()["id"])
    assert done["state"] == "completed", done
    [ended] = await products_of(d, "acme-main")
    assert ended.state == "terminated" and ended.end_at is not None
    assert (await d.parts.services.get(realizing["name"]))["state"] == "terminated"
    r = await d.viewer.get(f"{SI}/service/{realizing['id']}")
    assert r.json()["state"] == "terminated"
    assert SERVICE_INVENTORY.errors(r.json(), "Service") == []


async def test_a_device_down_fails_the_order(daemon: Daemon, bss_lab: ChainLab) -> None:
    d = daemon
    await d.customer_and_account("globex", "globex-main")
    await bss_lab.set_node("pe2", False)
    try:
        r = await d.operator.post(f"{PO}/productOrder", json=slice_order("globex-main"))
        assert r.status_code == 201, r.text
        order = await d.wait_order(r.json()["id"])
    finally:
        await bss_lab.set_node("pe2", True)
    assert order["state"] == "failed"
    assert PRODUCT_ORDERING.errors(order, "ProductOrder") == []
    [item] = order["productOrderItem"]
    assert item["state"] == "failed"
    name = item["product"]["realizingService"][0]["name"]
    service = await d.parts.services.get(name)
    assert service["state"] == "failed"
    # the transaction's reason, word for word, is the order's note
    notes = [n["text"] for n in order["note"]]
    assert notes == [f"item 1: {service['error']}"] and "pe2" in service["error"]
    assert await products_of(d, "globex-main") == []
    r = await d.viewer.get(f"{SO}/serviceOrder")
    [so] = r.json()
    assert so["state"] == "failed" and SERVICE_ORDERING.errors(so, "ServiceOrder") == []
    r = await d.viewer.get(f"{SI}/service/{service['id']}")
    assert r.json()["state"] == "inactive"
    assert SERVICE_INVENTORY.errors(r.json(), "Service") == []


async def test_bad_orders_are_refused_with_the_field(daemon: Daemon) -> None:
    d = daemon
    await d.customer_and_account("initech", "initech-main")
    r = await d.viewer.post(f"{PO}/productOrder", json=slice_order("initech-main"))
    assert r.status_code == 403
    r = await d.viewer.post("/api/v1/customers", json={"id": "x", "name": "X"})
    assert r.status_code == 403
    r = await d.viewer.get("/api/v1/accounts", params={"customer": "initech"})
    assert r.json()["total"] == 1 and r.json()["items"][0]["id"] == "initech-main"
    r = await d.operator.post(
        "/api/v1/accounts",
        json={"customer": "initech", "name": "x", "currency": "EURO"},
    )
    assert r.status_code == 422 and "currency" in r.json()["detail"]
    cases = {
        "billingAccount.id": slice_order("nobody"),
        "productOrderItem": {"billingAccount": {"id": "initech-main"}},
        "productOffering.id": {
            **slice_order("initech-main"),
            "productOrderItem": [
                {"id": "1", "action": "add", "productOffering": {"id": "teleport"}}
            ],
        },
        "productCharacteristic": {
            **slice_order("initech-main"),
            "productOrderItem": [
                {
                    "id": "1",
                    "action": "add",
                    "productOffering": {"id": "metro-slice-200"},
                    "product": {"productCharacteristic": [{"name": "colour", "value": "red"}]},
                }
            ],
        },
    }
    for field, body in cases.items():
        r = await d.operator.post(f"{PO}/productOrder", json=body)
        assert r.status_code == 422, (field, r.text)
        assert field in r.json()["message"], (field, r.json())
        assert PRODUCT_ORDERING.errors(r.json(), "Error") == []
    r = await d.viewer.get(f"{PO}/productOrder")
    assert r.json() == []


async def test_idempotency_key_means_one_order_one_service(daemon: Daemon) -> None:
    d = daemon
    await d.customer_and_account("umbrella", "umbrella-main")
    body = slice_order("umbrella-main")
    key = {"Idempotency-Key": "order-umbrella-1"}
    # two at once: the database takes one, the other gets that order
    first, second = await asyncio.gather(
        d.operator.post(f"{PO}/productOrder", json=body, headers=key),
        d.operator.post(f"{PO}/productOrder", json=body, headers=key),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 201], (first.text, second.text)
    assert first.json()["id"] == second.json()["id"]
    order = await d.wait_order(first.json()["id"])
    assert order["state"] == "completed"
    # a retry later: the same order, as it is now
    r = await d.operator.post(f"{PO}/productOrder", json=body, headers=key)
    assert r.status_code == 200 and r.headers["idempotent-replayed"] == "true"
    assert r.json() == order
    # the same key for another order is refused
    other = slice_order("umbrella-main", description="another one")
    r = await d.operator.post(f"{PO}/productOrder", json=other, headers=key)
    assert r.status_code == 409 and "different body" in r.json()["message"]
    r = await d.viewer.get(f"{PO}/productOrder")
    assert len(r.json()) == 1
    services = await d.parts.services.find(customer="umbrella")
    assert len(services) == 1 and services[0]["state"] == "active"
    assert len(await products_of(d, "umbrella-main")) == 1


async def test_an_order_left_in_progress_is_resumed(daemon: Daemon) -> None:
    """A restart while the order ran: the service's transaction committed (provisioning
    recovers it at start) but the order never heard. Recovery settles it from the service."""
    d = daemon
    await d.customer_and_account("hooli", "hooli-main")
    r = await d.operator.post(f"{PO}/productOrder", json=slice_order("hooli-main"))
    order = await d.wait_order(r.json()["id"])
    assert order["state"] == "completed"
    async with d.parts.db.transaction() as s:  # back to how a crash would have left it
        await s.execute(
            update(ProductOrderRow)
            .where(ProductOrderRow.id == order["id"])
            .values(state="inProgress", completed_at=None)
        )
        await s.execute(update(OrderItemRow).values(state="inProgress", product_id=None))
        await s.execute(ProductRow.__table__.delete())
    assert await d.parts.bss.orders.recover() == [order["id"]]
    resumed = await d.wait_order(order["id"])
    assert resumed["state"] == "completed"
    [product] = await products_of(d, "hooli-main")
    assert product.state == "active"
    assert len(await d.parts.services.find(customer="hooli")) == 1  # not provisioned twice

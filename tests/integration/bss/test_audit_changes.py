"""Issue 14, defect 8: every change is in `GET /api/v1/audit` with who, what, when, before and
after — customers, accounts, orders and the products they make, services (create, modify,
reconcile, delete), bill runs and bill issue — through the REST API over the simulated lab. A
refused change (an order or account rejected by validation, a duplicate, an open period's
issue) leaves no change entry."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.bss import lab_fixtures
from tests.integration.bss.lab_fixtures import PO, Daemon
from tests.integration.bss.test_orders_lab import slice_order

pytestmark = pytest.mark.integration
bss_lab = lab_fixtures.bss_lab
daemon = lab_fixtures.daemon

BILLS = "/tmf-api/customerBillManagement/v4/customerBill"


async def changes(d: Daemon, **params: Any) -> list[dict[str, Any]]:
    """Change entries (not refusals), oldest first."""
    r = await d.viewer.get("/api/v1/audit", params={"refused": "false", "limit": 1000, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items[::-1]


async def operator_actor(d: Daemon) -> str:
    (entry,) = await changes(d, object_type="customer")
    actor: str = entry["actor"]
    assert actor.startswith("token:operator#")
    return actor


async def test_every_change_from_customer_to_bill_is_audited(daemon: Daemon) -> None:
    d = daemon
    await d.customer_and_account("acme", "acme-main")
    who = await operator_actor(d)
    (account,) = await changes(d, object_type="account")
    assert (account["action"], account["object_id"], account["actor"]) == (
        "create",
        "acme-main",
        who,
    )
    assert account["before"] is None and account["after"]["currency"] == "EUR"

    # refused: nothing changed, nothing audited as a change
    before = await changes(d)
    r = await d.operator.post(
        "/api/v1/accounts",
        json={"id": "x-1", "customer": "ghost", "name": "x", "currency": "EUR"},
    )
    assert r.status_code == 422, r.text
    r = await d.operator.post("/api/v1/customers", json={"id": "acme", "name": "again"})
    assert r.status_code == 409, r.text
    bad = slice_order("acme-main")
    bad["productOrderItem"][0]["productOffering"]["id"] = "no-such-offering"
    r = await d.operator.post(f"{PO}/productOrder", json=bad)
    assert r.status_code == 422, r.text
    assert await changes(d) == before

    # an order: its creation and state changes, its product, its service
    r = await d.operator.post(f"{PO}/productOrder", json=slice_order("acme-main"))
    assert r.status_code == 201, r.text
    order = await d.wait_order(r.json()["id"])
    assert order["state"] == "completed", order
    entries = await changes(d, object_type="productOrder", object_id=order["id"])
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("create", who),
        ("update", who),
        ("update", who),
    ]
    assert entries[0]["after"]["account"] == "acme-main"
    assert entries[0]["after"]["items"][0]["offering"] == "metro-slice-200"
    assert [(e["before"], e["after"]["state"]) for e in entries[1:]] == [
        ({"state": "acknowledged"}, "inProgress"),
        ({"state": "inProgress"}, "completed"),
    ]
    [item] = order["productOrderItem"]
    product_id = item["product"]["id"]
    product = await changes(d, object_type="product", object_id=product_id)
    assert [(e["action"], e["after"]["state"]) for e in product] == [
        ("create", "pendingActive"),
        ("activate", "active"),
    ]
    assert product[1]["before"]["state"] == "pendingActive"
    name = item["product"]["realizingService"][0]["name"]
    (created,) = await changes(d, object_type="service", object_id=name)
    assert (created["action"], created["actor"], created["before"]) == ("create", who, None)
    assert created["after"]["state"] == "active"
    assert created["after"]["params"]["bandwidth"] == 200_000_000

    # services: modify (before and after), reconcile, delete
    r = await d.operator.patch(f"/api/v1/services/{name}", json={"params": {"bandwidth": "300M"}})
    assert r.status_code == 200, r.text
    r = await d.operator.post(f"/api/v1/services/{name}/reconcile")
    assert r.status_code == 200, r.text
    r = await d.operator.delete(f"/api/v1/services/{name}")
    assert r.status_code == 200, r.text
    service = await changes(d, object_type="service", object_id=name)
    assert [e["action"] for e in service] == ["create", "modify", "reconcile", "delete"]
    modify = service[1]
    assert modify["before"]["params"]["bandwidth"] == 200_000_000
    assert modify["after"]["params"]["bandwidth"] == 300_000_000
    assert service[3]["before"]["state"] == "active"
    assert service[3]["after"]["state"] == "terminated"
    assert all(e["actor"] == who for e in service)

    # bill runs and issue: a closed period issues, the open one is refused (no entry)
    r = await d.operator.post("/api/v1/bill-runs", json={"period": "2026-11"})
    assert r.status_code == 200, r.text
    (november,) = r.json()["bills"]
    (run,) = await changes(d, object_type="billRun", object_id="2026-11")
    assert (run["action"], run["actor"]) == ("run", who)
    bill_key = str(november["billId"])
    assert run["before"]["bills"] == {bill_key: None}  # created by this run
    assert run["after"]["bills"][bill_key]["total"] == november["total"]
    r = await d.operator.patch(f"{BILLS}/{november['billId']}", json={"state": "sent"})
    assert r.status_code == 200, r.text
    (issued,) = await changes(d, object_type="bill", object_id=bill_key)
    assert issued["action"] == "issue" and issued["actor"] == who
    assert issued["before"]["state"] == "new" and issued["after"]["state"] == "sent"
    assert issued["after"]["billNo"] == r.json()["billNo"]

    again = await changes(d)
    r = await d.operator.patch(f"{BILLS}/{november['billId']}", json={"state": "sent"})
    assert r.status_code == 409
    assert await changes(d) == again

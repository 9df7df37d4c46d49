"""What the console's service and customer views read in one call each: a service's resources
and its last transaction (`GET /api/v1/services/{ref}`), and a customer's products with their
price and this period's SLA, and bills with their credits
(`GET /api/v1/customers/{id}/overview`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update

from bss_bridge.tables import BillLineRow, BillRow
from oss.store.tables import ServiceRow
from tests.bss_rows import alarm_row
from tests.integration.api.console_fixtures import seed_inventory, seed_services
from tests.integration.conftest import Api


async def test_a_service_carries_its_path_and_last_transaction(api: Api) -> None:
    links = await seed_inventory(api.daemon)
    await seed_services(api.daemon.db, links)
    async with api.daemon.db.transaction() as s:
        await s.execute(
            update(ServiceRow).where(ServiceRow.name == "svc-a").values(transaction_id=7)
        )

    one = (await api.viewer.get("/api/v1/services/svc-a")).json()
    assert one["last_transaction_id"] == 7
    assert [d["device"] for d in one["resources"]["devices"]] == ["r3", "r4"]
    assert [lk["id"] for lk in one["resources"]["links"]] == [links[("r3", "r4")]]
    listed = {s["name"]: s for s in (await api.viewer.get("/api/v1/services")).json()}
    assert listed["svc-b"]["resources"]["links"][0]["id"] == links[("r2", "r3")]
    assert listed["svc-a"]["resources"] == one["resources"]


async def test_a_customer_overview_in_one_call(api: Api) -> None:
    links = await seed_inventory(api.daemon)
    await seed_services(api.daemon.db, links)
    now = datetime.now(UTC)
    async with api.daemon.db.transaction() as s:
        # an outage of svc-a this period: an hour, cleared
        s.add(alarm_row(now - timedelta(hours=2), now - timedelta(hours=1), obj="svc-a"))
        bill = BillRow(
            account_id="acme-1", period_start=datetime(2026, 10, 1, tzinfo=UTC),
            period_end=datetime(2026, 11, 1, tzinfo=UTC), state="sent", currency="EUR",
            subtotal=Decimal("450.00"), tax=Decimal("85.50"), total=Decimal("535.50"),
            bill_no="B-1",
        )  # fmt: skip
        s.add(bill)
        await s.flush()
        s.add_all(
            [
                BillLineRow(
                    bill_id=bill.id, key="recurring:p-a:2026-10-01", kind="recurring",
                    product_id="p-a", description="metro slice", amount=Decimal("500.00"),
                ),
                BillLineRow(
                    bill_id=bill.id, key="sla_credit:p-a:2026-10-01", kind="sla_credit",
                    product_id="p-a", description="availability 99.1 % under 99.9 %: 10 %",
                    amount=Decimal("-50.00"),
                ),
            ]
        )  # fmt: skip

    response = await api.viewer.get("/api/v1/customers/acme/overview")
    assert response.status_code == 200, response.text
    overview = response.json()

    assert overview["customer"]["id"] == "acme"
    assert [a["id"] for a in overview["accounts"]] == ["acme-1"]
    products = {p["id"]: p for p in overview["products"]}
    assert set(products) == {"p-a", "p-old"}  # globex's p-b is not acme's
    assert (products["p-a"]["monthly_price"], products["p-a"]["currency"]) == ("500.00", "EUR")
    assert products["p-a"]["offering"] == "metro-slice-200"
    assert products["p-a"]["service"] == "svc-a" and products["p-a"]["state"] == "active"
    sla = products["p-a"]["sla"]
    assert sla["service"] == "svc-a" and sla["partial"] is True
    assert Decimal(sla["availability"]["measuredPercent"]) < 100  # the hour's outage
    assert products["p-old"]["sla"] is None  # terminated: no running SLA
    (only,) = overview["bills"]
    assert (only["bill_no"], only["total"], only["currency"]) == ("B-1", "535.50", "EUR")
    assert only["period"] == "2026-10-01/2026-11-01"
    assert only["credits"] == [
        {
            "product": "p-a",
            "amount": "-50.00",
            "reason": "availability 99.1 % under 99.9 %: 10 %",
        }
    ]


async def test_an_unknown_customer_is_404(api: Api) -> None:
    response = await api.viewer.get("/api/v1/customers/nobody/overview")
    assert response.status_code == 404 and "nobody" in response.json()["detail"]
    assert (await api.anonymous.get("/api/v1/customers/nobody/overview")).status_code == 401

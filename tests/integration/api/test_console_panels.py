"""The console's side panels (`/api/v1/map/devices/{name}`, `/api/v1/map/links/{id}`): details
without credentials, interfaces with their latest traffic, open alarms most severe first, the
services on it, and "if this fails" with the revenue at risk from the BSS's products."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oss.store.tables import KpiMinuteRow
from tests.integration.api.console_fixtures import (
    raise_on,
    seed_inventory,
    seed_services,
)
from tests.integration.conftest import Api


async def panel(api: Api, path: str) -> dict[str, Any]:
    response = await api.viewer.get(f"/api/v1/map/{path}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_device_panel_says_what_its_failure_costs(api: Api) -> None:
    links = await seed_inventory(api.daemon)
    await seed_services(api.daemon.db, links)
    alarms = api.daemon.alarms
    await alarms.signal(raise_on("interface", "r3:eth1", "major"))
    await alarms.signal(raise_on("device", "r3", "critical"))
    await alarms.signal(raise_on("interface", "r4:eth1", "minor"))  # another device's
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    async with api.daemon.db.transaction() as session:
        for metric, value in [("in-bps", 2.5e8), ("out-bps", 1e8), ("in-utilisation", 0.25)]:
            session.add(
                KpiMinuteRow(
                    object_type="interface", object="r3:eth2", metric=metric, minute=minute,
                    count=1, sum=value, min=value, max=value, last=value,
                )
            )  # fmt: skip

    found = await panel(api, "devices/r3")

    assert found["device"]["name"] == "r3" and found["device"]["site"] == "south"
    assert "credentials_ref" not in found["device"] and "R3_PW" not in str(found)
    interfaces = {i["name"]: i for i in found["interfaces"]}
    assert interfaces["eth2"]["link"] == links[("r3", "r4")]
    assert (interfaces["eth2"]["in_bps"], interfaces["eth2"]["out_bps"]) == (2.5e8, 1e8)
    assert interfaces["eth2"]["utilisation"] == 0.25
    assert interfaces["eth1"]["in_bps"] is None and interfaces["eth1"]["utilisation"] is None
    assert [(a["alarmedObject"]["id"], a["perceivedSeverity"]) for a in found["alarms"]] == [
        ("r3", "critical"),
        ("r3:eth1", "major"),
    ]
    assert [(s["name"], s["type"], s["customer"], s["state"]) for s in found["services"]] == [
        ("svc-a", "slice", "acme", "active"),
        ("svc-b", "l3vpn", "globex", "active"),
    ]

    impact = found["impact"]
    assert impact["isolated_devices"] == ["r4"]  # r3 was its only way out
    assert sorted(impact["links"]) == sorted([links[("r2", "r3")], links[("r3", "r4")]])
    assert impact["services"] == ["svc-a", "svc-b"]
    assert impact["customers"] == ["acme", "globex"]
    risk = impact["revenue_at_risk"]
    assert (risk["monthly"], risk["currency"]) == ("800.00", "EUR")  # p-old is terminated
    assert risk["by_customer"] == [
        {"customer": "acme", "monthly": "500.00", "currency": "EUR", "products": 1},
        {"customer": "globex", "monthly": "300.00", "currency": "EUR", "products": 1},
    ]
    assert {p["id"] for p in risk["products"]} == {"p-a", "p-b"}


async def test_a_link_panel_shows_its_ends_alarms_and_risk(api: Api) -> None:
    links = await seed_inventory(api.daemon)
    await seed_services(api.daemon.db, links)
    link_id = links[("r3", "r4")]
    await api.daemon.alarms.signal(raise_on("interface", "r4:eth1", "minor"))
    await api.daemon.alarms.signal(raise_on("link", str(link_id), "major"))
    await api.daemon.alarms.signal(raise_on("device", "r4", "critical"))  # the device's own

    found = await panel(api, f"links/{link_id}")

    assert found["link"]["id"] == link_id and found["link"]["effective_state"] == "up"
    assert [(i["device"], i["name"]) for i in found["interfaces"]] == [
        ("r3", "eth2"),
        ("r4", "eth1"),
    ]
    assert [(a["alarmedObject"]["id"], a["perceivedSeverity"]) for a in found["alarms"]] == [
        (str(link_id), "major"),
        ("r4:eth1", "minor"),
    ]
    assert [s["name"] for s in found["services"]] == ["svc-a"]
    risk = found["impact"]["revenue_at_risk"]
    assert risk["monthly"] == "500.00"
    assert [c["customer"] for c in risk["by_customer"]] == ["acme"]

    quiet = await panel(api, f"links/{links[('r1', 'r2')]}")  # cuts r1 off, which holds nothing
    assert quiet["impact"]["isolated_devices"] == ["r1"]
    assert quiet["impact"]["revenue_at_risk"]["monthly"] == "0.00"
    assert quiet["impact"]["revenue_at_risk"]["by_customer"] == []


async def test_panels_of_unknown_objects_are_404(api: Api) -> None:
    await seed_inventory(api.daemon)
    device = await api.viewer.get("/api/v1/map/devices/nope")
    assert device.status_code == 404 and "nope" in device.json()["detail"]
    link = await api.viewer.get("/api/v1/map/links/999999")
    assert link.status_code == 404 and "999999" in link.json()["detail"]
    bad = await api.viewer.get("/api/v1/map/links/abc")
    assert bad.status_code == 422 and "path.link_id" in bad.json()["detail"]

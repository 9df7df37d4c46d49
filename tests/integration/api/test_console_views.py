"""Saved map layouts (`/api/v1/map/views`): merges, refusals naming the field or device, roles
(a viewer's attempt refused and audited), the audit of each change, and positions going with
their device. The in-process app over SQLite; the store's own calls on PostgreSQL too."""

from __future__ import annotations

from typing import Any

import pytest

from oss.api.map_layouts import Layouts
from oss.inventory import Inventory
from oss.store import Database
from tests.integration.api.console_fixtures import ACTOR, seed_inventory
from tests.integration.conftest import Api
from topology.model import Device, Endpoint, Link, Site

VIEWS = "/api/v1/map/views"


async def audit_entries(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.admin.get("/api/v1/audit", params=params)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_positions_merge_and_show_on_the_map(api: Api) -> None:
    await seed_inventory(api.daemon)
    default = await api.viewer.get(f"{VIEWS}/default")
    assert default.status_code == 200 and default.json() == {"name": "default", "positions": {}}

    first = await api.operator.put(
        f"{VIEWS}/default/positions",
        json={"positions": {"r1": {"x": 1.5, "y": 2}, "r2": {"x": -40, "y": 12.25}}},
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"name": "default", "saved": 2, "positions": 2}
    moved = await api.operator.put(
        f"{VIEWS}/default/positions", json={"positions": {"r2": {"x": 7, "y": 8}}}
    )
    assert moved.json()["positions"] == 2  # r1 kept

    view = (await api.viewer.get(f"{VIEWS}/default")).json()
    assert view["positions"] == {"r1": {"x": 1.5, "y": 2.0}, "r2": {"x": 7.0, "y": 8.0}}
    devices = {d["name"]: d for d in (await api.viewer.get("/api/v1/map")).json()["devices"]}
    assert devices["r2"]["position"] == {"x": 7.0, "y": 8.0}
    assert devices["r3"]["position"] is None

    # another view is its own layout
    other = await api.operator.put(
        f"{VIEWS}/core.v2/positions", json={"positions": {"r1": {"x": 100, "y": 100}}}
    )
    assert other.status_code == 200
    listed = (await api.viewer.get(VIEWS)).json()
    assert [(v["name"], v["positions"]) for v in listed] == [("core.v2", 1), ("default", 2)]
    assert listed[1]["updated_by"].startswith("token:test-operator#")
    on_map = (await api.viewer.get("/api/v1/map", params={"view": "core.v2"})).json()
    assert {d["name"]: d["position"] for d in on_map["devices"]}["r1"] == {"x": 100, "y": 100}

    entries = await audit_entries(api, object_type="map_view", object_id="default")
    assert entries[0]["action"] == "positions.update"
    assert entries[0]["before"] == {"r2": {"x": -40.0, "y": 12.25}}
    assert entries[0]["after"] == {"r2": {"x": 7.0, "y": 8.0}}


async def test_refusals_name_the_field_or_device_and_save_nothing(api: Api) -> None:
    await seed_inventory(api.daemon)
    url = f"{VIEWS}/default/positions"

    unknown = await api.operator.put(
        url, json={"positions": {"r1": {"x": 1, "y": 1}, "ghost": {"x": 0, "y": 0}}}
    )
    assert unknown.status_code == 422
    assert "ghost" in unknown.json()["detail"]
    ghost = {"field": "body.positions.ghost", "reason": "no such device"}
    assert unknown.json()["errors"] == [ghost]

    far = await api.operator.put(url, json={"positions": {"r1": {"x": 2e6, "y": 0}}})
    assert far.status_code == 422 and "body.positions.r1.x" in far.json()["detail"]
    not_a_number = await api.operator.put(
        url,
        content=b'{"positions": {"r1": {"x": NaN, "y": 0}}}',
        headers={"Content-Type": "application/json"},
    )
    assert not_a_number.status_code == 422
    assert "body.positions.r1.x" in not_a_number.json()["detail"]
    missing = await api.operator.put(url, json={"positions": {"r1": {"x": 1}}})
    assert missing.status_code == 422 and "body.positions.r1.y" in missing.json()["detail"]
    too_many = {f"r{i}": {"x": 0, "y": 0} for i in range(10_001)}
    crowded = await api.operator.put(url, json={"positions": too_many})
    assert crowded.status_code == 422 and "body.positions" in crowded.json()["detail"]
    bad_name = await api.operator.put(
        f"{VIEWS}/{'x' * 65}/positions", json={"positions": {"r1": {"x": 1, "y": 1}}}
    )
    assert bad_name.status_code == 422 and "path.view" in bad_name.json()["detail"]

    assert (await api.viewer.get(f"{VIEWS}/default")).json()["positions"] == {}
    assert (await api.viewer.get(f"{VIEWS}/never")).status_code == 404


async def test_a_viewer_cannot_change_layouts_and_is_audited(api: Api) -> None:
    await seed_inventory(api.daemon)
    body = {"positions": {"r1": {"x": 1, "y": 1}}}
    refused = await api.viewer.put(f"{VIEWS}/default/positions", json=body)
    assert refused.status_code == 403
    assert (await api.viewer.delete(f"{VIEWS}/default")).status_code == 403
    entries = await audit_entries(api, refused="true")
    routes = {e["after"]["route"] for e in entries if e["action"] == "forbidden.refused"}
    assert "/api/v1/map/views/{view}/positions" in routes
    assert "/api/v1/map/views/{view}" in routes
    assert (await api.viewer.get(f"{VIEWS}/default")).json()["positions"] == {}


async def test_deleting_a_view_or_one_position(api: Api) -> None:
    await seed_inventory(api.daemon)
    body = {"positions": {"r1": {"x": 1, "y": 1}, "r2": {"x": 2, "y": 2}}}
    await api.operator.put(f"{VIEWS}/ops/positions", json=body)

    forget = await api.operator.delete(f"{VIEWS}/ops/positions/r1")
    assert forget.status_code == 204
    assert (await api.viewer.get(f"{VIEWS}/ops")).json()["positions"] == {"r2": {"x": 2, "y": 2}}
    again = await api.operator.delete(f"{VIEWS}/ops/positions/r1")
    assert again.status_code == 404 and "r1" in again.json()["detail"]

    gone = await api.operator.delete(f"{VIEWS}/ops")
    assert gone.status_code == 204
    assert (await api.viewer.get(f"{VIEWS}/ops")).status_code == 404
    assert (await api.operator.delete(f"{VIEWS}/ops")).status_code == 404
    assert (await api.operator.delete(f"{VIEWS}/default")).status_code == 204  # never saved

    actions = [e["action"] for e in await audit_entries(api, object_id="ops")]
    assert actions == ["delete", "position.delete", "positions.update"]
    deleted = (await audit_entries(api, object_id="ops", action="delete"))[0]
    assert deleted["before"] == {"positions": {"r2": {"x": 2.0, "y": 2.0}}}


async def test_removing_a_device_removes_its_positions(api: Api) -> None:
    """A layout never blocks a device's removal (unlike a service using it)."""
    await seed_inventory(api.daemon)
    body = {"positions": {"r10": {"x": 1, "y": 1}, "r4": {"x": 2, "y": 2}}}
    await api.operator.put(f"{VIEWS}/default/positions", json=body)
    await api.operator.put(f"{VIEWS}/other/positions", json=body)

    removed = await api.operator.delete("/api/v1/devices/r10")
    assert removed.status_code == 204, removed.text
    for view in ("default", "other"):
        positions = (await api.viewer.get(f"{VIEWS}/{view}")).json()["positions"]
        assert positions == {"r4": {"x": 2, "y": 2}}
    names = [d["name"] for d in (await api.viewer.get("/api/v1/map")).json()["devices"]]
    assert "r10" not in names


async def test_layouts_store_on_each_backend(db: Database) -> None:
    """The store's statements (merge, cascade with the device, delete) on SQLite and
    PostgreSQL."""
    inventory = Inventory(db)
    await inventory.load()
    await inventory.add_site(Site(name="s"), actor=ACTOR)
    for name in ("a", "b"):
        await inventory.add_device(Device(name=name, site="s"), actor=ACTOR)
    await inventory.add_link(
        Link(a=Endpoint(device="a", interface="e1"), b=Endpoint(device="b", interface="e1")),
        actor=ACTOR,
    )
    layouts = Layouts(db)
    assert await layouts.merge("v", {"a": (1.0, 2.0), "b": (3.0, 4.0)}, ACTOR) == 2
    assert await layouts.merge("v", {"a": (5.0, 6.0)}, ACTOR) == 2
    assert await layouts.positions("v") == {"a": (5.0, 6.0), "b": (3.0, 4.0)}
    assert layouts.revision == 2

    await inventory.remove_device("b", actor=ACTOR)
    assert await layouts.positions("v") == {"a": (5.0, 6.0)}
    summaries = {s.name: s.positions for s in await layouts.summaries()}
    assert summaries == {"default": 0, "v": 1}

    await layouts.delete("v", ACTOR)
    with pytest.raises(LookupError):
        await layouts.positions("v")

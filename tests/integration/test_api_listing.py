"""The inventory's large lists: cursor paging (`cursor`, `next_cursor`) of devices and
interfaces, devices with their interfaces (`include=interfaces`), and their contract."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.conftest import Api

PROBLEM = "application/problem+json"
# Out of order on purpose: the lists are in natural order (r2 before r10, eth2 before eth10).
DEVICES = ["r10", "r2", "r1", "core-b", "r21", "core-a", "r3", "r20", "r9"]
INTERFACES = ["eth10", "eth2", "ge-0/0/1", "eth1", "lo0"]


async def add_device(api: Api, name: str, **fields: str) -> None:
    r = await api.operator.post("/api/v1/devices", json={"name": name, **fields})
    assert r.status_code == 201, r.text


async def add_interface(api: Api, device: str, name: str, **fields: str) -> None:
    body = {"device": device, "name": name, **fields}
    r = await api.operator.post("/api/v1/interfaces", json=body)
    assert r.status_code == 201, r.text


async def fill(api: Api) -> None:
    for n, name in enumerate(DEVICES):
        await add_device(api, name, role="core" if name.startswith("core") else "pe")
        for i in INTERFACES[: len(INTERFACES) - n % len(INTERFACES)]:
            await add_interface(api, name, i, oper_state="up" if i.startswith("eth") else "down")


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    r = await client.get(path, params={k: v for k, v in params.items() if v is not None})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def walk(api: Api, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item of the list, page by page, following `next_cursor`."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await get(api.viewer, path, limit=limit, cursor=cursor, **params)
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == limit


def natural(names: list[str]) -> list[str]:
    """The order the API promises, written out for these names."""
    order = ["core-a", "core-b", "r1", "r2", "r3", "r9", "r10", "r20", "r21"]
    return [n for n in order if n in names]


async def test_cursor_walks_every_device_once_in_order(api: Api) -> None:
    await fill(api)
    everything = await get(api.viewer, "/api/v1/devices", limit=1000)
    assert [d["name"] for d in everything["items"]] == natural(DEVICES)
    assert everything["next_cursor"] is None and everything["total"] == len(DEVICES)
    for limit in (1, 2, 4, len(DEVICES)):
        walked = await walk(api, "/api/v1/devices", limit)
        assert walked == everything["items"]
    # Filters combine with the cursor; the total counts the whole filtered list.
    pes = await walk(api, "/api/v1/devices", 2, role="pe")
    assert [d["name"] for d in pes] == [n for n in natural(DEVICES) if not n.startswith("core")]
    first = await get(api.viewer, "/api/v1/devices", limit=2, role="pe")
    after = await get(
        api.viewer, "/api/v1/devices", limit=2, role="pe", cursor=first["next_cursor"]
    )
    assert first["total"] == after["total"] == len(pes)
    # Offset paging still works and offers the cursor of what follows.
    by_offset = await get(api.viewer, "/api/v1/devices", limit=3, offset=3)
    assert [d["name"] for d in by_offset["items"]] == natural(DEVICES)[3:6]
    resumed = await get(api.viewer, "/api/v1/devices", limit=3, cursor=by_offset["next_cursor"])
    assert [d["name"] for d in resumed["items"]] == natural(DEVICES)[6:9]


async def test_cursor_is_stable_under_inserts_and_deletes_between_pages(api: Api) -> None:
    await fill(api)
    page = await get(api.viewer, "/api/v1/devices", limit=3)
    seen = [d["name"] for d in page["items"]]
    assert seen == ["core-a", "core-b", "r1"]
    # Between pages: one device before the cursor, one after it, and the cursor's own device
    # and a later one removed.
    await add_device(api, "core-0")
    await add_device(api, "r15")
    assert (await api.operator.delete("/api/v1/devices/r1")).status_code == 204
    assert (await api.operator.delete("/api/v1/devices/r3")).status_code == 204
    cursor = page["next_cursor"]
    while cursor is not None:
        page = await get(api.viewer, "/api/v1/devices", limit=3, cursor=cursor)
        seen += [d["name"] for d in page["items"]]
        cursor = page["next_cursor"]
    # Each device there throughout appears once, in order; the one inserted after the cursor
    # appears, the one inserted before it and the deleted one do not.
    assert seen == ["core-a", "core-b", "r1", "r2", "r9", "r10", "r15", "r20", "r21"]


async def test_cursor_walks_every_interface_once_in_order(api: Api) -> None:
    await fill(api)
    expected = []
    for device in natural(DEVICES):
        listed = await get(api.viewer, "/api/v1/interfaces", device=device, limit=1000)
        expected += listed["items"]
    names = [(i["device"], i["name"]) for i in expected]
    assert names[:5] == [
        ("core-a", "eth1"),
        ("core-a", "eth2"),
        ("core-a", "eth10"),
        ("core-a", "ge-0/0/1"),
        ("core-a", "lo0"),
    ]
    everything = await get(api.viewer, "/api/v1/interfaces", limit=1000)
    assert everything["items"] == expected and everything["total"] == len(expected)
    for limit in (1, 3, 7):
        assert await walk(api, "/api/v1/interfaces", limit) == expected
    # Filters combine with the cursor: by device, by state.
    on_r10 = [i for i in expected if i["device"] == "r10"]
    assert await walk(api, "/api/v1/interfaces", 2, device="r10") == on_r10
    down = [i for i in expected if i["oper_state"] == "down"]
    assert down and await walk(api, "/api/v1/interfaces", 2, oper_state="down") == down
    # An interface inserted after the cursor between pages is listed, once.
    page = await get(api.viewer, "/api/v1/interfaces", limit=4)
    await add_interface(api, "r21", "eth0")
    rest = await walk_from(api, page["next_cursor"])
    walked = page["items"] + rest
    assert [(i["device"], i["name"]) for i in walked].count(("r21", "eth0")) == 1
    assert len(walked) == len(expected) + 1


async def walk_from(api: Api, cursor: str | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while cursor is not None:
        page = await get(api.viewer, "/api/v1/interfaces", limit=4, cursor=cursor)
        items += page["items"]
        cursor = page["next_cursor"]
    return items


async def test_devices_with_their_interfaces(api: Api) -> None:
    await fill(api)
    plain = await get(api.viewer, "/api/v1/devices", limit=1000)
    assert all("interfaces" not in d for d in plain["items"])  # unchanged for existing clients
    walked = await walk(api, "/api/v1/devices", 4, include="interfaces")
    assert [{k: v for k, v in d.items() if k != "interfaces"} for d in walked] == plain["items"]
    for device in walked:
        listed = await get(api.viewer, "/api/v1/interfaces", device=device["name"], limit=1000)
        assert device["interfaces"] == listed["items"] and device["interfaces"]


async def test_a_bad_cursor_is_a_422_naming_it(api: Api) -> None:
    await fill(api)
    devices_cursor = (await get(api.viewer, "/api/v1/devices", limit=1))["next_cursor"]
    for path, params in (
        ("/api/v1/devices", {"cursor": "not a cursor"}),
        ("/api/v1/devices", {"cursor": "e30"}),  # base64 of {}
        ("/api/v1/interfaces", {"cursor": devices_cursor}),  # another list's cursor
        ("/api/v1/devices", {"cursor": devices_cursor, "offset": 2}),
        ("/api/v1/devices", {"cursor": "x" * 2000}),
    ):
        r = await api.viewer.get(path, params=params)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM
        assert [e["field"] for e in r.json()["errors"]] == ["query.cursor"], r.text
    r = await api.viewer.get("/api/v1/devices", params={"include": "links"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.include"


async def test_openapi_documents_cursor_and_include(api: Api) -> None:
    spec = (await api.anonymous.get("/api/v1/openapi.json")).json()
    devices = spec["paths"]["/api/v1/devices"]["get"]
    interfaces = spec["paths"]["/api/v1/interfaces"]["get"]
    assert {"cursor", "include", "limit", "offset"} <= {p["name"] for p in devices["parameters"]}
    assert {"cursor", "limit", "offset"} <= {p["name"] for p in interfaces["parameters"]}
    for operation in (devices, interfaces):
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert {"items", "total", "limit", "offset", "next_cursor"} <= set(page["properties"])
    assert "DeviceWithInterfaces" in spec["components"]["schemas"]

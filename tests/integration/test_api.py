"""The REST API contract: auth and roles, CRUD, pagination, filters, problem+json, topology."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import Api

REPO = Path(__file__).resolve().parents[2]
METRO = REPO / "lab" / "topologies" / "metro.clab.yml"
PROBLEM = "application/problem+json"


async def import_metro(api: Api) -> dict:
    r = await api.operator.post(
        "/api/v1/topology/import",
        content=METRO.read_bytes(),
        params={"filename": "metro.clab.yml"},
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == 200, r.text
    return r.json()


# --- authentication and roles -------------------------------------------------------------


async def test_reads_need_a_token(api: Api) -> None:
    r = await api.anonymous.get("/api/v1/devices")
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"] == "Bearer"
    r = await api.anonymous.get("/api/v1/devices", headers={"Authorization": "Bearer oss_nope"})
    assert r.status_code == 401


async def test_roles_are_enforced(api: Api) -> None:
    device = {"name": "r1", "role": "pe"}
    r = await api.viewer.post("/api/v1/devices", json=device)
    assert r.status_code == 403
    assert "operator" in r.json()["detail"]
    assert (await api.operator.post("/api/v1/devices", json=device)).status_code == 201
    assert (await api.viewer.get("/api/v1/devices/r1")).status_code == 200
    assert (await api.operator.get("/api/v1/tokens")).status_code == 403
    assert (await api.admin.get("/api/v1/tokens")).status_code == 200


async def test_admin_manages_tokens_and_they_work(api: Api) -> None:
    r = await api.admin.post("/api/v1/tokens", json={"name": "noc", "role": "viewer"})
    assert r.status_code == 201
    created = r.json()
    assert created["token"].startswith("oss_")
    assert "token_hash" not in created["info"]
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert (await api.anonymous.get("/api/v1/devices", headers=headers)).status_code == 200
    listed = (await api.admin.get("/api/v1/tokens")).json()
    assert all("token" not in t and "token_hash" not in t for t in listed)
    r = await api.admin.delete(f"/api/v1/tokens/{created['info']['id']}")
    assert r.json()["revoked_at"] is not None
    assert (await api.anonymous.get("/api/v1/devices", headers=headers)).status_code == 401


# --- devices, interfaces, links -----------------------------------------------------------


async def test_device_lifecycle_and_problems(api: Api) -> None:
    body = {
        "name": "pe1",
        "role": "pe",
        "platform": "lab-sim",
        "mgmt_address": "127.10.0.9",
        "credentials_ref": "env:PE1_SECRET",
    }
    r = await api.operator.post("/api/v1/devices", json=body)
    assert r.status_code == 201 and r.json()["mgmt_address"] == "127.10.0.9"

    dup = await api.operator.post("/api/v1/devices", json=body)
    assert dup.status_code == 409 and dup.headers["content-type"] == PROBLEM
    assert dup.json()["detail"] == "device 'pe1' already exists"

    r = await api.operator.patch("/api/v1/devices/pe1", json={"state": "maintenance"})
    assert r.status_code == 200 and r.json()["state"] == "maintenance"
    assert r.json()["role"] == "pe"  # PATCH leaves other fields alone

    missing = await api.viewer.get("/api/v1/devices/nope")
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:oss:problem:not-found"
    assert missing.json()["instance"] == "/api/v1/devices/nope"

    assert (await api.operator.delete("/api/v1/devices/pe1")).status_code == 204
    assert (await api.viewer.get("/api/v1/devices/pe1")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name!"}, "body.name"),
        ({"name": "r1", "mgmt_address": "300.1.1.1"}, "body.mgmt_address"),
        ({"name": "r1", "credentials_ref": "hunter2"}, "body.credentials_ref"),
        ({"name": "r1", "state": "exploded"}, "body.state"),
        ({"name": "r1", "password": "x"}, "body.password"),
    ],
)
async def test_invalid_payload_names_the_field_and_writes_nothing(
    api: Api, body: dict, field: str
) -> None:
    r = await api.operator.post("/api/v1/devices", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert field in [e["field"] for e in r.json()["errors"]]
    assert (await api.viewer.get("/api/v1/devices")).json()["total"] == 0
    assert (await api.viewer.get("/api/v1/audit", params={"object_type": "device"})).json()[
        "total"
    ] == 0


async def test_credentials_ref_never_the_secret_is_echoed(api: Api) -> None:
    r = await api.operator.post("/api/v1/devices", json={"name": "r1", "credentials_ref": "s3cr3t"})
    assert r.status_code == 422
    assert "s3cr3t" not in r.text


async def test_links_create_interfaces_and_refuse_reuse(api: Api) -> None:
    for name in ("a", "b", "c"):
        await api.operator.post("/api/v1/devices", json={"name": name})
    link = {
        "a": {"device": "a", "interface": "ge-0/0/0"},
        "b": {"device": "b", "interface": "ge-0/0/0"},
        "capacity_bps": 10**9,
    }
    r = await api.operator.post("/api/v1/links", json=link)
    assert r.status_code == 201
    link_id = r.json()["id"]
    # Interface names with slashes are addressable.
    r = await api.viewer.get("/api/v1/interfaces/a/ge-0/0/0")
    assert r.status_code == 200 and r.json()["speed_bps"] == 10**9
    again = {**link, "b": {"device": "c", "interface": "eth1"}}
    r = await api.operator.post("/api/v1/links", json=again)
    assert r.status_code == 409 and "a:ge-0/0/0" in r.json()["detail"]
    r = await api.operator.post("/api/v1/links", json={**link, "b": link["a"]})
    assert r.status_code == 422
    r = await api.operator.patch(f"/api/v1/links/{link_id}", json={"state": "down"})
    assert r.json()["state"] == "down"
    down = (await api.viewer.get("/api/v1/links", params={"state": "down"})).json()
    assert [x["id"] for x in down["items"]] == [link_id]
    r = await api.operator.delete("/api/v1/interfaces/a/ge-0/0/0")
    assert r.status_code == 409


async def test_pagination_and_filters(api: Api) -> None:
    await import_metro(api)
    everything = (await api.viewer.get("/api/v1/devices", params={"limit": 1000})).json()
    total = everything["total"]
    assert total == len(everything["items"]) >= 10
    seen = []
    for offset in range(0, total, 3):
        page = (
            await api.viewer.get("/api/v1/devices", params={"limit": 3, "offset": offset})
        ).json()
        assert page["total"] == total and page["limit"] == 3
        seen += [d["name"] for d in page["items"]]
    assert seen == [d["name"] for d in everything["items"]]
    access = (await api.viewer.get("/api/v1/devices", params={"role": "access"})).json()
    assert access["total"] > 0 and all(d["role"] == "access" for d in access["items"])
    site = everything["items"][0]["site"]
    by_site = (await api.viewer.get("/api/v1/devices", params={"site": site})).json()
    assert by_site["total"] > 0 and all(d["site"] == site for d in by_site["items"])
    bad = await api.viewer.get("/api/v1/devices", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.limit"


# --- topology ------------------------------------------------------------------------------


async def test_import_export_round_trip(api: Api) -> None:
    result = await import_metro(api)
    assert result["created"]["devices"] >= 10
    again = await import_metro(api)
    assert again["created"] == {} and again["updated"] == {}
    r = await api.viewer.get("/api/v1/topology/export", params={"name": "metro"})
    assert r.headers["content-type"].startswith("application/yaml")
    exported = yaml.safe_load(r.text)
    original = yaml.safe_load(METRO.read_text())
    assert set(exported["topology"]["nodes"]) == set(original["topology"]["nodes"])
    assert len(exported["topology"]["links"]) == len(original["topology"]["links"])


async def test_bad_topology_file_is_rejected_with_lines(api: Api) -> None:
    bad = (
        b"name: x\ntopology:\n  nodes:\n    r1: {kind: linux}\n"
        b"  links:\n    - endpoints: [r1:eth1, r9:eth1]\n"
    )
    r = await api.operator.post(
        "/api/v1/topology/import", content=bad, params={"filename": "bad.clab.yml"}
    )
    assert r.status_code == 422
    problems = r.json()["problems"]
    assert problems[0]["where"] == "bad.clab.yml:6"
    assert "r9" in problems[0]["reason"]
    assert (await api.viewer.get("/api/v1/devices")).json()["total"] == 0


async def test_paths_and_impact(api: Api) -> None:
    await import_metro(api)
    graph = (await api.viewer.get("/api/v1/topology")).json()
    names = [d["name"] for d in graph["devices"]]
    access = [d["name"] for d in graph["devices"] if d["role"] == "access"]
    src, dst = access[0], access[-1]
    r = await api.viewer.get("/api/v1/topology/path", params={"src": src, "dst": dst})
    assert r.status_code == 200
    best = r.json()["paths"][0]
    assert best["devices"][0] == src and best["devices"][-1] == dst
    r = await api.viewer.get("/api/v1/topology/path", params={"src": src, "dst": dst, "k": 3})
    paths = r.json()["paths"]
    assert len(paths) == 3
    assert [p["latency_us"] for p in paths] == sorted(p["latency_us"] for p in paths)
    r = await api.viewer.get(
        "/api/v1/topology/path", params={"src": src, "dst": dst, "disjoint": "node"}
    )
    primary, backup = r.json()["paths"]
    assert not set(primary["devices"][1:-1]) & set(backup["devices"][1:-1])
    r = await api.viewer.get("/api/v1/topology/path", params={"src": src, "dst": "nowhere"})
    assert r.status_code == 404
    r = await api.viewer.get("/api/v1/topology/neighbours/" + src)
    assert len(r.json()) == 2  # access nodes are dual-homed
    r = await api.viewer.get("/api/v1/topology/impact", params={"device": names[0]})
    assert r.status_code == 200 and r.json()["links"]
    r = await api.viewer.get("/api/v1/topology/impact")
    assert r.status_code == 422


# --- audit, health, metrics ----------------------------------------------------------------


async def test_audit_records_who_changed_what(api: Api) -> None:
    await api.operator.post("/api/v1/devices", json={"name": "r1", "role": "p"})
    await api.operator.patch("/api/v1/devices/r1", json={"role": "pe"})
    entries = (await api.viewer.get("/api/v1/audit", params={"object_type": "device"})).json()
    assert [e["action"] for e in entries["items"]] == ["update", "create"]
    update = entries["items"][0]
    assert update["actor"].startswith("token:test-operator#")
    assert (update["before"]["role"], update["after"]["role"]) == ("p", "pe")


async def test_health_metrics_and_openapi(api: Api) -> None:
    assert (await api.anonymous.get("/healthz")).json() == {"status": "ok"}
    await api.viewer.get("/api/v1/devices")
    await api.viewer.get("/api/v1/devices/missing")
    metrics = (await api.anonymous.get("/metrics")).text
    assert (
        'oss_http_requests_total{method="GET",route="/api/v1/devices/{name}",status="404"} 1.0'
        in metrics
    )
    assert "oss_inventory_objects" in metrics
    spec = (await api.anonymous.get("/api/v1/openapi.json")).json()
    for path in (
        "/api/v1/devices",
        "/api/v1/links",
        "/api/v1/interfaces",
        "/api/v1/topology/path",
        "/api/v1/audit",
    ):
        assert path in spec["paths"]
    assert "/api/v1/topology/import" in spec["paths"]

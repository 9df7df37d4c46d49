"""The services REST API over the mixed-protocol lab: problems for bad input, dry runs,
a background transaction followed to its end, impact, modify, drift, refusal and delete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from oss.api import create_app
from oss.auth_roles import Role
from oss.runtime import Runtime
from oss.settings import load_settings
from tests.integration.provisioning.conftest import ChainLab

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
SLICE = {"customer": "acme", "from": "west", "to": "east", "bandwidth": "200M"}


@dataclass
class Clients:
    viewer: httpx.AsyncClient
    operator: httpx.AsyncClient


@pytest.fixture
async def api(chain_lab: ChainLab, tmp_path: Path) -> AsyncIterator[Clients]:
    settings = load_settings(
        None,
        state_dir=tmp_path,
        drivers={
            "allowed_networks": ["127.0.0.0/8"],
            "ports": chain_lab.lab.ports.as_dict(),
            "timeout_s": 15,
        },
    )
    runtime = Runtime(settings)
    async with runtime:
        transport = httpx.ASGITransport(app=create_app(runtime))
        tokens = {}
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[role], _ = await runtime.tokens.create(name=role.value, role=role, actor="t")

        def client(role: Role) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            return httpx.AsyncClient(
                transport=transport, base_url="http://oss.test", headers=headers
            )

        async with client(Role.VIEWER) as viewer, client(Role.OPERATOR) as operator:
            r = await operator.post(
                "/api/v1/topology/import",
                content=chain_lab.clab_file.read_bytes(),
                params={"filename": "chain5.clab.yml"},
                headers={"Content-Type": "application/yaml"},
            )
            assert r.status_code == 200, r.text
            yield Clients(viewer, operator)
        await runtime.services.close()


async def test_bad_requests_are_problems(api: Clients) -> None:
    r = await api.viewer.post("/api/v1/slices", json=SLICE)
    assert r.status_code == 403
    r = await api.operator.post("/api/v1/services", json={"type": "teleport", "params": {}})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "teleport" in r.json()["detail"]
    bad = {**SLICE, "bandwidth": "lots", "latency": -1, "colour": "red"}
    r = await api.operator.post("/api/v1/slices", json=bad)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "bandwidth" in detail and "latency" in detail and "colour" in detail
    r = await api.operator.post("/api/v1/slices", json={**SLICE, "to": "atlantis"})
    assert r.status_code == 404 and "atlantis" in r.json()["detail"]
    assert (await api.viewer.get("/api/v1/services/nope")).status_code == 404
    assert (await api.viewer.get("/api/v1/transactions/999")).status_code == 404
    # refused before placement or at placement: no service was recorded
    assert (await api.viewer.get("/api/v1/services")).json() == []


async def test_slice_through_the_api(api: Clients) -> None:
    r = await api.operator.post("/api/v1/slices", json=SLICE, params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    assert [d["device"] for d in r.json()["devices"]] == ["pe1", "p1", "p2", "p3", "pe2"]
    assert await api.viewer.get("/api/v1/slices") is not None
    assert (await api.viewer.get("/api/v1/slices")).json() == []

    r = await api.operator.post("/api/v1/slices", json=SLICE, params={"wait": "false"})
    assert r.status_code == 202, r.text
    txn_id, service_id = r.json()["transaction_id"], r.json()["service_id"]
    assert r.headers["location"] == f"/api/v1/transactions/{txn_id}"
    for _ in range(300):
        txn = (await api.viewer.get(f"/api/v1/transactions/{txn_id}")).json()
        if txn["state"] in ("committed", "rolled-back", "failed"):
            break
        await asyncio.sleep(0.1)
    assert txn["state"] == "committed", txn
    assert {d["device"]: d["state"] for d in txn["devices"]} == {
        "pe1": "confirmed",
        "p1": "confirmed",
        "p2": "confirmed",
        "p3": "confirmed",
        "pe2": "confirmed",
    }
    steps = [s["step"] for s in txn["devices"][0]["steps"]]
    assert steps == ["read", "prepare", "commit", "verify", "confirm"]

    service = (await api.viewer.get(f"/api/v1/services/{service_id}")).json()
    assert service["state"] == "active" and service["customer"] == "acme"
    link = service["resources"]["links"][0]["id"]
    impact = (await api.viewer.get("/api/v1/topology/impact", params={"link": link})).json()
    assert impact["services"] == [service["name"]] and impact["customers"] == ["acme"]

    r = await api.operator.patch(
        f"/api/v1/slices/{service_id}", json={"params": {"bandwidth": "300M"}}
    )
    assert r.status_code == 200 and r.json()["transaction"]["state"] == "committed"
    drift = (await api.viewer.get(f"/api/v1/services/{service_id}/diff")).json()
    assert drift["in_sync"], drift

    r = await api.operator.post(
        "/api/v1/slices", json={**SLICE, "bandwidth": "900M", "latency": "1ms"}
    )
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    # the slow path has room but misses the budget; the fast one lacks bandwidth: both named
    problem = r.json()
    assert problem["reason"] == "latency" and problem["bottleneck"] is not None
    assert "1ms" in problem["detail"] or "1000" in problem["detail"], problem["detail"]
    assert "link" in problem["detail"], problem["detail"]

    r = await api.operator.delete(f"/api/v1/services/{service_id}")
    assert r.status_code == 200, r.text
    assert r.json()["service"]["state"] == "terminated"
    assert (await api.viewer.get("/api/v1/services", params={"state": "active"})).json() == []
    # the refused slice left no record; the deleted one stays as terminated
    states = [s["state"] for s in (await api.viewer.get("/api/v1/services")).json()]
    assert states == ["terminated"]

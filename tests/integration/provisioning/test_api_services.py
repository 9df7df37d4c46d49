"""The services REST API over the mixed-protocol lab: problems for bad input, dry runs,
a background transaction followed to its end, impact, modify, drift, refusal and delete."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.provisioning.conftest import Clients

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
SLICE = {"customer": "acme", "from": "west", "to": "east", "bandwidth": "200M"}


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

"""`GET /api/v1/cluster` on one instance (no cluster): the contract's document, with this
instance owning every device and running every job; viewers read it, nobody else."""

from __future__ import annotations

import os

from tests.integration.conftest import Api


async def test_a_single_instance_owns_every_device_and_runs_every_job(api: Api) -> None:
    for name in ("r1", "r2"):
        device = {"name": name, "role": "pe"}
        assert (await api.operator.post("/api/v1/devices", json=device)).status_code == 201
    response = await api.viewer.get("/api/v1/cluster")
    assert response.status_code == 200, response.text
    doc = response.json()
    instance = api.daemon.settings.cluster.instance
    assert doc["enabled"] is False and doc["instance"] == instance
    assert doc["leader"] == instance and doc["unassigned_devices"] == 0
    [only] = doc["instances"]
    assert only["instance"] == instance and only["alive"] is True and only["pid"] == os.getpid()
    assert only["devices"] == 2 and only["lease_age_s"] is None
    jobs = {s["job"] for s in doc["singletons"]}
    assert set(only["roles"]) == {"leader", *jobs}  # the jobs `build` wraps run here
    assert all(s["holder"] == instance for s in doc["singletons"])


async def test_only_a_token_reads_it(api: Api) -> None:
    assert (await api.anonymous.get("/api/v1/cluster")).status_code == 401

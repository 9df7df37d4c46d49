"""A service type added as data only (configs/services/dia.yaml and its lab-sim templates):
dedicated internet access, with no `vrf` parameter and no VLAN per attachment, provisioned end
to end through the REST API of a real runtime on the mixed-protocol lab (pe1 over NETCONF, pe2
over gNMI): a dry run, a create, a drift check "in sync" and a delete that leaves the devices
as they were."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.netconf import NetconfDriver
from tests.integration.provisioning.conftest import LOOPBACK, ChainLab, Clients
from topology.model import Device
from topology.targets import target_for

pytestmark = pytest.mark.integration

DIA = {
    "customer": "acme",
    "access": [
        {"pe": "pe1", "port": "eth3", "gateway": "198.51.100.1/30"},
        {"pe": "pe2", "port": "eth3", "gateway": "198.51.100.5/30"},
    ],
    "rate": "300M",
}


async def running(api: Clients, chain_lab: ChainLab, name: str) -> str:
    """The device's whole running configuration, read over NETCONF (every lab device serves
    it, whatever protocol configures it)."""
    device = Device.model_validate((await api.viewer.get(f"/api/v1/devices/{name}")).json())
    port = chain_lab.lab.ports.as_dict().get("netconf")
    target = target_for(device, "netconf", port=port, allowed=LOOPBACK, timeout_s=10)
    async with NetconfDriver() as nc, nc.connect(target) as session:
        text: str = await session.get_config("running")
        return text


async def test_dia_dry_run_create_in_sync_and_delete(api: Clients, chain_lab: ChainLab) -> None:
    before = {name: await running(api, chain_lab, name) for name in ("pe1", "pe2")}

    body: dict[str, Any] = {"type": "dia", "params": DIA}
    r = await api.operator.post("/api/v1/services", json=body, params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["service"]["vrf"].startswith("dia-")  # named by the realisation
    vlan = preview["service"]["vlan"]
    assert isinstance(vlan, int)  # one VLAN for the service, from the pool
    assert {d["device"]: d["protocol"] for d in preview["devices"]} == {
        "pe1": "netconf",
        "pe2": "gnmi",
    }
    for device in preview["devices"]:
        assert device["state"] == "differs", device
        diff = "\n".join(device["diff"])
        assert "bandwidth-bps" in diff and "300000000" in diff, diff
        assert f"subinterface[index={vlan}]" in diff, diff
    assert (await api.viewer.get("/api/v1/services")).json() == []  # nothing stored

    r = await api.operator.post("/api/v1/services", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["transaction"]["state"] == "committed"
    service = r.json()["service"]
    assert service["state"] == "active" and service["customer"] == "acme"
    assert service["sla"]["bandwidth_bps"] == 300_000_000
    assert sorted(i["device"] for i in service["resources"]["interfaces"]) == ["pe1", "pe2"]
    for name in ("pe1", "pe2"):
        config = await running(api, chain_lab, name)
        assert service["vrf"] in config and "198.51.100." in config, config

    drift = (await api.viewer.get(f"/api/v1/services/{service['id']}/diff")).json()
    assert drift["in_sync"], drift

    r = await api.operator.delete(f"/api/v1/services/{service['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["service"]["state"] == "terminated"
    after = {name: await running(api, chain_lab, name) for name in ("pe1", "pe2")}
    assert after == before

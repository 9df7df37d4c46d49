"""A slice across five devices and three configuration protocols: dry run, create, drift,
delete, each checked by reading the devices back."""

from __future__ import annotations

import pytest

from drivers.cli import CliDriver
from drivers.gnmi import GnmiDriver
from tests.integration.provisioning.conftest import LOOPBACK, Stack, snapshot
from topology.targets import target_for

pytestmark = pytest.mark.integration

SLICE = {
    "customer": "acme",
    "from": "west",
    "to": "east",
    "bandwidth": "200M",
    "latency": "1ms",
}


async def test_dry_run_shows_per_device_diffs_and_touches_nothing(stack: Stack) -> None:
    before = await snapshot(stack)
    preview = await stack.services.create("slice", SLICE, actor="test", dry_run=True)
    devices = {d["device"]: d for d in preview["devices"]}
    assert list(devices) == ["pe1", "p1", "p2", "p3", "pe2"]
    for name, d in devices.items():
        assert d["state"] == "differs", (name, d)
        assert any("vlan-id" in line for line in d["diff"]), d["diff"]
    assert preview["service"]["placement"]["primary"]["devices"] == list(devices)
    assert await snapshot(stack) == before
    assert await stack.services.find() == []


async def test_slice_create_check_delete_across_protocols(stack: Stack) -> None:
    before = await snapshot(stack)
    result = await stack.services.create("slice", SLICE, actor="test")
    service = result["service"]
    assert service["state"] == "active"
    assert result["transaction"]["state"] == "committed"
    vlan, vrf = service["vlan"], service["vrf"]
    links = service["resources"]["links"]
    assert len(links) == 4 and all(link["bandwidth_bps"] == 200_000_000 for link in links)

    # Every hop holds it: over NETCONF (all of them) ...
    after = await snapshot(stack)
    hops = service["placement"]["primary"]["devices"]
    assert hops == ["pe1", "p1", "p2", "p3", "pe2"]
    for name, xml in after.items():
        on_path = vrf in xml and f"<vlan-id>{vlan}</vlan-id>" in xml
        assert on_path == (name in hops), name
    # ... over gNMI on a gNMI-configured device and over the CLI on the CLI one.
    graph = stack.inventory.graph
    port = stack.access.ports
    async with GnmiDriver() as gnmi, CliDriver() as cli:
        target = target_for(graph.device("p1"), "gnmi", port=port.get("gnmi"), allowed=LOOPBACK)
        async with gnmi.connect(target) as g:
            got = await g.get([f"network-instances/network-instance[name={vrf}]"])
        assert vrf in str(got)
        target = target_for(graph.device("p2"), "cli", port=port.get("cli"), allowed=LOOPBACK)
        async with cli.connect(target) as c:
            shown = await c.send_command("show running-config")
        assert f"subinterface[index={vlan}]/vlan/config/vlan-id {vlan}" in str(shown)

    drift = await stack.services.drift(service["id"])
    assert drift["in_sync"], drift

    done = await stack.services.delete(service["id"], actor="test")
    assert done["service"]["state"] == "terminated"
    assert await snapshot(stack) == before
    # The bandwidth is free again.
    assert await stack.services.reserved() == {}

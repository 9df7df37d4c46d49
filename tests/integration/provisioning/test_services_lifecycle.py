"""l2vpn with protection, modify as a transaction, over-subscription refused with the
bottleneck named, l3vpn with drift found and reconciled: each on the mixed-protocol lab and
each checked by reading the devices back."""

from __future__ import annotations

import pytest

from drivers.gnmi import GnmiDriver
from oss.errors import Conflict
from oss.provisioning.leaves import xml_intent
from oss.provisioning.services import ServiceManager
from tests.integration.provisioning.conftest import LOOPBACK, Stack, snapshot
from topology.placement import PlacementRefused
from topology.targets import target_for

pytestmark = pytest.mark.integration


def leaves(xml: str) -> dict[str, str]:
    from drivers.platforms import load_platform

    return dict(xml_intent(xml, load_platform("lab-sim").model).leaves)


async def test_l2vpn_with_protection_modify_and_delete(stack: Stack) -> None:
    services: ServiceManager = stack.services
    before = await snapshot(stack)
    params = {
        "customer": "acme",
        "a": "pe1:eth3",
        "z": "pe2:eth3",
        "bandwidth": "300M",
        "protection": "link",
    }
    created = await services.create("l2vpn", params, actor="test")
    service = created["service"]
    assert service["state"] == "active"
    placement = service["placement"]
    assert placement["primary"]["devices"] == ["pe1", "p1", "p2", "p3", "pe2"]
    assert placement["protection"]["devices"] == ["pe1", "pe2"]  # the slow direct link
    reserved = await services.reserved()
    assert len(reserved) == 5 and set(reserved.values()) == {300_000_000}

    vlan = service["vlan"]
    after = {name: leaves(xml) for name, xml in (await snapshot(stack)).items()}
    sub = f"interfaces/interface[name=eth3]/subinterfaces/subinterface[index={vlan}]"
    assert after["pe1"][f"{sub}/vlan/config/vlan-id"] == str(vlan)
    qos = f"qos/interfaces/interface[interface-id=eth1.{vlan}]/config/bandwidth-bps"
    assert after["p1"][qos] == "300000000"

    # Modify: a new bandwidth is a transaction on every hop, and a new reservation.
    changed = await services.modify(service["id"], {"bandwidth": "500M"}, actor="test")
    assert changed["transaction"]["state"] == "committed"
    assert set((await services.reserved()).values()) == {500_000_000}
    after = {name: leaves(xml) for name, xml in (await snapshot(stack)).items()}
    assert after["p1"][qos] == "500000000"
    assert (await services.drift(service["id"]))["in_sync"]

    await services.delete(service["id"], actor="test")
    assert await snapshot(stack) == before
    assert await services.reserved() == {}


async def test_over_subscription_is_refused_with_the_bottleneck_named(stack: Stack) -> None:
    services = stack.services
    big = {"customer": "acme", "from": "west", "to": "east", "bandwidth": "600M"}
    first = await services.create("slice", {**big, "latency": "1ms"}, actor="test")
    before = await snapshot(stack)
    with pytest.raises(PlacementRefused) as refused:
        await services.create("slice", {**big, "latency": "1ms"}, actor="test")
    message = str(refused.value)
    assert refused.value.bottleneck is not None
    assert "link" in message and "600M" in message, message
    assert await snapshot(stack) == before  # nothing reached a device
    # Without the budget the slow path still has room: placement goes around.
    second = await services.create("slice", big, actor="test")
    assert second["service"]["placement"]["primary"]["devices"] == ["pe1", "pe2"]
    for svc in (second, first):
        await services.delete(svc["service"]["id"], actor="test")
    assert await services.reserved() == {}


async def test_l3vpn_drift_reconcile_and_vrf_clash(stack: Stack) -> None:
    services = stack.services
    before = await snapshot(stack)
    params = {
        "customer": "globex",
        "vrf": "GLOBEX",
        "rd": "65000:300",
        "endpoints": [
            {"device": "pe1", "interface": "eth3", "vlan": 300, "address": "10.30.0.1/30"},
            {"device": "pe2", "interface": "eth3", "vlan": 300, "address": "10.30.0.5/30"},
        ],
    }
    service = (await services.create("l3vpn", params, actor="test"))["service"]
    assert (await services.drift(service["id"]))["in_sync"]

    with pytest.raises(Conflict, match="GLOBEX"):
        await services.create("l3vpn", {**params, "rd": "65000:301"}, actor="test")

    # Someone changes the VRF's description by hand on pe2 (a gNMI device).
    graph, ports = stack.inventory.graph, stack.access.ports
    path = "network-instances/network-instance[name=GLOBEX]/config/description"
    async with GnmiDriver() as gnmi:
        target = target_for(graph.device("pe2"), "gnmi", port=ports.get("gnmi"), allowed=LOOPBACK)
        async with gnmi.connect(target) as g:
            await g.set(update=[(path, "hand edit")])
    drift = await services.drift(service["id"])
    assert not drift["in_sync"]
    [pe2] = [d for d in drift["devices"] if d["state"] != "unchanged"]
    assert pe2["device"] == "pe2" and any("hand edit" in line for line in pe2["diff"])

    fixed = await services.reconcile(service["id"], actor="test")
    states = {d["device"]: d["state"] for d in fixed["transaction"]["devices"]}
    assert states == {"pe1": "unchanged", "pe2": "confirmed"}
    assert (await services.drift(service["id"]))["in_sync"]

    await services.delete(service["id"], actor="test")
    assert await snapshot(stack) == before

"""bgp-peering's FRR templates: what each end gets, what the service owns, refused input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.platforms import load_platform
from oss.errors import ConfigError, InvalidInput
from oss.provisioning.plan import DevicePlan, Mode, template_context
from oss.provisioning.protocols import render_device
from oss.provisioning.realise import DeviceRole, service_names
from oss.provisioning.render import Renderer, TemplateError
from oss.provisioning.service_types import load_service_type, load_service_types
from topology.model import Device

STYPE = load_service_types()["bgp-peering"]
FRR = load_platform("frr")


def plan(device: str, mode: Mode, **changes: Any) -> DevicePlan:
    assert STYPE.example is not None
    values = STYPE.validate({**STYPE.example, **changes})
    names = service_names(STYPE, values, 7, None, 65000)
    role = DeviceRole(Device(name=device, role="pe", site="north", platform="frr"), "pe")
    context = template_context(STYPE, values, names, role, FRR)
    template = STYPE.template("pe", FRR.template_dir, "cli")
    return render_device(Renderer(), FRR, template, context, mode=mode, device=device)


def test_each_end_peers_with_the_other_with_a_prefix_list_each_way() -> None:
    assert plan("r1", "merge").payload.splitlines() == [
        "router bgp 65001",
        " neighbor 10.254.0.1 remote-as 65002",
        " neighbor 10.254.0.1 description oss svc-7 bgp-peering acme",
        " neighbor 10.254.0.1 timers connect 5",
        " address-family ipv4 unicast",
        "  neighbor 10.254.0.1 prefix-list svc-7-in in",
        "  neighbor 10.254.0.1 prefix-list svc-7-out out",
        " exit-address-family",
        "exit",
        "ip prefix-list svc-7-in seq 5 permit 10.255.0.2/32",
        "ip prefix-list svc-7-out seq 5 permit 10.255.0.1/32",
    ]
    r2 = plan("r2", "merge").intent.leaves
    assert r2["router bgp 65002/neighbor 10.254.0.0/remote-as 65001"] == ""
    assert r2["ip prefix-list svc-7-in/seq 5"] == "permit 10.255.0.1/32"


def test_the_service_owns_the_neighbor_and_its_prefix_lists_not_the_bgp_instance() -> None:
    merge, delete = plan("r1", "merge"), plan("r1", "delete")
    owned = (
        "router bgp 65001/neighbor 10.254.0.1",
        "ip prefix-list svc-7-in",
        "ip prefix-list svc-7-out",
    )
    assert merge.owned == delete.owned == delete.intent.removals == owned
    assert delete.intent.leaves == {}


def test_the_same_router_at_both_ends_is_refused_naming_the_template_line() -> None:
    with pytest.raises(TemplateError, match=r"peer\.cli\.j2:\d+: a and b are the same router: r1"):
        plan("r1", "merge", b="r1")


def test_ends_on_links_of_different_lengths_are_refused() -> None:
    b_end = {
        "asn": 65002,
        "address": "10.254.0.1/30",
        "accept": ["10.255.0.1/32"],
        "announce": ["10.255.0.2/32"],
    }
    with pytest.raises(TemplateError, match="different prefix lengths: not one link"):
        plan("r1", "merge", b_end=b_end)


def test_the_routers_are_devices_only_so_the_peering_takes_no_vlan() -> None:
    assert STYPE.needs_vlan is False
    assert STYPE.example is not None
    with pytest.raises(InvalidInput, match=r"parameters\.a: must be a site or a device, not"):
        STYPE.validate({**STYPE.example, "a": "r1:eth1"})


def test_devices_only_contradicting_needs_interface_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nrealisation: endpoints\nendpoint_roles: [pe]\nendpoints: [a]\n"
        "templates: {pe: bad/pe}\nparameters:\n"
        "  a: {type: endpoint, needs_interface: true, devices_only: true}\n"
    )
    with pytest.raises(ConfigError, match=r"bad\.yaml:7: parameters\.a\.devices_only: contradicts"):
        load_service_type("bad", tmp_path)


def test_a_peering_never_takes_over_a_neighbor_already_there() -> None:
    assert STYPE.exclusive is True
    assert load_service_types()["l3vpn"].exclusive is False

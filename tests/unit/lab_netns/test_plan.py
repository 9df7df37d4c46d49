"""The namespace lab's plan: names and addresses from a containerlab file, and located errors."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from lab.netns.plan import LabPlan, plan_from_json, plan_lab, plan_to_json
from oss.errors import InvalidInput, TopologyFileError
from topology.clab import parse_clab

ROOT = Path(__file__).resolve().parents[3]
METRO = ROOT / "lab" / "topologies" / "metro.clab.yml"
TRIANGLE = ROOT / "tests" / "data" / "netns" / "triangle.clab.yml"


def _plan(path: Path, prefix: str = "oss") -> LabPlan:
    return plan_lab(parse_clab(path.read_text(), path.name), prefix)


def _plan_text(text: str, prefix: str = "oss") -> LabPlan:
    return plan_lab(parse_clab(textwrap.dedent(text).lstrip("\n"), "t.clab.yml"), prefix)


def test_metro_every_node_and_link_gets_its_namespace_and_addresses() -> None:
    plan = _plan(METRO)
    assert plan.name == "metro"
    assert len(plan.nodes) == 10
    assert len(plan.links) == 18
    assert plan.mgmt_namespace == "oss-metro-mgmt"
    assert plan.mgmt_gateway == "172.20.20.1"
    assert plan.node("agg1").namespace == "oss-metro-agg1"
    # Node and link order is the file's: agg1 is the first node, its first link the first /31.
    assert [n.loopback for n in plan.nodes] == [f"10.255.0.{i}" for i in range(1, 11)]
    assert plan.links[0].subnet == "10.254.0.0/31"
    # metro's 127.10.1.x addresses are the simulated lab's: replaced, in file order from .2.
    assert [n.mgmt_address for n in plan.nodes] == [f"172.20.20.{i}" for i in range(2, 12)]
    subnets = [ipaddress.ip_network(li.subnet) for li in plan.links]
    assert all(s.prefixlen == 31 for s in subnets) and len(set(subnets)) == len(subnets)
    for link in plan.links:
        (a, a_if), (b, b_if) = link.ends()
        a_addr = ipaddress.ip_interface(plan.node(a).interface(a_if).address)
        b_addr = ipaddress.ip_interface(plan.node(b).interface(b_if).address)
        assert a_addr.network == b_addr.network == ipaddress.ip_network(link.subnet)
        assert a_addr.ip != b_addr.ip
    assert plan.links[0].vars == {"capacity": "100G", "latency": "1ms"}
    agg1 = plan.node("agg1")
    assert [i.name for i in agg1.interfaces][:4] == ["eth1", "eth2", "eth3", "eth4"]
    assert agg1.labels["oss.role"] == "aggregation" and agg1.profile == "frr"
    assert agg1.asn is None


def test_every_address_of_the_lab_lies_in_its_prefixes() -> None:
    plan = _plan(METRO)
    prefixes = [ipaddress.ip_network(p) for p in plan.prefixes()]
    addresses = [plan.mgmt_gateway] + [n.mgmt_address for n in plan.nodes]
    addresses += [n.loopback for n in plan.nodes]
    addresses += [i.address.split("/")[0] for n in plan.nodes for i in n.interfaces]
    for address in addresses:
        assert any(ipaddress.ip_address(address) in p for p in prefixes), address


def test_triangle_carries_bgp_asns_and_a_prefix_per_lab() -> None:
    plan = _plan(TRIANGLE, prefix="oss-t0123abcd")
    assert [(n.name, n.asn) for n in plan.nodes] == [("r1", 65001), ("r2", 65002), ("r3", None)]
    assert plan.namespaces() == (
        "oss-t0123abcd-triangle-mgmt",
        "oss-t0123abcd-triangle-r1",
        "oss-t0123abcd-triangle-r2",
        "oss-t0123abcd-triangle-r3",
    )
    assert plan.link("r3:eth1").far_end("r3:eth1") == "r2:eth2"
    assert [li.a for li in plan.links_of("r1")] == ["r1:eth1", "r3:eth2"]


def test_the_plan_survives_json() -> None:
    plan = _plan(TRIANGLE)
    assert plan_from_json(plan_to_json(plan)) == plan


def test_a_mgmt_ipv4_in_the_subnet_is_kept_and_others_are_numbered_around_it() -> None:
    plan = _plan_text(
        """
        name: m
        mgmt: {ipv4-subnet: 192.168.50.0/24}
        topology:
          nodes:
            a: {kind: linux}
            b: {kind: linux, mgmt-ipv4: 192.168.50.2}
        """
    )
    assert plan.mgmt_subnet == "192.168.50.0/24" and plan.mgmt_gateway == "192.168.50.1"
    assert [n.mgmt_address for n in plan.nodes] == ["192.168.50.3", "192.168.50.2"]


def test_a_mgmt_ipv4_outside_the_subnet_is_refused_with_node_and_line() -> None:
    with pytest.raises(TopologyFileError) as caught:
        _plan_text(
            """
            name: m
            topology:
              nodes:
                a: {kind: linux}
                b:
                  kind: linux
                  mgmt-ipv4: 10.1.2.3
            """
        )
    message = str(caught.value)
    assert "t.clab.yml:7" in message
    assert "node b: mgmt-ipv4 10.1.2.3" in message and "172.20.20.0/24" in message


def test_the_gateway_address_and_a_duplicate_are_refused() -> None:
    with pytest.raises(TopologyFileError) as caught:
        _plan_text(
            """
            name: m
            topology:
              nodes:
                a: {kind: linux, mgmt-ipv4: 172.20.20.1}
                b: {kind: linux, mgmt-ipv4: 172.20.20.9}
                c: {kind: linux, mgmt-ipv4: 172.20.20.9}
            """
        )
    problems = caught.value.extra["problems"]
    assert problems == [
        {
            "where": "t.clab.yml:4",
            "reason": "node a: mgmt-ipv4 172.20.20.1 is taken by the management gateway",
        },
        {"where": "t.clab.yml:6", "reason": "node c: mgmt-ipv4 172.20.20.9 is taken by node b"},
    ]


def test_a_too_long_interface_name_is_refused_naming_the_link() -> None:
    with pytest.raises(TopologyFileError) as caught:
        _plan_text(
            """
            name: m
            topology:
              nodes:
                a: {kind: linux}
                b: {kind: linux}
              links:
                - endpoints: ["a:ethernet-1-1-long", "b:eth1"]
            """
        )
    message = str(caught.value)
    assert "t.clab.yml:7" in message
    assert "link a:ethernet-1-1-long -- b:eth1" in message and "15 characters" in message


def test_eth0_is_the_management_interface() -> None:
    with pytest.raises(TopologyFileError, match="eth0 is the management interface"):
        _plan_text(
            """
            name: m
            topology:
              nodes: {a: {kind: linux}, b: {kind: linux}}
              links: [{endpoints: ["a:eth0", "b:eth1"]}]
            """
        )


@pytest.mark.parametrize(
    ("subnet", "reason"),
    [
        ("8.8.8.0/24", "is not private"),
        ("172.20.20.0/31", "use a /16 to a /30"),
        ("10.254.0.0/24", "overlaps the lab's 10.254.0.0/16"),
        ("nonsense", "is not an IPv4 network"),
    ],
)
def test_a_bad_mgmt_subnet_is_refused(subnet: str, reason: str) -> None:
    with pytest.raises(TopologyFileError, match=reason) as caught:
        _plan_text(
            f"""
            name: m
            mgmt: {{ipv4-subnet: "{subnet}"}}
            topology:
              nodes: {{a: {{kind: linux}}}}
            """
        )
    assert "t.clab.yml:2" in str(caught.value)


def test_labels_bgp_asn_and_profile_are_checked() -> None:
    with pytest.raises(TopologyFileError) as caught:
        _plan_text(
            """
            name: m
            topology:
              nodes:
                a: {kind: linux, labels: {oss.bgp-asn: "0"}}
                b: {kind: linux, labels: {oss.lab-profile: "../etc"}}
            """
        )
    message = str(caught.value)
    assert "t.clab.yml:4: node a: label oss.bgp-asn '0' is not an AS number" in message
    assert "t.clab.yml:5: node b: label oss.lab-profile '../etc' is not a profile name" in message


def test_the_profile_label_overrides_the_match_rules() -> None:
    topology = parse_clab(
        "name: m\ntopology:\n  nodes:\n    a: {kind: linux, labels: {oss.lab-profile: frr-isis}}\n"
        "    b: {kind: nokia_srlinux}\n    c: {kind: linux}\n",
        "t.clab.yml",
    )
    plan = plan_lab(topology, profile_of=lambda d, _: "srl" if d.kind == "nokia_srlinux" else None)
    assert [n.profile for n in plan.nodes] == ["frr-isis", "srl", "frr"]


@pytest.mark.parametrize("prefix", ["", "OSS", "oss_x", "-oss", "a" * 17])
def test_a_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(InvalidInput, match="namespace prefix"):
        _plan(TRIANGLE, prefix=prefix)

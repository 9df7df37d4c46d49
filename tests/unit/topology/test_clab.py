"""containerlab files: parsing, located problems, export and round trips."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from oss.errors import InvalidInput, TopologyFileError
from topology.clab import ClabTopology, export_clab, parse_clab
from topology.model import Device, DeviceState, Endpoint, Interface, Link, LinkState, Site

LAB = Path(__file__).resolve().parents[3] / "lab" / "topologies"
EXAMPLES = ["ring4.clab.yml", "metro.clab.yml"]
FILE = "t.clab.yml"


def parse(text: str) -> ClabTopology:
    return parse_clab(textwrap.dedent(text).lstrip("\n"), FILE)


def problems(text: str) -> list[tuple[int, str]]:
    """(line, reason) of every problem; the text's first line is line 1."""
    with pytest.raises(TopologyFileError) as info:
        parse(text)
    assert info.value.filename == FILE
    result = []
    for p in info.value.problems:
        name, _, line = p.where.rpartition(":")
        assert name == FILE
        result.append((int(line), p.reason))
    return result


def lines(text: str) -> list[int]:
    return [line for line, _ in problems(text)]


def r1_r2(links: str = "", nodes: str = "") -> str:
    """A valid two-node file with extra node and link text appended (8-space indent)."""
    return (
        textwrap.dedent("""
        name: t
        topology:
          defaults: {kind: linux}
          nodes:
            r1: {}
            r2: {}
        """).lstrip("\n")
        + textwrap.indent(textwrap.dedent(nodes).lstrip("\n"), "    ")
        + "  links:\n"
        + textwrap.indent(textwrap.dedent(links).lstrip("\n"), "    ")
    )


# ----------------------------------------------------------------------------- shipped examples


@pytest.mark.parametrize("filename", EXAMPLES)
def test_examples_parse_cleanly_and_stay_on_loopback(filename: str) -> None:
    topo = parse_clab((LAB / filename).read_text(), filename)
    assert topo.name == filename.split(".")[0]
    assert topo.devices and topo.links
    for device in topo.devices:
        assert device.mgmt_address is not None
        assert ipaddress.ip_address(device.mgmt_address).is_loopback, device
        assert device.kind == "linux" and device.platform == "lab-sim"
        assert device.image == "ghcr.io/hellt/network-multitool"
    # every interface is on exactly one link and has its speed
    ends = [end for link in topo.links for end in link.ends()]
    assert len(ends) == len(set(ends)) == len(topo.interfaces)
    assert all(i.speed_bps for i in topo.interfaces)


@pytest.mark.parametrize("filename", EXAMPLES)
def test_examples_round_trip(filename: str) -> None:
    topo = parse_clab((LAB / filename).read_text(), filename)
    text = export_clab(topo.name, topo.devices, topo.links, topo.sites)
    again = parse_clab(text, "exported.clab.yml")
    assert again == topo
    # and exporting again is byte-for-byte stable
    assert export_clab(again.name, again.devices, again.links, again.sites) == text


def test_ring4_content() -> None:
    topo = parse_clab((LAB / "ring4.clab.yml").read_text(), "ring4.clab.yml")
    assert [d.name for d in topo.devices] == ["r1", "r2", "r3", "r4"]
    assert {d.role for d in topo.devices} == {"core"}
    assert topo.sites == [Site(name="lab")]
    assert [d.mgmt_address for d in topo.devices] == [f"127.10.0.{i}" for i in range(1, 5)]
    assert sorted(lk.latency_us for lk in topo.links) == [500, 500, 500, 5000]


def test_metro_content() -> None:
    topo = parse_clab((LAB / "metro.clab.yml").read_text(), "metro.clab.yml")
    names = {d.name for d in topo.devices}
    assert {"agg1", "agg2", "pe1", "pe2"} <= names and len(names) == 10
    assert [s.name for s in topo.sites] == ["north", "south"]
    assert all(d.mgmt_address and d.mgmt_address.startswith("127.10.1.") for d in topo.devices)
    core = [lk for lk in topo.links if {lk.a.device, lk.b.device} == {"agg1", "agg2"}]
    assert len(core) == 2  # parallel links
    for device in names - {"agg1", "agg2"}:
        peers = {lk.other_end(device).device for lk in topo.links if device in lk_devices(lk)}
        assert peers == {"agg1", "agg2"}, device  # dual-homed


def lk_devices(link: Link) -> set[str]:
    return {link.a.device, link.b.device}


# ---------------------------------------------------------------------------------- the format


def test_full_node_and_link() -> None:
    topo = parse("""
        name: lab1
        mgmt: {network: custom}
        topology:
          kinds:
            nokia_srlinux: {image: ghcr.io/nokia/srlinux:24.3, type: ixrd3}
          nodes:
            leaf1:
              kind: nokia_srlinux
              type: ixrd2
              group: leaves
              startup-config: leaf1.cfg
              binds: [a:b]
              env: {X: "1"}
              ports: ["8080:80"]
              mgmt-ipv4: 127.10.9.1
              labels:
                oss.role: leaf
                oss.site: dc1
                oss.platform: srlinux
                oss.credentials-ref: env:LEAF1_SECRET
                oss.state: maintenance
                graph-icon: switch
            host1:
              kind: linux
              image: alpine:3
              mgmt-ipv6: "::1"
          links:
            - endpoints: ["leaf1:ethernet-1/1", "host1:eth1"]
              vars: {capacity: 25G, latency: 2ms, state: down, mtu: 9000}
              labels: {note: x}
              mtu: 9000
        """)
    assert topo.name == "lab1"
    assert topo.sites == [Site(name="dc1")]
    host1, leaf1 = topo.devices
    assert leaf1 == Device(
        name="leaf1",
        role="leaf",
        platform="srlinux",
        site="dc1",
        kind="nokia_srlinux",
        image="ghcr.io/nokia/srlinux:24.3",
        mgmt_address="127.10.9.1",
        credentials_ref="env:LEAF1_SECRET",
        state=DeviceState.MAINTENANCE,
    )
    assert host1 == Device(
        name="host1", platform="linux", kind="linux", image="alpine:3", mgmt_address="::1"
    )
    assert topo.links == [
        Link(
            a=Endpoint(device="leaf1", interface="ethernet-1/1"),
            b=Endpoint(device="host1", interface="eth1"),
            capacity_bps=25_000_000_000,
            latency_us=2000,
            state=LinkState.DOWN,
        )
    ]
    assert topo.interfaces == [
        Interface(device="host1", name="eth1", speed_bps=25_000_000_000),
        Interface(device="leaf1", name="ethernet-1/1", speed_bps=25_000_000_000),
    ]


def test_defaults_and_kind_images() -> None:
    topo = parse("""
        name: t
        topology:
          defaults: {kind: linux, image: default:1}
          kinds:
            linux: {image: kind:1}
            other:
          nodes:
            a: {}
            b: {image: own:1}
            c: {kind: other}
            d:
        """)
    assert [(d.name, d.kind, d.image) for d in topo.devices] == [
        ("a", "linux", "kind:1"),
        ("b", "linux", "own:1"),
        ("c", "other", "default:1"),
        ("d", "linux", "kind:1"),
    ]
    assert topo.links == [] and topo.interfaces == [] and topo.sites == []


def test_only_what_the_file_states_is_set() -> None:
    # The inventory keeps fields the file does not mention (role, credentials) on re-import.
    topo = parse("""
        name: t
        topology:
          nodes:
            r1: {kind: linux}
        """)
    (r1,) = topo.devices
    assert r1.role == "router" and r1.credentials_ref is None
    assert r1.model_fields_set == {"name", "kind", "platform"}


def test_link_defaults_and_plain_numbers() -> None:
    topo = parse(
        r1_r2("""
        - endpoints: [r1:eth1, r2:eth1]
        - endpoints: [r1:eth2, r2:eth2]
          vars: {capacity: 400000000, latency: 250}
        """)
    )
    plain, numbers = topo.links
    assert (plain.capacity_bps, plain.latency_us, plain.state) == (10**10, 100, LinkState.UP)
    assert (numbers.capacity_bps, numbers.latency_us) == (400_000_000, 250)
    assert all(lk.id is None for lk in topo.links)


def test_name_defaults_to_the_file_stem() -> None:
    topo = parse_clab("topology:\n  nodes:\n    r1: {kind: linux}\n", "/x/lab-a.clab.yml")
    assert topo.name == "lab-a"


def test_yaml_anchors_and_merge_keys() -> None:
    topo = parse("""
        name: t
        x-common: &common
          kind: linux
          labels: {oss.role: edge}
        topology:
          nodes:
            r1:
              <<: *common
              image: a:1
            r2:
              <<: *common
              kind: other
        """)
    r1, r2 = topo.devices
    assert (r1.kind, r1.role, r1.image) == ("linux", "edge", "a:1")
    assert (r2.kind, r2.role) == ("other", "edge")


# --------------------------------------------------------------------------------- bad input


def test_yaml_syntax_error_line() -> None:
    found = problems("""
        name: t
        topology:
          nodes:
            r1: {kind: linux
            r2: {kind: linux}
        """)
    assert len(found) == 1
    line, reason = found[0]
    assert line == 5 and reason.startswith("YAML syntax")


def test_tab_indentation_is_a_yaml_problem() -> None:
    assert lines("name: t\ntopology:\n\tnodes: {}\n") == [3]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 1, "the file is empty"),
        ("- a\n- b\n", 1, "the file must be a mapping"),
        ("just text\n", 1, "the file must be a mapping"),
        ("name: t\n", 1, "missing 'topology'"),
        ("name: t\ntopology:\n  defaults: {kind: linux}\n", 2, "missing 'topology.nodes'"),
        ("name: t\ntopology: [1]\n", 2, "'topology' must be a mapping"),
        ("name: t\ntopology:\n  nodes:\n", 3, "'topology.nodes' must be a mapping"),
        ("name: t\ntopology:\n  nodes: [r1]\n", 3, "'topology.nodes' must be a mapping"),
        ("name: [t]\ntopology:\n  nodes: {}\n", 1, "the file: 'name' must be a single value"),
        ("a: 1\n---\nb: 2\n", 2, "YAML syntax"),
    ],
)
def test_bad_shapes(text: str, line: int, reason: str) -> None:
    assert [(ln, r[: len(reason)]) for ln, r in problems(text)] == [(line, reason)]


def test_node_problems_with_lines() -> None:
    found = problems("""
        name: t
        topology:
          nodes:
            ok: {kind: linux}
            nokind: {}
            "bad name": {kind: linux}
            badip: {kind: linux, mgmt-ipv4: 999.1.1.1}
            v6in4:
              kind: linux
              mgmt-ipv4: "::1"
            labels:
              kind: linux
              labels:
                oss.state: broken
                oss.credentials-ref: hunter2
                oss.rol: core
                oss.site: "north pole"
            listy:
              kind: [linux]
            notmap: 3
        """)
    assert [ln for ln, _ in found] == [5, 6, 7, 10, 14, 15, 16, 17, 19, 20]
    reasons = dict(found)
    assert reasons[5] == "node 'nokind' has no kind and topology.defaults sets none"
    assert reasons[6].startswith("invalid node name 'bad name': use letters")
    assert reasons[7] == "mgmt-ipv4 '999.1.1.1' is not an IPv4 address"
    assert reasons[10] == "mgmt-ipv4 '::1' is not an IPv4 address"
    assert reasons[14].startswith("label oss.state 'broken': Input should be 'planned'")
    assert (
        reasons[15]
        == "label oss.credentials-ref 'hunter2': must be env:VAR, file:/path or vault:path"
    )
    assert reasons[16].startswith("unknown label 'oss.rol' (known: oss.role,")
    assert reasons[17].startswith("label oss.site 'north pole': use letters")
    assert reasons[19] == "node 'listy': 'kind' must be a single value, not a list"
    assert reasons[20] == "node 'notmap' must be a mapping"


def test_duplicate_node_names_both_lines() -> None:
    found = problems("""
        name: t
        topology:
          defaults: {kind: linux}
          nodes:
            r1: {}
            r2: {}
            r1: {image: x}
        """)
    assert found == [(7, "'topology.nodes': 'r1' is defined twice, at lines 5 and 7")]


def test_duplicate_keys_inside_a_node() -> None:
    found = problems("""
        name: t
        topology:
          nodes:
            r1:
              kind: linux
              kind: srl
        """)
    assert found == [(6, "node 'r1': 'kind' is defined twice, at lines 5 and 6")]


def test_link_problems_with_lines() -> None:
    text = r1_r2("""
        - endpoints: ["r1:eth1", "r2:eth1", "r2:eth9"]
        - endpoints: ["r1eth1", "r2:eth2"]
        - endpoints: ["r1:eth3", "r9:eth1"]
        - endpoints: ["r1:eth4", "r1:eth4"]
        - endpoints: ["r1:eth5", "r2:eth5"]
          vars: {capacity: fast, latency: 2 days, state: flapping}
        - endpoints: ["r1:eth6", "r2:eth6"]
          vars: {capacity: 0}
        - endpoints: ["r1:eth7", "r2:e th7"]
        - vars: {capacity: 1G}
        - endpoints: "r1:eth8 r2:eth8"
        - "r1:eth9"
        - endpoints: ["r1:eth10", "r2:eth10"]
        """)
    found = problems(text)
    expected = [
        (8, "a link needs exactly two endpoints, got 3"),
        (9, "endpoint 'r1eth1' is not of the form 'device:interface'"),
        (10, "endpoint 'r9:eth1' names unknown node 'r9'"),
        (11, "link from r1:eth4 to itself"),
        (13, "capacity: 'fast' is not a rate (examples: 10G, 100M, 400000000)"),
        (13, "latency: '2 days' is not a latency (examples: 500us, 2ms, 200)"),
        (13, "state: 'flapping' is not up or down"),
        (15, "capacity 0: Input should be greater than 0"),
        (16, "endpoint 'r2:e th7': use letters, digits and '_', '.', ':', '/', '-' (max 64)"),
        (17, "link without 'endpoints'"),
        (18, "'endpoints' must be a list of two 'node:interface' strings"),
        (19, "link at line 19 must be a mapping"),
    ]
    assert found == expected
    assert text.splitlines()[7].strip().startswith('- endpoints: ["r1:eth1", "r2:eth1", "r2:eth9"]')


def test_duplicate_endpoint_names_both_lines() -> None:
    found = problems(
        r1_r2("""
        - endpoints: ["r1:eth1", "r2:eth1"]
        - endpoints: ["r1:eth2", "r2:eth2"]
        - endpoints:
            - "r2:eth3"
            - "r1:eth1"
        """)
    )
    assert found == [(12, "endpoint r1:eth1 is used by two links, at lines 8 and 12")]


def test_every_problem_is_reported_at_once_and_nothing_is_returned() -> None:
    with pytest.raises(TopologyFileError) as info:
        parse_clab(
            r1_r2(
                nodes='"r 3": {}\n',
                links='- endpoints: ["r1:eth1", "r9:eth1"]\n- endpoints: [r1:eth1, r1:eth1]\n',
            ),
            "lab/bad.clab.yml",
        )
    err = info.value
    assert [p.where for p in err.problems] == [
        "lab/bad.clab.yml:7",
        "lab/bad.clab.yml:9",
        "lab/bad.clab.yml:10",
    ]
    assert "lab/bad.clab.yml: rejected, nothing was written (3 problem(s))" in str(err)
    assert err.extra["problems"][0]["where"] == "lab/bad.clab.yml:7"


# ------------------------------------------------------------------------------------ export


def test_export_writes_the_oss_labels_and_round_trips() -> None:
    devices = [
        Device(name="r10", platform="srlinux", kind="nokia_srlinux", state=DeviceState.PLANNED),
        Device(
            name="r2",
            role="pe",
            site="north",
            platform="linux",
            image="alpine:3",
            mgmt_address="127.10.0.2",
            credentials_ref="file:/etc/oss/r2.yaml",
        ),
        Device(name="r3", platform="linux", kind="linux", mgmt_address="::1"),
    ]
    links = [
        Link(
            id=7,
            a=Endpoint(device="r2", interface="eth1"),
            b=Endpoint(device="r10", interface="ethernet-1/1"),
            capacity_bps=10**9,
            latency_us=1500,
            state=LinkState.DOWN,
        ),
        Link(
            id=3,
            a=Endpoint(device="r10", interface="ethernet-1/2"),
            b=Endpoint(device="r3", interface="eth1"),
        ),
    ]
    text = export_clab("demo", devices, links, [Site(name="north", description="North PoP")])
    assert text.startswith("# Exported from the oss inventory.\n# site north: North PoP\n")
    assert "password" not in text
    topo = parse_clab(text, "demo.clab.yml")
    assert topo.name == "demo"
    assert [d.name for d in topo.devices] == ["r2", "r3", "r10"]
    by_name = {d.name: d for d in topo.devices}
    # r2 had no kind: the platform is written as the kind
    assert by_name["r2"] == devices[1].model_copy(update={"kind": "linux"})
    assert by_name["r3"] == devices[2]
    assert by_name["r10"] == devices[0]
    assert topo.links == sorted(
        (lk.model_copy(update={"id": None}) for lk in links), key=lambda lk: str(lk.a) != "r2:eth1"
    )
    assert topo.sites == [Site(name="north")]


def test_export_format_details() -> None:
    devices = [Device(name="r1", kind="linux", state=DeviceState.ACTIVE), Device(name="r2")]
    link = Link(
        a=Endpoint(device="r1", interface="eth1"),
        b=Endpoint(device="r2", interface="eth1"),
        latency_us=500,
    )
    text = export_clab("t", devices, [link])
    assert text == textwrap.dedent("""\
        # Exported from the oss inventory.
        name: t
        topology:
          nodes:
            r1:
              kind: linux
              labels:
                oss.role: router
            r2:
              kind: linux
              labels:
                oss.role: router
          links:
            - endpoints: ['r1:eth1', 'r2:eth1']
              vars:
                capacity: 10000000000
                latency: 500
        """)


def test_export_is_deterministic() -> None:
    topo = parse_clab((LAB / "metro.clab.yml").read_text(), "metro.clab.yml")
    forward = export_clab("m", topo.devices, topo.links, topo.sites)
    backward = export_clab("m", topo.devices[::-1], topo.links[::-1], topo.sites[::-1])
    assert forward == backward


def test_export_refuses_links_to_missing_devices() -> None:
    link = Link(a=Endpoint(device="r1", interface="eth1"), b=Endpoint(device="r2", interface="e1"))
    with pytest.raises(InvalidInput, match="r2"):
        export_clab("t", [Device(name="r1")], [link])

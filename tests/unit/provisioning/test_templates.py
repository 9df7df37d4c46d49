"""The shipped templates: every role of every service type, every kind, both modes.

Whatever types configs/services holds, each has a complete template set, and every kind of a
set renders the same leaves and removals from the type's own example (the generic tests). The
types with a hand-written oracle below are also compared with what the shared config model
says the service should hold, so the three kinds are held to one meaning.
"""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from drivers.platforms import load_platform, platform_names
from oss.provisioning.leaves import Intent
from oss.provisioning.plan import template_context
from oss.provisioning.protocols import PROTOCOLS, config_protocol, parse_payload
from oss.provisioning.realise import Attachment, DeviceRole, service_names
from oss.provisioning.render import Renderer, TemplateError, templates_dir
from oss.provisioning.service_types import ServiceType, load_service_types
from topology.model import Device

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
OPERATION = f"{{{NC}}}operation"
TOP_NAMESPACES = {
    "interfaces": "http://openconfig.net/yang/interfaces",
    "network-instances": "http://openconfig.net/yang/network-instance",
    "qos": "http://openconfig.net/yang/qos",
}
# List entries of the lab-sim model by schema path -> key leaf.
LIST_KEYS = {
    ("interfaces", "interface"): "name",
    ("interfaces", "interface", "subinterfaces", "subinterface"): "index",
    (
        "interfaces",
        "interface",
        "subinterfaces",
        "subinterface",
        "ipv4",
        "addresses",
        "address",
    ): "ip",
    ("network-instances", "network-instance"): "name",
    ("network-instances", "network-instance", "interfaces", "interface"): "id",
    ("qos", "interfaces", "interface"): "interface-id",
}
KINDS = ("xml", "gnmi.json", "cli")
CLI_LINE = re.compile(r"^(set \S+ .+|delete \S+)$")
SERVICE_TYPES = load_service_types()
TRICKY = "acme <gold> & 'co' \"x\" $HOME"


def attachment(
    interface: str,
    vlan: int,
    *,
    ip: str | None = None,
    kind: str = "core",
    peer: str | None = None,
    bandwidth_bps: int | None = 200_000_000,
    qos_class: str | None = "assured",
    description: str | None = None,
) -> dict[str, Any]:
    address, _, length = (ip or "").partition("/")
    return {
        "interface": interface,
        "subinterface": vlan,
        "id": f"{interface}.{vlan}",
        "vlan": vlan,
        "ip": address or None,
        "prefix_length": int(length) if length else None,
        "kind": kind,
        "peer": peer,
        "bandwidth_bps": bandwidth_bps,
        "qos_class": qos_class,
        "description": description or f"svc-12 {kind} to {peer or 'customer'}",
    }


def context(
    type_name: str, role: str, mode: str = "merge", description: str = ""
) -> dict[str, Any]:
    """What the engine passes, for a realistic service on the metro lab."""
    service_type = SERVICE_TYPES[type_name]
    if type_name == "l3vpn":
        params = service_type.validate(
            {
                "customer": "acme",
                "vrf": "acme-blue",
                "rd": "65000:12",
                "import_rt": "65000:100",
                "endpoints": [
                    {"device": "pe1", "interface": "eth3", "vlan": 100, "address": "192.0.2.1/30"},
                    {"device": "pe1", "interface": "eth3", "vlan": 200, "address": "192.0.2.5/30"},
                    {"device": "pe1", "interface": "eth4", "vlan": 100, "address": "192.0.2.9/30"},
                ],
                "bandwidth": "50M",
                "qos_class": "expedited",
            }
        )
        attachments = [
            attachment(
                e["interface"],
                e["vlan"],
                ip=e["address"],
                kind="access",
                bandwidth_bps=params["bandwidth"],
                qos_class="expedited",
                description=description or None,
            )
            for e in params["endpoints"]
        ]
        vrf, rd, vlan = "acme-blue", "65000:12", None
    elif type_name == "dia":
        params = service_type.validate(
            {
                "customer": "acme",
                "access": [
                    {"pe": "agg1", "port": "eth3", "gateway": "198.51.100.1/30"},
                    {"pe": "agg1", "port": "eth4", "gateway": "198.51.100.5/30"},
                ],
                "rate": "500M",
            }
        )
        attachments = [
            attachment(
                e["port"],
                120,
                ip=e["gateway"],
                kind="access",
                bandwidth_bps=params["rate"],
                qos_class=None,
                description=description or None,
            )
            for e in params["access"]
        ]
        vrf, rd, vlan = "dia-12", "65000:12", 120
    elif type_name == "l2vpn":
        params = service_type.validate(
            {
                "customer": "acme",
                "a": "acc1:eth5",
                "z": "acc6:eth5",
                "bandwidth": "100M",
                "vlan": 300,
            }
        )
        core = [
            attachment(
                "eth1", 300, peer="agg1:eth5", bandwidth_bps=10**8, description=description or None
            )
        ]
        if role == "endpoint":
            core.insert(
                0,
                attachment(
                    "eth5", 300, kind="access", bandwidth_bps=None, description=description or None
                ),
            )
        else:
            core.append(attachment("eth2", 300, peer="agg2:eth1", bandwidth_bps=10**8))
        attachments, vrf, rd, vlan = core, "l2vpn-svc-12", None, 300
    else:
        params = service_type.validate(
            {
                "customer": "acme",
                "from": "north",
                "to": "south",
                "bandwidth": "200M",
                "latency": "5ms",
            }
        )
        first = (
            attachment(
                "eth3", 100, ip="10.0.12.1/30", kind="access", description=description or None
            )
            if role == "endpoint"
            else attachment("eth2", 100, ip="10.255.0.0/31", peer="agg2:eth2")
        )
        attachments = [
            first,
            attachment(
                "eth1", 100, peer="agg1:eth3", bandwidth_bps=None, description=description or None
            ),
        ]
        vrf, rd, vlan = "slice-svc-12", "65000:12", 100
    return {
        "service": {
            "id": "svc-12",
            "type": type_name,
            "customer": "acme",
            "params": params,
            "vlan": vlan,
            "vrf": vrf,
            "rd": rd,
            "description": description or f"{type_name} svc-12 for acme",
        },
        "device": {"name": "agg1", "role": role, "platform": "lab-sim", "site": "north"},
        "mode": mode,
        "attachments": attachments,
    }


def network_instance(ctx: dict[str, Any]) -> dict[str, Any]:
    """What each service type's network-instance holds (the oracle, written independently)."""
    service = ctx["service"]
    if service["type"] == "l3vpn":
        rts = (service["params"]["import_rt"], service["params"]["export_rt"])
        return {"type": "L3VRF", "rd": service["rd"], "import": rts[0], "export": rts[1]}
    if service["type"] == "dia":
        return {"type": "L3VRF", "rd": None, "import": None, "export": None}
    if service["type"] == "slice":
        return {
            "type": "L3VRF",
            "rd": service["rd"],
            "import": service["rd"],
            "export": service["rd"],
        }
    return {"type": "L2P2P", "rd": None, "import": None, "export": None}


def expected_leaves(ctx: dict[str, Any]) -> dict[str, str]:
    service, ni = ctx["service"], network_instance(ctx)
    leaves: dict[str, str] = {}
    ni_path = f"network-instances/network-instance[name={service['vrf']}]"
    for a in ctx["attachments"]:
        sub = (
            f"interfaces/interface[name={a['interface']}]"
            f"/subinterfaces/subinterface[index={a['subinterface']}]"
        )
        leaves[f"{sub}/config/index"] = str(a["subinterface"])
        leaves[f"{sub}/config/description"] = a["description"]
        leaves[f"{sub}/config/enabled"] = "true"
        leaves[f"{sub}/vlan/config/vlan-id"] = str(a["vlan"])
        if a["ip"] is not None:
            address = f"{sub}/ipv4/addresses/address[ip={a['ip']}]/config"
            leaves[f"{address}/ip"] = a["ip"]
            leaves[f"{address}/prefix-length"] = str(a["prefix_length"])
        member = f"{ni_path}/interfaces/interface[id={a['id']}]/config"
        leaves[f"{member}/id"] = a["id"]
        leaves[f"{member}/interface"] = a["interface"]
        leaves[f"{member}/subinterface"] = str(a["subinterface"])
        qos = f"qos/interfaces/interface[interface-id={a['id']}]/config"
        leaves[f"{qos}/interface-id"] = a["id"]
        if a["qos_class"] is not None:
            leaves[f"{qos}/class"] = a["qos_class"]
        if a["bandwidth_bps"] is not None:
            leaves[f"{qos}/bandwidth-bps"] = str(a["bandwidth_bps"])
    leaves[f"{ni_path}/config/name"] = service["vrf"]
    leaves[f"{ni_path}/config/type"] = ni["type"]
    leaves[f"{ni_path}/config/description"] = service["description"]
    for leaf, key in (
        ("route-distinguisher", "rd"),
        ("import-route-target", "import"),
        ("export-route-target", "export"),
    ):
        if ni[key] is not None:
            leaves[f"{ni_path}/config/{leaf}"] = ni[key]
    return leaves


def expected_removals(ctx: dict[str, Any]) -> set[str]:
    removals = {f"network-instances/network-instance[name={ctx['service']['vrf']}]"}
    for a in ctx["attachments"]:
        removals.add(f"qos/interfaces/interface[interface-id={a['id']}]")
        removals.add(
            f"interfaces/interface[name={a['interface']}]/subinterfaces/subinterface[index={a['subinterface']}]"
        )
    return removals


# --- parsers, one per kind --------------------------------------------------------------------


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def xml_parse(payload: str) -> tuple[dict[str, str], set[str]]:
    """Leaves and removed entries; checks namespaces, keys first, and the shape of removals."""
    root = ET.fromstring(payload)
    assert root.tag == f"{{{NC}}}config"
    leaves: dict[str, str] = {}
    removals: set[str] = set()

    def walk(elements: list[ET.Element], path: str, schema: tuple[str, ...], ns: str) -> None:
        for child in elements:
            child_ns, name = child.tag[1:].partition("}")[::2]
            assert child_ns == ns, f"{name} is in {child_ns}, not {ns}"
            child_schema = (*schema, name)
            key = LIST_KEYS.get(child_schema)
            segment = name
            children = list(child)
            if key is not None:
                assert children and local(children[0].tag) == key, f"{name}: key {key} not first"
                segment = f"{name}[{key}={children[0].text}]"
                children = children[1:]
            child_path = f"{path}/{segment}"
            operation = child.get(OPERATION)
            if operation is not None:
                assert operation == "remove"
                assert key is not None and not children, f"{child_path}: only its key"
                removals.add(child_path)
            elif len(child):
                walk(children, child_path, child_schema, ns)
            else:
                leaves[child_path] = child.text or ""

    for top in root:
        name = local(top.tag)
        assert top.tag == f"{{{TOP_NAMESPACES[name]}}}{name}"
        assert top.get(OPERATION) is None
        walk(list(top), name, (name,), TOP_NAMESPACES[name])
    return leaves, removals


def gnmi_parse(payload: str) -> tuple[dict[str, str], list[str]]:
    document = json.loads(payload)
    assert set(document) == {"update", "delete"}
    leaves: dict[str, str] = {}

    def flatten(path: str, value: Any) -> None:
        assert not isinstance(value, list), f"{path}: an array in a gNMI value"
        if isinstance(value, dict):
            for name, child in value.items():
                flatten(f"{path}/{name}", child)
        else:
            leaves[path] = text(value)

    for update in document["update"]:
        assert set(update) == {"path", "value"}
        assert not update["path"].startswith("/")
        assert isinstance(update["value"], dict | str | int | bool)
        flatten(update["path"], update["value"])
    for path in document["delete"]:
        assert isinstance(path, str) and not path.startswith("/")
    return leaves, document["delete"]


def cli_parse(payload: str) -> tuple[dict[str, str], list[str], list[str]]:
    lines = [line for line in payload.splitlines() if line.strip()]
    leaves: dict[str, str] = {}
    removals: list[str] = []
    for line in lines:
        assert CLI_LINE.match(line), line
        words = shlex.split(line)
        if words[0] == "set":
            assert len(words) == 3, line
            leaves[words[1]] = words[2]
        else:
            assert len(words) == 2, line
            removals.append(words[1])
    return leaves, removals, lines


# --- every template ---------------------------------------------------------------------------

ORACLES = ("l3vpn", "l2vpn", "slice", "dia")  # the types `context` has an oracle for
ROLES = [(name, role) for name in ORACLES for role in SERVICE_TYPES[name].templates]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def render(renderer: Renderer, ctx: dict[str, Any], kind: str, platform: str = "lab-sim") -> str:
    service_type: ServiceType = SERVICE_TYPES[ctx["service"]["type"]]
    return renderer.render(service_type.template(ctx["device"]["role"], platform, kind), ctx)


# --- whatever types and template sets exist --------------------------------------------------

TEMPLATE_SETS = sorted(p.name for p in templates_dir().iterdir() if p.is_dir())
TEMPLATE_KINDS = {name: protocol.template_kind for name, protocol in PROTOCOLS.items()}
PLATFORMS = {name: load_platform(name) for name in platform_names()}


def kinds_for(template_set: str, stype: ServiceType) -> dict[str, list[str]]:
    """For each kind this set has templates of `stype` in: the roles it covers."""
    found: dict[str, list[str]] = {}
    for kind in TEMPLATE_KINDS.values():
        for role, stem in stype.templates.items():
            if (templates_dir() / template_set / f"{stem}.{kind}.j2").is_file():
                found.setdefault(kind, []).append(role)
    return found


@pytest.mark.parametrize("type_name", sorted(SERVICE_TYPES))
def test_every_service_type_has_a_complete_template_set(type_name: str) -> None:
    """A set that renders a type in some kind renders every role of it in that kind; some
    set renders the type at all (no particular set is demanded)."""
    stype = SERVICE_TYPES[type_name]
    complete = []
    for template_set in TEMPLATE_SETS:
        for kind, roles in kinds_for(template_set, stype).items():
            assert sorted(roles) == sorted(stype.templates), f"{template_set} {kind}"
            complete.append((template_set, kind))
    assert complete, f"{type_name}: no template set renders it"


def sample_role(stype: ServiceType, role: str) -> DeviceRole:
    """A device of `role` with an access attachment (with an address) and a core one."""
    device = Device(name="agg1", role="pe", site="north", platform="lab-sim")
    access = Attachment("eth3", 120, "access", None, 10**8, "assured", "svc-12 access", None, None)
    access.ip, access.prefix_length = "192.0.2.1", 30
    core = Attachment("eth1", 120, "core", "p1:eth1", 10**8, None, "svc-12 core to p1:eth1")
    attachments = [access] if stype.realisation == "endpoints" else [access, core]
    return DeviceRole(device, role, attachments)


def example_intents(
    renderer: Renderer, template_set: str, stype: ServiceType, role: str, mode: str
) -> dict[str, Intent]:
    """The type's example rendered by every kind the set has, parsed by the platform using
    that kind with this set."""
    assert stype.example is not None
    values = stype.validate(stype.example)
    names = service_names(stype, values, 12, 120, 65000)
    intents: dict[str, Intent] = {}
    for platform in PLATFORMS.values():
        if platform.template_dir != template_set or platform.config_protocol not in TEMPLATE_KINDS:
            continue
        protocol = config_protocol(platform).name
        if TEMPLATE_KINDS[protocol] not in kinds_for(template_set, stype) or protocol in intents:
            continue
        context = template_context(stype, values, names, sample_role(stype, role), platform)
        template = stype.template(role, template_set, TEMPLATE_KINDS[protocol])
        payload = renderer.render(template, {**context, "mode": mode})
        intents[protocol] = parse_payload(platform, payload)
    return intents


SET_ROLES = [
    (template_set, name, role)
    for template_set in TEMPLATE_SETS
    for name, stype in sorted(SERVICE_TYPES.items())
    if kinds_for(template_set, stype)
    for role in stype.templates
]


@pytest.mark.parametrize(("template_set", "type_name", "role"), SET_ROLES)
def test_every_kind_of_a_set_means_the_same_for_the_example(
    renderer: Renderer, template_set: str, type_name: str, role: str
) -> None:
    stype = SERVICE_TYPES[type_name]
    merge = example_intents(renderer, template_set, stype, role, "merge")
    delete = example_intents(renderer, template_set, stype, role, "delete")
    assert merge, f"no platform uses {template_set}"
    first = next(iter(merge))
    for protocol in merge:
        assert merge[protocol].removals == ()
        assert merge[protocol].leaves, f"{protocol}: the merge sets nothing"
        assert {k: str(v).lower() for k, v in merge[protocol].leaves.items()} == {
            k: str(v).lower() for k, v in merge[first].leaves.items()
        }, protocol
        assert delete[protocol].leaves == {}
        assert delete[protocol].removals, f"{protocol}: the delete removes nothing"
        assert sorted(delete[protocol].removals) == sorted(delete[first].removals)


# --- the types with an oracle ------------------------------------------------------------------


@pytest.mark.parametrize(("type_name", "role"), ROLES)
def test_xml_merge(renderer: Renderer, type_name: str, role: str) -> None:
    ctx = context(type_name, role)
    leaves, removals = xml_parse(render(renderer, ctx, "xml"))
    assert removals == set()
    assert leaves == expected_leaves(ctx)


@pytest.mark.parametrize(("type_name", "role"), ROLES)
def test_xml_delete_removes_only_what_the_service_owns(
    renderer: Renderer, type_name: str, role: str
) -> None:
    ctx = context(type_name, role, "delete")
    payload = render(renderer, ctx, "xml")
    leaves, removals = xml_parse(payload)
    assert leaves == {}  # parents carry their keys only, no config
    assert removals == expected_removals(ctx)
    assert 'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"' in payload
    assert "<config>" not in payload


@pytest.mark.parametrize(("type_name", "role"), ROLES)
def test_gnmi_merge(renderer: Renderer, type_name: str, role: str) -> None:
    ctx = context(type_name, role)
    leaves, deletes = gnmi_parse(render(renderer, ctx, "gnmi.json"))
    assert deletes == []
    assert leaves == expected_leaves(ctx)


@pytest.mark.parametrize(("type_name", "role"), ROLES)
def test_gnmi_delete(renderer: Renderer, type_name: str, role: str) -> None:
    ctx = context(type_name, role, "delete")
    leaves, deletes = gnmi_parse(render(renderer, ctx, "gnmi.json"))
    assert leaves == {}
    assert sorted(deletes) == sorted(expected_removals(ctx))


@pytest.mark.parametrize(("type_name", "role"), ROLES)
def test_cli_merge_in_dependency_order(renderer: Renderer, type_name: str, role: str) -> None:
    ctx = context(type_name, role)
    leaves, removals, lines = cli_parse(render(renderer, ctx, "cli"))
    assert removals == []
    assert leaves == expected_leaves(ctx)
    assert len(lines) == len(leaves)  # no leaf set twice
    for a in ctx["attachments"]:
        sub = f"subinterface[index={a['subinterface']}]/"
        created = min(
            i for i, line in enumerate(lines) if f"[name={a['interface']}]" in line and sub in line
        )
        for user in (f"interface[id={a['id']}]", f"interface[interface-id={a['id']}]"):
            assert min(i for i, line in enumerate(lines) if user in line) > created


@pytest.mark.parametrize(("type_name", "role"), ROLES)
def test_cli_delete_in_reverse_dependency_order(
    renderer: Renderer, type_name: str, role: str
) -> None:
    ctx = context(type_name, role, "delete")
    leaves, removals, _ = cli_parse(render(renderer, ctx, "cli"))
    assert leaves == {}
    assert sorted(removals) == sorted(expected_removals(ctx))
    last_user = max(i for i, p in enumerate(removals) if not p.startswith("interfaces/"))
    first_subinterface = min(i for i, p in enumerate(removals) if p.startswith("interfaces/"))
    assert last_user < first_subinterface


@pytest.mark.parametrize("kind", KINDS)
def test_values_with_markup_quotes_and_dollars_survive_every_kind(
    renderer: Renderer, kind: str
) -> None:
    ctx = context("slice", "endpoint", description=TRICKY)
    payload = render(renderer, ctx, kind)
    parse = {
        "xml": lambda p: xml_parse(p)[0],
        "gnmi.json": lambda p: gnmi_parse(p)[0],
        "cli": lambda p: cli_parse(p)[0],
    }[kind]
    leaves = parse(payload)
    assert leaves == expected_leaves(ctx)
    assert list(leaves.values()).count(TRICKY) == 3  # the service and two attachments


def test_l2vpn_has_no_route_distinguisher_and_l3vpn_uses_its_route_targets(
    renderer: Renderer,
) -> None:
    l2 = render(renderer, context("l2vpn", "transit"), "cli")
    assert "L2P2P" in l2 and "route-" not in l2
    l3 = gnmi_parse(render(renderer, context("l3vpn", "pe"), "gnmi.json"))[0]
    config = "network-instances/network-instance[name=acme-blue]/config"
    assert l3[f"{config}/route-distinguisher"] == "65000:12"
    assert l3[f"{config}/import-route-target"] == "65000:100"
    assert l3[f"{config}/export-route-target"] == "65000:12"  # defaulted to the rd


def test_slice_without_an_rd_has_no_route_targets(renderer: Renderer) -> None:
    ctx = context("slice", "transit")
    ctx["service"]["rd"] = None
    for kind in KINDS:
        payload = render(renderer, ctx, kind)
        assert "route-distinguisher" not in payload and "route-target" not in payload
        assert "L3VRF" in payload


def test_xml_groups_subinterfaces_under_one_interface_entry(renderer: Renderer) -> None:
    root = ET.fromstring(render(renderer, context("l3vpn", "pe"), "xml"))
    interfaces = root.find(f"{{{TOP_NAMESPACES['interfaces']}}}interfaces")
    assert interfaces is not None
    names = [e[0].text for e in interfaces]
    assert names == ["eth3", "eth4"]  # eth3 holds two attachments, listed once


# --- netconfd-lab (configs/yang/oss-lab.yang) -------------------------------------------------

LAB = "urn:oss:lab"


def test_netconfd_lab_l3vpn_merge(renderer: Renderer) -> None:
    ctx = context("l3vpn", "pe")
    root = ET.fromstring(render(renderer, ctx, "xml", platform="netconfd-lab"))
    assert root.tag == f"{{{NC}}}config"
    assert [child.tag for child in root] == [f"{{{LAB}}}vrfs", f"{{{LAB}}}interfaces"]
    vrf = root.find(f"{{{LAB}}}vrfs/{{{LAB}}}vrf")
    assert vrf is not None
    assert [(local(e.tag), e.text) for e in vrf] == [
        ("name", "acme-blue"),
        ("rd", "65000:12"),
        ("description", "l3vpn svc-12 for acme"),
    ]
    interfaces = root.findall(f"{{{LAB}}}interfaces/{{{LAB}}}interface")
    assert [[(local(e.tag), e.text) for e in i] for i in interfaces] == [
        [("name", "eth3"), ("description", "l3vpn svc-12 for acme")],
        [("name", "eth4"), ("description", "l3vpn svc-12 for acme")],
    ]
    assert root.find(f".//*[@{OPERATION}]") is None


def test_netconfd_lab_l3vpn_delete_removes_the_vrf_only(renderer: Renderer) -> None:
    ctx = context("l3vpn", "pe", "delete")
    root = ET.fromstring(render(renderer, ctx, "xml", platform="netconfd-lab"))
    assert [child.tag for child in root] == [f"{{{LAB}}}vrfs"]
    removed = root.findall(f".//*[@{OPERATION}]")
    assert [(e.tag, e.get(OPERATION), [(local(c.tag), c.text) for c in e]) for e in removed] == [
        (f"{{{LAB}}}vrf", "remove", [("name", "acme-blue")])
    ]


# --- errors -----------------------------------------------------------------------------------


def test_missing_attachment_field_names_template_macro_and_line(renderer: Renderer) -> None:
    ctx = context("slice", "transit")
    del ctx["attachments"][1]["vlan"]
    with pytest.raises(TemplateError) as err:
        render(renderer, ctx, "xml")
    message = str(err.value)
    match = re.fullmatch(
        r"template lab-sim/slice/transit\.xml\.j2:(\d+)"
        r" \(in lab-sim/_lib/openconfig\.xml\.j2:(\d+)\): 'dict object' has no attribute 'vlan'",
        message,
    )
    assert match, message
    own = (templates_dir() / "lab-sim/slice/transit.xml.j2").read_text().splitlines()
    lib = (templates_dir() / "lab-sim/_lib/openconfig.xml.j2").read_text().splitlines()
    assert "oc.service_config(" in own[int(match[1]) - 1]
    assert "a.vlan" in lib[int(match[2]) - 1]


@pytest.mark.parametrize("kind", KINDS)
def test_missing_top_level_variable_names_the_template(renderer: Renderer, kind: str) -> None:
    ctx = context("l3vpn", "pe")
    del ctx["service"]["params"]["import_rt"]
    # The value travels into the shared macro, which is where it is used and missed.
    with pytest.raises(TemplateError) as err:
        render(renderer, ctx, kind)
    assert re.fullmatch(
        rf"template lab-sim/l3vpn/pe\.{re.escape(kind)}\.j2:\d+"
        rf" \(in lab-sim/_lib/openconfig\.{re.escape(kind)}\.j2:\d+\):"
        r" 'dict object' has no attribute 'import_rt'",
        str(err.value),
    ), str(err.value)


def test_missing_variable_in_netconfd_template(renderer: Renderer) -> None:
    ctx = context("l3vpn", "pe")
    del ctx["service"]["rd"]
    with pytest.raises(TemplateError) as err:
        render(renderer, ctx, "xml", platform="netconfd-lab")
    line = int(re.search(r"pe\.xml\.j2:(\d+):", str(err.value))[1])  # type: ignore[index]
    source = (templates_dir() / "netconfd-lab/l3vpn/pe.xml.j2").read_text().splitlines()
    assert "service.rd" in source[line - 1]
    assert "'rd'" in str(err.value)


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_mode_is_refused(renderer: Renderer, kind: str) -> None:
    with pytest.raises(TemplateError, match=r"mode must be merge or delete, not replace"):
        render(renderer, context("slice", "endpoint", "replace"), kind)


def test_cli_refuses_a_line_break_in_a_value(renderer: Renderer) -> None:
    ctx = context("slice", "endpoint", description="two\nlines")
    with pytest.raises(TemplateError, match=r"slice/endpoint\.cli\.j2:\d+ .*line break"):
        render(renderer, ctx, "cli")


def test_shell_quote_filter(tmp_path: Path) -> None:
    (tmp_path / "q.cli.j2").write_text("set x {{ v | shell_quote }}\n")
    renderer = Renderer(tmp_path)
    assert renderer.render("q.cli.j2", {"v": "plain"}) == "set x plain\n"
    assert renderer.render("q.cli.j2", {"v": "a b"}) == "set x 'a b'\n"
    assert renderer.render("q.cli.j2", {"v": "it's"}) == "set x 'it'\"'\"'s'\n"
    assert renderer.render("q.cli.j2", {"v": True}) == "set x true\n"
    assert renderer.render("q.cli.j2", {"v": ""}) == "set x ''\n"


def test_tojson_of_a_missing_value_names_it(tmp_path: Path) -> None:
    (tmp_path / "u.gnmi.json.j2").write_text('{% set v = {"a": x.missing} %}\n{{ v | tojson }}\n')
    with pytest.raises(
        TemplateError, match=r"^template u\.gnmi\.json\.j2:2: 'dict object' has no attribute"
    ):
        Renderer(tmp_path).render("u.gnmi.json.j2", {"x": {}})


def test_fail_names_the_template_line(tmp_path: Path) -> None:
    (tmp_path / "f.cli.j2").write_text("set a 1\n{{ fail('no ' ~ what) }}\n")
    with pytest.raises(TemplateError, match=r"^template f\.cli\.j2:2: no way$"):
        Renderer(tmp_path).render("f.cli.j2", {"what": "way"})

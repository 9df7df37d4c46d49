from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from oss.errors import ConfigError, InvalidInput, NotFound
from oss.provisioning.protocols import template_kind
from oss.provisioning.render import templates_dir
from oss.provisioning.service_types import (
    ParamSpec,
    ServiceType,
    load_service_type,
    load_service_types,
    services_dir,
)

# A service type that uses every parameter type, for the value tests.
EVERY_TYPE = """\
name: every
description: one parameter of each type
realisation: path
endpoint_roles: [pe]
endpoints: [a, z]
templates: {endpoint: every/endpoint, transit: every/transit}
parameters:
  name: {type: string, required: true, pattern: "^[a-z]+$", max_length: 8}
  count: {type: integer, min: 1, max: 4094, default: 7}
  flag: {type: boolean, default: false}
  colour: {type: enum, values: [red, green], default: red}
  rate: {type: rate, min: 1M, max: 10G}
  delay: {type: latency, max: 1s}
  a: {type: endpoint, required: true}
  z: {type: endpoint, required: true, needs_interface: true}
  address: {type: ipv4_interface}
  rd: {type: route_target}
  rt: {type: route_target, default: $rd}
  tags:
    type: list
    min_items: 1
    max_items: 2
    items: {type: string}
  ports:
    type: list
    unique_by: [device, vlan]
    items:
      type: object
      fields:
        device: {type: string, required: true}
        vlan: {type: integer, min: 1, max: 4094, required: true}
        mtu: {type: integer, default: 1500}
sla:
  rate_bps: $rate
  nested: {delay_us: $delay, items: [$count, $$literal]}
  fixed: 99.9
"""


@pytest.fixture
def every(tmp_path: Path) -> ServiceType:
    (tmp_path / "every.yaml").write_text(EVERY_TYPE)
    return load_service_type("every", tmp_path)


def minimal(**extra: Any) -> dict[str, Any]:
    return {"name": "abc", "a": "north", "z": "pe1:eth3", **extra}


def problems_of(err: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [f"{p['where']}: {p['reason']}" for p in err.value.extra["problems"]]


# --- the shipped service types ----------------------------------------------------------------


SHIPPED = sorted(p.stem for p in services_dir().glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_service_type_loads_with_a_valid_example(name: str) -> None:
    """Whatever types configs/services holds: each loads, and its example is valid."""
    stype = load_service_type(name)
    assert stype.name == name
    roles = {"path": {"endpoint", "transit"}, "endpoints": {"pe"}}[stype.realisation]
    assert roles <= set(stype.templates)
    assert all(isinstance(spec, ParamSpec) for spec in stype.parameters.values())
    assert stype.example is not None, f"{name}: give an example (documentation, tests)"
    values = stype.validate(stype.example)
    assert stype.endpoints(values)  # the example names endpoints through the declared parts


def test_shipped_types_are_what_the_folder_holds() -> None:
    assert sorted(load_service_types()) == SHIPPED
    types = load_service_types()
    assert types["slice"].endpoint_params == ("from", "to")
    assert types["l2vpn"].endpoint_params == ("a", "z")


def test_load_one_and_unknown_names() -> None:
    assert load_service_type("slice").name == "slice"
    known = ", ".join(SHIPPED)
    with pytest.raises(NotFound, match=rf"no service type 'nope' \(known: {known}\)"):
        load_service_type("nope")
    with pytest.raises(NotFound):
        load_service_type("../platforms/lab-sim")


def test_slice_defaults_normalisation_and_sla() -> None:
    slice_type = load_service_type("slice")
    params = slice_type.validate(
        {"customer": "acme", "from": "north", "to": "south", "bandwidth": "200M", "latency": "5ms"}
    )
    assert params == {
        "customer": "acme",
        "from": "north",
        "to": "south",
        "bandwidth": 200_000_000,
        "latency": 5000,
        "isolation": "shared",
        "qos_class": "assured",
        "protection": "none",
    }
    assert slice_type.endpoints(params) == ["north", "south"]
    assert slice_type.sla_profile(params) == {
        "bandwidth_bps": 200_000_000,
        "latency_budget_us": 5000,
        "isolation": "shared",
        "availability_percent": 99.99,
        "measurement_window_s": 300,
    }


def test_l3vpn_route_targets_default_to_the_rd() -> None:
    l3vpn = load_service_type("l3vpn")
    params = l3vpn.validate(
        {
            "customer": "acme",
            "vrf": "acme-blue",
            "rd": "65000:0100",
            "export_rt": "65000:200",
            "endpoints": [
                {"device": "pe1", "interface": "eth3", "vlan": "100", "address": "192.0.2.1/30"}
            ],
        }
    )
    assert params["rd"] == "65000:100"  # normalised
    assert params["import_rt"] == "65000:100"
    assert params["export_rt"] == "65000:200"
    assert params["endpoints"] == [
        {"device": "pe1", "interface": "eth3", "vlan": 100, "address": "192.0.2.1/30"}
    ]
    assert params["bandwidth"] is None
    assert params["qos_class"] == "assured"
    assert l3vpn.endpoints(params) == ["pe1:eth3"]
    assert l3vpn.sla_profile(params)["bandwidth_bps"] is None


def test_l3vpn_lists_every_problem_with_its_location() -> None:
    l3vpn = load_service_type("l3vpn")
    with pytest.raises(InvalidInput) as err:
        l3vpn.validate(
            {
                "customer": "acme",
                "vrf": "9bad",
                "rd": "65000:1",
                "endpoints": [
                    {"device": "pe1", "interface": "eth3", "vlan": 100, "address": "192.0.2.1/30"},
                    {"device": "pe1", "interface": "eth3", "vlan": 5000, "address": "192.0.2.0/30"},
                    {"device": "pe1", "interface": "eth3", "vlan": 100, "address": "192.0.2.5/30"},
                ],
                "qos_class": "gold",
                "bandwith": "1G",
            }
        )
    assert problems_of(err) == [
        "parameters.bandwith: unknown parameter (did you mean 'bandwidth'?)",
        "parameters.vrf: '9bad' does not match ^[A-Za-z][A-Za-z0-9_-]{0,31}$",
        "parameters.endpoints[1].vlan: must be 1..4094",
        "parameters.endpoints[1].address: 192.0.2.0/30 is the network address of 192.0.2.0/30;"
        " give a host",
        "parameters.endpoints[2]: same device, interface, vlan as endpoints[0]",
        "parameters.qos_class: must be one of best-effort, assured, expedited, not 'gold'",
    ]
    message = str(err.value)
    assert message.startswith("invalid parameters for service type l3vpn (6 problem(s)):\n")
    assert "  parameters.endpoints[1].vlan: must be 1..4094\n" in message


def test_l2vpn_ends_must_name_interfaces() -> None:
    l2vpn = load_service_type("l2vpn")
    with pytest.raises(InvalidInput) as err:
        l2vpn.validate({"customer": "acme", "a": "pe1", "z": "acc1:eth3", "bandwidth": "100M"})
    assert problems_of(err) == ["parameters.a: must be device:interface (e.g. pe1:eth3), not 'pe1'"]
    params = l2vpn.validate(
        {"customer": "acme", "a": "pe1:eth5", "z": "acc1:eth3", "bandwidth": 10**8}
    )
    assert params["vlan"] is None  # the engine allocates one
    assert params["protection"] == "none"
    assert l2vpn.sla_profile(params)["latency_budget_us"] is None


def test_missing_required_parameters_are_all_listed() -> None:
    with pytest.raises(InvalidInput) as err:
        load_service_type("slice").validate({})
    assert problems_of(err) == [
        "parameters.customer: required",
        "parameters.from: required",
        "parameters.to: required",
        "parameters.bandwidth: required",
    ]


def test_parameters_must_be_a_mapping() -> None:
    with pytest.raises(InvalidInput, match="must be a mapping"):
        load_service_type("slice").validate(["customer"])  # type: ignore[arg-type]


# --- every parameter type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ({"count": "12"}, "count", 12),
        ({"count": 4094.0}, "count", 4094),
        ({}, "count", 7),
        ({"flag": True}, "flag", True),
        ({"flag": "TRUE"}, "flag", True),
        ({}, "flag", False),
        ({"colour": "green"}, "colour", "green"),
        ({"rate": "2.5G"}, "rate", 2_500_000_000),
        ({"rate": 1_000_000}, "rate", 1_000_000),
        ({"rate": "10Gbps"}, "rate", 10_000_000_000),
        ({"delay": "800us"}, "delay", 800),
        ({"delay": "1.5ms"}, "delay", 1500),
        ({"delay": 200}, "delay", 200),
        ({"a": "pe1"}, "a", "pe1"),
        ({"a": "pe1:ethernet-1/1"}, "a", "pe1:ethernet-1/1"),
        ({"address": "10.0.0.1/30"}, "address", "10.0.0.1/30"),
        ({"address": " 10.0.0.1/255.255.255.252"}, "address", "10.0.0.1/30"),
        ({"address": "10.0.0.0/31"}, "address", "10.0.0.0/31"),
        ({"address": "10.0.0.7/32"}, "address", "10.0.0.7/32"),
        ({"rd": "4200000000:65535"}, "rd", "4200000000:65535"),
        ({"rd": "65000:4294967295"}, "rd", "65000:4294967295"),
        ({"rd": "65000:7"}, "rt", "65000:7"),
        ({"rd": "65000:7", "rt": "65000:8"}, "rt", "65000:8"),
        ({}, "rt", None),
        ({"tags": ["x", "y"]}, "tags", ["x", "y"]),
        (
            {"ports": [{"device": "pe1", "vlan": 10}, {"device": "pe1", "vlan": 11, "mtu": 9000}]},
            "ports",
            [
                {"device": "pe1", "vlan": 10, "mtu": 1500},
                {"device": "pe1", "vlan": 11, "mtu": 9000},
            ],
        ),
        ({}, "ports", None),
    ],
)
def test_values_are_normalised(
    every: ServiceType, extra: dict[str, Any], key: str, expected: Any
) -> None:
    assert every.validate(minimal(**extra))[key] == expected


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"name": 5}, "parameters.name: must be a string, not int"),
        ({"name": "abcdefghi"}, "parameters.name: must be at most 8 characters"),
        ({"name": "ABC"}, "parameters.name: 'ABC' does not match ^[a-z]+$"),
        ({"count": 0}, "parameters.count: must be 1..4094"),
        ({"count": "twelve"}, "parameters.count: must be an integer, not 'twelve'"),
        ({"count": True}, "parameters.count: must be an integer, not True"),
        ({"count": 1.5}, "parameters.count: must be an integer, not 1.5"),
        ({"flag": "yes"}, "parameters.flag: must be true or false, not 'yes'"),
        ({"colour": "blue"}, "parameters.colour: must be one of red, green, not 'blue'"),
        (
            {"rate": "fast"},
            "parameters.rate: 'fast' is not a rate (examples: 10G, 100M, 400000000)",
        ),
        ({"rate": "0M"}, "parameters.rate: must be more than 0 bit/s"),
        ({"rate": "100k"}, "parameters.rate: must be 1000000..10000000000 bit/s"),
        ({"rate": [1]}, "parameters.rate: must be a number or a string, not a list"),
        ({"delay": "2s"}, "parameters.delay: must be at most 1000000 us"),
        (
            {"delay": "soon"},
            "parameters.delay: 'soon' is not a latency (examples: 500us, 2ms, 200)",
        ),
        ({"a": "pe 1"}, "parameters.a: must be a site, a device or device:interface, not 'pe 1'"),
        ({"a": "pe1:"}, "parameters.a: must be a site, a device or device:interface, not 'pe1:'"),
        ({"z": "pe1"}, "parameters.z: must be device:interface (e.g. pe1:eth3), not 'pe1'"),
        (
            {"address": "10.0.0.1"},
            "parameters.address: must be an IPv4 address with its prefix length, e.g. 10.0.0.1/30,"
            " not '10.0.0.1'",
        ),
        (
            {"address": "10.0.0.300/24"},
            "parameters.address: must be an IPv4 address with its prefix length, e.g. 10.0.0.1/30,"
            " not '10.0.0.300/24'",
        ),
        (
            {"address": "10.0.0.3/30"},
            "parameters.address: 10.0.0.3/30 is the broadcast address of 10.0.0.0/30; give a host",
        ),
        ({"rd": "65000"}, "parameters.rd: must be ASN:NN, e.g. 65000:100, not '65000'"),
        (
            {"rd": 3900100},
            "parameters.rd: must be ASN:NN, e.g. 65000:100, not 3900100 (in YAML, quote it:"
            " unquoted, 65000:100 reads as a base-60 number)",
        ),
        (
            {"rd": "4200000000:70000"},
            "parameters.rd: 4200000000:70000: a 2-byte ASN takes a 4-byte number, a 4-byte ASN"
            " 0..65535",
        ),
        (
            {"rd": "99999999999:1"},
            "parameters.rd: must be ASN:NN, e.g. 65000:100, not '99999999999:1'",
        ),
        ({"tags": []}, "parameters.tags: needs at least 1 item(s)"),
        ({"tags": ["a", "b", "c"]}, "parameters.tags: takes at most 2 item(s)"),
        ({"tags": "a"}, "parameters.tags: must be a list, not a string"),
        ({"tags": ["a", 2]}, "parameters.tags[1]: must be a string, not int"),
        ({"ports": [{"vlan": 1}]}, "parameters.ports[0].device: required"),
        ({"ports": [7]}, "parameters.ports[0]: must be a mapping of fields, not int"),
        (
            {"ports": [{"device": "p", "vlan": 1, "mtux": 1}]},
            "parameters.ports[0].mtux: unknown field (did you mean 'mtu'?)",
        ),
        (
            {"ports": [{"device": "p", "vlan": 1}, {"device": "p", "vlan": 1, "mtu": 9000}]},
            "parameters.ports[1]: same device, vlan as ports[0]",
        ),
        ({"colours": "red"}, "parameters.colours: unknown parameter (did you mean 'colour'?)"),
        ({"zzz": 1}, "parameters.zzz: unknown parameter"),
    ],
)
def test_each_problem_is_located(every: ServiceType, extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidInput) as err:
        every.validate(minimal(**extra))
    assert problems_of(err) == [problem]


def test_null_means_absent(every: ServiceType) -> None:
    assert every.validate(minimal(count=None))["count"] == 7
    with pytest.raises(InvalidInput) as err:
        every.validate(minimal(name=None))
    assert problems_of(err) == ["parameters.name: required"]


def test_validation_is_idempotent(every: ServiceType) -> None:
    once = every.validate(
        minimal(
            rate="1G",
            delay="2ms",
            address="10.0.0.1/30",
            rd="65000:01",
            tags=["x"],
            ports=[{"device": "pe1", "vlan": "5"}],
        )
    )
    assert every.validate(once) == once


def test_sla_profile_resolves_references(every: ServiceType) -> None:
    assert every.sla_profile(minimal(rate="5M", delay="3ms")) == {
        "rate_bps": 5_000_000,
        "nested": {"delay_us": 3000, "items": [7, "$literal"]},
        "fixed": 99.9,
    }


# --- PATCH ------------------------------------------------------------------------------------


def test_merge_replaces_removes_and_revalidates() -> None:
    slice_type = load_service_type("slice")
    current = slice_type.validate(
        {
            "customer": "acme",
            "from": "north",
            "to": "south",
            "bandwidth": "200M",
            "latency": "5ms",
            "isolation": "dedicated",
        }
    )
    changed = slice_type.merge(current, {"bandwidth": "1G", "latency": None, "isolation": None})
    assert changed["bandwidth"] == 1_000_000_000
    assert changed["latency"] is None  # removed: optional without a default
    assert changed["isolation"] == "shared"  # removed: back to its default
    assert changed["from"] == "north"  # untouched
    assert current["bandwidth"] == 200_000_000  # the input is not modified
    with pytest.raises(InvalidInput) as err:
        slice_type.merge(current, {"bandwidth": "lots", "colour": "red", "customer": None})
    assert problems_of(err) == [
        "parameters.colour: unknown parameter",
        "parameters.customer: required",
        "parameters.bandwidth: 'lots' is not a rate (examples: 10G, 100M, 400000000)",
    ]


def test_merge_defaulted_route_targets_follow_the_rd() -> None:
    l3vpn = load_service_type("l3vpn")
    endpoint = {"device": "pe1", "interface": "eth3", "vlan": 100, "address": "192.0.2.1/30"}
    current = l3vpn.validate(
        {
            "customer": "acme",
            "vrf": "blue",
            "rd": "65000:1",
            "export_rt": "65000:9",
            "endpoints": [endpoint],
        }
    )
    changed = l3vpn.merge(current, {"rd": "65000:2"})
    assert changed["import_rt"] == "65000:2"  # was defaulted: follows the rd
    assert changed["export_rt"] == "65000:9"  # was explicit: kept


def test_merge_objects_field_by_field_lists_whole(every: ServiceType) -> None:
    current = every.validate(minimal(tags=["x", "y"], ports=[{"device": "p", "vlan": 1}]))
    changed = every.merge(current, {"tags": ["z"], "ports": [{"device": "q", "vlan": 2}]})
    assert changed["tags"] == ["z"]
    assert changed["ports"] == [{"device": "q", "vlan": 2, "mtu": 1500}]


# --- malformed service files ------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "bad") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD_HEAD = """\
name: bad
realisation: path
endpoint_roles: [pe]
endpoints: [a, z]
templates: {endpoint: bad/endpoint, transit: bad/transit}
parameters:
  a: {type: endpoint, required: true}
  z: {type: endpoint, required: true}
"""


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_service_type("bad", tmp_path)
    return str(err.value).replace(str(path), "bad.yaml")


def test_the_good_head_loads(tmp_path: Path) -> None:
    write(tmp_path, GOOD_HEAD)
    assert load_service_type("bad", tmp_path).parameters["a"].required


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    assert load_error(tmp_path, GOOD_HEAD + "  b: {type: string\n").startswith(
        "bad.yaml:10: not valid YAML"
    )


def test_unknown_parameter_type_names_line_and_key(tmp_path: Path) -> None:
    text = GOOD_HEAD + "  speed:\n    type: rat\n"
    assert load_error(tmp_path, text) == (
        "bad.yaml:10: parameters.speed.type: must be one of string, integer, boolean, enum,"
        " rate, latency, endpoint, ipv4_interface, ipv4_prefix, route_target, list, object,"
        " not 'rat'"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert load_error(tmp_path, GOOD_HEAD + "colour: red\n") == "bad.yaml:9: colour: unknown key"


def test_several_problems_are_all_named(tmp_path: Path) -> None:
    text = GOOD_HEAD + textwrap.dedent(
        """\
          vlan:
            type: integer
            min: 10
            max: 5
          speed: {type: rate, default: fast, pattern: "x"}
          rt: {type: route_target, default: $nothing}
          kind: {type: enum}
          ports:
            type: list
            unique_by: [device]
            items: {type: object, fields: {name: {type: string}}}
        sla:
          bandwidth_bps: $speed
          deep: [{x: $missing}]
        """
    )
    assert load_error(tmp_path, text).splitlines() == [
        "bad.yaml: invalid service type (7 problems):",
        "  bad.yaml:11: parameters.vlan.min: min 10 is above max 5",
        "  bad.yaml:13: parameters.speed.pattern: unknown key for a rate parameter",
        "  bad.yaml:13: parameters.speed.default: invalid default: 'fast' is not a rate"
        " (examples: 10G, 100M, 400000000)",
        "  bad.yaml:15: parameters.kind: an enum parameter needs values",
        "  bad.yaml:18: parameters.ports.unique_by: not fields of the items: device",
        "  bad.yaml:14: parameters.rt.default: no parameter 'nothing'",
        "  bad.yaml:22: sla.deep[0].x: no parameter 'missing'",
    ]


def test_name_must_match_the_file(tmp_path: Path) -> None:
    assert load_error(tmp_path, GOOD_HEAD.replace("name: bad", "name: good")) == (
        "bad.yaml:1: name: 'good' differs from the file name 'bad'"
    )


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = GOOD_HEAD + "  a: {type: string}\n"
    assert load_error(tmp_path, text).splitlines() == [
        "bad.yaml: invalid service type (2 problems):",
        "  bad.yaml:9: parameters.a: duplicate key (first on line 7)",
        # YAML keeps the last one, which is no endpoint
        "  bad.yaml:4: endpoints[0]: 'a' must be an endpoint parameter",
    ]


def test_template_stems_and_path_roles(tmp_path: Path) -> None:
    text = GOOD_HEAD.replace(
        "templates: {endpoint: bad/endpoint, transit: bad/transit}",
        "templates: {endpoint: ../../etc/passwd}",
    )
    assert load_error(tmp_path, text).splitlines()[1:] == [
        "  bad.yaml:5: templates: a path realisation needs a 'transit' template",
        "  bad.yaml:5: templates.endpoint: '../../etc/passwd' is not a template stem like slice/pe",
    ]


def test_endpoints_must_be_endpoint_parameters(tmp_path: Path) -> None:
    text = GOOD_HEAD.replace("endpoints: [a, z]", "endpoints: [a, customer, b]") + (
        "  customer: {type: string}\n"
    )
    assert load_error(tmp_path, text).splitlines()[1:] == [
        "  bad.yaml:4: endpoints: a path realisation names exactly two parameters, a and z",
        "  bad.yaml:4: endpoints[1]: 'customer' must be an endpoint parameter",
        "  bad.yaml:4: endpoints[2]: no parameter 'b'",
    ]


def test_the_ends_of_a_path_are_required(tmp_path: Path) -> None:
    text = GOOD_HEAD.replace("z: {type: endpoint, required: true}", "z: {type: endpoint}")
    assert load_error(tmp_path, text) == (
        "bad.yaml:4: endpoints[1]: 'z': the ends of a path are required"
    )


def test_site_endpoints_need_endpoint_roles(tmp_path: Path) -> None:
    text = GOOD_HEAD.replace("endpoint_roles: [pe]", "endpoint_roles: []")
    assert load_error(tmp_path, text) == (
        "bad.yaml:3: endpoint_roles: endpoints may be sites: say which device roles"
    )


def test_pydantic_shape_errors_are_located(tmp_path: Path) -> None:
    text = GOOD_HEAD.replace("realisation: path", "realisation: tunnel")
    assert load_error(tmp_path, text) == (
        "bad.yaml:2: realisation: Input should be 'endpoints' or 'path'"
    )


def test_template_names() -> None:
    slice_type = load_service_type("slice")
    transit = slice_type.template("transit", "lab-sim", template_kind("gnmi"))
    assert transit == "lab-sim/slice/transit.gnmi.json.j2"
    endpoint = slice_type.template("endpoint", "lab-sim", template_kind("netconf"))
    assert endpoint == "lab-sim/slice/endpoint.xml.j2"
    assert (
        slice_type.template("endpoint", "frr", template_kind("cli")) == "frr/slice/endpoint.cli.j2"
    )
    with pytest.raises(
        ConfigError, match=r"no template for role 'pe' \(roles: endpoint, transit\)"
    ):
        slice_type.template("pe", "lab-sim", template_kind("netconf"))
    with pytest.raises(ConfigError, match="no template kind renders configuration for snmp"):
        template_kind("snmp")


# --- what the realisation takes is declared (uses:, attachment:) and checked at load -----------

ATTACHMENTS_HEAD = """\
name: bad
realisation: endpoints
endpoint_roles: [pe]
endpoints: [ports]
templates: {pe: bad/pe}
parameters:
  customer: {type: string, required: true}
  ports:
    type: list
    required: true
    items:
      type: object
      fields:
        router: {type: string, required: true}
        port: {type: string, required: true}
        gateway: {type: ipv4_interface}
  speed: {type: rate}
"""


def test_an_attachment_list_without_its_fields_declared_is_refused(tmp_path: Path) -> None:
    """The realisation needs each item's device and interface: a file that does not say
    which fields they are is refused at load (it used to load, then fail at the first run)."""
    assert load_error(tmp_path, ATTACHMENTS_HEAD).splitlines()[1:] == [
        "  bad.yaml:4: endpoints: the items of 'ports' are attachments: say which field is the"
        " device (attachment: {device: FIELD})",
        "  bad.yaml:4: endpoints: the items of 'ports' are attachments: say which field is the"
        " interface (attachment: {interface: FIELD})",
    ]


OLD_STYLE_VPN = """\
name: bad
realisation: endpoints
endpoint_roles: [pe]
endpoints: [endpoints]
templates: {pe: bad/pe}
parameters:
  customer: {type: string, required: true}
  endpoints:
    type: list
    required: true
    items:
      type: object
      fields:
        device: {type: string, required: true}
        interface: {type: string, required: true}
        vlan: {type: integer, min: 1, max: 4094, required: true}
"""


def test_a_vpn_file_without_vrf_that_does_not_say_what_it_binds_is_refused(
    tmp_path: Path,
) -> None:
    """Such a file used to load, then fail at its first dry run (`KeyError: 'vrf'`, a 500):
    now what the realisation takes must be declared, and the file is refused at load."""
    assert load_error(tmp_path, OLD_STYLE_VPN).splitlines()[1:] == [
        "  bad.yaml:4: endpoints: the items of 'endpoints' are attachments: say which field is"
        " the device (attachment: {device: FIELD})",
        "  bad.yaml:4: endpoints: the items of 'endpoints' are attachments: say which field is"
        " the interface (attachment: {interface: FIELD})",
    ]


def test_a_shipped_type_that_loses_a_bound_parameter_is_refused(tmp_path: Path) -> None:
    text = (services_dir() / "l3vpn.yaml").read_text().replace("name: l3vpn", "name: bad")
    start = text.index("  vrf:\n    type: string")
    end = text.index("  rd:\n")
    text = text[:start] + text[end:]
    text = text[: text.index("example:")]  # its example names the VRF too
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("  vrf: vrf"))
    assert load_error(tmp_path, text) == f"bad.yaml:{line}: uses.vrf: no parameter 'vrf'"


def test_a_type_without_vrf_or_vlans_loads_with_what_it_binds(tmp_path: Path) -> None:
    text = ATTACHMENTS_HEAD + textwrap.dedent(
        """\
        uses: {customer: customer, bandwidth: speed}
        attachment: {device: router, interface: port, address: gateway}
        example: {customer: acme, ports: [{router: pe1, port: eth3}], speed: 1G}
        """
    )
    stype = load_service_type("bad", write(tmp_path, text).parent)
    values = stype.validate(stype.example or {})
    assert stype.endpoints(values) == ["pe1:eth3"]
    assert stype.value_of("bandwidth", values) == 1_000_000_000
    assert stype.value_of("vrf", values) is None  # not bound: the realisation names it
    assert stype.customer_of(values) == "acme"
    assert stype.needs_vlan  # the items give none: the service has one


def test_uses_and_attachment_are_checked_with_their_lines(tmp_path: Path) -> None:
    text = ATTACHMENTS_HEAD + textwrap.dedent(
        """\
        uses:
          customer: client
          bandwidth: customer
          latency: speed
          colour: speed
        attachment:
          device: router
          interface: socket
          vlan: gateway
          address: gateway
        """
    )
    assert load_error(tmp_path, text).splitlines() == [
        "bad.yaml: invalid service type (7 problems):",
        "  bad.yaml:19: uses.customer: no parameter 'client'",
        "  bad.yaml:20: uses.bandwidth: 'customer' is a string parameter; this part takes rate",
        "  bad.yaml:21: uses.latency: only a path realisation uses latency",
        "  bad.yaml:21: uses.latency: 'speed' is a rate parameter; this part takes latency",
        "  bad.yaml:22: uses.colour: unknown part (parts: customer, bandwidth, latency,"
        " protection, qos_class, vlan, vrf, rd)",
        "  bad.yaml:25: attachment.interface: the items of 'ports' have no field 'socket'",
        "  bad.yaml:26: attachment.vlan: 'ports[].gateway' is an ipv4_interface parameter;"
        " this part takes integer",
    ]


def test_vlan_and_protection_parts_must_fit_what_the_network_takes(tmp_path: Path) -> None:
    text = GOOD_HEAD + textwrap.dedent(
        """\
          tag: {type: integer, min: 0, max: 9000}
          guard: {type: enum, values: [none, ring]}
        uses: {vlan: tag, protection: guard}
        """
    )
    assert load_error(tmp_path, text).splitlines()[1:] == [
        "  bad.yaml:11: uses.vlan: 'tag' is a VLAN: give it min and max within 1..4094",
        "  bad.yaml:11: uses.protection: 'guard' allows ring; protection is one of none, link,"
        " node",
    ]


def test_an_endpoints_realisation_needs_a_pe_template(tmp_path: Path) -> None:
    text = ATTACHMENTS_HEAD.replace("{pe: bad/pe}", "{ce: bad/ce}") + (
        "attachment: {device: router, interface: port}\n"
    )
    assert load_error(tmp_path, text) == (
        "bad.yaml:5: templates: an endpoints realisation needs a 'pe' template"
    )


def test_an_invalid_example_is_refused_at_its_line(tmp_path: Path) -> None:
    text = ATTACHMENTS_HEAD + textwrap.dedent(
        """\
        attachment: {device: router, interface: port}
        example:
          customer: acme
          ports:
            - {router: pe1, port: eth3, gateway: 10.0.0.0/30}
        """
    )
    assert load_error(tmp_path, text) == (
        "bad.yaml:22: example.ports[0].gateway: 10.0.0.0/30 is the network address of"
        " 10.0.0.0/30; give a host"
    )


def test_a_template_reading_a_parameter_the_type_lacks_is_refused_at_load(tmp_path: Path) -> None:
    """The l3vpn templates read service.params.import_rt: a copy of the type without it is
    refused when loaded, naming the template line (it used to fail at the first dry run)."""
    services, templates = tmp_path / "services", tmp_path / "templates" / "lab-sim"
    services.mkdir()
    shutil.copytree(templates_dir() / "lab-sim", templates)
    text = (services_dir() / "l3vpn.yaml").read_text()
    start, end = text.index("  import_rt:\n"), text.index("  export_rt:\n")
    (services / "l3vpn.yaml").write_text(text[:start] + text[end:])
    with pytest.raises(ConfigError) as err:
        load_service_type("l3vpn", services)
    message = str(err.value)
    assert re.fullmatch(
        rf"{re.escape(str(templates))}/l3vpn/pe\.(cli|gnmi\.json|xml)\.j2:\d+:"
        r" service\.params\.import_rt: l3vpn\.yaml has no parameter 'import_rt' \(parameters:"
        r" customer, vrf, rd, export_rt, endpoints, bandwidth, qos_class\)",
        message,
    ), message
    line = int(message.split(".j2:")[1].split(":")[0])
    source = Path(message.split(":")[0]).read_text().splitlines()
    assert "service.params.import_rt" in source[line - 1]

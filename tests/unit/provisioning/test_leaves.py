"""Configuration as leaves (oss/provisioning/leaves.py): the same change read from NETCONF XML,
gNMI JSON and CLI lines, diffs against a running configuration, and the restore that puts a
device back to its pre-image."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from lxml import etree

from drivers.platforms import CliOptions, ModelOptions, load_platform
from oss.errors import InvalidInput
from oss.provisioning.leaves import (
    NC_NS,
    Change,
    Intent,
    KeyMap,
    cli_intent,
    cli_lines,
    cli_render,
    cli_running,
    diff,
    element_intent,
    elements,
    gnmi_intent,
    gnmi_payload,
    gnmi_updates,
    in_scope,
    json_tree_leaves,
    leaves_to_xml,
    restore_intent,
    restrict,
    schema_path,
    scope_of,
    subtree_filters,
    text,
    under,
    xml_intent,
)

MODEL = load_platform("lab-sim").model
CLI = load_platform("lab-sim").cli
IF_NS = "http://openconfig.net/yang/interfaces"
NI_NS = "http://openconfig.net/yang/network-instance"
QOS_NS = "http://openconfig.net/yang/qos"

ETH1 = "interfaces/interface[name=eth1]"
SUB = f"{ETH1}/subinterfaces/subinterface[index=100]"
ADDR = f"{SUB}/ipv4/addresses/address[ip=192.0.2.1]"
NI = "network-instances/network-instance[name=acme]"
MEMBER = f"{NI}/interfaces/interface[id=eth1.100]"
QOS = "qos/interfaces/interface[interface-id=eth1.100]"

# One slice attachment, as the lab-sim templates render it (all three protocols mean this).
SLICE_LEAVES = {
    f"{SUB}/config/index": "100",
    f"{SUB}/config/description": "acme slice",
    f"{SUB}/config/enabled": "true",
    f"{SUB}/vlan/config/vlan-id": "100",
    f"{ADDR}/config/ip": "192.0.2.1",
    f"{ADDR}/config/prefix-length": "30",
    f"{NI}/config/name": "acme",
    f"{NI}/config/type": "L3VRF",
    f"{NI}/config/route-distinguisher": "65000:1",
    f"{MEMBER}/config/id": "eth1.100",
    f"{MEMBER}/config/interface": "eth1",
    f"{MEMBER}/config/subinterface": "100",
    f"{QOS}/config/interface-id": "eth1.100",
    f"{QOS}/config/class": "assured",
    f"{QOS}/config/bandwidth-bps": "200000000",
}

SLICE_XML = f"""
<nc:config xmlns:nc="{NC_NS}">
  <interfaces xmlns="{IF_NS}">
    <interface>
      <name>eth1</name>
      <subinterfaces>
        <subinterface>
          <index>100</index>
          <config>
            <index>100</index>
            <description>acme slice</description>
            <enabled>true</enabled>
          </config>
          <vlan><config><vlan-id>100</vlan-id></config></vlan>
          <ipv4>
            <addresses>
              <address>
                <ip>192.0.2.1</ip>
                <config><ip>192.0.2.1</ip><prefix-length>30</prefix-length></config>
              </address>
            </addresses>
          </ipv4>
        </subinterface>
      </subinterfaces>
    </interface>
  </interfaces>
  <network-instances xmlns="{NI_NS}">
    <network-instance>
      <name>acme</name>
      <config>
        <name>acme</name>
        <type>L3VRF</type>
        <route-distinguisher>65000:1</route-distinguisher>
      </config>
      <interfaces>
        <interface>
          <id>eth1.100</id>
          <config><id>eth1.100</id><interface>eth1</interface><subinterface>100</subinterface></config>
        </interface>
      </interfaces>
    </network-instance>
  </network-instances>
  <qos xmlns="{QOS_NS}">
    <interfaces>
      <interface>
        <interface-id>eth1.100</interface-id>
        <config>
          <interface-id>eth1.100</interface-id>
          <class>assured</class>
          <bandwidth-bps>200000000</bandwidth-bps>
        </config>
      </interface>
    </interfaces>
  </qos>
</nc:config>
"""

SLICE_GNMI = json.dumps(
    {
        "update": [
            {
                "path": SUB,
                "value": {
                    "config": {"index": 100, "description": "acme slice", "enabled": True},
                    "vlan": {"config": {"vlan-id": 100}},
                },
            },
            {"path": ADDR, "value": {"config": {"ip": "192.0.2.1", "prefix-length": 30}}},
            {
                "path": NI,
                "value": {
                    "config": {
                        "name": "acme",
                        "type": "L3VRF",
                        "route-distinguisher": "65000:1",
                    }
                },
            },
            {
                "path": MEMBER,
                "value": {"config": {"id": "eth1.100", "interface": "eth1", "subinterface": 100}},
            },
            {
                "path": QOS,
                "value": {
                    "config": {
                        "interface-id": "eth1.100",
                        "class": "assured",
                        "bandwidth-bps": 200000000,
                    }
                },
            },
        ],
        "delete": [],
    }
)

SLICE_CLI = "\n".join(f"set {path} {shlex.quote(value)}" for path, value in SLICE_LEAVES.items())


def model(list_keys: dict[str, str], namespaces: dict[str, str] | None = None) -> ModelOptions:
    return ModelOptions(list_keys=list_keys, namespaces=namespaces or {})


def as_text(leaves: dict[str, Any]) -> dict[str, str]:
    return {path: text(value) for path, value in leaves.items()}


# --- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("a/b/c", ["a", "b", "c"]),
        ("a/b[k=x/y]/c", ["a", "b[k=x/y]", "c"]),
        (
            "interfaces/interface[name=ge-0/0/0]/config/mtu",
            ["interfaces", "interface[name=ge-0/0/0]", "config", "mtu"],
        ),
        ("a/b[k=1][j=2/3]/c", ["a", "b[k=1][j=2/3]", "c"]),
        ("/a//b/", ["a", "b"]),
        ("", []),
    ],
)
def test_elements_do_not_split_inside_keys(path: str, parts: list[str]) -> None:
    assert elements(path) == parts


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        (
            f"{ADDR}/config/ip",
            "interfaces/interface/subinterfaces/subinterface/ipv4/addresses/address/config/ip",
        ),
        ("interfaces/interface[name=ge-0/0/0]/config/mtu", "interfaces/interface/config/mtu"),
        ("a/b[k=1][j=2]/c", "a/b/c"),
        ("a/b/c", "a/b/c"),
    ],
)
def test_schema_path_drops_keys(path: str, schema: str) -> None:
    assert schema_path(path) == schema


def test_under_respects_element_boundaries() -> None:
    one = f"{ETH1}/subinterfaces/subinterface[index=1]"
    assert under(one, one)
    assert under(f"{one}/config/index", one)
    assert not under(f"{ETH1}/subinterfaces/subinterface[index=10]/config/index", one)
    assert not under("interfaces-state/x", "interfaces")
    assert in_scope(f"{QOS}/config/class", [NI, QOS])
    assert not in_scope(f"{ETH1}/config/mtu", [NI, QOS])


def test_keymap_longest_matching_suffix_wins() -> None:
    keys = KeyMap(MODEL)
    assert keys.key_of(["interfaces", "interface"]) == "name"
    assert keys.key_of(["network-instances", "network-instance", "interfaces", "interface"]) == "id"
    assert keys.key_of(["qos", "interfaces", "interface"]) == "interface-id"
    assert keys.key_of(["interfaces", "interface", "subinterfaces", "subinterface"]) == "index"
    assert keys.key_of(["interfaces", "interface", "config"]) is None
    # the order of the platform's entries does not matter, only the suffix length
    reordered = KeyMap(
        model({"network-instance/interfaces/interface": "id", "interfaces/interface": "name"})
    )
    assert reordered.key_of(["network-instance", "interfaces", "interface"]) == "id"
    assert reordered.key_of(["x", "interfaces", "interface"]) == "name"


def test_text_of_typed_values() -> None:
    assert [text(v) for v in (True, False, 9000, "x", 1.5)] == ["true", "false", "9000", "x", "1.5"]


# --- XML --------------------------------------------------------------------------------------


def test_xml_payload_becomes_keyed_leaves() -> None:
    intent = xml_intent(SLICE_XML, MODEL)
    assert intent.leaves == SLICE_LEAVES
    assert intent.removals == ()


def test_xml_key_leaf_is_in_the_path_not_a_leaf() -> None:
    intent = xml_intent(SLICE_XML, MODEL)
    assert f"{ETH1}/name" not in intent.leaves
    assert f"{SUB}/index" not in intent.leaves
    assert f"{MEMBER}/id" not in intent.leaves
    assert f"{QOS}/interface-id" not in intent.leaves
    # the same name under `config` is an ordinary leaf
    assert intent.leaves[f"{MEMBER}/config/id"] == "eth1.100"


def test_xml_data_reply_is_read_like_a_payload() -> None:
    reply = (
        f'<data xmlns="{NC_NS}"><interfaces xmlns="{IF_NS}">'
        "<interface><name>eth1</name><config><name>eth1</name><mtu>1500</mtu>"
        "<enabled>true</enabled></config></interface>"
        "<interface><name>eth2</name><config><name>eth2</name><mtu>9000</mtu></config>"
        "</interface></interfaces></data>"
    )
    assert xml_intent(reply, MODEL) == Intent(
        {
            f"{ETH1}/config/name": "eth1",
            f"{ETH1}/config/mtu": "1500",
            f"{ETH1}/config/enabled": "true",
            "interfaces/interface[name=eth2]/config/name": "eth2",
            "interfaces/interface[name=eth2]/config/mtu": "9000",
        }
    )


def test_xml_namespace_prefixes_do_not_matter() -> None:
    prefixed = (
        f'<nc:config xmlns:nc="{NC_NS}"><oc:interfaces xmlns:oc="{IF_NS}"><oc:interface>'
        "<oc:name>eth1</oc:name><oc:config><oc:mtu>1500</oc:mtu></oc:config>"
        "</oc:interface></oc:interfaces></nc:config>"
    )
    assert xml_intent(prefixed, MODEL).leaves == {f"{ETH1}/config/mtu": "1500"}


def test_xml_several_top_level_elements_without_a_wrapper() -> None:
    fragment = (
        f'<interfaces xmlns="{IF_NS}"><interface><name>eth1</name>'
        "<config><mtu>1500</mtu></config></interface></interfaces>"
        f'<network-instances xmlns="{NI_NS}"><network-instance><name>acme</name>'
        "<config><name>acme</name></config></network-instance></network-instances>"
    )
    assert xml_intent(fragment, MODEL).leaves == {
        f"{ETH1}/config/mtu": "1500",
        f"{NI}/config/name": "acme",
    }


def test_xml_network_instance_interfaces_keyed_by_id_not_name() -> None:
    """`network-instance/interfaces/interface` (id) is a longer suffix than
    `interfaces/interface` (name): the entry needs <id>, and <name> is not asked for."""
    payload = (
        f'<network-instances xmlns="{NI_NS}"><network-instance><name>acme</name>'
        "<interfaces><interface><id>eth1.100</id><config><interface>eth1</interface>"
        "</config></interface></interfaces></network-instance></network-instances>"
    )
    assert xml_intent(payload, MODEL).leaves == {f"{MEMBER}/config/interface": "eth1"}
    # without the longer rule the entry is keyed by name, and this one has none
    short = model({"network-instances/network-instance": "name", "interfaces/interface": "name"})
    with pytest.raises(InvalidInput, match=r"has no key leaf <name>"):
        xml_intent(payload, short)


def test_xml_key_with_slashes() -> None:
    payload = (
        f'<interfaces xmlns="{IF_NS}"><interface><name>ge-0/0/0</name>'
        "<config><mtu>9000</mtu></config></interface></interfaces>"
    )
    [(path, value)] = xml_intent(payload, MODEL).leaves.items()
    assert path == "interfaces/interface[name=ge-0/0/0]/config/mtu"
    assert value == "9000"
    assert elements(path)[1] == "interface[name=ge-0/0/0]"


@pytest.mark.parametrize("operation", ["remove", "delete"])
def test_xml_removals(operation: str) -> None:
    payload = (
        f'<nc:config xmlns:nc="{NC_NS}">'
        f'<qos xmlns="{QOS_NS}"><interfaces><interface nc:operation="{operation}">'
        "<interface-id>eth1.100</interface-id></interface></interfaces></qos>"
        f'<network-instances xmlns="{NI_NS}"><network-instance nc:operation="{operation}">'
        "<name>acme</name><config><type>L3VRF</type></config></network-instance>"
        "</network-instances>"
        f'<interfaces xmlns="{IF_NS}"><interface><name>eth1</name><config><mtu>1500</mtu>'
        f'<description nc:operation="{operation}"/></config><subinterfaces>'
        f'<subinterface nc:operation="{operation}"><index>100</index></subinterface>'
        "</subinterfaces></interface></interfaces></nc:config>"
    )
    intent = xml_intent(payload, MODEL)
    assert intent.removals == (QOS, NI, f"{ETH1}/config/description", SUB)
    # the leaves of a removed entry are not intended; the physical interface's are
    assert intent.leaves == {f"{ETH1}/config/mtu": "1500"}


def test_xml_other_operations_are_not_removals() -> None:
    payload = (
        f'<nc:config xmlns:nc="{NC_NS}"><interfaces xmlns="{IF_NS}">'
        '<interface nc:operation="replace"><name>eth1</name>'
        '<config nc:operation="merge"><mtu nc:operation="create">1500</mtu></config>'
        "</interface></interfaces></nc:config>"
    )
    assert xml_intent(payload, MODEL) == Intent({f"{ETH1}/config/mtu": "1500"})


def test_xml_operation_without_the_netconf_namespace_is_ignored() -> None:
    """Only nc:operation (the base namespace) removes; a bare attribute is just data."""
    payload = (
        f'<interfaces xmlns="{IF_NS}"><interface operation="remove"><name>eth1</name>'
        "<config><mtu>1500</mtu></config></interface></interfaces>"
    )
    assert xml_intent(payload, MODEL) == Intent({f"{ETH1}/config/mtu": "1500"})


def test_xml_comments_and_processing_instructions_are_ignored() -> None:
    payload = (
        f'<!-- rendered by oss --><interfaces xmlns="{IF_NS}"><!-- one entry -->'
        "<interface><!-- key first --><name>eth1</name><?pi data?>"
        "<config><!-- mtu --><mtu>1500</mtu></config></interface></interfaces>"
    )
    assert xml_intent(payload, MODEL) == Intent({f"{ETH1}/config/mtu": "1500"})


def test_xml_comment_inside_a_leaf_value_is_ignored() -> None:
    payload = (
        f'<interfaces xmlns="{IF_NS}"><interface><name>eth1</name>'
        "<config><description>acme<!-- customer -->-slice</description></config>"
        "</interface></interfaces>"
    )
    assert xml_intent(payload, MODEL).leaves == {f"{ETH1}/config/description": "acme-slice"}


def test_xml_values_are_stripped_and_empty_elements_are_empty_leaves() -> None:
    payload = (
        f'<interfaces xmlns="{IF_NS}"><interface>\n  <name>\n eth1 \n</name>\n'
        "  <config><description/><mtu>\n  1500\n  </mtu></config>\n</interface></interfaces>"
    )
    assert xml_intent(payload, MODEL).leaves == {
        f"{ETH1}/config/description": "",
        f"{ETH1}/config/mtu": "1500",
    }


@pytest.mark.parametrize("payload", [f'<interfaces xmlns="{IF_NS}"/>', f"<data xmlns='{NC_NS}'/>"])
def test_xml_empty_containers_hold_nothing(payload: str) -> None:
    assert xml_intent(payload, MODEL) == Intent({})


def test_xml_entities_are_not_resolved() -> None:
    payload = (
        '<!DOCTYPE interfaces [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
        f'<interfaces xmlns="{IF_NS}"><interface><name>eth1</name>'
        "<config><description>&secret;</description></config></interface></interfaces>"
    )
    intent = xml_intent(payload, MODEL)
    assert "root" not in intent.leaves[f"{ETH1}/config/description"]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (
            f'<interfaces xmlns="{IF_NS}"><interface></interfaces>',
            "Opening and ending tag mismatch: interface line 1 and interfaces",
        ),
        ("<a><b></a>", "Opening and ending tag mismatch: b line 1 and a"),
        (
            "<interfaces><interface><name>a & b</name></interface></interfaces>",
            "xmlParseEntityRef: no name",
        ),
    ],
)
def test_xml_malformed_is_invalid_input_naming_the_problem(payload: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as err:
        xml_intent(payload, MODEL)
    assert str(err.value).startswith(f"configuration XML is not well-formed: {problem}")


def test_xml_truncated_payload_is_named_as_truncated() -> None:
    with pytest.raises(InvalidInput) as err:
        xml_intent("<interfaces><interface><name>eth1</name>", MODEL)
    assert "Premature end of data in tag interface" in str(err.value)
    assert "mismatch" not in str(err.value)  # not the error of a wrapper it never wrote


def test_xml_list_entry_without_its_key_names_entry_and_key() -> None:
    payload = (
        f'<interfaces xmlns="{IF_NS}"><interface><name>eth1</name><subinterfaces>'
        "<subinterface><config><description>x</description></config></subinterface>"
        "</subinterfaces></interface></interfaces>"
    )
    with pytest.raises(InvalidInput) as err:
        xml_intent(payload, MODEL)
    assert str(err.value) == (
        f"list entry {ETH1}/subinterfaces/subinterface has no key leaf <index>"
    )


def test_xml_text_that_is_not_xml_is_refused() -> None:
    with pytest.raises(InvalidInput):
        xml_intent(f"set {ETH1}/config/mtu 9000", MODEL)


# --- XML out ----------------------------------------------------------------------------------

ROUND_TRIPS = [
    Intent(SLICE_LEAVES),
    Intent({}, (QOS, NI, SUB)),
    Intent({f"{ETH1}/config/mtu": "1500", f"{SUB}/config/description": "back"}, (ADDR,)),
    Intent({"interfaces/interface[name=ge-0/0/0]/config/description": "a/b [x=y]"}),
    Intent({f"{ETH1}/config/description": "<tag> & 'q' \"dq\""}),
]


@pytest.mark.parametrize("intent", ROUND_TRIPS)
def test_leaves_to_xml_round_trips(intent: Intent) -> None:
    assert xml_intent(leaves_to_xml(intent, MODEL), MODEL) == intent


def test_leaves_to_xml_writes_typed_values_as_text() -> None:
    typed = Intent({f"{ETH1}/config/mtu": 9000, f"{ETH1}/config/enabled": False})
    assert xml_intent(leaves_to_xml(typed, MODEL), MODEL) == Intent(
        {f"{ETH1}/config/mtu": "9000", f"{ETH1}/config/enabled": "false"}
    )


def test_leaves_to_xml_shape() -> None:
    xml = leaves_to_xml(Intent({f"{SUB}/config/index": "100"}, (QOS,)), MODEL)
    root = etree.fromstring(xml.encode())
    assert etree.QName(root).localname == "config"
    [qos_entry] = root.iter(f"{{{QOS_NS}}}qos")
    [removed] = [e for e in root.iter() if e.get(f"{{{NC_NS}}}operation") is not None]
    assert removed.get(f"{{{NC_NS}}}operation") == "remove"
    assert etree.QName(removed).localname == "interface"
    # the removed entry carries its key leaf, and one entry is written once
    assert [etree.QName(c).localname for c in removed] == ["interface-id"]
    assert [c.text for c in removed] == ["eth1.100"]
    assert qos_entry is not None
    interfaces = [e for e in root.iter() if etree.QName(e).localname == "interface"]
    assert len(interfaces) == 2  # eth1 under interfaces, eth1.100 under qos


def test_leaves_to_xml_puts_every_element_in_its_module_namespace() -> None:
    xml = leaves_to_xml(Intent({f"{SUB}/config/index": "100"}, (NI,)), MODEL)
    root = etree.fromstring(xml.encode())
    for top in root:
        namespace = etree.QName(top).namespace
        assert namespace in (IF_NS, NI_NS)
        for element in top.iter():
            assert etree.QName(element).namespace == namespace, etree.QName(element).localname


# --- gNMI JSON --------------------------------------------------------------------------------


def test_gnmi_payload_becomes_typed_leaves() -> None:
    intent = gnmi_intent(SLICE_GNMI, MODEL)
    assert as_text(intent.leaves) == SLICE_LEAVES
    assert intent.leaves[f"{SUB}/config/index"] == 100
    assert intent.leaves[f"{SUB}/config/enabled"] is True
    assert intent.leaves[f"{QOS}/config/bandwidth-bps"] == 200000000
    assert intent.removals == ()


def test_the_same_change_over_every_protocol_is_the_same_leaves() -> None:
    xml = xml_intent(SLICE_XML, MODEL)
    gnmi = gnmi_intent(SLICE_GNMI, MODEL)
    cli = cli_intent(SLICE_CLI, CLI)
    assert xml.leaves == as_text(gnmi.leaves) == cli.leaves == SLICE_LEAVES


def test_gnmi_deletes_are_removals_and_leading_slashes_go() -> None:
    payload = json.dumps(
        {
            "update": [{"path": f"/{ETH1}/config/mtu", "value": 9000}],
            "delete": [f"/{QOS}", NI, f"{SUB}/"],
        }
    )
    assert gnmi_intent(payload, MODEL) == Intent({f"{ETH1}/config/mtu": 9000}, (QOS, NI, SUB))


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("{not json", "gNMI payload is not JSON"),
        ("[]", '"update" and "delete" lists'),
        ('{"update": [], "replace": []}', '"update" and "delete" lists'),
    ],
)
def test_gnmi_malformed_is_invalid_input(payload: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        gnmi_intent(payload, MODEL)


@pytest.mark.parametrize(
    "intent",
    [
        Intent({f"{ETH1}/config/mtu": 9000, f"{SUB}/config/enabled": False}),
        Intent({f"{SUB}/config/description": 'say "hi"'}, (QOS, NI)),
        Intent({}, (SUB,)),
        Intent({"interfaces/interface[name=ge-0/0/0]/config/mtu": 1500}),
    ],
)
def test_gnmi_payload_round_trips(intent: Intent) -> None:
    payload = gnmi_payload(intent)
    assert gnmi_intent(payload, MODEL) == intent
    updates, deletes = gnmi_updates(payload)
    assert updates == list(intent.leaves.items())
    assert deletes == list(intent.removals)


def test_json_tree_keys_arrays_of_objects_through_the_model() -> None:
    """A gNMI Get answer for the whole `interfaces` tree, json_ietf style."""
    answer = {
        "openconfig-interfaces:interface": [
            {
                "openconfig-interfaces:name": "eth1",
                "config": {"name": "eth1", "openconfig-interfaces:mtu": 1500, "enabled": True},
                "subinterfaces": {
                    "subinterface": [
                        {"index": 100, "config": {"index": 100}, "vlan": {"config": {"vlan-id": 7}}}
                    ]
                },
            },
            {"name": "ge-0/0/0", "config": {"mtu": 9000}},
        ]
    }
    expected = {
        f"{ETH1}/config/name": "eth1",
        f"{ETH1}/config/mtu": 1500,
        f"{ETH1}/config/enabled": True,
        f"{SUB}/config/index": 100,
        f"{SUB}/vlan/config/vlan-id": 7,
        "interfaces/interface[name=ge-0/0/0]/config/mtu": 9000,
    }
    assert json_tree_leaves("interfaces", answer, MODEL, typed=True) == expected
    assert json_tree_leaves("interfaces", answer, MODEL) == as_text(expected)


def test_json_tree_network_instance_and_qos_lists_use_their_own_keys() -> None:
    ni = {
        "network-instance": [
            {
                "name": "acme",
                "config": {"name": "acme"},
                "interfaces": {"interface": [{"id": "eth1.100", "config": {"interface": "eth1"}}]},
            }
        ]
    }
    qos = {"interfaces": {"interface": [{"interface-id": "eth1.100", "config": {"class": "x"}}]}}
    assert json_tree_leaves("network-instances", ni, MODEL) == {
        f"{NI}/config/name": "acme",
        f"{MEMBER}/config/interface": "eth1",
    }
    assert json_tree_leaves("qos", qos, MODEL) == {f"{QOS}/config/class": "x"}


def test_json_tree_scalar_arrays_are_leaf_lists() -> None:
    value = {"config": {"tags": ["a", "b"], "empty": {}}}
    assert json_tree_leaves(ETH1, value, MODEL, typed=True) == {f"{ETH1}/config/tags": ["a", "b"]}
    assert json_tree_leaves(ETH1, value, MODEL) == {f"{ETH1}/config/tags": '["a", "b"]'}


def test_json_tree_list_the_model_does_not_key_is_invalid() -> None:
    with pytest.raises(InvalidInput, match=r"^things/thing: a list whose key the model lacks$"):
        json_tree_leaves("things", {"thing": [{"id": 1}]}, MODEL)


def test_json_tree_entry_without_its_key_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="name"):
        json_tree_leaves("interfaces", {"interface": [{"config": {"mtu": 1500}}]}, MODEL)


# --- CLI lines --------------------------------------------------------------------------------


def test_cli_set_and_delete_lines() -> None:
    payload = f"""
        set {SUB}/config/index 100
        set {SUB}/config/description 'acme slice'

        set {NI}/config/description 'it'"'"'s "quoted"'
        delete {QOS}
        delete {SUB}/ipv4
    """
    assert cli_intent(payload, CLI) == Intent(
        {
            f"{SUB}/config/index": "100",
            f"{SUB}/config/description": "acme slice",
            f"{NI}/config/description": 'it\'s "quoted"',
        },
        (QOS, f"{SUB}/ipv4"),
    )


@pytest.mark.parametrize(
    "line", ["configure terminal", f"set {ETH1}/config/mtu", f"delete {QOS} now", "setx a b"]
)
def test_cli_line_not_understood_is_invalid_input(line: str) -> None:
    with pytest.raises(InvalidInput) as err:
        cli_intent(f"set {ETH1}/config/mtu 1500\n{line}\n", CLI)
    assert str(err.value) == f"configuration line not understood: {line!r}"


def test_cli_lines_drop_blanks_and_indentation() -> None:
    assert cli_lines("\n  set a 1  \n\n\tdelete b\n") == ["set a 1", "delete b"]


def test_cli_running_skips_what_is_not_config() -> None:
    output = (
        "lab-sim# show running-config\r\n"
        "! generated by the device\r\n"
        f"set {ETH1}/config/mtu 1500\r\n"
        f"set {ETH1}/config/description 'uplink to p1'\r\n"
        f"set {SUB}/config/description it's\r\n"  # an unbalanced quote, shown as is
        "  set-ish line\r\n"
        "lab-sim# "
    )
    assert cli_running(output, CLI) == {
        f"{ETH1}/config/mtu": "1500",
        f"{ETH1}/config/description": "uplink to p1",
        f"{SUB}/config/description": "it's",
    }


AWKWARD = [
    "plain",
    "with space",
    "  leading and trailing  ",
    "it's",
    'say "hi"',
    "",
    "a;b && c | d",
    "$HOME `x`",
    "back\\slash",
    "tab\there",
    "ünïcödé",
    "'",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_cli_render_round_trips_through_intent_and_running(value: str) -> None:
    intent = Intent({f"{ETH1}/config/description": value, f"{ETH1}/config/mtu": "1500"}, (QOS,))
    lines = cli_render(intent, CLI)
    assert len(lines) == 3
    assert cli_intent("\n".join(lines), CLI) == intent
    assert cli_running("\r\n".join(lines), CLI) == intent.leaves


def test_cli_render_removes_first_then_sets() -> None:
    intent = Intent({f"{ETH1}/config/mtu": "1500"}, (QOS, NI))
    assert cli_render(intent, CLI) == [
        f"delete {QOS}",
        f"delete {NI}",
        f"set {ETH1}/config/mtu 1500",
    ]


def test_cli_line_formats_are_platform_data() -> None:
    options = CliOptions(
        set_line="leaf {path} := {value}",
        delete_line="no leaf {path}",
        config_line=r"^leaf (?P<path>\S+) := (?P<value>.+)$",
    )
    intent = Intent({f"{ETH1}/config/description": "two words"}, (NI,))
    lines = cli_render(intent, options)
    assert lines == [f"no leaf {NI}", f"leaf {ETH1}/config/description := 'two words'"]
    assert cli_intent("\n".join(lines), options) == intent
    with pytest.raises(InvalidInput):
        cli_intent(f"set {ETH1}/config/mtu 1500", options)


# --- diff -------------------------------------------------------------------------------------

SUB1 = f"{ETH1}/subinterfaces/subinterface[index=1]"
SUB10 = f"{ETH1}/subinterfaces/subinterface[index=10]"
QOS1 = "qos/interfaces/interface[interface-id=eth1.1]"


def test_diff_add_change_remove() -> None:
    running = {
        f"{ETH1}/config/mtu": "1500",  # outside what the service owns: untouched
        f"{SUB1}/config/index": "1",
        f"{SUB1}/config/description": "old",
        f"{SUB1}/vlan/config/vlan-id": "5",  # under an owned entry, not intended: removed
        f"{SUB10}/config/index": "10",  # a sibling whose key starts alike: untouched
        f"{QOS1}/config/interface-id": "eth1.1",  # removed by the change
        f"{QOS1}/config/class": "assured",
    }
    intended = Intent(
        {
            f"{SUB1}/config/index": 1,  # typed, equal as text: no change
            f"{SUB1}/config/description": "new",
            f"{SUB1}/config/enabled": True,
        },
        (QOS1,),
    )
    assert diff(intended, [SUB1], running) == [
        Change("change", f"{SUB1}/config/description", old="old", new="new"),
        Change("add", f"{SUB1}/config/enabled", new="true"),
        Change("remove", f"{SUB1}/vlan/config/vlan-id", old="5"),
        Change("remove", f"{QOS1}/config/class", old="assured"),
        Change("remove", f"{QOS1}/config/interface-id", old="eth1.1"),
    ]


def test_diff_is_empty_when_the_device_holds_the_change() -> None:
    running = {**SLICE_LEAVES, f"{ETH1}/config/mtu": "1500", "other/leaf": "x"}
    intent = gnmi_intent(SLICE_GNMI, MODEL)
    assert diff(intent, [SUB, NI, QOS], running) == []


def test_diff_of_a_removal_already_gone_is_empty() -> None:
    assert diff(Intent({}, (QOS1,)), [QOS1], {f"{ETH1}/config/mtu": "1500"}) == []


def test_change_lines_and_dicts() -> None:
    changes = [
        Change("add", "a/b", new="1"),
        Change("change", "a/c", old="1", new="2"),
        Change("remove", "a/d", old="3"),
    ]
    assert [c.line() for c in changes] == ["+ a/b = 1", "~ a/c: 1 -> 2", "- a/d = 3"]
    assert changes[1].to_dict() == {"op": "change", "path": "a/c", "old": "1", "new": "2"}


def test_scope_and_restrict() -> None:
    intended = Intent({f"{ETH1}/config/mtu": "9000", f"{SUB1}/config/index": "1"}, (QOS1,))
    assert scope_of(intended, [NI]) == ["interfaces", "network-instances", "qos"]
    running = {
        f"{ETH1}/config/mtu": "1500",
        f"{ETH1}/config/description": "uplink",
        f"{SUB1}/config/index": "1",
        f"{SUB1}/config/description": "x",
        f"{SUB10}/config/index": "10",
        f"{NI}/config/name": "acme",
        f"{QOS1}/config/class": "assured",
    }
    assert restrict(running, intended, [SUB1, NI]) == {
        f"{ETH1}/config/mtu": "1500",
        f"{SUB1}/config/index": "1",
        f"{SUB1}/config/description": "x",
        f"{NI}/config/name": "acme",
        f"{QOS1}/config/class": "assured",
    }


# --- restore ----------------------------------------------------------------------------------

BASE = {
    f"{ETH1}/config/name": "eth1",
    f"{ETH1}/config/mtu": "1500",
    f"{SUB10}/config/index": "10",
}


def apply(running: dict[str, str], intent: Intent) -> dict[str, str]:
    """A device applying `intent` (removals first), as the lab does."""
    out = {p: v for p, v in running.items() if not in_scope(p, intent.removals)}
    out.update(as_text(intent.leaves))
    return out


def slice_change() -> tuple[Intent, tuple[str, ...]]:
    intent = Intent({**SLICE_LEAVES, f"{ETH1}/config/mtu": "9000"})
    return intent, (SUB, NI, QOS)


def test_restore_of_a_change_that_never_landed_sends_nothing() -> None:
    intent, owned = slice_change()
    pre = restrict(BASE, intent, owned)
    assert restore_intent(pre, BASE, intent, owned) == Intent({})


def test_restore_removes_created_entries_and_sets_changed_leaves_back() -> None:
    intent, owned = slice_change()
    pre = restrict(BASE, intent, owned)
    assert pre == {f"{ETH1}/config/mtu": "1500"}
    current = apply(BASE, intent)
    restore = restore_intent(pre, current, intent, owned)
    assert restore == Intent({f"{ETH1}/config/mtu": "1500"}, (SUB, NI, QOS))
    assert apply(current, restore) == BASE


def test_restore_after_a_partial_change_touches_only_what_landed() -> None:
    intent, owned = slice_change()
    pre = restrict(BASE, intent, owned)
    partial = apply(BASE, Intent({p: v for p, v in SLICE_LEAVES.items() if p.startswith(NI)}))
    restore = restore_intent(pre, partial, intent, owned)
    assert restore == Intent({}, (NI,))
    assert apply(partial, restore) == BASE


def test_restore_keeps_entries_that_existed_before() -> None:
    """Modifying a service: its entries were there before and stay, with their old values."""
    before = apply(BASE, Intent(SLICE_LEAVES))
    intent = Intent({**SLICE_LEAVES, f"{QOS}/config/class": "expedited"})
    owned = (SUB, NI, QOS)
    pre = restrict(before, intent, owned)
    current = apply(before, intent)
    restore = restore_intent(pre, current, intent, owned)
    assert restore == Intent({f"{QOS}/config/class": "assured"})
    assert apply(current, restore) == before


def test_restore_of_a_delete_sets_the_removed_entries_again() -> None:
    before = apply(BASE, Intent(SLICE_LEAVES))
    intent = Intent({}, (QOS, NI, SUB))
    owned = (QOS, NI, SUB)
    pre = restrict(before, intent, owned)
    current = apply(before, intent)
    assert current == BASE
    restore = restore_intent(pre, current, intent, owned)
    assert restore.removals == ()
    assert restore.leaves == SLICE_LEAVES
    assert apply(current, restore) == before


def test_restore_removes_a_touched_leaf_outside_owned_that_was_not_there() -> None:
    intent = Intent({f"{ETH1}/config/description": "uplink"})
    pre = restrict(BASE, intent, ())
    current = apply(BASE, intent)
    restore = restore_intent(pre, current, intent, ())
    assert restore == Intent({}, (f"{ETH1}/config/description",))
    assert apply(current, restore) == BASE


def test_restore_compares_typed_values_as_text() -> None:
    pre = {f"{ETH1}/config/mtu": 1500, f"{SUB}/config/enabled": True}
    current = {f"{ETH1}/config/mtu": "1500", f"{SUB}/config/enabled": "true"}
    touched = Intent({f"{ETH1}/config/mtu": 9000})
    assert restore_intent(pre, current, touched, (SUB,)) == Intent({})


def test_restore_removes_what_a_modify_added_under_an_existing_entry() -> None:
    """Modifying a service's address (192.0.2.1 -> 192.0.2.5) and adding a bandwidth limit,
    then undoing it: the device must hold exactly the old configuration again."""
    before = apply(
        BASE, Intent({p: v for p, v in SLICE_LEAVES.items() if "bandwidth-bps" not in p})
    )
    new_addr = f"{SUB}/ipv4/addresses/address[ip=192.0.2.5]"
    new_leaves = {p: v for p, v in SLICE_LEAVES.items() if not p.startswith(ADDR)}
    new_leaves[f"{new_addr}/config/ip"] = "192.0.2.5"
    new_leaves[f"{new_addr}/config/prefix-length"] = "30"
    owned = (SUB, NI, QOS)
    stale = tuple(p for p in before if p.startswith(ADDR))
    intent = Intent(new_leaves, stale)
    pre = restrict(before, intent, owned)
    current = apply(before, intent)
    restore = restore_intent(pre, current, intent, owned)
    assert apply(current, restore) == before


def test_the_read_filter_selects_owned_entries_whole_and_other_leaves_alone() -> None:
    change = Intent(
        {
            f"{ETH1}/config/mtu": "9000",  # outside what the service owns: that leaf only
            f"{SUB}/config/index": "100",  # under an owned entry: the entry covers it
            f"{NI}/config/name": "acme",
        },
        removals=(f"{QOS}",),
    )
    # an owned entry inside another owned entry adds nothing
    filters = subtree_filters(change, (SUB, NI, f"{NI}/config"), MODEL)
    assert filters == [
        f'<interfaces xmlns="{IF_NS}"><interface><name>eth1</name><subinterfaces>'
        "<subinterface><index>100</index></subinterface></subinterfaces>"
        "<config><mtu/></config></interface></interfaces>",
        f'<network-instances xmlns="{NI_NS}"><network-instance><name>acme</name>'
        "</network-instance></network-instances>",
        f'<qos xmlns="{QOS_NS}"><interfaces><interface><interface-id>eth1.100</interface-id>'
        "</interface></interfaces></qos>",
    ]
    assert subtree_filters(Intent({}), (), MODEL) == []


def test_a_key_value_is_escaped_in_the_read_filter() -> None:
    odd = 'network-instances/network-instance[name=a<b&"c"]'
    [flt] = subtree_filters(Intent({}), (odd,), MODEL)
    assert '<name>a&lt;b&amp;"c"</name>' in flt


def test_a_parsed_reply_reads_as_its_text_does() -> None:
    root = etree.fromstring(SLICE_XML.strip().encode())
    assert element_intent(root, MODEL) == xml_intent(SLICE_XML, MODEL)
    assert element_intent(root, MODEL).leaves == SLICE_LEAVES
    with_comment = etree.fromstring(
        f"<data><interfaces xmlns='{IF_NS}'><!-- c --><interface><name>eth1</name>"
        "<config><mtu>15<!-- x -->00</mtu></config></interface></interfaces></data>".encode()
    )
    assert element_intent(with_comment, MODEL).leaves == {f"{ETH1}/config/mtu": "1500"}

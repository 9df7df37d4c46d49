"""The simulated device's configuration model without servers: the schema, whole-configuration
validation, NETCONF edit-config and filters on the new trees, gNMI Set edits and JSON trees,
and the reply delay."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from lab.sim import gnmi_data, schema
from lab.sim.datastore import Datastores, RpcFailure, coerce_leaf, validate
from lab.sim.model import LeafValue, Leaves, SimDevice
from lab.sim.netconf_xml import (
    apply_edit,
    device_data,
    subtree_filter,
    with_namespaces,
    xpath_filter,
)

IF = "http://openconfig.net/yang/interfaces"
NI = "http://openconfig.net/yang/network-instance"
QOS = "http://openconfig.net/yang/qos"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
SUB = "interfaces/interface[name=eth1]/subinterfaces/subinterface[index={}]"
VRF = "network-instances/network-instance[name={}]"
QOS_IF = "qos/interfaces/interface[interface-id={}]"


def device() -> SimDevice:
    sim = SimDevice("r1", interfaces=["eth1", "eth2"])
    sim.interfaces["eth2"].speed_bps = 1_000_000_000
    return sim


def service() -> Leaves:
    """A valid VRF with two subinterfaces of eth1 and a qos entry for each."""
    leaves: Leaves = {
        f"{SUB.format(100)}/vlan/config/vlan-id": 100,
        f"{SUB.format(100)}/ipv4/addresses/address[ip=10.0.0.1]/config/prefix-length": 30,
        f"{SUB.format(200)}/vlan/config/vlan-id": 200,
        f"{VRF.format('acme')}/config/type": "L3VRF",
        f"{VRF.format('acme')}/config/route-distinguisher": "65000:1",
        f"{VRF.format('acme')}/interfaces/interface[id=eth1.100]/config/interface": "eth1",
        f"{VRF.format('acme')}/interfaces/interface[id=eth1.200]/config/subinterface": 200,
        f"{QOS_IF.format('eth1.100')}/config/bandwidth-bps": 4_000_000_000,
        f"{QOS_IF.format('eth1.200')}/config/class": "expedited",
    }
    return schema.fill_keys({**device().running, **leaves})


def refusal(changes: dict[str, LeafValue | None], sim: SimDevice | None = None) -> RpcFailure:
    leaves = service()
    for path, value in changes.items():
        if value is None:
            leaves.pop(path)
        else:
            leaves[path] = value
    with pytest.raises(RpcFailure) as caught:
        validate(sim or device(), schema.fill_keys(leaves))
    return caught.value


# --- schema ---------------------------------------------------------------------------------------


def test_list_keys_and_namespaces_are_the_shared_contract() -> None:
    assert schema.LIST_KEYS == {
        "interfaces/interface": "name",
        "interfaces/interface/subinterfaces/subinterface": "index",
        "interfaces/interface/subinterfaces/subinterface/ipv4/addresses/address": "ip",
        "network-instances/network-instance": "name",
        "network-instances/network-instance/interfaces/interface": "id",
        "qos/interfaces/interface": "interface-id",
    }
    assert {top: ns.uri for top, ns in schema.NAMESPACES.items()} == {
        "interfaces": IF,
        "network-instances": NI,
        "qos": QOS,
    }


def test_resolve_canonical_paths_and_errors() -> None:
    resolved = schema.resolve(f"{SUB.format('0100')}/vlan/config/vlan-id")
    assert resolved.path == f"{SUB.format(100)}/vlan/config/vlan-id" and resolved.is_leaf
    entry = schema.resolve(VRF.format("acme"))
    assert entry.entry and entry.node.kind == "list" and not entry.is_leaf
    whole_list = schema.resolve("qos/interfaces/interface")
    assert not whole_list.entry
    for path, words in (
        ("interfaces/interface[name=eth1]/state/mtu", "read-only"),
        ("interfaces/interface[name=eth1]/speed", "unknown element 'speed' in interface"),
        ("interfaces/interface/config/mtu", "needs its key"),
        (f"{SUB.format('x')}/config/index", "is not an integer"),
        ("qos[x=1]/interfaces", "not a list"),
    ):
        with pytest.raises(schema.PathError, match=words):
            schema.resolve(path)


def test_fill_keys_adds_typed_key_leaves() -> None:
    leaves: Leaves = {f"{SUB.format(7)}/vlan/config/vlan-id": 7}
    schema.fill_keys(leaves)
    assert leaves[f"{SUB.format(7)}/config/index"] == 7
    assert leaves["interfaces/interface[name=eth1]/config/name"] == "eth1"


def test_sort_order_is_schema_then_natural_keys() -> None:
    paths = [
        "qos/interfaces/interface[interface-id=eth1.2]/config/class",
        f"{SUB.format(10)}/config/index",
        "interfaces/interface[name=eth10]/config/name",
        f"{SUB.format(9)}/config/index",
        "interfaces/interface[name=eth2]/config/mtu",
        f"{VRF.format('a')}/config/name",
        "interfaces/interface[name=eth1]/config/mtu",
        "interfaces/interface[name=eth1]/config/name",
    ]
    assert sorted(paths, key=schema.sort_key) == [
        "interfaces/interface[name=eth1]/config/name",
        "interfaces/interface[name=eth1]/config/mtu",
        f"{SUB.format(9)}/config/index",
        f"{SUB.format(10)}/config/index",
        "interfaces/interface[name=eth2]/config/mtu",
        "interfaces/interface[name=eth10]/config/name",
        f"{VRF.format('a')}/config/name",
        "qos/interfaces/interface[interface-id=eth1.2]/config/class",
    ]


def test_instance_path_uses_each_modules_prefix() -> None:
    assert schema.instance_path(f"{VRF.format('a')}/config/type") == (
        "/oc-netinst:network-instances/oc-netinst:network-instance[oc-netinst:name='a']"
        "/oc-netinst:config/oc-netinst:type"
    )
    assert schema.instance_path(QOS_IF.format("eth1.1")) == (
        "/oc-qos:qos/oc-qos:interfaces/oc-qos:interface[oc-qos:interface-id='eth1.1']"
    )


# --- validation -----------------------------------------------------------------------------------


def test_the_service_is_valid() -> None:
    validate(device(), service())


@pytest.mark.parametrize(
    ("changes", "tag", "app_tag", "words", "at"),
    [
        (
            {f"{SUB.format(300)}/vlan/config/vlan-id": 100},
            "operation-failed",
            "data-not-unique",
            "vlan-id 100 is used by subinterfaces 100 and 300 of eth1",
            "[oc-if:index='300']/oc-if:vlan/oc-if:config/oc-if:vlan-id",
        ),
        (
            {"interfaces/interface[name=eth9]/subinterfaces/subinterface[index=1]/config/index": 1},
            "invalid-value",
            "instance-required",
            "interface 'eth9' does not exist on r1",
            "[oc-if:name='eth9']",
        ),
        (
            {f"{VRF.format('acme')}/interfaces/interface[id=eth2.5]/config/id": "eth2.5"},
            "data-missing",
            "instance-required",
            "interface eth2.5 names subinterface 5 of eth2, which does not exist",
            "[oc-netinst:id='eth2.5']",
        ),
        (
            {f"{VRF.format('acme')}/interfaces/interface[id=eth1.100]/config/interface": "eth2"},
            "operation-failed",
            "must-violation",
            "interface 'eth2' does not match the id (expected 'eth1')",
            "oc-netinst:config/oc-netinst:interface",
        ),
        (
            {f"{VRF.format('b')}/interfaces/interface[id=eth1.200]/config/id": "eth1.200"},
            "operation-failed",
            "data-not-unique",
            "subinterface eth1.200 is already in network-instance acme; it cannot also be in b",
            "[oc-netinst:name='b']",
        ),
        (
            {f"{VRF.format('b')}/config/route-distinguisher": "65000:1"},
            "operation-failed",
            "data-not-unique",
            "route-distinguisher 65000:1 is used by network-instances acme and b",
            "[oc-netinst:name='b']/oc-netinst:config/oc-netinst:route-distinguisher",
        ),
        (
            {f"{QOS_IF.format('eth1.300')}/config/class": "assured"},
            "data-missing",
            "instance-required",
            "qos interface eth1.300 names subinterface 300 of eth1, which does not exist",
            "[oc-qos:interface-id='eth1.300']",
        ),
        (
            {f"{QOS_IF.format('eth1.200')}/config/bandwidth-bps": 6_000_000_001},
            "operation-failed",
            "too-much-bandwidth",
            "qos bandwidth on eth1 adds up to 10000000001 bps (eth1.100 + eth1.200), more than"
            " its speed of 10000000000 bps",
            "[oc-qos:interface-id='eth1.200']/oc-qos:config/oc-qos:bandwidth-bps",
        ),
        (
            {f"{VRF.format('acme')}/config/import-route-target": "target:1"},
            "invalid-value",
            "pattern-violation",
            "import-route-target 'target:1' is not in the form ASN:NN",
            "oc-netinst:import-route-target",
        ),
        (
            {f"{VRF.format('acme')}/config/type": "L3VPN"},
            "invalid-value",
            "enum-violation",
            "type 'L3VPN' is not one of L3VRF, L2P2P",
            "oc-netinst:type",
        ),
        (
            {f"{SUB.format(100)}/vlan/config/vlan-id": 0},
            "invalid-value",
            "range-violation",
            "vlan-id 0 is out of range 1..4094",
            "oc-if:vlan-id",
        ),
        (
            {f"{SUB.format(100)}/config/index": 101},
            "invalid-value",
            None,
            "config/index '101' differs from the list key '100'",
            "oc-if:config/oc-if:index",
        ),
        (
            {f"{VRF.format('bad name')}/config/type": "L3VRF"},
            "invalid-value",
            "pattern-violation",
            "name 'bad name' is not made of letters",
            "[oc-netinst:name='bad name']",
        ),
        (
            {f"{SUB.format(100)}/vlan/config/vlan-id": "100"},
            "invalid-value",
            None,
            "vlan-id must be an integer",
            "oc-if:vlan-id",
        ),
    ],
)
def test_validation_refusals(
    changes: dict[str, LeafValue], tag: str, app_tag: str | None, words: str, at: str
) -> None:
    failure = refusal(dict(changes))
    assert (failure.tag, failure.app_tag) == (tag, app_tag)
    assert words in failure.message
    assert failure.path is not None and at in failure.path


def test_bandwidth_follows_each_interfaces_speed() -> None:
    sim = device()
    leaves = {
        **service(),
        f"{SUB.format(1).replace('eth1', 'eth2')}/config/index": 1,
        f"{QOS_IF.format('eth2.1')}/config/bandwidth-bps": 1_000_000_000,
    }
    validate(sim, schema.fill_keys(leaves))  # exactly eth2's 1 Gbit/s
    leaves[f"{QOS_IF.format('eth2.1')}/config/bandwidth-bps"] = 1_000_000_001
    with pytest.raises(RpcFailure, match="on eth2 adds up to 1000000001 bps"):
        validate(sim, leaves)


def test_removing_a_referenced_subinterface_is_refused() -> None:
    leaves = {p: v for p, v in service().items() if not p.startswith(SUB.format(200))}
    with pytest.raises(RpcFailure) as caught:
        validate(device(), leaves)
    assert caught.value.tag == "data-missing"
    assert "eth1.200" in caught.value.message


def test_coerce_leaf_checks_types_and_enums() -> None:
    assert coerce_leaf(f"{SUB.format(1)}/config/enabled", "false") is False
    assert coerce_leaf(f"{QOS_IF.format('e.1')}/config/bandwidth-bps", "5") == 5
    for path, text, words in (
        (f"{SUB.format(1)}/config/enabled", "yes", "not a boolean"),
        (f"{SUB.format(1)}/vlan/config/vlan-id", "1.5", "not an integer"),
        (f"{QOS_IF.format('e.1')}/config/class", "gold", "not one of best-effort"),
        (f"{SUB.format(1)}/vlan", "1", "is not a leaf"),
    ):
        with pytest.raises(RpcFailure, match=words):
            coerce_leaf(path, text)


# --- NETCONF edit-config and filters --------------------------------------------------------------


def config(body: str) -> ET.Element:
    return ET.fromstring(f'<config xmlns="{NC}" xmlns:nc="{NC}">{body}</config>')


def sub_xml(index: int, inner: str = "", op: str = "") -> str:
    attr = f' nc:operation="{op}"' if op else ""
    return (
        f'<interfaces xmlns="{IF}"><interface><name>eth1</name><subinterfaces>'
        f"<subinterface{attr}><index>{index}</index>{inner}</subinterface>"
        "</subinterfaces></interface></interfaces>"
    )


def test_edit_creates_entries_at_any_depth_with_their_keys() -> None:
    inner = (
        "<vlan><config><vlan-id>42</vlan-id></config></vlan><ipv4><addresses><address>"
        "<ip>192.0.2.1</ip><config><prefix-length>24</prefix-length></config></address>"
        "</addresses></ipv4>"
    )
    leaves = apply_edit(device().running, config(sub_xml(42, inner)), "merge")
    address = f"{SUB.format(42)}/ipv4/addresses/address[ip=192.0.2.1]/config"
    assert leaves[f"{SUB.format(42)}/config/index"] == 42
    assert leaves[f"{SUB.format(42)}/vlan/config/vlan-id"] == 42
    assert leaves[f"{address}/ip"] == "192.0.2.1"
    assert leaves[f"{address}/prefix-length"] == 24


def test_an_entry_named_by_its_key_alone_exists() -> None:
    leaves = apply_edit(device().running, config(sub_xml(7)), "merge")
    assert schema.below(leaves, SUB.format(7)) == [f"{SUB.format(7)}/config/index"]
    # Walking through an entry with operation none (to remove below it) creates nothing.
    remove = (
        f'<network-instances xmlns="{NI}"><network-instance><name>zzz</name><interfaces>'
        '<interface nc:operation="remove"><id>eth1.1</id></interface></interfaces>'
        "</network-instance></network-instances>"
    )
    assert apply_edit(leaves, config(remove), "none") == leaves
    p = gnmi_data.parse
    new = gnmi_data.apply_edits(device(), deletes=[], replaces=[], updates=[(p(SUB.format(8)), {})])
    assert new[f"{SUB.format(8)}/config/index"] == 8


def test_edit_operations_on_list_entries() -> None:
    leaves = service()
    with pytest.raises(RpcFailure) as exists:
        apply_edit(leaves, config(sub_xml(100, op="create")), "merge")
    assert exists.value.tag == "data-exists"
    gone = apply_edit(leaves, config(sub_xml(100, op="delete")), "merge")
    assert not schema.below(gone, SUB.format(100))  # everything below the entry
    assert schema.below(gone, SUB.format(200))
    with pytest.raises(RpcFailure) as missing:
        apply_edit(gone, config(sub_xml(100, op="delete")), "merge")
    assert missing.value.tag == "data-missing"
    assert missing.value.path is not None and "[oc-if:index='100']" in missing.value.path
    assert apply_edit(gone, config(sub_xml(100, op="remove")), "merge") == gone
    replaced = apply_edit(
        leaves, config(sub_xml(100, "<config><description>x</description></config>", "replace")),
        "merge",
    )  # fmt: skip
    assert schema.below(replaced, SUB.format(100)) == [
        f"{SUB.format(100)}/config/description",
        f"{SUB.format(100)}/config/index",  # the key leaf comes back with the entry
    ]
    vrf = f'<network-instances xmlns="{NI}" nc:operation="delete"/>'
    assert not schema.below(apply_edit(leaves, config(vrf), "merge"), "network-instances")


def test_edit_structure_errors() -> None:
    for body, tag in (
        (f'<interfaces xmlns="{IF}"><interface><name>eth1</name><subinterfaces><subinterface>'
         "<config/></subinterface></subinterfaces></interface></interfaces>", "missing-element"),
        (f'<qos xmlns="{NI}"/>', "unknown-namespace"),
        (f'<qos xmlns="{QOS}"><interfaces><interface><interface-id>a.1</interface-id>'
         f'<config xmlns="{IF}"/></interface></interfaces></qos>', "unknown-namespace"),
        (sub_xml(1, "<vlan><config><vlan-id>x</vlan-id></config></vlan>"), "invalid-value"),
        (sub_xml(1, "<vlan><config><vlan-id><a/></vlan-id></config></vlan>"), "unknown-element"),
        (sub_xml(1, "<state><index>1</index></state>"), "invalid-value"),
        (sub_xml(1, "<qinq/>"), "unknown-element"),
    ):  # fmt: skip
        with pytest.raises(RpcFailure) as caught:
            apply_edit(device().running, config(body), "merge")
        assert caught.value.tag == tag, body


def data_of(leaves: Leaves) -> ET.Element:
    return device_data(device(), leaves, with_state=False)


def reply(data: ET.Element) -> ET.Element:
    """`data` as a client parses it: serialised with its namespaces, read back."""
    return ET.fromstring(ET.tostring(with_namespaces(data)))


def test_subtree_filter_on_new_containers_keeps_list_keys() -> None:
    flt = ET.fromstring(
        f'<filter><qos xmlns="{QOS}"><interfaces><interface><config><class/></config>'
        "</interface></interfaces></qos></filter>"
    )
    out = reply(subtree_filter(data_of(service()), flt))
    entries = out.findall(f"{{{QOS}}}qos/{{{QOS}}}interfaces/{{{QOS}}}interface")
    # only the entry that has a class, with its key and nothing else
    assert [e.findtext(f"{{{QOS}}}interface-id") for e in entries] == ["eth1.200"]
    assert [e.findtext(f"{{{QOS}}}config/{{{QOS}}}class") for e in entries] == ["expedited"]
    assert entries[0].find(f"{{{QOS}}}config/{{{QOS}}}bandwidth-bps") is None
    assert out.find(f"{{{IF}}}interfaces") is None
    wrong_ns = ET.fromstring(f'<filter><qos xmlns="{NI}"/></filter>')
    assert len(subtree_filter(data_of(service()), wrong_ns)) == 0


def test_xpath_filter_on_a_nested_list() -> None:
    out = reply(
        xpath_filter(
            data_of(service()),
            "/interfaces/interface/subinterfaces/subinterface[index='200']/vlan/config/vlan-id",
        )
    )
    subs = out.findall(f".//{{{IF}}}subinterface")
    assert [s.findtext(f"{{{IF}}}index") for s in subs] == ["200"]
    assert out.findtext(f".//{{{IF}}}vlan-id") == "200"
    assert out.findtext(f"{{{IF}}}interfaces/{{{IF}}}interface/{{{IF}}}name") == "eth1"


# --- gNMI -----------------------------------------------------------------------------------------


def test_gnmi_set_takes_entries_lists_and_deletes_subtrees() -> None:
    sim = device()
    p = gnmi_data.parse
    new = gnmi_data.apply_edits(
        sim,
        deletes=[],
        replaces=[],
        updates=[
            (p("interfaces/interface[name=eth1]/subinterfaces/subinterface"),
             [{"index": 5, "vlan": {"config": {"vlan-id": 5}}}]),
            (p(VRF.format("v")), {"openconfig-network-instance:config": {"type": "L2P2P"},
                                  "interfaces": {"interface": [{"id": "eth1.5"}]}}),
        ],
    )  # fmt: skip
    validate(sim, new)
    assert new[f"{SUB.format(5)}/config/index"] == 5
    assert new[f"{VRF.format('v')}/interfaces/interface[id=eth1.5]/config/id"] == "eth1.5"
    sim.apply(new)
    after = gnmi_data.apply_edits(sim, deletes=[p("network-instances")], replaces=[], updates=[])
    assert not schema.below(after, "network-instances") and schema.below(after, SUB.format(5))
    for update, words in (
        ((p(f"{SUB.format(5)}/vlan/config/vlan-id"), True), "expected int, got bool"),
        ((p(f"{VRF.format('v')}/config/type"), "L3VPN"), "not one of L3VRF, L2P2P"),
        ((p("qos/interfaces/interface"), [{"class": "assured"}]), "without its key"),
        ((p(f"{SUB.format(5)}/vlan/config"), 5), "not a leaf"),
        ((p("interfaces/interface[name=eth1]/subinterfaces/subinterface/config/index"), 1),
         "needs its key"),
    ):  # fmt: skip
        with pytest.raises(gnmi_data.SetRejected, match=words):
            gnmi_data.apply_edits(sim, deletes=[], replaces=[], updates=[update])


def test_gnmi_json_tree_types_keys_like_their_leaves() -> None:
    leaves = service()
    found = gnmi_data.select(leaves, gnmi_data.parse("interfaces/interface[name=eth1]"))
    tree: Any = gnmi_data.json_tree(found, 2)
    subs = tree["subinterfaces"]["subinterface"]
    assert [s["index"] for s in subs] == [100, 200]
    assert subs[0]["ipv4"]["addresses"]["address"][0]["ip"] == "10.0.0.1"


# --- the reply delay -----------------------------------------------------------------------------


async def test_reply_delay_waits_and_a_new_delay_releases_waiters() -> None:
    sim = device()
    await asyncio.wait_for(sim.delay_reply(), 5)  # no delay: at once
    sim.set_reply_delay(3600)
    waiting = asyncio.create_task(sim.delay_reply())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    sim.set_reply_delay(0)
    await asyncio.wait_for(waiting, 5)


def test_datastores_validate_running_writes() -> None:
    sim = device()
    ds = Datastores(sim)
    ds.write_running(service(), who="test")
    assert sim.running[f"{VRF.format('acme')}/config/route-distinguisher"] == "65000:1"
    broken = {**sim.running, f"{VRF.format('b')}/config/route-distinguisher": "65000:1"}
    with pytest.raises(RpcFailure, match="route-distinguisher 65000:1"):
        ds.write_running(broken, who="test")
    assert f"{VRF.format('b')}/config/route-distinguisher" not in sim.running

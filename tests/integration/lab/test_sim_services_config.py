"""The simulated device's service configuration (subinterfaces with VLANs and addresses,
network-instances, qos) written and read through the project's own drivers, over each protocol,
its validation refusals, deletes, and the management-plane delay fault."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.base import Target
from drivers.cli import CliDriver
from drivers.gnmi import GnmiDriver
from drivers.netconf import NetconfDriver
from drivers.platforms import Protocol
from oss.errors import DeviceTimeout, InvalidInput, RpcError
from tests.integration.lab.conftest import RunningLab
from topology.model import Device
from topology.targets import parse_networks, target_for

pytestmark = pytest.mark.integration

LOOPBACK = parse_networks(["127.0.0.0/8"])
NS = {
    "interfaces": "http://openconfig.net/yang/interfaces",
    "network-instances": "http://openconfig.net/yang/network-instance",
    "qos": "http://openconfig.net/yang/qos",
}
IF, NI, QOS = NS["interfaces"], NS["network-instances"], NS["qos"]
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"

SUB100 = "interfaces/interface[name=eth1]/subinterfaces/subinterface[index=100]"
SUB200 = "interfaces/interface[name=eth1]/subinterfaces/subinterface[index=200]"
ACME = "network-instances/network-instance[name=acme]"

# One VRF with two subinterfaces of r1:eth1 (10 Gbit/s) and a qos entry for each.
SERVICE_XML = f"""
<interfaces xmlns="{IF}"><interface><name>eth1</name><subinterfaces>
  <subinterface><index>100</index>
    <config><index>100</index><description>acme site A</description></config>
    <vlan><config><vlan-id>100</vlan-id></config></vlan>
    <ipv4><addresses><address><ip>10.0.0.1</ip>
      <config><ip>10.0.0.1</ip><prefix-length>30</prefix-length></config>
    </address></addresses></ipv4>
  </subinterface>
  <subinterface><index>200</index>
    <config><index>200</index><description>acme site B</description></config>
    <vlan><config><vlan-id>200</vlan-id></config></vlan>
    <ipv4><addresses><address><ip>10.0.1.1</ip>
      <config><ip>10.0.1.1</ip><prefix-length>30</prefix-length></config>
    </address></addresses></ipv4>
  </subinterface>
</subinterfaces></interface></interfaces>
<network-instances xmlns="{NI}"><network-instance><name>acme</name>
  <config><name>acme</name><type>L3VRF</type><description>customer acme</description>
    <route-distinguisher>65000:1</route-distinguisher>
    <import-route-target>65000:1</import-route-target>
    <export-route-target>65000:1</export-route-target></config>
  <interfaces>
    <interface><id>eth1.100</id>
      <config><id>eth1.100</id><interface>eth1</interface><subinterface>100</subinterface></config>
    </interface>
    <interface><id>eth1.200</id>
      <config><id>eth1.200</id><interface>eth1</interface><subinterface>200</subinterface></config>
    </interface>
  </interfaces>
</network-instance></network-instances>
<qos xmlns="{QOS}"><interfaces>
  <interface><interface-id>eth1.100</interface-id>
    <config><interface-id>eth1.100</interface-id><class>expedited</class>
      <bandwidth-bps>200000000</bandwidth-bps></config></interface>
  <interface><interface-id>eth1.200</interface-id>
    <config><interface-id>eth1.200</interface-id><class>assured</class>
      <bandwidth-bps>300000000</bandwidth-bps></config></interface>
</interfaces></qos>
"""

# The same service as gNMI updates: entries and containers as JSON trees.
SERVICE_GNMI: list[tuple[str, Any]] = [
    (
        "/interfaces/interface[name=eth1]/subinterfaces",
        {
            "subinterface": [
                {
                    "index": index,
                    "config": {"index": index, "description": f"acme site {site}"},
                    "vlan": {"config": {"vlan-id": index}},
                    "ipv4": {
                        "addresses": {
                            "address": [
                                {"ip": ip, "config": {"ip": ip, "prefix-length": 30}},
                            ]
                        }
                    },
                }
                for index, site, ip in ((100, "A", "10.0.0.1"), (200, "B", "10.0.1.1"))
            ]
        },
    ),
    (
        f"/{ACME}",
        {
            "config": {
                "name": "acme",
                "type": "L3VRF",
                "description": "customer acme",
                "route-distinguisher": "65000:1",
                "import-route-target": "65000:1",
                "export-route-target": "65000:1",
            },
            "interfaces": {
                "interface": [
                    {"id": f"eth1.{i}", "config": {"interface": "eth1", "subinterface": i}}
                    for i in (100, 200)
                ]
            },
        },
    ),
    (
        "/qos/interfaces/interface[interface-id=eth1.100]/config",
        {"class": "expedited", "bandwidth-bps": 200_000_000},
    ),
    (
        "/qos/interfaces/interface[interface-id=eth1.200]/config",
        {"class": "assured", "bandwidth-bps": 300_000_000},
    ),
]

# `show running-config` lines of the service, in the order the device prints them.
SERVICE_CLI = [
    f"set {SUB100}/config/index 100",
    f"set {SUB100}/config/description 'acme site A'",
    f"set {SUB100}/vlan/config/vlan-id 100",
    f"set {SUB100}/ipv4/addresses/address[ip=10.0.0.1]/config/ip 10.0.0.1",
    f"set {SUB100}/ipv4/addresses/address[ip=10.0.0.1]/config/prefix-length 30",
    f"set {SUB200}/config/index 200",
    f"set {SUB200}/config/description 'acme site B'",
    f"set {SUB200}/vlan/config/vlan-id 200",
    f"set {SUB200}/ipv4/addresses/address[ip=10.0.1.1]/config/ip 10.0.1.1",
    f"set {SUB200}/ipv4/addresses/address[ip=10.0.1.1]/config/prefix-length 30",
    "set interfaces/interface[name=eth2]/config/name eth2",
    f"set {ACME}/config/name acme",
    f"set {ACME}/config/type L3VRF",
    f"set {ACME}/config/description 'customer acme'",
    f"set {ACME}/config/route-distinguisher 65000:1",
    f"set {ACME}/config/import-route-target 65000:1",
    f"set {ACME}/config/export-route-target 65000:1",
    f"set {ACME}/interfaces/interface[id=eth1.100]/config/id eth1.100",
    f"set {ACME}/interfaces/interface[id=eth1.100]/config/interface eth1",
    f"set {ACME}/interfaces/interface[id=eth1.100]/config/subinterface 100",
    f"set {ACME}/interfaces/interface[id=eth1.200]/config/id eth1.200",
    f"set {ACME}/interfaces/interface[id=eth1.200]/config/interface eth1",
    f"set {ACME}/interfaces/interface[id=eth1.200]/config/subinterface 200",
    "set qos/interfaces/interface[interface-id=eth1.100]/config/interface-id eth1.100",
    "set qos/interfaces/interface[interface-id=eth1.100]/config/class expedited",
    "set qos/interfaces/interface[interface-id=eth1.100]/config/bandwidth-bps 200000000",
    "set qos/interfaces/interface[interface-id=eth1.200]/config/interface-id eth1.200",
    "set qos/interfaces/interface[interface-id=eth1.200]/config/class assured",
    "set qos/interfaces/interface[interface-id=eth1.200]/config/bandwidth-bps 300000000",
]


@dataclass
class Drivers:
    netconf: NetconfDriver
    gnmi: GnmiDriver
    cli: CliDriver


@pytest.fixture
async def drivers() -> AsyncIterator[Drivers]:
    async with NetconfDriver() as netconf, GnmiDriver() as gnmi, CliDriver() as cli:
        yield Drivers(netconf, gnmi, cli)


def target(lab: RunningLab, protocol: Protocol, timeout_s: float = 10, node: str = "r1") -> Target:
    device = Device(
        name=node,
        platform="lab-sim",
        mgmt_address=lab.address(node),
        credentials_ref=f"file:{lab.lab.credentials_file}",
    )
    port = getattr(lab.lab.ports, protocol)
    return target_for(device, protocol, port=port, allowed=LOOPBACK, timeout_s=timeout_s)


def leaf_xml(path: str, value: Any) -> str:
    """One leaf as edit-config XML: `a/b[k=v]/c` -> `<a xmlns=..><b><k>v</k><c>value</c></b></a>`
    (the test's own small builder, independent of the device's)."""
    parts = path.split("/")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    xml = f"<{parts[-1]}>{text}</{parts[-1]}>"
    for part in reversed(parts[:-1]):
        name, _, key = part.partition("[")
        inner = ""
        if key:
            key_name, _, key_value = key.rstrip("]").partition("=")
            inner = f"<{key_name}>{key_value}</{key_name}>"
        xml = f"<{name}>{inner}{xml}</{name}>"
    top = parts[0].split("[")[0]
    return xml.replace(f"<{top}>", f'<{top} xmlns="{NS[top]}">', 1)


def running(lab: RunningLab, node: str = "r1") -> dict[str, Any]:
    return lab.call(lambda: dict(lab.lab.nodes[node].device.running))


# --- reading the service back, one check per protocol -------------------------------------------


def assert_netconf_has_service(replies: list[str]) -> None:
    data = ET.Element("data")
    for reply in replies:  # one <data> per filter: the driver sends one top element each
        data.extend(ET.fromstring(reply))
    sub = f"{{{IF}}}interfaces/{{{IF}}}interface/{{{IF}}}subinterfaces/{{{IF}}}subinterface"
    subs = {e.findtext(f"{{{IF}}}index"): e for e in data.findall(sub)}
    assert set(subs) == {"100", "200"}
    assert subs["100"].findtext(f"{{{IF}}}vlan/{{{IF}}}config/{{{IF}}}vlan-id") == "100"
    assert subs["200"].findtext(f"{{{IF}}}config/{{{IF}}}description") == "acme site B"
    address = subs["200"].find(f".//{{{IF}}}address")
    assert address is not None
    assert address.findtext(f"{{{IF}}}ip") == "10.0.1.1"
    assert address.findtext(f"{{{IF}}}config/{{{IF}}}prefix-length") == "30"
    vrf = data.find(f"{{{NI}}}network-instances/{{{NI}}}network-instance")
    assert vrf is not None and vrf.findtext(f"{{{NI}}}name") == "acme"
    assert vrf.findtext(f"{{{NI}}}config/{{{NI}}}type") == "L3VRF"
    assert vrf.findtext(f"{{{NI}}}config/{{{NI}}}route-distinguisher") == "65000:1"
    members = [
        (e.findtext(f"{{{NI}}}id"), e.findtext(f"{{{NI}}}config/{{{NI}}}subinterface"))
        for e in vrf.findall(f"{{{NI}}}interfaces/{{{NI}}}interface")
    ]
    assert members == [("eth1.100", "100"), ("eth1.200", "200")]
    qos = {
        e.findtext(f"{{{QOS}}}interface-id"): (
            e.findtext(f"{{{QOS}}}config/{{{QOS}}}class"),
            e.findtext(f"{{{QOS}}}config/{{{QOS}}}bandwidth-bps"),
        )
        for e in data.findall(f"{{{QOS}}}qos/{{{QOS}}}interfaces/{{{QOS}}}interface")
    }
    assert qos == {"eth1.100": ("expedited", "200000000"), "eth1.200": ("assured", "300000000")}


async def read_back_netconf(lab: RunningLab, drivers: Drivers) -> None:
    filters = [
        f'<interfaces xmlns="{IF}"><interface><name>eth1</name><subinterfaces/></interface>'
        "</interfaces>",
        f'<network-instances xmlns="{NI}"/>',
        f'<qos xmlns="{QOS}"><interfaces><interface><config/></interface></interfaces></qos>',
    ]
    async with drivers.netconf.connect(target(lab, "netconf")) as nc:
        replies = [await nc.get_config("running", filter=f) for f in filters]
        everything = await nc.get("/network-instances//*", filter_type="xpath")
    assert_netconf_has_service(replies)
    tops = [[child.tag for child in ET.fromstring(reply)] for reply in replies]
    assert tops == [[f"{{{IF}}}interfaces"], [f"{{{NI}}}network-instances"], [f"{{{QOS}}}qos"]]
    assert_netconf_has_service([replies[0], everything, replies[2]])


async def read_back_gnmi(lab: RunningLab, drivers: Drivers) -> None:
    async with drivers.gnmi.connect(target(lab, "gnmi")) as g:
        got = await g.get([f"/{ACME}", f"/{SUB200}", "/qos/interfaces"], datatype="config")
    assert got[ACME] == {
        "config": {
            "name": "acme",
            "type": "L3VRF",
            "description": "customer acme",
            "route-distinguisher": "65000:1",
            "import-route-target": "65000:1",
            "export-route-target": "65000:1",
        },
        "interfaces": {
            "interface": [
                {"id": f"eth1.{i}", "config": {"id": f"eth1.{i}", "interface": "eth1",
                                               "subinterface": i}}
                for i in (100, 200)
            ]
        },
    }  # fmt: skip
    assert got[SUB200] == {
        "config": {"index": 200, "description": "acme site B"},
        "vlan": {"config": {"vlan-id": 200}},
        "ipv4": {
            "addresses": {
                "address": [{"ip": "10.0.1.1", "config": {"ip": "10.0.1.1", "prefix-length": 30}}]
            }
        },
    }
    assert got["qos/interfaces"] == {
        "interface": [
            {
                "interface-id": "eth1.100",
                "config": {
                    "interface-id": "eth1.100",
                    "class": "expedited",
                    "bandwidth-bps": 200_000_000,
                },
            },
            {
                "interface-id": "eth1.200",
                "config": {
                    "interface-id": "eth1.200",
                    "class": "assured",
                    "bandwidth-bps": 300_000_000,
                },
            },
        ]
    }


async def read_back_cli(lab: RunningLab, drivers: Drivers) -> None:
    async with drivers.cli.connect(target(lab, "cli")) as c:
        config = str(await c.send_command("show running-config"))
    lines = config.splitlines()
    service = [line for line in lines if line in SERVICE_CLI]
    assert service == SERVICE_CLI  # all there, in the device's stable order


# --- creating it over each protocol -------------------------------------------------------------


async def test_service_by_netconf_is_read_by_gnmi_and_cli(
    lab: RunningLab, drivers: Drivers
) -> None:
    async with drivers.netconf.connect(target(lab, "netconf")) as nc, nc.locked("candidate"):
        await nc.edit_config(SERVICE_XML, target="candidate")
        await nc.validate()
        await nc.commit()
    await read_back_gnmi(lab, drivers)
    await read_back_cli(lab, drivers)
    await read_back_netconf(lab, drivers)


async def test_service_by_gnmi_is_read_by_netconf_and_cli(
    lab: RunningLab, drivers: Drivers
) -> None:
    async with drivers.gnmi.connect(target(lab, "gnmi")) as g:
        await g.set(update=SERVICE_GNMI)
    await read_back_netconf(lab, drivers)
    await read_back_cli(lab, drivers)
    await read_back_gnmi(lab, drivers)


async def test_service_by_cli_is_read_by_netconf_and_gnmi(
    lab: RunningLab, drivers: Drivers
) -> None:
    # Pasted in the order `show running-config` prints, each line applied (and validated) alone.
    lines = [line for line in SERVICE_CLI if "eth2" not in line]
    async with drivers.cli.connect(target(lab, "cli")) as c:
        echo = await c.send_config_set(lines, error_pattern="error:")
    assert "error" not in echo
    await read_back_netconf(lab, drivers)
    await read_back_gnmi(lab, drivers)
    await read_back_cli(lab, drivers)


async def test_show_running_config_pastes_back(lab: RunningLab, drivers: Drivers) -> None:
    """The full `show running-config` of one device, pasted into another, makes the same
    configuration there."""
    async with drivers.gnmi.connect(target(lab, "gnmi")) as g:
        await g.set(update=SERVICE_GNMI)
    async with drivers.cli.connect(target(lab, "cli")) as c:
        config = str(await c.send_command("show running-config"))
    async with drivers.cli.connect(target(lab, "cli", node="r2")) as c:
        echo = await c.send_config_set(config.splitlines(), error_pattern="error:")
        again = str(await c.send_command("show running-config"))
    assert "error" not in echo
    assert again == config
    assert running(lab, "r2") == running(lab, "r1")


# --- validation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One change the device must refuse with the base service in place."""

    path: str
    value: Any
    tag: str
    message: str  # part of the error message
    error_path: str  # part of the error-path
    gnmi: str | None = None  # gNMI's whole answer, when its own path check refuses first


REFUSALS = {
    "parent interface missing": Refusal(
        "interfaces/interface[name=eth9]/subinterfaces/subinterface[index=1]/config/description",
        "x",
        "invalid-value",
        "interface 'eth9' does not exist on r1",
        "oc-if:interface[oc-if:name='eth9']",
        gnmi="INVALID_ARGUMENT: /interfaces/interface[name=eth9]/subinterfaces"
        "/subinterface[index=1]/config/description: no interface eth9",
    ),
    "vlan-id reused on one parent": Refusal(
        "interfaces/interface[name=eth1]/subinterfaces/subinterface[index=300]/vlan/config/vlan-id",
        100,
        "operation-failed",
        "vlan-id 100 is used by subinterfaces 100 and 300 of eth1",
        "oc-if:subinterface[oc-if:index='300']/oc-if:vlan/oc-if:config/oc-if:vlan-id",
    ),
    "network-instance names a missing subinterface": Refusal(
        f"{ACME}/interfaces/interface[id=eth1.999]/config/interface",
        "eth1",
        "data-missing",
        "network-instance acme: interface eth1.999 names subinterface 999 of eth1, which does"
        " not exist",
        "oc-netinst:interface[oc-netinst:id='eth1.999']",
    ),
    "network-instance leaves disagree with the id": Refusal(
        f"{ACME}/interfaces/interface[id=eth1.100]/config/subinterface",
        7,
        "operation-failed",
        "network-instance acme: interface eth1.100: subinterface 7 does not match the id"
        " (expected 100)",
        "oc-netinst:config/oc-netinst:subinterface",
    ),
    "subinterface in two network-instances": Refusal(
        "network-instances/network-instance[name=beta]/interfaces/interface[id=eth1.100]"
        "/config/interface",
        "eth1",
        "operation-failed",
        "subinterface eth1.100 is already in network-instance acme; it cannot also be in beta",
        "oc-netinst:network-instance[oc-netinst:name='beta']",
    ),
    "route-distinguisher reused": Refusal(
        "network-instances/network-instance[name=beta]/config/route-distinguisher",
        "65000:1",
        "operation-failed",
        "route-distinguisher 65000:1 is used by network-instances acme and beta",
        "[oc-netinst:name='beta']/oc-netinst:config/oc-netinst:route-distinguisher",
    ),
    "qos names a missing subinterface": Refusal(
        "qos/interfaces/interface[interface-id=eth2.5]/config/class",
        "assured",
        "data-missing",
        "qos interface eth2.5 names subinterface 5 of eth2, which does not exist",
        "oc-qos:interface[oc-qos:interface-id='eth2.5']",
    ),
    "qos bandwidth above the interface speed": Refusal(
        "qos/interfaces/interface[interface-id=eth1.100]/config/bandwidth-bps",
        9_900_000_000,
        "operation-failed",
        "qos bandwidth on eth1 adds up to 10200000000 bps (eth1.100 + eth1.200), more than its"
        " speed of 10000000000 bps",
        # the entry at which the sum (in entry order) first exceeds the speed
        "[oc-qos:interface-id='eth1.200']/oc-qos:config/oc-qos:bandwidth-bps",
    ),
}


async def install_service(lab: RunningLab, drivers: Drivers) -> dict[str, Any]:
    async with drivers.gnmi.connect(target(lab, "gnmi")) as g:
        await g.set(update=SERVICE_GNMI)
    return running(lab)


async def test_netconf_validation_refusals(lab: RunningLab, drivers: Drivers) -> None:
    before = await install_service(lab, drivers)
    async with drivers.netconf.connect(target(lab, "netconf")) as nc:
        for name, refusal in REFUSALS.items():
            # The candidate takes the edit (structure and types are fine); validate refuses it.
            await nc.edit_config(leaf_xml(refusal.path, refusal.value), target="candidate")
            with pytest.raises(RpcError) as refused:
                await nc.validate()
            error = refused.value.device_error or ""
            assert error.startswith(f"{refusal.tag}: {refusal.message}"), name
            assert refusal.error_path in error, name
            with pytest.raises(RpcError):
                await nc.commit()
            await nc.discard_changes()
            # Running refuses the same edit at once.
            with pytest.raises(RpcError, match=refusal.tag):
                await nc.edit_config(leaf_xml(refusal.path, refusal.value), target="running")
    assert running(lab) == before


async def test_gnmi_validation_refusals(lab: RunningLab, drivers: Drivers) -> None:
    before = await install_service(lab, drivers)
    async with drivers.gnmi.connect(target(lab, "gnmi")) as g:
        for name, refusal in REFUSALS.items():
            with pytest.raises(RpcError) as refused:
                # with a harmless edit in the same request: all or nothing
                await g.set(
                    update=[
                        (f"/{SUB100}/config/description", "changed"),
                        (f"/{refusal.path}", refusal.value),
                    ]
                )
            error = refused.value.device_error or ""
            if refusal.gnmi is not None:
                assert error == refusal.gnmi
                continue
            assert error.startswith(f"INVALID_ARGUMENT: {refusal.tag}: {refusal.message}"), name
            assert refusal.error_path in error, name
    assert running(lab) == before


async def test_cli_validation_refusals(lab: RunningLab, drivers: Drivers) -> None:
    before = await install_service(lab, drivers)
    async with drivers.cli.connect(target(lab, "cli")) as c:
        for name, refusal in REFUSALS.items():
            line = f"set {refusal.path} {refusal.value}"
            echo = await c.send_config_set([line])
            assert f"error: {refusal.message}" in echo, name
            assert refusal.error_path in echo, name
            with pytest.raises(RpcError):  # what a caller that watches for errors gets
                await c.send_config_set([line], error_pattern="error:")
    assert running(lab) == before


async def test_type_and_range_refusals(lab: RunningLab, drivers: Drivers) -> None:
    before = running(lab)
    async with drivers.cli.connect(target(lab, "cli")) as c:
        for line, expected in (
            (f"set {SUB100}/vlan/config/vlan-id 4095", "vlan-id 4095 is out of range 1..4094"),
            (f"set {SUB100}/vlan/config/vlan-id ten", "'ten' is not an integer"),
            (f"set {ACME}/config/type L3VPN", "'L3VPN' is not one of L3VRF, L2P2P"),
            (f"set {ACME}/config/route-distinguisher 65000", "is not in the form ASN:NN"),
            (
                f"set {SUB100}/ipv4/addresses/address[ip=10.0.0.300]/config/prefix-length 24",
                "ip '10.0.0.300' is not an IPv4 address",
            ),
            (f"set {SUB100}/ipv4/addresses/address[ip=10.0.0.1]/config/prefix-length 33", "33"),
            (f"set {SUB100}/bogus 1", "unknown element 'bogus' in subinterface"),
            (f"set {SUB100}/vlan 1", "is not a leaf"),
        ):
            echo = await c.send_config_set([line])
            assert "error:" in echo and expected in echo, line
    async with drivers.gnmi.connect(target(lab, "gnmi")) as g:
        with pytest.raises(RpcError, match="expected int, got str"):
            await g.set(update=[(f"/{SUB100}/vlan/config/vlan-id", "ten")])
        with pytest.raises(RpcError, match="state is read-only"):
            await g.set(update=[(f"/{SUB100}/state/description", "x")])
    async with drivers.netconf.connect(target(lab, "netconf")) as nc:
        wrong_ns = leaf_xml(f"{ACME}/config/type", "L3VRF").replace(NI, IF)
        with pytest.raises(RpcError, match="unknown-namespace"):
            await nc.edit_config(wrong_ns, target="candidate")
        with pytest.raises(RpcError, match="not one of L3VRF, L2P2P"):
            await nc.edit_config(leaf_xml(f"{ACME}/config/type", "L3VPN"), target="candidate")
    assert running(lab) == before


# --- deletes -------------------------------------------------------------------------------------


async def test_deletes_of_entries_over_each_protocol(lab: RunningLab, drivers: Drivers) -> None:
    await install_service(lab, drivers)
    entry_200 = (
        f'<interfaces xmlns="{IF}"><interface><name>eth1</name><subinterfaces>'
        "<subinterface><index>200</index></subinterface></subinterfaces></interface></interfaces>"
    )
    async with drivers.netconf.connect(target(lab, "netconf")) as nc:
        # Still used by the VRF and by qos: refused, and nothing changes.
        with pytest.raises(RpcError) as refused:
            await nc.edit_config(entry_200, target="running", operation="delete")
        assert "data-missing: network-instance acme: interface eth1.200 names subinterface" in (
            refused.value.device_error or ""
        )
        # The entry with everything that refers to it, in one edit.
        await nc.edit_config(
            entry_200
            + f'<network-instances xmlns="{NI}"><network-instance><name>acme</name><interfaces>'
            "<interface><id>eth1.200</id></interface></interfaces></network-instance>"
            f'</network-instances><qos xmlns="{QOS}"><interfaces><interface>'
            "<interface-id>eth1.200</interface-id></interface></interfaces></qos>",
            target="candidate",
            operation="delete",
        )
        await nc.commit()
        # Deleting what is gone is data-missing; removing it is a no-op.
        with pytest.raises(RpcError, match="data-missing"):
            await nc.edit_config(entry_200, target="running", operation="delete")
        remove = entry_200.replace(
            "<subinterface>", f'<subinterface xmlns:nc="{NC}" nc:operation="remove">'
        )
        await nc.edit_config(remove, target="running", operation="none")
    assert not [p for p in running(lab) if "200" in p]  # every leaf below the entries is gone

    async with drivers.gnmi.connect(target(lab, "gnmi")) as g:
        with pytest.raises(RpcError, match="NOT_FOUND"):
            await g.get([f"/{SUB200}"])
        members = await g.get([f"/{ACME}/interfaces"], datatype="config")
        assert [e["id"] for e in members[f"{ACME}/interfaces"]["interface"]] == ["eth1.100"]
        # A gNMI delete of a container removes the subtree.
        await g.set(delete=["/qos/interfaces"])
        with pytest.raises(RpcError, match="NOT_FOUND"):
            await g.get(["/qos"])

    async with drivers.cli.connect(target(lab, "cli")) as c:
        await c.send_config_set([f"delete {ACME}"], error_pattern="error:")
        echo = await c.send_config_set([f"delete {ACME}"])
        assert f"error: {ACME} is not set" in echo
        await c.send_config_set([f"delete {SUB100}"], error_pattern="error:")
        config = str(await c.send_command("show running-config"))
    assert "network-instance" not in config and "subinterface" not in config
    assert "set interfaces/interface[name=eth1]/config/mtu 1500" in config  # the rest stays


async def test_confirmed_commit_with_persist_and_cancel_on_the_new_trees(
    lab: RunningLab, drivers: Drivers
) -> None:
    await install_service(lab, drivers)
    before = running(lab)
    beta = (
        f'<network-instances xmlns="{NI}"><network-instance><name>beta</name><config>'
        "<type>L3VRF</type><route-distinguisher>65000:2</route-distinguisher></config>"
        "</network-instance></network-instances>"
    )
    async with drivers.netconf.connect(target(lab, "netconf")) as nc:
        await nc.edit_config(beta, target="candidate")
        await nc.edit_config(
            leaf_xml(f"{SUB100}/vlan/config/vlan-id", 101)
            + leaf_xml("qos/interfaces/interface[interface-id=eth1.100]/config/class", "assured"),
            target="candidate",
        )
        await nc.commit(confirmed=True, timeout_s=120, persist="tx-beta")
    after = running(lab)
    assert after["network-instances/network-instance[name=beta]/config/route-distinguisher"] == (
        "65000:2"
    )
    assert after[f"{SUB100}/vlan/config/vlan-id"] == 101
    async with drivers.gnmi.connect(target(lab, "gnmi")) as g:
        got = await g.get(["/network-instances/network-instance[name=beta]/config/type"])
    assert list(got.values()) == ["L3VRF"]
    # Another session (the pool's first one was closed with its connection) cancels it.
    async with NetconfDriver() as other, other.connect(target(lab, "netconf")) as nc:
        await nc.cancel_commit(persist_id="tx-beta")
    assert running(lab) == before


# --- the delay fault -----------------------------------------------------------------------------


async def test_reply_delay_times_out_every_driver(lab: RunningLab, drivers: Drivers) -> None:
    quick = {p: target(lab, p, timeout_s=1.0) for p in ("netconf", "gnmi", "cli")}
    async with (
        drivers.netconf.connect(quick["netconf"]) as nc,
        drivers.gnmi.connect(quick["gnmi"]) as g,
        drivers.cli.connect(quick["cli"]) as c,
    ):
        assert "acme" not in await nc.get_config("running")  # answers in time
        answer = lab.run(lab.lab.control({"op": "delay", "name": "r1", "seconds": 5}))
        assert answer["r1"] == 5.0 and answer["r2"] == 0.0
        try:
            with pytest.raises(DeviceTimeout):
                await nc.get_config("running")
            with pytest.raises(DeviceTimeout):
                await g.get(["/interfaces/interface[name=eth1]/config/mtu"])
            with pytest.raises(DeviceTimeout):
                await c.send_command("show version")
        finally:
            lab.call(lab.lab.set_delay, "r1", 0)
    # A Set is carried out at once; only its answer was late.
    async with drivers.gnmi.connect(target(lab, "gnmi", timeout_s=1.0)) as g:
        lab.call(lab.lab.set_delay, "r1", 5)
        try:
            with pytest.raises(DeviceTimeout):
                await g.set(update=[(f"/{SUB100}/config/description", "late")])
        finally:
            lab.call(lab.lab.set_delay, "r1", 0)
    assert running(lab)[f"{SUB100}/config/description"] == "late"
    # Other nodes never waited, and r1 answers in time again.
    async with drivers.gnmi.connect(target(lab, "gnmi", timeout_s=2.0)) as g:
        assert await g.get(["/interfaces/interface[name=eth1]/config/mtu"]) == {
            "interfaces/interface[name=eth1]/config/mtu": 1500
        }
    with pytest.raises(InvalidInput):
        lab.call(lab.lab.set_delay, "r1", -1)
    with pytest.raises(InvalidInput):
        lab.run(lab.lab.control({"op": "delay", "name": "r1", "seconds": "soon"}))

"""Fault injection seen the same way by every protocol, on both ends of the link (issue 3's
acceptance): ifOperStatus and linkDown/linkUp traps over SNMP, oper-status over NETCONF `get`
and over gNMI."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET

import pytest
from ncclient.transport.errors import SSHError

from oss.events import Event
from tests.integration.lab.conftest import IF_ALIAS, OC_NS, SYS_UPTIME, RunningLab

pytestmark = pytest.mark.integration

ENDS = ("r1:eth1", "r2:eth1")


def _netconf_oper_status(lab: RunningLab, endpoint: str) -> str | None:
    node, _, ifname = endpoint.partition(":")
    select = f"/interfaces/interface[name='{ifname}']/state/oper-status"
    with lab.netconf(node) as m:
        data = ET.fromstring(m.get(filter=("xpath", select)).data_xml.encode())
    return data.findtext(f".//{{{OC_NS}}}oper-status")


def _gnmi_oper_status(lab: RunningLab, endpoint: str) -> str:
    node, _, ifname = endpoint.partition(":")
    with lab.gnmi(node) as client:
        reply = client.get(path=[f"/interfaces/interface[name={ifname}]/state/oper-status"])
    (update,) = reply["notification"][0]["update"]
    return str(update["val"])


def _by_device(traps: list[Event]) -> dict[str, Event]:
    return {t.tags["device"]: t for t in traps}


def test_link_down_is_seen_on_both_ends_by_every_protocol(lab: RunningLab) -> None:
    lab.drain_traps()  # the coldStarts
    for end in ENDS:
        assert lab.oper_status(end) == "1"

    lab.set_link("r1:eth1", False)

    traps = _by_device(lab.next_traps(2))
    assert set(traps) == {lab.address("r1"), lab.address("r2")}  # one from each device
    for end in ENDS:
        trap = traps[lab.address(end.partition(":")[0])]
        index = lab.ifindex(end)
        assert trap.tags["trap"] == "linkDown"
        assert trap.tags["ifindex"] == str(index)
        assert trap.values[f"ifOperStatus.{index}"] == 2
        assert trap.values[f"ifAdminStatus.{index}"] == 1
        assert lab.oper_status(end) == "2"  # SNMP ifOperStatus down
        assert _netconf_oper_status(lab, end) == "DOWN"
        assert _gnmi_oper_status(lab, end) == "DOWN"
    # the rest of the ring is untouched
    assert lab.oper_status("r1:eth2") == "1"
    assert _netconf_oper_status(lab, "r3:eth1") == "UP"

    lab.set_link("r2:eth1", True)  # either end names the link

    traps = _by_device(lab.next_traps(2))
    assert {t.tags["trap"] for t in traps.values()} == {"linkUp"}
    assert set(traps) == {lab.address("r1"), lab.address("r2")}
    for end in ENDS:
        assert lab.oper_status(end) == "1"
        assert _gnmi_oper_status(lab, end) == "UP"


def test_node_down_stops_answering_and_neighbours_see_it(lab: RunningLab) -> None:
    lab.drain_traps()
    lab.set_node("r3", False)

    traps = _by_device(lab.next_traps(2))
    assert set(traps) == {lab.address("r2"), lab.address("r4")}  # r3 itself is silent
    assert all(t.tags["trap"] == "linkDown" for t in traps.values())
    assert lab.oper_status("r2:eth2") == "2"
    assert lab.oper_status("r4:eth1") == "2"
    assert _netconf_oper_status(lab, "r2:eth2") == "DOWN"

    for port in (lab.lab.ports.netconf, lab.lab.ports.cli, lab.lab.ports.gnmi):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((lab.address("r3"), port), timeout=2).close()
    with pytest.raises(SSHError):
        lab.netconf("r3")
    with pytest.raises(AssertionError, match=r"Timeout|No Response"):
        lab.snmp("snmpget", "r3", SYS_UPTIME, timeout=0.5)

    lab.set_node("r3", True)

    arrived = lab.next_traps(5)
    cold = [t for t in arrived if t.tags["trap"] == "coldStart"]
    assert [t.tags["device"] for t in cold] == [lab.address("r3")]  # it rebooted
    ups = {(t.tags["device"], t.tags["ifindex"]) for t in arrived if t.tags["trap"] == "linkUp"}
    assert ups == {
        (lab.address("r2"), "2"),
        (lab.address("r3"), "1"),
        (lab.address("r3"), "2"),
        (lab.address("r4"), "1"),
    }
    assert lab.oper_status("r3:eth1") == "1"
    assert _gnmi_oper_status(lab, "r3:eth2") == "UP"


def test_impairment_latency_and_loss(lab: RunningLab) -> None:
    lab.call(lab.lab.impair, "r4:eth2", latency_us=7000, loss=0.25)
    link = next(x for x in lab.call(lab.lab.status)["links"] if x["a"] == "r4:eth2")
    assert link["latency_us"] == 7000 and link["loss"] == 0.25
    for end in ("r4:eth2", "r1:eth2"):
        node, _, _ = end.partition(":")
        oid = f"1.3.6.1.2.1.2.2.1.13.{lab.ifindex(end)}"  # ifInDiscards: the lost packets
        # Loss applies to traffic from now on: wait (bounded) for some to be lost.
        deadline = time.monotonic() + 10
        while int(lab.snmp_values("snmpget", node, oid)[oid]) == 0:
            assert time.monotonic() < deadline, f"no discards on {end} after 10 s of 25% loss"
            time.sleep(0.2)


def test_config_pushed_by_netconf_reaches_the_other_protocols(lab: RunningLab) -> None:
    from tests.integration.lab.conftest import interface_xml

    lab.drain_traps()
    with lab.netconf("r2") as m:
        m.edit_config(target="candidate", config=interface_xml("eth2", enabled="false"))
        m.commit()
    assert lab.oper_status("r2:eth2") == "2"  # admin down
    assert lab.oper_status("r3:eth1") == "2"  # the far end lost the light
    traps = _by_device(lab.next_traps(2))
    assert traps[lab.address("r2")].values["ifAdminStatus.2"] == 2
    assert traps[lab.address("r3")].values["ifAdminStatus.1"] == 1
    assert _gnmi_oper_status(lab, "r2:eth2") == "DOWN"
    with lab.gnmi("r2") as client:
        reply = client.get(path=["/interfaces/interface[name=eth2]/config/enabled"])
    assert reply["notification"][0]["update"][0]["val"] is False
    assert lab.snmp_values("snmpget", "r2", f"{IF_ALIAS}.2") == {f"{IF_ALIAS}.2": ""}

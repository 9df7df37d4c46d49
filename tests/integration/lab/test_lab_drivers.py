"""The project's own four drivers against the simulated lab, through the whole chain an engineer
uses: an inventory device with the lab's `credentials_ref`, the lab-sim platform, `target_for`."""

from __future__ import annotations

import pytest

from drivers.base import Target
from drivers.cli import CliDriver
from drivers.gnmi import GnmiDriver
from drivers.netconf import NetconfDriver
from drivers.platforms import Protocol
from drivers.snmp import SnmpDriver
from oss.errors import RpcError
from tests.integration.lab.conftest import OC_NS, RunningLab
from topology.model import Device
from topology.targets import parse_networks, target_for

pytestmark = pytest.mark.integration

LOOPBACK = parse_networks(["127.0.0.0/8"])


def device(lab: RunningLab, name: str) -> Device:
    return Device(
        name=name,
        platform="lab-sim",
        mgmt_address=lab.address(name),
        credentials_ref=f"file:{lab.lab.credentials_file}",
    )


def target(lab: RunningLab, name: str, protocol: Protocol) -> Target:
    port = getattr(lab.lab.ports, protocol)
    return target_for(device(lab, name), protocol, port=port, allowed=LOOPBACK, timeout_s=10)


async def test_all_four_drivers_see_a_link_fault_and_share_config(lab: RunningLab) -> None:
    r1 = "r1"
    async with SnmpDriver() as snmp, GnmiDriver() as gnmi, CliDriver() as cli:
        netconf = NetconfDriver()
        try:
            # Config through NETCONF (candidate + confirmed commit + confirm) ...
            async with netconf.connect(target(lab, r1, "netconf")) as nc:
                await nc.edit_config(
                    f'<interfaces xmlns="{OC_NS}"><interface><name>eth2</name>'
                    "<config><name>eth2</name><description>to-r4 via driver</description>"
                    "</config></interface></interfaces>"
                )
                await nc.commit(confirmed=True, timeout_s=60)
                await nc.commit()
                with pytest.raises(RpcError, match=r"mtu|range"):
                    await nc.edit_config(
                        f'<interfaces xmlns="{OC_NS}"><interface><name>eth2</name>'
                        "<config><name>eth2</name><mtu>100</mtu></config></interface>"
                        "</interfaces>"
                    )
                    await nc.validate()
                await nc.discard_changes()
            # ... is seen through gNMI, the CLI and SNMP (ifAlias).
            async with gnmi.connect(target(lab, r1, "gnmi")) as g:
                got = await g.get(["interfaces/interface[name=eth2]/config/description"])
                assert "to-r4 via driver" in str(got)
            async with cli.connect(target(lab, r1, "cli")) as c:
                assert "to-r4 via driver" in await c.send_command("show running-config")
            async with snmp.connect(target(lab, r1, "snmp")) as s:
                events = {e.tags["interface"]: e for e in await s.interfaces()}
            assert events["eth2"].values["alias"] in ("to-r4 via driver", b"to-r4 via driver")
            assert events["eth1"].values["oper-status"] == "up"

            # A link fault is seen by the drivers on both ends.
            lab.set_link("r1:eth1", False)
            for name in ("r1", "r2"):
                async with snmp.connect(target(lab, name, "snmp")) as s:
                    events = {e.tags["interface"]: e for e in await s.interfaces()}
                assert events["eth1"].values["oper-status"] == "down"
                async with gnmi.connect(target(lab, name, "gnmi")) as g:
                    got = await g.get(["interfaces/interface[name=eth1]/state/oper-status"])
                assert "DOWN" in str(got)
                async with netconf.connect(target(lab, name, "netconf")) as nc:
                    state = await nc.get(
                        "/interfaces/interface[name='eth1']/state/oper-status",
                        filter_type="xpath",
                    )
                assert "DOWN" in state
        finally:
            await netconf.close()

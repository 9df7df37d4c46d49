"""The simulated device's SNMP agent (Net-SNMP tools, pysnmp) and SSH CLI (netmiko `linux`)."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)

from tests.integration.lab.conftest import (
    IF_ALIAS,
    OC_NS,
    SYS_UPTIME,
    RunningLab,
    interface_xml,
)

pytestmark = pytest.mark.integration

IF_TABLE = "1.3.6.1.2.1.2.2"
IFX_TABLE = "1.3.6.1.2.1.31.1.1"


def test_bulkwalk_if_tables(lab: RunningLab) -> None:
    if_table = lab.snmp_values("snmpbulkwalk", "r2", "-Cr25", IF_TABLE)
    assert if_table[f"{IF_TABLE}.1.2.1"] == "eth1"  # ifDescr
    assert if_table[f"{IF_TABLE}.1.2.2"] == "eth2"
    assert if_table[f"{IF_TABLE}.1.8.1"] == "1"  # ifOperStatus up
    assert if_table[f"{IF_TABLE}.1.5.1"] == "4294967295"  # ifSpeed of 10G: Gauge32 saturates
    assert int(if_table[f"{IF_TABLE}.1.10.1"]) < 2**32  # ifInOctets: 32 bits
    ifx_table = lab.snmp_values("snmpbulkwalk", "r2", IFX_TABLE)
    assert ifx_table[f"{IFX_TABLE}.1.1.2"] == "eth2"  # ifName
    assert ifx_table[f"{IFX_TABLE}.1.15.1"] == "10000"  # ifHighSpeed, Mbit/s
    assert {f"{IFX_TABLE}.1.{c}.1" for c in (6, 7, 10, 11, 18)} <= set(ifx_table)
    # counters advance
    before = int(ifx_table[f"{IFX_TABLE}.1.10.1"])
    after = lab.snmp_values("snmpget", "r2", f"{IFX_TABLE}.1.10.1")[f"{IFX_TABLE}.1.10.1"]
    assert int(after) > before


def test_get_uptime_and_missing_objects(lab: RunningLab) -> None:
    first = lab.snmp_values("snmpget", "r1", "-Ot", SYS_UPTIME)[SYS_UPTIME]
    time.sleep(0.05)
    values = lab.snmp_values(
        "snmpget", "r1", "-Ot", SYS_UPTIME, "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.5.1"
    )
    assert int(values[SYS_UPTIME]) > int(first)  # hundredths of a second since boot
    assert values["1.3.6.1.2.1.1.5.0"] == "r1"  # sysName
    assert "No Such Instance" in values["1.3.6.1.2.1.1.5.1"]


def test_wrong_community_gets_no_answer(lab: RunningLab) -> None:
    result = subprocess.run(
        ["snmpget", "-v2c", "-c", "not-the-community", "-t", "0.5", "-r", "0", "-m", "",
         lab.address("r1"), SYS_UPTIME],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Timeout" in result.stdout + result.stderr


def test_pysnmp_get(lab: RunningLab) -> None:
    async def query() -> list[tuple[str, str]]:
        engine = SnmpEngine()
        try:
            target = await UdpTransportTarget.create(
                (lab.address("r4"), lab.lab.ports.snmp), timeout=2, retries=0
            )
            error, status, _, varbinds = await get_cmd(
                engine,
                CommunityData(lab.community, mpModel=1),
                target,
                ContextData(),
                ObjectType(ObjectIdentity("1.3.6.1.2.1.1.5.0")),
                ObjectType(ObjectIdentity("1.3.6.1.2.1.31.1.1.1.1.2")),
            )
            assert error is None and not status
            return [(str(oid), value.prettyPrint()) for oid, value in varbinds]
        finally:
            engine.close_dispatcher()

    assert asyncio.run(query()) == [
        ("1.3.6.1.2.1.1.5.0", "r4"),
        ("1.3.6.1.2.1.31.1.1.1.1.2", "eth2"),
    ]


def test_set_alias_and_admin_status(lab: RunningLab) -> None:
    lab.drain_traps()  # coldStart of every node
    lab.snmp("snmpset", "r1", f"{IF_ALIAS}.1", "s", "to r2 eth1", "1.3.6.1.2.1.2.2.1.7.2", "i", "2")
    with lab.netconf("r1") as m:
        config = m.get_config(source="running").data_xml
    assert "<description>to r2 eth1</description>" in config
    assert lab.oper_status("r1:eth2") == "2"  # admin down takes oper down
    traps = {t.tags["device"]: t for t in lab.next_traps(2)}  # r1 and its neighbour r4
    assert {t.tags["trap"] for t in traps.values()} == {"linkDown"}
    assert traps[lab.address("r1")].values["ifAdminStatus.2"] == 2
    assert traps[lab.address("r4")].values["ifAdminStatus.2"] == 1  # r4:eth2, still enabled
    # read-only objects are refused
    refused = subprocess.run(
        ["snmpset", "-v2c", "-c", lab.community, "-m", "", "-t", "2", "-r", "0",
         lab.address("r1"), "1.3.6.1.2.1.1.5.0", "s", "renamed"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "notWritable" in refused.stdout + refused.stderr


def test_netmiko_cli_shows_and_configures(lab: RunningLab) -> None:
    conn = lab.netmiko("r2")
    try:
        interfaces = conn.send_command("show interfaces")
        assert "eth1" in interfaces and "eth2" in interfaces
        output = conn.send_config_set(
            [
                "set interfaces/interface[name=eth2]/config/description 'to r3 eth1'",
                "set interfaces/interface[name=eth1]/config/mtu 100",
            ]
        )
        assert "out of range 576..9216" in output
        running = conn.send_command("show running-config")
        assert "set interfaces/interface[name=eth2]/config/description 'to r3 eth1'" in running
        assert "config/mtu 100" not in running
        refused = conn.send_command("set interfaces/interface[name=eth1]/config/mtu 2000")
        assert "permission denied" in refused  # not in configuration mode
    finally:
        conn.disconnect()
    with lab.netconf("r2") as m:
        assert "<description>to r3 eth1</description>" in m.get_config(source="running").data_xml
    assert lab.snmp_values("snmpget", "r2", f"{IF_ALIAS}.2") == {f"{IF_ALIAS}.2": "to r3 eth1"}


def test_netconf_config_is_seen_by_cli_and_snmp(lab: RunningLab) -> None:
    with lab.netconf("r3") as m:
        m.edit_config(target="candidate", config=interface_xml("eth1", description="core-west"))
        m.commit()
    assert lab.snmp_values("snmpget", "r3", f"{IF_ALIAS}.1") == {f"{IF_ALIAS}.1": "core-west"}
    conn = lab.netmiko("r3")
    try:
        assert "core-west" in conn.send_command("show interfaces")
    finally:
        conn.disconnect()


def test_a_netconf_lock_keeps_cli_and_snmp_out(lab: RunningLab) -> None:
    with lab.netconf("r4") as m:
        m.lock("running")
        conn = lab.netmiko("r4")
        try:
            output = conn.send_config_set(
                ["set interfaces/interface[name=eth1]/config/description locked-out"]
            )
        finally:
            conn.disconnect()
        assert "locked by NETCONF session" in output
        refused = subprocess.run(
            ["snmpset", "-v2c", "-c", lab.community, "-m", "", "-t", "2", "-r", "0",
             lab.address("r4"), f"{IF_ALIAS}.1", "s", "locked-out"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert refused.returncode != 0
        m.unlock("running")
        assert f"{OC_NS}" in m.get_config(source="running").data_xml
        assert "locked-out" not in m.get_config(source="running").data_xml


@pytest.mark.parametrize("command", ["show version", "help", "show interface eth1"])
def test_cli_other_commands(lab: RunningLab, command: str) -> None:
    conn = lab.netmiko("r1")
    try:
        output = conn.send_command(command)
    finally:
        conn.disconnect()
    assert output.strip() and not output.startswith(("error", "-sh"))


def test_cli_exec_request(lab: RunningLab) -> None:
    """`ssh r1 show interfaces`: one command, no shell, its exit status."""
    import asyncssh

    async def run(command: str) -> tuple[str, int | None]:
        async with asyncssh.connect(
            lab.address("r1"),
            lab.lab.ports.cli,
            username=lab.username,
            password=lab.password,
            known_hosts=str(lab.lab.known_hosts_file),
            client_keys=None,
        ) as conn:
            result = await conn.run(command)
            return str(result.stdout), result.exit_status

    output, status = asyncio.run(run("show interfaces"))
    assert status == 0 and "eth2" in output
    output, status = asyncio.run(run("set interfaces/interface[name=eth1]/config/mtu 2000"))
    assert status == 1 and "permission denied" in output


def test_gnmi_set_honours_netconf_locks_and_validation(lab: RunningLab) -> None:
    path = "/interfaces/interface[name=eth1]/config"
    with lab.netconf("r3") as m:
        m.lock("running")
        with lab.gnmi("r3") as client, pytest.raises(Exception, match="locked by NETCONF"):
            client.set(update=[(path, {"description": "locked-out"})])
        m.unlock("running")
    with lab.gnmi("r3") as client:
        with pytest.raises(Exception, match="mtu"):
            client.set(update=[(path, {"mtu": 100})])  # outside 576..9216: refused whole
        client.set(update=[(path, {"description": "via-gnmi"})])
    with lab.netconf("r3") as m:
        running = m.get_config(source="running").data_xml
    assert "via-gnmi" in running and "locked-out" not in running

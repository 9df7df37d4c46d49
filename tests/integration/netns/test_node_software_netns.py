"""A node's software as a network engineer meets it, on a small lab of the IS-IS profile.

Three FRR routers in a line (r1 - r2 - r3) with `oss.lab-profile: frr-isis`; r1 (AS 65001) and
r2 (AS 65002) peer over their link because the link says `bgp: ebgp`; r3 has no AS number, so
no bgpd. Checked on the real daemons:
- IS-IS converges (r1 reaches r3's loopback through r2) and the eBGP session is Established,
  in vtysh and in the BGP4-MIB (bgpd's AgentX sub-agent, read through the node's snmpd);
- the lab's SSH login opens vtysh for that node only: a password login runs `show` commands,
  configures and `write memory` saves into the node's own file under the lab's state directory;
  a wrong password and root are refused.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from lab.netns.safety import assert_contained
from lab.netns.state import run_dir
from tests.peers.cluster import wait_for
from tests.peers.netns_lab import NetnsLab, netns_lab_unavailable, running_netns_lab

pytestmark = pytest.mark.integration

LINE = """\
name: line
topology:
  defaults: {kind: linux}
  nodes:
    r1: {labels: {oss.lab-profile: frr-isis, oss.bgp-asn: "65001"}}
    r2: {labels: {oss.lab-profile: frr-isis, oss.bgp-asn: "65002"}}
    r3: {labels: {oss.lab-profile: frr-isis}}
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
      vars: {capacity: 10G, bgp: ebgp}
    - endpoints: ["r2:eth2", "r3:eth1"]
      vars: {capacity: 10G}
"""
BGP_PEER_STATE = "1.3.6.1.2.1.15.3.1.2"  # BGP4-MIB bgpPeerState.<peer address>; 6: established


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsLab]:
    reason = netns_lab_unavailable()
    if reason is None and not Path("/usr/lib/frr/isisd").exists():
        reason = "no /usr/lib/frr/isisd (package frr)"
    if reason is not None:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("line-netns")
    topology = base / "line.clab.yml"
    topology.write_text(LINE)
    with running_netns_lab(topology, base / "lab") as lab:
        assert_contained(lab.plan)
        yield lab


def _ssh(lab: NetnsLab, node: str, password: str, user: str | None = None) -> paramiko.SSHClient:
    """A password login to the node's management address, from the management namespace."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # the lab's own fresh key
    lab.mgmt.call(
        client.connect,
        lab.plan.node(node).mgmt_address,
        22,
        user or lab.secrets.ssh_user,
        password,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def _run(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, _ = client.exec_command(command, timeout=15)
    return str(stdout.read().decode())


def test_the_ssh_login_is_vtysh_of_that_node_and_write_memory_saves_its_file(
    line: NetnsLab,
) -> None:
    client = _ssh(line, "r2", line.secrets.ssh_password)
    try:
        version = _run(client, "show version")
        assert "FRRouting" in version, version
        assert "hostname r2" in _run(client, "show running-config")
        # one exec, several lines: vtysh -c takes embedded newlines as separate commands
        _run(client, "configure terminal\ninterface eth2\ndescription to-r3-via-ssh\nend")
        assert "description to-r3-via-ssh" in _run(client, "show running-config")
        saved = _run(client, "write memory")
        assert "Configuration saved" in saved, saved
    finally:
        client.close()
    zebra_conf = run_dir(line.state_dir) / "r2" / "frr" / "zebra.conf"
    assert "description to-r3-via-ssh" in zebra_conf.read_text()
    with pytest.raises(paramiko.AuthenticationException):
        _ssh(line, "r2", line.secrets.ssh_password + "-wrong")
    with pytest.raises(paramiko.AuthenticationException):
        _ssh(line, "r2", line.secrets.ssh_password, user="root")


def _showing(lab: NetnsLab, node: str, command: str, needle: str) -> Callable[[], str | None]:
    def check() -> str | None:
        text = lab.vtysh(node, command)
        return text if needle in text else None

    return check


def test_the_ebgp_session_the_link_asks_for_is_established_also_in_the_bgp4_mib(
    line: NetnsLab,
) -> None:
    assert "bgpd" not in line.vtysh("r3", "show daemons")  # no AS number, no bgpd
    r2_link = line.plan.node("r2").interface("eth1").address.split("/")[0]
    session = wait_for(
        "r1's eBGP session with r2 established",
        _showing(line, "r1", f"show bgp neighbors {r2_link}", "BGP state = Established"),
    )
    assert "remote AS 65002" in session
    r2_loopback = f"{line.plan.node('r2').loopback}/32"
    wait_for(  # r2 announces its loopback
        "r2's loopback in r1's BGP table",
        _showing(line, "r1", f"show bgp ipv4 unicast {r2_loopback}", "65002"),
    )
    argv = ["snmpget", "-v2c", "-c", line.secrets.snmp_community, "-On", "-m", "", "-t", "2"]
    argv += [line.plan.node("r1").mgmt_address, f"{BGP_PEER_STATE}.{r2_link}"]
    done = line.mgmt.call(subprocess.run, argv, capture_output=True, text=True, timeout=15)
    assert done.stdout.strip().endswith("INTEGER: 6"), done.stdout + done.stderr


def test_isis_converges_r1_reaches_r3_through_r2(line: NetnsLab) -> None:
    r3 = f"{line.plan.node('r3').loopback}/32"
    route = wait_for(
        "r1's IS-IS route to r3's loopback",
        _showing(line, "r1", f"show ip route {r3}", '"isis"'),
    )
    r2_eth1 = line.plan.node("r2").interface("eth1").address.split("/")[0]
    assert f"* {r2_eth1}, via eth1" in route, route

"""A node's configuration files as its profile renders them (no daemon started)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lab.netns.node import check_lab
from lab.netns.plan import LabPlan, plan_lab
from lab.netns.profiles import load_profile
from lab.netns.render import (
    isis_net,
    link_cost,
    node_context,
    node_paths,
    render_configs,
)
from oss.errors import InvalidInput, TopologyFileError
from topology.clab import parse_clab

ROOT = Path(__file__).resolve().parents[3]
METRO = ROOT / "lab" / "topologies" / "metro.clab.yml"
COMMUNITY = "lab-community-under-test"


def _plan(text: str | None = None) -> LabPlan:
    source = METRO.read_text() if text is None else textwrap.dedent(text).lstrip("\n")
    return plan_lab(parse_clab(source, "t.clab.yml"), "oss-t1")


def _render(
    plan: LabPlan, name: str, profile: str = "frr", run_dir: Path = Path("/run/lab")
) -> dict[str, str]:
    node = plan.node(name)
    chosen = load_profile(profile)
    paths = node_paths(run_dir, node)
    context = node_context(
        plan,
        node,
        chosen,
        paths,
        community=COMMUNITY,
        ssh_user="osslab",
        trap_port=16299,
        frr_user="frr",
        iquery_user="oss-iq-test",
    )
    return render_configs(chosen, chosen.daemons_for(node.asn is not None), context)


def _section(text: str, header: str) -> str:
    """The lines of one `interface X` / `router Y` block of an FRR file."""
    lines = text.splitlines()
    start = lines.index(header)
    end = next(i for i in range(start, len(lines)) if lines[i] == "exit")
    return "\n".join(lines[start:end])


def test_ospf_every_link_point_to_point_quick_timers_cost_from_capacity() -> None:
    files = _render(_plan(), "agg1")
    assert set(files) == {
        "snmp/snmpd.conf",
        "frr/zebra.conf",
        "frr/staticd.conf",
        "frr/ospfd.conf",
        "lldp/lldpd.conf",
        "ssh/sshd_config",
        "frr/vtysh.conf",
    }  # no bgpd: agg1 has no AS number
    ospf = files["frr/ospfd.conf"]
    core = _section(ospf, "interface eth1")  # agg1:eth1 -- agg2:eth1, 100G
    assert " ip ospf network point-to-point" in core
    assert " ip ospf hello-interval 1" in core and " ip ospf dead-interval 3" in core
    assert " ip ospf cost 1" in core
    assert " ip ospf cost 10" in _section(ospf, "interface eth11")  # to acc1, 10G
    assert " ip ospf passive" in _section(ospf, "interface lo")
    assert " ospf router-id 10.255.0.1" in _section(ospf, "router ospf")
    zebra = files["frr/zebra.conf"]
    assert " ip address 10.255.0.1/32" in _section(zebra, "interface lo")
    assert " description to agg2:eth1" in _section(zebra, "interface eth1")
    assert "agentx" in zebra.splitlines() and "agentx" in ospf.splitlines()
    assert "no service integrated-vtysh-config" in files["frr/vtysh.conf"]


def test_snmpd_is_the_agentx_master_and_sends_link_traps_to_the_gateway() -> None:
    snmpd = _render(_plan(), "pe1", run_dir=Path("/run/lab"))["snmp/snmpd.conf"].splitlines()
    assert "agentaddress udp:172.20.20.4:161,udp:127.0.0.1:161" in snmpd
    assert "master agentx" in snmpd
    assert "agentXSocket unix:/run/lab/pe1/frr/agentx.sock" in snmpd
    assert f"rocommunity {COMMUNITY} 172.20.20.0/24" in snmpd
    assert f"trap2sink 172.20.20.1:16299 {COMMUNITY}" in snmpd
    assert "sysName pe1" in snmpd and "sysLocation north" in snmpd
    assert any(line.startswith("monitor -r 1 -S -e linkDownTrap") for line in snmpd)
    assert any(
        line.startswith("notificationEvent linkUpTrap 1.3.6.1.6.3.1.1.5.4") for line in snmpd
    )


def test_lldpd_and_sshd_are_per_node() -> None:
    files = _render(_plan(), "acc1")
    lldp = files["lldp/lldpd.conf"].splitlines()
    assert "configure lldp tx-interval 1" in lldp and "configure lldp tx-hold 3" in lldp
    assert "configure lldp portidsubtype ifname" in lldp
    assert "configure system hostname acc1" in lldp
    sshd = files["ssh/sshd_config"].splitlines()
    assert "ListenAddress 172.20.20.6" in sshd and "Port 22" in sshd
    assert "AllowUsers osslab" in sshd and "PasswordAuthentication yes" in sshd
    assert "HostKey /run/lab/acc1/ssh/host_key" in sshd
    assert "AllowTcpForwarding no" in sshd


BGP_LAB = """
name: bgp
topology:
  defaults: {kind: linux}
  nodes:
    r1: {labels: {oss.bgp-asn: "65001"}}
    r2: {labels: {oss.bgp-asn: "65002"}}
    r3: {labels: {oss.bgp-asn: "65001", oss.lab-profile: frr-isis}}
    r4: {}
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
      vars: {bgp: ebgp, ospf-cost: "7"}
    - endpoints: ["r1:eth2", "r3:eth1"]
      vars: {bgp: ibgp, capacity: 1G}
    - endpoints: ["r2:eth2", "r3:eth2"]
    - endpoints: ["r3:eth3", "r4:eth1"]
"""


def test_bgp_sessions_only_where_a_link_asks_ebgp_on_the_link_ibgp_on_loopbacks() -> None:
    plan = _plan(BGP_LAB)
    r1 = _render(plan, "r1")["frr/bgpd.conf"]
    router = _section(r1, "router bgp 65001")
    assert " bgp router-id 10.255.0.1" in router
    assert " neighbor 10.254.0.1 remote-as 65002" in router  # eBGP: r2's side of the link
    assert " no bgp ebgp-requires-policy" in router
    assert " neighbor 10.255.0.3 remote-as 65001" in router  # iBGP: r3's loopback
    assert " neighbor 10.255.0.3 update-source lo" in router
    assert "  network 10.255.0.1/32" in router
    # r2: the eBGP session, and none over its link to r3 (no `bgp` var there)
    r2 = _section(_render(plan, "r2")["frr/bgpd.conf"], "router bgp 65002")
    assert r2.count("remote-as") == 1
    # r4 has no AS number: no bgpd at all
    assert "frr/bgpd.conf" not in _render(plan, "r4")


def test_isis_profile_renders_isisd_with_a_net_from_the_loopback() -> None:
    plan = _plan(BGP_LAB)
    files = _render(plan, "r3", profile="frr-isis")
    assert "frr/ospfd.conf" not in files
    isis = files["frr/isisd.conf"]
    assert " net 49.0001.0102.5500.0003.00" in _section(isis, "router isis lab")
    eth1 = _section(isis, "interface eth1")  # r1 -- r3 is 1G: cost 100
    assert " isis network point-to-point" in eth1 and " isis metric 100" in eth1
    assert " isis passive" in _section(isis, "interface lo")


def test_link_cost_written_derived_or_default() -> None:
    plan = _plan(BGP_LAB)
    assert link_cost(plan.link("r1:eth1")) == 7  # ospf-cost var
    assert link_cost(plan.link("r1:eth2")) == 100  # 1G against a 100G reference
    assert link_cost(plan.link("r2:eth2")) == 10  # nothing said
    assert isis_net("10.255.0.12") == "49.0001.0102.5500.0012.00"


@pytest.mark.parametrize(
    ("vars_", "message"),
    [
        ('{ospf-cost: "0"}', "ospf-cost '0' is not 1..65535"),
        ("{bgp: ospf}", "bgp 'ospf' is not ebgp or ibgp"),
        ("{bgp: ibgp}", "bgp ibgp between different AS numbers"),
    ],
)
def test_bad_link_vars_are_named_with_the_link(vars_: str, message: str) -> None:
    plan = _plan(
        f"""
        name: bad
        topology:
          defaults: {{kind: linux}}
          nodes:
            r1: {{labels: {{oss.bgp-asn: "65001"}}}}
            r2: {{labels: {{oss.bgp-asn: "65002"}}}}
          links:
            - endpoints: ["r1:eth1", "r2:eth1"]
              vars: {vars_}
        """
    )
    with pytest.raises(InvalidInput, match="link r1:eth1 -- r2:eth1") as caught:
        _render(plan, "r1")
    assert message in str(caught.value)


def test_a_state_directory_too_deep_for_unix_sockets_is_refused() -> None:
    plan = _plan()
    with pytest.raises(InvalidInput, match="longer than Unix sockets allow"):
        node_paths(Path("/tmp/" + "d" * 90), plan.node("agg1"))


def test_check_lab_renders_every_node_before_anything_is_made(tmp_path: Path) -> None:
    check_lab(_plan(), tmp_path)  # metro: every node renders
    plan = _plan(BGP_LAB.replace("{bgp: ebgp,", "{bgp: isis,"))
    with pytest.raises(InvalidInput, match="bgp 'isis' is not ebgp or ibgp"):
        check_lab(plan, tmp_path)


def test_check_lab_names_every_bad_link_and_profile_with_its_file_line(tmp_path: Path) -> None:
    text = textwrap.dedent(BGP_LAB).lstrip("\n")
    text = text.replace("{bgp: ebgp,", "{bgp: isis,").replace(
        "r4: {}", "r4: {labels: {oss.lab-profile: nope}}"
    )
    text = text.replace(
        '- endpoints: ["r3:eth3", "r4:eth1"]',
        '- endpoints: ["r3:eth3", "r4:eth1"]\n      vars: {bgp: ebgp}',
    )
    topology = parse_clab(text, "bgp.clab.yml")
    plan = plan_lab(topology, "oss-t1")
    with pytest.raises(TopologyFileError) as caught:
        check_lab(plan, tmp_path, source=topology.source)
    found = [str(p) for p in caught.value.problems]
    folder = load_profile("frr").path.parent
    assert found == [
        "bgp.clab.yml:10: link r1:eth1 -- r2:eth1: bgp 'isis' is not ebgp or ibgp",
        "bgp.clab.yml:15: link r3:eth3 -- r4:eth1: bgp ebgp needs an oss.bgp-asn label on r4",
        f"bgp.clab.yml:8: node r4: node profile 'nope': no file {folder}/nope.yaml"
        " (profiles: frr, frr-isis)",
    ]

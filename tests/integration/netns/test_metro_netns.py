"""The metro topology as a namespace lab with real software (FRR, snmpd + AgentX, lldpd, sshd
in one network namespace per node), and `oss serve` inside the lab's management namespace.

One lab and one daemon for the module:
- the daemon imports metro, records the lab's nodes (platform frr, management address,
  loopback, the lab's credentials) and polls every node by SNMP: the interfaces' oper state and
  their traffic counters (LLDP and OSPF hellos move them) reach the API;
- LLDP neighbours read through the LLDP-MIB (lldpd's AgentX sub-agent, asked from the
  management namespace) are the topology's links;
- cutting agg1:eth3 (`ip link set eth3 down` on agg1: pe1's eth1 loses its carrier, as with a
  fibre cut) makes pe1's snmpd send a real linkDown: the link's root-cause alarm is raised from
  that trap, OSPF moves pe1's route to agg1's loopback from the direct link to the path via
  agg2, agg1 leaves pe1's LLDP neighbours; bringing it up clears the alarm, the route and the
  neighbour come back.
Everything that talks to a lab address runs inside a lab namespace; `assert_contained` checks
before the daemon starts that no namespace of the lab has a route out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.netns.nsenter import namespace_thread
from lab.netns.plan import LabPlan, plan_lab
from lab.netns.profiles import profile_of
from lab.netns.safety import assert_contained
from lab.netns.state import LabSecrets
from tests.peers.cluster import wait_for
from tests.peers.daemon import Daemon
from tests.peers.netns_lab import (
    NetnsLab,
    netns_lab_unavailable,
    new_prefix,
    running_netns_lab,
)
from tests.peers.ports import free_udp_port
from topology.clab import parse_clab

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
METRO = ROOT / "lab" / "topologies" / "metro.clab.yml"
LLDP_REM_SYSNAME = "1.0.8802.1.1.2.1.4.1.1.9"  # lldpRemSysName.<timeMark>.<localPort>.<index>
LLDP_REM_PORTID = "1.0.8802.1.1.2.1.4.1.1.7"
LLDP_LOC_PORTID = "1.0.8802.1.1.2.1.3.7.1.3"  # lldpLocPortId.<localPort>


@dataclass
class MetroLab:
    """The lab (tests.peers.netns_lab) and `oss serve` inside its management namespace."""

    lab: NetnsLab
    daemon: Daemon
    token: str = ""

    @property
    def plan(self) -> LabPlan:
        return self.lab.plan

    def api(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.lab.mgmt.call(
            httpx.request,
            method,
            self.daemon.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert reply.status_code < 300, reply.text
        return reply.json() if reply.content else None

    def snmpwalk(self, node: str, oid: str) -> dict[str, str]:
        """OID suffix -> value, asked from the management namespace as the daemon asks."""
        community = self.lab.secrets.snmp_community
        argv = ["snmpwalk", "-v2c", "-c", community, "-On", "-Oa", "-m", "", "-t", "2", "-r", "1"]
        argv += [self.plan.node(node).mgmt_address, oid]
        done = self.lab.mgmt.call(subprocess.run, argv, capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stderr
        rows = {}
        for line in done.stdout.splitlines():
            name, _, value = line.partition(" = ")
            if name.startswith(f".{oid}."):
                rows[name[len(oid) + 2 :]] = value.partition(": ")[2].strip('"')
        return rows

    def lldp_neighbours(self, *nodes: str) -> set[tuple[str, str, str, str]]:
        """(node, interface, neighbour, its interface) from each node's LLDP-MIB (lldpd's
        AgentX sub-agent), asked from the management namespace; every node without `nodes`."""
        found = set()
        for node in nodes or [n.name for n in self.plan.nodes]:
            local = self.snmpwalk(node, LLDP_LOC_PORTID)  # port number -> ifName
            names = self.snmpwalk(node, LLDP_REM_SYSNAME)
            ports = self.snmpwalk(node, LLDP_REM_PORTID)
            for index, sysname in names.items():
                port_num = index.split(".")[1]
                found.add((node, local[port_num], sysname, ports[index]))
        return found

    def alarms(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api("GET", "/tmf-api/alarm/v4/alarm?limit=1000")
        return found


def _daemon_env(plan: LabPlan, state_dir: Path, trap_port: int) -> dict[str, str]:
    community = LabSecrets.load(state_dir).snmp_community
    return {
        "OSS_DRIVERS__ALLOWED_NETWORKS": json.dumps([plan.mgmt_subnet]),
        "OSS_DRIVERS__CREDENTIALS_DIRS": json.dumps([str(state_dir)]),
        "OSS_ASSURANCE__TRAPS_HOST": plan.mgmt_gateway,
        "OSS_ASSURANCE__TRAPS_PORT": str(trap_port),
        "OSS_ASSURANCE__TRAP_COMMUNITIES": json.dumps([community]),
        "OSS_ASSURANCE__POLLING__INTERVAL_S": "2",
        "OSS_ASSURANCE__REFRESH_S": "0.5",
        "OSS_LOG__LEVEL": "WARNING",
    }


def _start_in_mgmt_once_it_exists(
    daemon: Daemon, plan: LabPlan, state_dir: Path, trap_port: int
) -> None:
    """`oss serve` in the management namespace as soon as its gateway address is there (the
    nodes' software is still starting): the daemon's start-up and the lab's overlap."""

    def gateway_up() -> bool:
        shown = subprocess.run(
            ["ip", "-n", plan.mgmt_namespace, "-brief", "address", "show"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return f"{plan.mgmt_gateway}/" in shown.stdout

    wait_for(f"{plan.mgmt_namespace} with the gateway {plan.mgmt_gateway}", gateway_up, 60)
    daemon.env = _daemon_env(plan, state_dir, trap_port)  # the lab's secrets exist by now
    inside = namespace_thread(plan.mgmt_namespace)
    try:
        inside.submit(daemon.start, wait=False).result()
    finally:
        inside.shutdown(wait=True)


@pytest.fixture(scope="module")
def metro(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetroLab]:
    reason = netns_lab_unavailable() or (
        "snmpwalk is missing (package snmp)" if shutil.which("snmpwalk") is None else None
    )
    if reason is not None:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("metro-netns")
    state_dir, prefix = base / "lab", new_prefix()
    plan = plan_lab(parse_clab(METRO.read_text(), str(METRO)), prefix, profile_of)
    trap_port = free_udp_port()  # the management namespace is new: any port is free there
    daemon = Daemon(base / "daemon", extra_args=["--topology", str(METRO)])
    with ThreadPoolExecutor(2) as early:
        token = early.submit(daemon.create_token, "operator")  # its database, meanwhile
        started = early.submit(_start_in_mgmt_once_it_exists, daemon, plan, state_dir, trap_port)
        try:
            with running_netns_lab(METRO, state_dir, trap_port=trap_port, prefix=prefix) as lab:
                assert_contained(lab.plan)  # before any traffic: no way out of the lab
                started.result()
                lab.mgmt.call(daemon.wait_ready, 90)
                metro = MetroLab(lab, daemon, token.result())
                lab.record_inventory(daemon.url, metro.token)  # as `oss lab up --netns` does
                yield metro
        finally:
            started.exception()  # it has ended: its process, if any, is ended below
            daemon.kill()


def _interfaces(lab: MetroLab) -> list[dict[str, Any]]:
    page = lab.api("GET", "/api/v1/interfaces?limit=1000")
    items: list[dict[str, Any]] = page["items"] if isinstance(page, dict) else page
    return items


def test_the_daemon_polls_every_node_by_snmp(metro: MetroLab) -> None:
    devices = {d["name"]: d for d in metro.api("GET", "/api/v1/devices?limit=100")["items"]}
    for node in metro.plan.nodes:
        assert devices[node.name]["platform"] == "frr"
        assert devices[node.name]["mgmt_address"] == node.mgmt_address
        assert devices[node.name]["loopback"] == node.loopback
    expected = {(n.name, i.name) for n in metro.plan.nodes for i in n.interfaces}

    def all_up() -> bool:
        states = {(i["device"], i["name"]): i.get("oper_state") for i in _interfaces(metro)}
        return all(states.get(key) == "up" for key in expected)

    wait_for("every data-plane interface oper-up from polling", all_up)

    moved: set[tuple[str, str]] = set()

    def moving() -> bool:
        # Live gauges from the last two polls (LLDP every second and OSPF hellos move the
        # counters; snmpd caches IF-MIB for a few seconds, so one poll may see no change).
        rates = _gauges(metro, "oss_interface_in_bps")
        moved.update(key for key, value in rates.items() if value > 0)
        return expected <= moved

    wait_for("an in-bps rate above 0 on every data-plane interface", moving)


def _gauges(metro: MetroLab, name: str) -> dict[tuple[str, str], float]:
    """(device, interface) -> value of one of the daemon's Prometheus gauges (/metrics)."""
    reply = metro.lab.mgmt.call(httpx.get, metro.daemon.url + "/metrics", timeout=10)
    assert reply.status_code == 200, reply.text
    pattern = re.compile(rf'^{name}{{device="([^"]+)",interface="([^"]+)"}} (\S+)$', re.M)
    return {(m[1], m[2]): float(m[3]) for m in pattern.finditer(reply.text)}


def test_lldp_neighbours_through_the_lldp_mib_are_the_topology(metro: MetroLab) -> None:
    expected = {
        (end[0], end[1], far[0], far[1])
        for link in metro.plan.links
        for end, far in (link.ends(), link.ends()[::-1])
    }

    assert len(expected) == 2 * len(metro.plan.links)  # every link seen from both ends
    wait_for("every link's both ends in the LLDP-MIB", lambda: metro.lldp_neighbours() == expected)


def _next_hop(lab: NetnsLab, node: str, prefix: str) -> tuple[str, str] | None:
    """The (address, interface) the node forwards `prefix` to, from `show ip route`."""
    text = lab.vtysh(node, f"show ip route {prefix}")
    match = re.search(r"\* (\d+\.\d+\.\d+\.\d+), via (\S+)", text)
    return (match.group(1), match.group(2).rstrip(",")) if match else None


def _via(lab: MetroLab, prefix: str, interface: str) -> Callable[[], tuple[str, str] | None]:
    """pe1's next hop for `prefix` once it leaves through `interface`."""

    def check() -> tuple[str, str] | None:
        hop = _next_hop(lab.lab, "pe1", prefix)
        return hop if hop is not None and hop[1] == interface else None

    return check


def test_a_link_cut_raises_the_root_cause_from_the_real_trap_and_ospf_reroutes(
    metro: MetroLab,
) -> None:
    agg1 = metro.plan.node("agg1")
    loopback = f"{agg1.loopback}/32"
    wait_for(
        "pe1's OSPF route to agg1's loopback",
        lambda: "ospf" in metro.lab.vtysh("pe1", f"show ip route {loopback}"),
    )
    # Converged: the route may come first via agg2, whose adjacency formed first.
    wait_for("pe1:eth1 -- agg1:eth3 (cost 1) as the best path", _via(metro, loopback, "eth1"))
    link = next(
        li
        for li in metro.api("GET", "/api/v1/links?limit=100")["items"]
        if {
            f"{li['a']['device']}:{li['a']['interface']}",
            f"{li['b']['device']}:{li['b']['interface']}",
        }
        == {"pe1:eth1", "agg1:eth3"}
    )
    # A start under load may leave an alarm of its own (a poll timing out, a link's first
    # carrier): it clears once the lab answers; one that stays open fails here, named.
    still_open: list[dict[str, Any]] = []

    def no_open_alarm() -> bool:
        still_open[:] = [a for a in metro.alarms() if a["state"] != "cleared"]
        return not still_open

    try:
        wait_for("no open alarm before the cut", no_open_alarm, 60)
    except AssertionError as failed:
        raise AssertionError(f"{failed}: {still_open}") from None

    metro.lab.fault_link("agg1:eth3", "down")  # ip link on agg1's end: pe1:eth1 loses carrier

    def root() -> dict[str, Any] | None:
        for alarm in metro.alarms():
            if alarm.get("isRootCause") and alarm["state"] != "cleared":
                return alarm
        return None

    raised = wait_for("the link's root-cause alarm", root)
    assert str(link["id"]) in json.dumps(raised["alarmedObject"]), raised
    child = wait_for(
        "pe1:eth1's alarm under the root",
        lambda: next((a for a in metro.alarms() if a["alarmedObject"]["id"] == "pe1:eth1"), None),
    )
    assert "source=trap" in child.get("alarmDetails", ""), child  # the real linkDown, not a poll
    root_now = metro.api("GET", f"/tmf-api/alarm/v4/alarm/{raised['id']}")
    assert str(child["id"]) in json.dumps(root_now.get("correlatedAlarm", [])), root_now
    rerouted = wait_for("OSPF moves pe1's route to agg1 via agg2", _via(metro, loopback, "eth2"))
    cut = ("pe1", "eth1", "agg1", "eth3")
    wait_for(
        "agg1 gone from pe1's LLDP neighbours",
        lambda: cut not in metro.lldp_neighbours("pe1"),
    )
    assert rerouted[0] == metro.plan.node("agg2").interface("eth3").address.split("/")[0]

    metro.lab.fault_link("agg1:eth3", "up")
    wait_for(
        "the root cause clears",
        lambda: all(a["state"] == "cleared" for a in metro.alarms() if a.get("isRootCause")),
    )
    wait_for("the direct route is back", _via(metro, loopback, "eth1"))
    wait_for("agg1 back in pe1's LLDP neighbours", lambda: cut in metro.lldp_neighbours("pe1"))

"""The bgp-peering service on real FRR routers: the triangle as a namespace lab (FRR, sshd whose
session is vtysh, in one namespace per node) and `oss serve` inside its management namespace,
provisioning r1 and r2 over SSH to vtysh (platform frr) through the transaction engine.

One lab and one daemon; one test walks the service's life in order, each step checked on the
routers themselves with vtysh:
- a dry run shows the diff of both ends and changes nothing;
- a create whose B end names an AS r2's BGP does not run is refused by r2 (`BGP is already
  running`) after r1 took its part: the transaction rolls back, and both routers' running
  configurations are what they were;
- create: both ends hold the neighbor and the prefix-lists, the session is Established (the
  engine's state check waited for it) and r1 accepted r2's loopback;
- the same peering ordered again is refused (its neighbors are the first one's, never taken
  over), nothing sent;
- modify (r1 also accepts r3's loopback): one line on r1, r2 untouched;
- drift: a prefix-list line removed and a description changed by hand on r2 show in `oss
  service diff` (the CLI, run in the management namespace); `oss service reconcile` puts them
  back;
- delete: both routers' running configurations are what they were before the service.
Everything that talks to a lab address runs inside the lab's namespaces; `assert_contained`
checks before the daemon starts that no namespace of the lab has a route out.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.netns.node import vtysh_argv
from lab.netns.plan import LabPlan
from lab.netns.render import node_paths
from lab.netns.safety import assert_contained
from lab.netns.state import run_dir
from tests.peers.cluster import wait_for
from tests.peers.daemon import Daemon
from tests.peers.netns_lab import NetnsLab, netns_lab_unavailable, running_netns_lab

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TRIANGLE = ROOT / "tests" / "data" / "netns" / "triangle.clab.yml"


@dataclass
class FrrLab:
    lab: NetnsLab
    daemon: Daemon
    token: str

    @property
    def plan(self) -> LabPlan:
        return self.lab.plan

    def api(self, method: str, path: str, body: Any = None, *, ok: bool = True) -> httpx.Response:
        reply = self.lab.mgmt.call(
            httpx.request,
            method,
            self.daemon.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=120,  # a change waits for both sessions (the state check's bound: 60 s)
        )
        if ok:
            assert reply.status_code < 300, reply.text
        return reply

    def oss(self, *args: str, code: int = 0) -> str:
        """The oss CLI, run inside the management namespace (it talks to the daemon's API);
        `code`: the exit code expected (`oss service diff` exits 1 on drift)."""
        done = self.lab.mgmt.call(self.daemon.cli, *args, token=self.token)
        assert done.returncode == code, done.stdout + done.stderr
        return done.stdout

    def vtysh(self, node: str, *commands: str) -> str:
        """vtysh on the node, several commands in one session (`configure terminal`, ...)."""
        argv = vtysh_argv(run_dir(self.lab.state_dir), self.plan.node(node))
        for command in commands:
            argv += ["-c", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def running(self, node: str) -> list[str]:
        """The node's running configuration, without the banner lines."""
        lines = self.lab.vtysh(node, "show running-config").splitlines()
        banner = ("Building", "Current")
        return [line for line in lines if line.strip() and not line.startswith(banner)]

    def session(self, node: str, peer: str) -> str:
        answer = json.loads(self.lab.vtysh(node, f"show bgp neighbors {peer} json"))
        return str(answer.get(peer, {}).get("bgpState", "absent"))

    def saved(self, node: str) -> list[str]:
        """bgpd's startup configuration (`write memory` saves each daemon's file, the node's
        in its run dir)."""
        frr = node_paths(run_dir(self.lab.state_dir), self.plan.node(node)).frr
        return (frr / "bgpd.conf").read_text().splitlines()


@pytest.fixture(scope="module")
def triangle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrrLab]:
    reason = netns_lab_unavailable()
    if reason is not None:
        pytest.skip(reason)
    state_dir = tmp_path_factory.mktemp("frr-netns")
    with running_netns_lab(TRIANGLE, state_dir / "lab") as lab:
        assert_contained(lab.plan)  # before any traffic: no namespace of the lab has a way out
        daemon = Daemon(
            state_dir / "daemon",
            extra_args=["--topology", str(TRIANGLE)],
            env={**lab.daemon_env(), "OSS_LOG__LEVEL": "WARNING"},
        )
        try:
            lab.mgmt.call(daemon.start)  # oss serve inside the management namespace
            token = daemon.create_token("operator")
            lab.record_inventory(daemon.url, token)  # what `oss lab up --netns` records
            yield FrrLab(lab, daemon, token)
        finally:
            daemon.kill()


def _link_addresses(plan: LabPlan, a: str, b: str) -> tuple[str, str]:
    """The addresses (with prefix length) of a's and b's ends of their direct link."""
    link = next(li for li in plan.links if {li.a.split(":")[0], li.b.split(":")[0]} == {a, b})
    ends = dict(link.ends())
    address = {
        name: next(i.address for i in plan.node(name).interfaces if i.name == ends[name])
        for name in (a, b)
    }
    return address[a], address[b]


def test_bgp_peering_lifecycle_on_real_frr(triangle: FrrLab) -> None:
    lab, plan = triangle, triangle.plan
    r1, r2, r3 = (plan.node(n) for n in ("r1", "r2", "r3"))
    assert r1.asn and r2.asn
    a_address, b_address = _link_addresses(plan, "r1", "r2")
    a_ip, b_ip = a_address.split("/")[0], b_address.split("/")[0]
    before = {n: lab.running(n) for n in ("r1", "r2")}
    params = {
        "customer": "acme",
        "a": "r1",
        "b": "r2",
        "a_end": {
            "asn": r1.asn,
            "address": a_address,
            "accept": [f"{r2.loopback}/32"],
            "announce": [f"{r1.loopback}/32"],
        },
        "b_end": {
            "asn": r2.asn,
            "address": b_address,
            "accept": [f"{r1.loopback}/32"],
            "announce": [f"{r2.loopback}/32"],
        },
    }

    # dry run: both ends' diffs, nothing sent
    order = {"type": "bgp-peering", "params": params}
    dry = lab.api("POST", "/api/v1/services?dry_run=true", order)
    devices = {d["device"]: d for d in dry.json()["devices"]}
    assert devices["r1"]["state"] == devices["r2"]["state"] == "differs"
    assert f"+ router bgp {r1.asn}/neighbor {b_ip}/remote-as {r2.asn}" in devices["r1"]["diff"]
    assert f"+ router bgp {r2.asn}/neighbor {a_ip}/remote-as {r1.asn}" in devices["r2"]["diff"]
    assert {n: lab.running(n) for n in ("r1", "r2")} == before

    # refused by r2 (its BGP runs another AS) after r1 took its part: both rolled back
    wrong = {**params, "b_end": {**params["b_end"], "asn": r2.asn + 100}}
    refused = lab.api("POST", "/api/v1/services", {**order, "params": wrong}, ok=False)
    assert refused.status_code == 409, refused.text
    assert "BGP is already running" in refused.json()["detail"]
    txn = lab.api("GET", f"/api/v1/transactions/{refused.json()['transaction']}").json()
    assert txn["state"] == "rolled-back"
    assert {d["device"]: d["state"] for d in txn["devices"]} == {
        "r1": "rolled-back",
        "r2": "rolled-back",
    }
    r1_steps = [s["step"] for s in next(d for d in txn["devices"] if d["device"] == "r1")["steps"]]
    assert "commit" in r1_steps and "undo" in r1_steps  # r1 had its lines, then lost them
    assert {n: lab.running(n) for n in ("r1", "r2")} == before

    # create: on both routers, the session up, r2's loopback accepted by r1
    created = lab.api("POST", "/api/v1/services", order).json()
    service = created["service"]["id"]
    assert created["service"]["state"] == "active"
    svc = f"svc-{service}"
    r1_config = lab.running("r1")
    for line in (
        f" neighbor {b_ip} remote-as {r2.asn}",
        f"  neighbor {b_ip} prefix-list {svc}-in in",
        f"  neighbor {b_ip} prefix-list {svc}-out out",
        f"ip prefix-list {svc}-in seq 5 permit {r2.loopback}/32",
        f"ip prefix-list {svc}-out seq 5 permit {r1.loopback}/32",
    ):
        assert line in r1_config, line
    assert f" neighbor {a_ip} remote-as {r1.asn}" in lab.running("r2")
    assert f" neighbor {b_ip} remote-as {r2.asn}" in lab.saved("r1")  # `write memory`
    assert lab.session("r1", b_ip) == lab.session("r2", a_ip) == "Established"

    def accepted() -> dict[str, Any] | None:  # the UPDATE follows the session's coming up
        route: dict[str, Any] = json.loads(
            lab.vtysh("r1", f"show bgp ipv4 unicast {r2.loopback}/32 json")
        )
        return route if route.get("prefix") == f"{r2.loopback}/32" else None

    route = wait_for(f"r1 accepting {r2.loopback}/32 from r2", accepted, timeout_s=15)
    assert any(p.get("peer", {}).get("peerId") == b_ip for p in route["paths"]), route

    # the same peering again: the neighbors are the first one's, not taken over
    configured = {n: lab.running(n) for n in ("r1", "r2")}
    again = lab.api("POST", "/api/v1/services", order, ok=False)
    assert again.status_code == 409, again.text
    assert f"router bgp {r1.asn}/neighbor {b_ip}: already configured" in again.json()["detail"]
    assert {n: lab.running(n) for n in ("r1", "r2")} == configured

    # modify: r1 also accepts r3's loopback; one line on r1, r2 untouched
    change = {"params": {"a_end": {"accept": [f"{r2.loopback}/32", f"{r3.loopback}/32"]}}}
    preview = lab.api("PATCH", f"/api/v1/services/{service}?dry_run=true", change).json()
    assert {d["device"]: d["diff"] for d in preview["devices"]} == {
        "r1": [f"+ ip prefix-list {svc}-in/seq 10 = permit {r3.loopback}/32"],
        "r2": [],
    }
    r2_config = lab.running("r2")
    lab.api("PATCH", f"/api/v1/services/{service}", change)
    assert f"ip prefix-list {svc}-in seq 10 permit {r3.loopback}/32" in lab.running("r1")
    assert lab.running("r2") == r2_config

    # drift by hand on r2, seen in the service's diff, then reconciled (with the oss CLI)
    lab.vtysh(
        "r2",
        "configure terminal",
        f"no ip prefix-list {svc}-in seq 5",
        f"router bgp {r2.asn}",
        f"neighbor {a_ip} description changed by hand",
    )
    drift = json.loads(lab.oss("-o", "json", "service", "diff", str(service), code=1))
    assert drift["in_sync"] is False
    assert {d["device"]: sorted(d["diff"]) for d in drift["devices"]} == {
        "r1": [],
        "r2": [
            f"+ ip prefix-list {svc}-in/seq 5 = permit {r1.loopback}/32",
            f"~ router bgp {r2.asn}/neighbor {a_ip}/description: changed by hand -> "
            f"oss {svc} bgp-peering acme",
        ],
    }
    lab.oss("service", "reconcile", str(service))
    assert json.loads(lab.oss("-o", "json", "service", "diff", str(service)))["in_sync"] is True
    # the same lines (FRR prints a prefix-list made again after the ones still there)
    assert sorted(lab.running("r2")) == sorted(r2_config)

    # delete: both routers back to what they were before the service
    lab.api("DELETE", f"/api/v1/services/{service}")
    assert {n: lab.running(n) for n in ("r1", "r2")} == before
    assert lab.session("r1", b_ip) == "absent"

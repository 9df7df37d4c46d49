"""A namespace lab (lab/netns) for a test: real FRR, snmpd, lldpd and sshd, one namespace each.

    with running_netns_lab(TRIANGLE, tmp_path / "lab") as lab:
        lab.vtysh("r1", "show ip ospf neighbor")
        lab.node_exec("r1", ["ping", "-c1", "10.255.0.2"])
        daemon = lab.mgmt.call(Daemon(tmp_path / "d", env=lab.daemon_env()).start)  # inside mgmt
        lab.fault_link("r1:eth1", "down")

Each lab gets a prefix of its own (`oss-t<8 hex>`), so parallel workers never meet. Anything
that talks to a lab address runs inside a namespace of the lab: `lab.mgmt.call(fn)` runs fn in
a thread that entered the management namespace (sockets made there live there, processes
started there too), `node_exec` runs a command in a node's. On leaving, the lab is taken down
and the test fails if anything of it is left: a namespace, a root-namespace link of its names,
a process it recorded.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lab.netns import build, faults, iproute, mgmt, node, processes, profiles
from lab.netns.build import mgmt_peer
from lab.netns.nsenter import namespace_thread
from lab.netns.plan import LabPlan, plan_lab
from lab.netns.state import LabSecrets, LabState, run_dir
from tests.peers.netns import NetNs, namespaces_unavailable
from topology.clab import parse_clab

NODE_SOFTWARE = (
    *(node.FRR_DIR / d for d in ("zebra", "staticd", "ospfd", "bgpd")),
    node.VTYSH,
    node.SNMPD,
    node.LLDPD,
    node.SSHD,
)


def netns_lab_unavailable(daemons: bool = True) -> str | None:
    """Why this machine cannot run a namespace lab (None: it can)."""
    reason = namespaces_unavailable()
    if reason is not None:
        return reason
    for tool in ("tc", "ping"):
        if shutil.which(tool) is None:
            return f"no `{tool}` (make system-deps installs iproute2 and iputils-ping)"
    if daemons:
        for binary in NODE_SOFTWARE:
            if not binary.exists():
                return f"no {binary} (make system-deps installs frr, frr-snmp, lldpd, snmpd, sshd)"
    return None


def new_prefix() -> str:
    return f"oss-t{uuid.uuid4().hex[:8]}"


@dataclass
class NetnsLab:
    plan: LabPlan
    secrets: LabSecrets
    state_dir: Path
    mgmt: NetNs
    trap_port: int

    @property
    def state(self) -> LabState:
        """The state file as it is now (faults, processes)."""
        state = LabState.load(self.state_dir)
        assert state is not None, f"no lab recorded in {self.state_dir}"
        return state

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "credentials.yaml"

    def node_exec(
        self, name: str, argv: list[str], timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """`argv` inside the node's namespace (not checked: look at returncode)."""
        namespace = self.plan.node(name).namespace
        return subprocess.run(
            ["ip", "netns", "exec", namespace, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def vtysh(self, name: str, command: str, timeout: float = 30.0) -> str:
        argv = [*node.vtysh_argv(run_dir(self.state_dir), self.plan.node(name)), "-c", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"vtysh on {name}: {command}: {done.stderr or done.stdout}"
        return done.stdout

    def ping(self, name: str, address: str, count: int = 3) -> subprocess.CompletedProcess[str]:
        """ICMP from inside the node (bounded: -W 1 per reply, -w for the whole)."""
        argv = ["ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", "-w", str(count + 2)]
        return self.node_exec(name, [*argv, address], timeout=count + 10)

    # -- faults, as `oss lab fault` does them

    def fault_link(self, endpoint: str, *change: str) -> None:
        """`down`, `up`, `clear`, or `delay 20ms [jitter 2ms] [loss 1%]` on that end."""
        state = self.state
        if change in (("down",), ("up",)):
            faults.set_link(state, endpoint, change == ("up",))
        elif change == ("clear",):
            faults.clear(state, endpoint)
        else:
            faults.impair(state, endpoint, faults.parse_impairment(list(change)))

    def fault_node(self, name: str, up: bool, ready_timeout_s: float = 60.0) -> None:
        software = node.NodeSoftware(trap_port=self.trap_port)
        faults.set_node(self.state, name, up, software, ready_timeout_s)

    def fault(self, kind: str, target: str, *change: str) -> None:
        """`fault("link", "r1:eth1", "down")`, `fault("node", "r2", "down")`."""
        if kind == "link":
            self.fault_link(target, *change)
        elif kind == "node" and change in (("down",), ("up",)):
            self.fault_node(target, change == ("up",))
        else:
            raise ValueError(f"fault {kind} {target} {' '.join(change)}")

    def status(self) -> dict[str, Any]:
        report = build.status(self.state_dir)
        assert report is not None
        return report

    # -- the daemon's side

    def daemon_env(self) -> dict[str, str]:
        """Environment for `oss serve` inside the management namespace (allowed networks,
        traps on the gateway at the lab's trap port)."""
        return mgmt.daemon_env(self.state, self.trap_port)

    def record_inventory(self, url: str, token: str) -> None:
        """PATCH each node's mgmt address, loopback, platform and credentials into the daemon
        at `url` (127.0.0.1 of the management namespace), from inside that namespace."""

        def patch_all() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=10) as api:
                for name, body in mgmt.inventory_updates(self.state).items():
                    reply = api.patch(f"/api/v1/devices/{name}", json=body)
                    assert reply.status_code < 300, f"PATCH {name}: {reply.text}"

        self.mgmt.call(patch_all)


def leftovers(plan: LabPlan, pids: list[int]) -> list[str]:
    """What of the lab still exists: its namespaces, root links with its names, its processes."""
    found = [f"namespace {n}" for n in sorted(set(plan.namespaces()) & iproute.namespaces())]
    names = {mgmt_peer(plan, n) for n in plan.nodes}
    root_links = {str(li.get("ifname")) for li in iproute.ip_json("link", "show")}
    found += [f"root link {name}" for name in sorted(names & root_links)]
    found += [f"process {pid}" for pid in pids if processes.alive(pid)]
    return found


@contextmanager
def running_netns_lab(
    topology: Path,
    state_dir: Path,
    *,
    daemons: bool = True,
    trap_port: int = 162,
    prefix: str | None = None,
    ready_timeout_s: float = 60.0,
) -> Iterator[NetnsLab]:
    """The lab of `topology` up (every daemon answering), down on leaving, nothing left."""
    parsed = parse_clab(topology.read_text(), str(topology))
    plan = plan_lab(parsed, prefix or new_prefix(), profiles.profile_of)
    software = node.NodeSoftware(trap_port=trap_port) if daemons else None
    if software is not None:
        node.check_lab(plan, run_dir(state_dir), source=parsed.source)
    build.up(
        plan,
        state_dir,
        software=software,
        topology=str(topology),
        ready_timeout_s=ready_timeout_s,
        extra={"trap_port": trap_port},
    )
    thread = namespace_thread(plan.mgmt_namespace)
    pids: list[int] = []
    try:
        lab = NetnsLab(
            plan=plan,
            secrets=LabSecrets.load(state_dir),
            state_dir=state_dir,
            mgmt=NetNs(plan.mgmt_namespace, thread),
            trap_port=trap_port,
        )
        yield lab
    finally:
        thread.shutdown(wait=True)
        recorded = LabState.load(state_dir)
        pids = [p.pid for p in recorded.processes] if recorded is not None else []
        build.down(state_dir)
        left = leftovers(plan, pids)
        assert not left, f"the lab left: {', '.join(left)}"

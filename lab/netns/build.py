"""Bring a namespace lab up, take it down, tell its status.

`up(plan, state_dir)`:
1. records the lab (state file, secrets) and every namespace BEFORE making it;
2. makes the namespaces and every veth in one `ip -batch` from the root namespace: each veth is
   created with its ends directly inside their namespaces under their final names (the kernel
   places them at creation), so no link ever exists in the root namespace, not even for a
   moment, and a crash cannot leave one there;
3. configures each namespace with one `ip -n NS -batch` (concurrently): loopback /32, link
   /31s, `eth0` on the management bridge; IPv4 forwarding in the nodes (they are routers), none
   in the management namespace; no default route anywhere;
4. checks the lab is closed (`safety.assert_contained`) before any daemon starts;
5. starts every node's software concurrently (`NodeSoftware.start_node`, which records each
   process before waiting on it) and waits, bounded, until every daemon answers.
Any failure takes down what was made, then raises.

`down(state_dir)` works from the state file alone (after a crash too) and is idempotent: it ends
the recorded processes that are still the lab's and whatever else lives in the lab's
namespaces, then deletes the namespaces (their veths go with them).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lab.files import write_private
from lab.netns import iproute, processes
from lab.netns.iproute import LabError
from lab.netns.plan import IFNAMSIZ, MGMT_INTERFACE, LabPlan, NodePlan
from lab.netns.render import node_paths
from lab.netns.safety import assert_contained
from lab.netns.state import LabSecrets, LabState, ProcessRecord, known_hosts_file, run_dir

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
PARALLEL = 16  # namespaces configured and nodes started at once


class NodeSoftware(Protocol):
    """What runs on a node (lab.netns.node): started by namespace, asked whether it answers."""

    def start_node(
        self,
        lab: LabPlan,
        node: NodePlan,
        run_dir: Path,
        secrets: LabSecrets,
        record: Callable[[ProcessRecord], None],
    ) -> None: ...

    def node_ready(self, lab: LabPlan, node: NodePlan, run_dir: Path) -> dict[str, bool]: ...


@dataclass
class Timings:
    """Seconds per phase of `up` (logged; `oss lab up --netns -o json` shows them)."""

    phases: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.monotonic)

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self._last, 3)
        self._last = now


def mgmt_peer(plan: LabPlan, node: NodePlan) -> str:
    """The management namespace's end of a node's eth0 (15 characters at most)."""
    index = plan.nodes.index(node) + 1
    return f"m{index}-{node.name}"[:IFNAMSIZ]


def up(
    plan: LabPlan,
    state_dir: Path,
    *,
    software: NodeSoftware | None = None,
    topology: str = "",
    ready_timeout_s: float = READY_TIMEOUT_S,
    extra: Mapping[str, Any] | None = None,
) -> LabState:
    """Build the lab; with `software`, start and wait for every node's daemons."""
    reason = iproute.unavailable()
    if reason is not None:
        raise LabError(reason)
    existing = LabState.load(state_dir)
    if existing is not None:
        raise LabError(
            f"a namespace lab ({existing.plan.name}) is recorded in {state_dir}; "
            "take it down first (`oss lab down --netns`) or use another --state-dir"
        )
    taken = sorted(set(plan.namespaces()) & iproute.namespaces())
    if taken:
        raise LabError(
            f"namespace(s) {', '.join(taken)} exist already: another lab with the prefix "
            f"'{plan.prefix}'? (`ip netns list`; use another prefix)"
        )
    # Traversable, not listable, by the daemons' own users (frr, _lldpd) on their way to
    # run/<node>/; the secrets in it are 0600 files.
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    shutil.rmtree(run_dir(state_dir), ignore_errors=True)
    run_dir(state_dir).mkdir(mode=0o755)
    state = LabState.new(state_dir, plan, topology)
    state.extra.update(extra or {})
    secrets = LabSecrets.generate()
    secrets.write(state_dir)
    state.save()
    timings = Timings()
    try:
        _make_network(state, timings)
        assert_contained(plan)
        timings.mark("safety")
        if software is not None:
            _start_software(state, software, secrets, ready_timeout_s, timings)
        _write_known_hosts(state)
        state.extra["timings"] = timings.phases
        state.set_phase("up")
    except BaseException:
        log.warning("lab %s: up failed, taking down what was made", plan.name)
        down(state_dir)
        raise
    log.info("lab %s up: %s", plan.name, timings.phases)
    return state


def _write_known_hosts(state: LabState) -> None:
    """Each node's sshd host key under its management address (the file the credentials
    name), so the daemon's SSH sessions to the nodes verify them."""
    lines = []
    for node in state.plan.nodes:
        key = node_paths(run_dir(state.state_dir), node).ssh / "host_key.pub"
        if key.exists():
            kind, text = key.read_text(encoding="utf-8").split()[:2]
            lines.append(f"{node.mgmt_address} {kind} {text}\n")
    write_private(known_hosts_file(state.state_dir), "".join(lines))


# ------------------------------------------------------------------------------- the network


def _make_network(state: LabState, timings: Timings) -> None:
    plan = state.plan
    state.add_namespaces(plan.namespaces())
    lines = [f"netns add {ns}" for ns in plan.namespaces()]
    for link in plan.links:
        (a, a_if), (b, b_if) = link.ends()
        lines.append(
            f"link add name {a_if} netns {plan.node(a).namespace} type veth "
            f"peer name {b_if} netns {plan.node(b).namespace}"
        )
    for node in plan.nodes:
        lines.append(
            f"link add name {MGMT_INTERFACE} netns {node.namespace} type veth "
            f"peer name {mgmt_peer(plan, node)} netns {plan.mgmt_namespace}"
        )
    iproute.batch(lines)
    timings.mark("namespaces+links")
    jobs: list[tuple[str, list[str]]] = [(plan.mgmt_namespace, _mgmt_lines(plan))]
    jobs += [(node.namespace, _node_lines(plan, node, state.faults)) for node in plan.nodes]
    _each(lambda job: iproute.batch(job[1], netns=job[0]), jobs)
    _each(_enable_forwarding, [node.namespace for node in plan.nodes])
    timings.mark("addresses")
    for link in plan.links:  # a link the file says is down starts down, at its first end
        if link.vars.get("state") == "down":
            state.faults[f"link:{link.a}"] = "down"
    state.save()


def _mgmt_lines(plan: LabPlan) -> list[str]:
    length = ipaddress.ip_network(plan.mgmt_subnet).prefixlen
    bridge = plan.mgmt_bridge
    lines = [
        "link set lo up",
        f"link add {bridge} type bridge",
        f"addr add {plan.mgmt_gateway}/{length} dev {bridge}",
        f"link set {bridge} up",
    ]
    for node in plan.nodes:
        peer = mgmt_peer(plan, node)
        lines += [f"link set {peer} master {bridge}", f"link set {peer} up"]
    return lines


def _node_lines(plan: LabPlan, node: NodePlan, faults: Mapping[str, str]) -> list[str]:
    length = ipaddress.ip_network(plan.mgmt_subnet).prefixlen
    lines = [
        "link set lo up",
        f"addr add {node.loopback}/32 dev lo",
        f"addr add {node.mgmt_address}/{length} dev {MGMT_INTERFACE}",
        f"link set {MGMT_INTERFACE} up",
    ]
    down_at_start = {
        link.a for link in plan.links_of(node.name) if link.vars.get("state") == "down"
    } | {k.removeprefix("link:") for k, v in faults.items() if v == "down"}
    for interface in node.interfaces:
        lines.append(f"addr add {interface.address} dev {interface.name}")
        if f"{node.name}:{interface.name}" not in down_at_start:
            lines.append(f"link set {interface.name} up")
    return lines


def _enable_forwarding(namespace: str) -> None:
    # A node is a router; the management namespace stays a host (no forwarding between nodes'
    # management addresses and anything else).
    iproute.run(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])


def _each(fn: Callable[[Any], object], items: Iterable[Any]) -> None:
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(items))) as pool:
        for _ in pool.map(fn, items):
            pass


# ------------------------------------------------------------------------------- the software


def _start_software(
    state: LabState,
    software: NodeSoftware,
    secrets: LabSecrets,
    timeout_s: float,
    timings: Timings,
) -> None:
    plan, directory = state.plan, run_dir(state.state_dir)
    _each(
        lambda node: software.start_node(plan, node, directory, secrets, state.record),
        plan.nodes,
    )
    timings.mark("start")
    wait_ready(plan, software, directory, plan.nodes, timeout_s)
    timings.mark("ready")


def wait_ready(
    plan: LabPlan,
    software: NodeSoftware,
    directory: Path,
    nodes: Iterable[NodePlan],
    timeout_s: float,
) -> None:
    """Until every daemon of `nodes` answers; LabError naming the silent ones after timeout_s."""
    pending = {node.name: node for node in nodes}
    answers: dict[str, dict[str, bool]] = {}
    deadline = time.monotonic() + timeout_s
    with ThreadPoolExecutor(max_workers=min(PARALLEL, max(1, len(pending)))) as pool:
        while pending:
            names = list(pending)
            results = pool.map(lambda n: software.node_ready(plan, pending[n], directory), names)
            for name, result in zip(names, results, strict=True):
                answers[name] = result
                if result and all(result.values()):
                    del pending[name]
            if not pending:
                return
            if time.monotonic() > deadline:
                silent = "; ".join(
                    f"{n}: {', '.join(d for d, ok in answers[n].items() if not ok)}"
                    for n in pending
                )
                raise LabError(
                    f"not answering after {timeout_s:g} s: {silent} "
                    f"(logs under {directory}/<node>/)"
                )
            time.sleep(0.2)


# ------------------------------------------------------------------------------- down, status


def down(state_dir: Path, timeout_s: float = 10.0) -> dict[str, Any] | None:
    """Remove everything the lab recorded in `state_dir`; None when nothing is recorded."""
    state = LabState.load(state_dir)
    if state is None:
        return None
    builder = state.builder_pid
    if state.phase == "building" and builder != os.getpid() and _is_builder(builder):
        raise LabError(
            f"an `up` (pid {builder}) is still building this lab; "
            "wait for it (it takes the lab down itself if it fails) or end it first"
        )
    state.set_phase("stopping")
    ended = processes.stop_node_daemons(state.processes, timeout_s)
    strays = processes.living_in(state.namespaces)
    processes.end(strays, timeout_s)
    state.forget_processes(r.pid for r in state.processes)
    present = sorted(set(state.namespaces) & iproute.namespaces())
    iproute.batch((f"netns del {ns}" for ns in present), force=True)
    left = sorted(set(state.namespaces) & iproute.namespaces())
    if left:
        raise LabError(f"namespace(s) {', '.join(left)} could not be deleted; run down again")
    state.remove()
    return {
        "name": state.plan.name,
        "processes_ended": len(ended) + len(strays),
        "namespaces_deleted": present,
    }


def _is_builder(pid: int) -> bool:
    if not processes.alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"python" in cmdline or b"oss" in cmdline


def oper_state(link: Mapping[str, Any]) -> str:
    """ "up" or "down" from the flags, which change at once (operstate follows up to 1 s later)."""
    flags = link.get("flags", [])
    return "up" if "UP" in flags and "LOWER_UP" in flags else "down"


def status(state_dir: Path, software: NodeSoftware | None = None) -> dict[str, Any] | None:
    """The recorded lab as it is now: namespaces, interfaces' oper state, daemons, faults."""
    state = LabState.load(state_dir)
    if state is None:
        return None
    plan = state.plan
    present = iproute.namespaces()
    known = processes.inodes({r.namespace for r in state.processes})
    opers: dict[str, dict[str, str]] = {}

    def read_links(node: NodePlan) -> None:
        if node.namespace in present:
            opers[node.name] = {
                str(li.get("ifname")): oper_state(li)
                for li in iproute.ip_json("link", "show", netns=node.namespace)
            }

    _each(read_links, plan.nodes)
    ready: dict[str, dict[str, bool]] = {}
    if software is not None and state.phase == "up":
        directory = run_dir(state_dir)

        def ask(node: NodePlan) -> None:
            if node.namespace in present:
                ready[node.name] = software.node_ready(plan, node, directory)

        _each(ask, plan.nodes)
    nodes = {}
    for node in plan.nodes:
        daemons = {
            r.daemon: "running" if processes.is_recorded(r, known) else "gone"
            for r in state.processes_of(node.name)
        }
        for daemon, ok in ready.get(node.name, {}).items():
            if daemons.get(daemon, "running") == "running":
                daemons[daemon] = "answering" if ok else "not answering"
        nodes[node.name] = {
            "namespace": node.namespace,
            "present": node.namespace in present,
            "mgmt_address": node.mgmt_address,
            "loopback": node.loopback,
            "profile": node.profile,
            "asn": node.asn,
            "down": state.faults.get(f"node:{node.name}") == "down",
            "daemons": daemons,
        }
    links = []
    for link in plan.links:
        (a, a_if), (b, b_if) = link.ends()
        links.append(
            {
                "a": link.a,
                "b": link.b,
                "subnet": link.subnet,
                "a_oper": opers.get(a, {}).get(a_if, "absent"),
                "b_oper": opers.get(b, {}).get(b_if, "absent"),
                "impairment": " ".join(
                    f"{end}: {state.faults[f'netem:{end}']}"
                    for end in (link.a, link.b)
                    if f"netem:{end}" in state.faults
                ),
            }
        )
    return {
        "kind": "netns",
        "name": plan.name,
        "phase": state.phase,
        "state_dir": str(state_dir),
        "topology": state.topology,
        "started_at": state.started_at,
        "mgmt": {
            "namespace": plan.mgmt_namespace,
            "present": plan.mgmt_namespace in present,
            "gateway": plan.mgmt_gateway,
            "subnet": plan.mgmt_subnet,
        },
        "nodes": nodes,
        "links": links,
        "faults": dict(state.faults),
        "extra": dict(state.extra),
    }

"""Real faults in a namespace lab, each recorded in the state file (so `down` still cleans up).

- link down/up: `ip link set` on the named end, inside its namespace; the far end of the veth
  loses its carrier (oper down), as with a fibre cut seen from the other side.
- impairment: `delay 20ms [jitter 2ms] [loss 1%]` on the named end's egress, with tc netem where
  the kernel has it, else the user-space delay line (lab.netns.delay_line); `clear` removes it.
- node down/up: its daemons stopped (by pid) and every interface of it set down; up sets its
  interfaces up again (but an end set down by a link fault stays down) and starts its software.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lab.netns import iproute, processes
from lab.netns.build import NodeSoftware, wait_ready
from lab.netns.iproute import LabError
from lab.netns.plan import MGMT_INTERFACE, NodePlan
from lab.netns.state import LabSecrets, LabState, ProcessRecord, run_dir
from oss.errors import InvalidInput

DELAY_LINE = "delay-line"
_TIME = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)$")
_SCALE_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
MAX_DELAY_MS = 10_000.0


@dataclass(frozen=True)
class Impairment:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0

    def words(self) -> str:
        parts = [f"delay {self.delay_ms:g}ms"]
        if self.jitter_ms:
            parts.append(f"jitter {self.jitter_ms:g}ms")
        if self.loss_pct:
            parts.append(f"loss {self.loss_pct:g}%")
        return " ".join(parts)

    def netem_args(self) -> list[str]:
        args = ["delay", f"{self.delay_ms:g}ms"]
        if self.jitter_ms:
            args.append(f"{self.jitter_ms:g}ms")
        if self.loss_pct:
            args += ["loss", f"{self.loss_pct:g}%"]
        return args


def _milliseconds(word: str, what: str) -> float:
    found = _TIME.match(word.strip().lower())
    if found is None:
        raise InvalidInput(f"{what} '{word}' is not a time like 20ms, 500us or 1s")
    value = float(found.group(1)) * _SCALE_MS[found.group(2)]
    if value > MAX_DELAY_MS:
        raise InvalidInput(f"{what} '{word}' is more than {MAX_DELAY_MS / 1000:g} s")
    return value


def _percent(word: str) -> float:
    try:
        value = float(word.strip().removesuffix("%"))
    except ValueError:
        raise InvalidInput(f"loss '{word}' is not a percentage (example: 1%)") from None
    if not 0.0 <= value <= 100.0:
        raise InvalidInput(f"loss '{word}' is not between 0% and 100%")
    return value


def parse_impairment(words: Sequence[str]) -> Impairment:
    """`delay 20ms [jitter 2ms] [loss 1%]` (also `latency` for delay, as the simulated lab says)."""
    if not words or len(words) % 2:
        raise InvalidInput("expected pairs: delay 20ms [jitter 2ms] [loss 1%]")
    found: dict[str, float] = {}
    for key, value in zip(words[::2], words[1::2], strict=True):
        name = "delay" if key == "latency" else key
        if name in found:
            raise InvalidInput(f"'{key}' is given twice")
        if name in ("delay", "jitter"):
            found[name] = _milliseconds(value, name)
        elif name == "loss":
            found[name] = _percent(value)
        else:
            raise InvalidInput(f"unknown impairment '{key}' (delay, jitter, loss)")
    impairment = Impairment(
        found.get("delay", 0.0), found.get("jitter", 0.0), found.get("loss", 0.0)
    )
    if impairment.jitter_ms > impairment.delay_ms:
        raise InvalidInput("jitter larger than the delay: a packet cannot leave before it is sent")
    return impairment


# --------------------------------------------------------------------------------------- links


def _end(state: LabState, endpoint: str) -> tuple[NodePlan, str]:
    state.plan.link(endpoint)  # InvalidInput naming the lab when no link ends there
    name, _, interface = endpoint.partition(":")
    return state.plan.node(name), interface


def set_link(state: LabState, endpoint: str, up: bool) -> None:
    """Set one end of a link up or down (the far end sees its carrier come and go)."""
    node, interface = _end(state, endpoint)
    if state.faults.get(f"node:{node.name}") == "down" and up:
        raise LabError(f"node {node.name} is down; bring it up first (fault node {node.name} up)")
    state.set_fault(f"link:{endpoint}", None if up else "down")
    iproute.ip("link", "set", interface, "up" if up else "down", netns=node.namespace)


def impair(state: LabState, endpoint: str, impairment: Impairment) -> str:
    """Delay/jitter/loss on the end's egress; returns how ("netem" or "delay-line")."""
    node, interface = _end(state, endpoint)
    clear(state, endpoint)
    state.set_fault(f"netem:{endpoint}", impairment.words())
    args = ["qdisc", "replace", "dev", interface, "root", "netem", *impairment.netem_args()]
    try:
        iproute.tc(*args, netns=node.namespace)
        return "netem"
    except LabError as exc:
        if "unknown" not in str(exc).lower():
            raise
    _start_delay_line(state, node, interface, impairment)
    return DELAY_LINE


def clear(state: LabState, endpoint: str) -> None:
    """Remove an impairment (none is fine)."""
    node, interface = _end(state, endpoint)
    daemon = f"{DELAY_LINE}:{interface}"
    lines = [r for r in state.processes_of(node.name) if r.daemon == daemon]
    processes.stop_node_daemons(lines, timeout_s=5)
    state.forget_processes(r.pid for r in lines)
    if node.namespace in iproute.namespaces():
        iproute.tc("qdisc", "del", "dev", interface, "root", netns=node.namespace, check=False)
        iproute.tc("qdisc", "del", "dev", interface, "clsact", netns=node.namespace, check=False)
        tap = _taps(node, interface)[0]
        iproute.ip("link", "del", tap, netns=node.namespace, check=False)
    state.set_fault(f"netem:{endpoint}", None)


def _taps(node: NodePlan, interface: str) -> tuple[str, str]:
    index = [i.name for i in node.interfaces].index(interface) + 1
    return f"dla{index}", f"dlb{index}"


def _start_delay_line(state: LabState, node: NodePlan, interface: str, imp: Impairment) -> None:
    tap_in, tap_out = _taps(node, interface)
    iproute.batch(
        [
            f"link add name {tap_in} type veth peer name {tap_out}",
            # No addresses, no IPv6 link-local: the pair carries the redirected frames only.
            f"link set {tap_in} addrgenmode none",
            f"link set {tap_out} addrgenmode none",
            f"link set {tap_in} up",
            f"link set {tap_out} up",
        ],
        netns=node.namespace,
    )
    directory = run_dir(state.state_dir) / node.name
    directory.mkdir(parents=True, exist_ok=True)
    ready = directory / f"{DELAY_LINE}-{interface}.ready"
    ready.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "lab.netns.delay_line", "--tap", tap_out, "--out", interface,
        "--delay-ms", f"{imp.delay_ms:g}", "--jitter-ms", f"{imp.jitter_ms:g}",
        "--loss-pct", f"{imp.loss_pct:g}", "--ready-file", str(ready),
    ]  # fmt: skip
    with (directory / f"{DELAY_LINE}-{interface}.log").open("ab") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", node.namespace, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # it outlives the command that set the fault
        )
    # `ip netns exec` execs the command in place: the pid is the delay line's.
    state.record(
        ProcessRecord(node.name, f"{DELAY_LINE}:{interface}", proc.pid, node.namespace, argv[0])
    )
    deadline = time.monotonic() + 10
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            where = f"{node.name}:{interface}"
            raise LabError(f"the delay line on {where} did not start (see {log.name})")
        time.sleep(0.02)
    ready.unlink()
    iproute.tc("qdisc", "add", "dev", interface, "clsact", netns=node.namespace)
    iproute.tc(
        "filter", "add", "dev", interface, "egress", "protocol", "all",
        "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", tap_in,
        netns=node.namespace,
    )  # fmt: skip


# --------------------------------------------------------------------------------------- nodes


def set_node(
    state: LabState,
    name: str,
    up: bool,
    software: NodeSoftware | None = None,
    ready_timeout_s: float = 60.0,
) -> None:
    """Power a node off (daemons stopped, every interface down) or on again."""
    node = state.plan.node(name)
    interfaces = [MGMT_INTERFACE, *(i.name for i in node.interfaces)]
    if not up:
        state.set_fault(f"node:{name}", "down")
        daemons = [r for r in state.processes_of(name) if not r.daemon.startswith(DELAY_LINE)]
        processes.stop_node_daemons(daemons)
        state.forget_processes(r.pid for r in daemons)
        iproute.batch((f"link set {i} down" for i in interfaces), netns=node.namespace)
        return
    cut = {k.removeprefix("link:") for k, v in state.faults.items() if k.startswith("link:")}
    iproute.batch(
        (f"link set {i} up" for i in interfaces if f"{name}:{i}" not in cut),
        netns=node.namespace,
    )
    if software is not None:
        directory = run_dir(state.state_dir)
        secrets = LabSecrets.load(state.state_dir)
        software.start_node(state.plan, node, directory, secrets, state.record)
        wait_ready(state.plan, software, directory, [node], ready_timeout_s)
    state.set_fault(f"node:{name}", None)

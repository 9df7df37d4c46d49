"""The namespace lab's own life: up, closed, forwarding, real faults, down leaving nothing, also
after the `up` process is killed half-way; and the CLI's refusals (not root, bad input).

Every command that sends to a lab address runs inside a namespace of the lab (a node's).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.netns import build, iproute, processes
from lab.netns.safety import assert_contained
from lab.netns.state import LabState, state_file
from tests.peers.netns_lab import leftovers, netns_lab_unavailable, new_prefix, running_netns_lab

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TRIANGLE = ROOT / "tests" / "data" / "netns" / "triangle.clab.yml"
OSS = str(Path(sys.executable).parent / "oss")
WAIT_S = 30.0


@pytest.fixture(autouse=True)
def _needs_a_lab() -> None:
    reason = netns_lab_unavailable()
    if reason is not None:
        pytest.skip(reason)


def _rtt_avg_ms(ping_output: str) -> float:
    found = re.search(r"= [\d.]+/([\d.]+)/", ping_output)
    assert found is not None, ping_output
    return float(found.group(1))


def _wait(what: str, check: object) -> None:
    assert callable(check)
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"not within {WAIT_S:g} s: {what}"
        time.sleep(0.1)


def test_triangle_up_closed_forwarding_faults_and_down_leaves_nothing(tmp_path: Path) -> None:
    with running_netns_lab(TRIANGLE, tmp_path / "lab") as lab:
        assert_contained(lab.plan)
        status = lab.status()
        assert status["phase"] == "up"
        for name, node in status["nodes"].items():
            assert node["present"] and node["daemons"], name
            assert set(node["daemons"].values()) == {"running"}, (name, node["daemons"])
        # Every link carries traffic, pinged from inside the node at its first end.
        for link in lab.plan.links:
            (a, _), (b, b_if) = link.ends()
            far = lab.plan.node(b).interface(b_if).address.split("/")[0]
            done = lab.ping(a, far, count=1)
            assert done.returncode == 0, f"{link.a} -> {far}: {done.stdout}{done.stderr}"
        # A node's vtysh from the CLI (one command, as `oss lab vtysh r2 'show ...'`); a node
        # the lab does not have exits 2 naming the nodes it has.
        where = ["--state-dir", str(tmp_path / "lab")]
        loopback = lab.plan.node("r1").loopback

        def r2_shows_r1_loopback() -> bool:
            shown = _cli("lab", "vtysh", "r2", "show ip route ospf", *where)
            assert shown.returncode == 0, shown.stderr
            return f"O>* {loopback}/32" in shown.stdout

        _wait("r2's vtysh shows the OSPF route to r1's loopback", r2_shows_r1_loopback)
        nope = _cli("lab", "vtysh", "r9", "show version", *where)
        assert nope.returncode == 2 and "no node 'r9' (nodes: r1, r2, r3)" in nope.stderr
        r1_eth1 = lab.plan.link("r1:eth1")
        far_end = r1_eth1.far_end("r1:eth1")
        far_address = lab.plan.node("r2").interface("eth1").address.split("/")[0]
        base = _rtt_avg_ms(lab.ping("r1", far_address, count=3).stdout)

        # A cut on r1's end: r2's end loses its carrier, as across a real fibre.
        lab.fault_link("r1:eth1", "down")
        link_state = next(li for li in lab.status()["links"] if li["a"] == "r1:eth1")
        assert (link_state["a_oper"], link_state["b_oper"]) == ("down", "down")
        r2_eth1 = json.loads(lab.node_exec("r2", ["ip", "-j", "link", "show", "eth1"]).stdout)[0]
        assert "NO-CARRIER" in r2_eth1["flags"] and "UP" in r2_eth1["flags"], far_end
        assert lab.ping("r1", far_address, count=1).returncode != 0
        lab.fault_link("r1:eth1", "up")
        _wait("r1 reaches r2 again", lambda: lab.ping("r1", far_address, 1).returncode == 0)

        # 20 ms on r1's egress shows in r1's round trip to r2 (the reply path is untouched).
        lab.fault_link("r1:eth1", "delay", "20ms")
        assert lab.state.faults["netem:r1:eth1"] == "delay 20ms"
        delayed = _rtt_avg_ms(lab.ping("r1", far_address, count=5).stdout)
        # At least the delay: each echo request is held 20 ms on its way out.
        assert 18.0 <= delayed - base <= 100.0, (base, delayed)
        lab.fault_link("r1:eth1", "clear")
        cleared = _rtt_avg_ms(lab.ping("r1", far_address, count=3).stdout)
        assert cleared - base < 15.0, (base, cleared)  # the 20 ms are gone
        # r3 powered off: its daemons end, its neighbours' ends lose carrier; on again, new
        # daemons answer and every link is up.
        r3_daemons = [p.pid for p in lab.state.processes_of("r3")]
        lab.fault_node("r3", up=False)
        assert r3_daemons and not any(processes.alive(pid) for pid in r3_daemons)
        opers = {li["a"]: (li["a_oper"], li["b_oper"]) for li in lab.status()["links"]}
        assert opers == {"r1:eth1": ("up", "up"), "r2:eth2": ("down", "down"),
                         "r3:eth2": ("down", "down")}  # fmt: skip
        lab.fault_node("r3", up=True)  # returns once every daemon of r3 answers again
        report = lab.status()
        assert report["nodes"]["r3"]["down"] is False
        assert set(report["nodes"]["r3"]["daemons"].values()) == {"running"}
        assert not set(r3_daemons) & {p.pid for p in lab.state.processes_of("r3")}
        assert all(li["a_oper"] == li["b_oper"] == "up" for li in report["links"])
        # Left impaired on purpose: down must end the delay line too.
        lab.fault_link("r1:eth1", "delay", "5ms", "loss", "1%")
        recorded = [p.pid for p in lab.state.processes]
        plan = lab.plan
    # running_netns_lab checked nothing is left; and the state file is gone.
    assert leftovers(plan, recorded) == []
    assert not state_file(tmp_path / "lab").exists()


def _cli(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [OSS, *args]
    env = {**os.environ, "HOME": "/tmp", "NO_COLOR": "1", "COLUMNS": "200"}
    if user is not None:
        account = pwd.getpwnam(user)
        ids = [f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]
        argv = ["setpriv", *ids, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def test_down_after_the_up_process_is_killed_half_way_cleans_everything(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    prefix = new_prefix()
    argv = [OSS, "lab", "up", "--netns", str(TRIANGLE), "--state-dir", str(state_dir)]
    up = subprocess.Popen(
        [*argv, "--prefix", prefix, "--trap-port", "162"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Killed once daemons run but before the lab is complete (the last node not started).
        def some_daemons_recorded() -> bool:
            assert up.poll() is None, "up finished before it could be killed"
            state = LabState.load(state_dir)  # replaced whole: never half a file
            return state is not None and len(state.processes) >= 3

        _wait("daemons recorded", some_daemons_recorded)
        up.send_signal(signal.SIGKILL)
        up.wait(timeout=10)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=10)
    state = LabState.load(state_dir)
    assert state is not None and state.phase == "building"
    pids = [p.pid for p in state.processes]
    assert set(state.plan.namespaces()) <= iproute.namespaces()

    done = _cli("lab", "down", "--netns", "--state-dir", str(state_dir))
    assert done.returncode == 0, done.stderr
    assert "namespaces deleted" in done.stdout
    assert leftovers(state.plan, pids) == []
    assert build.down(state_dir) is None  # twice is fine (the CLI's exit 0: the unit tests)


def test_not_root_is_refused_with_exit_2(tmp_path: Path) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv (util-linux) to run the CLI as nobody")
    # As nobody for real (down and exec: the unit tests, with the check's answer faked).
    args = ("lab", "up", "--netns", str(TRIANGLE), "--state-dir", str(tmp_path / "lab"))
    done = _cli(*args, user="nobody")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip() == "error: --netns needs root (network namespaces)"
    assert not (tmp_path / "lab").exists()


def test_a_bad_file_is_refused_with_its_line_and_nothing_is_made(tmp_path: Path) -> None:
    bad = tmp_path / "bad.clab.yml"
    bad.write_text(
        "name: bad\ntopology:\n  nodes:\n    a: {kind: linux, mgmt-ipv4: 192.0.2.1}\n"
        "    b: {kind: linux}\n  links:\n    - endpoints: [a:eth1, b:interface-too-long-1]\n"
    )
    prefix = new_prefix()
    done = _cli("lab", "up", "--netns", str(bad), "--state-dir", str(tmp_path / "lab"),
                "--prefix", prefix)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{bad}:4: node a: mgmt-ipv4 192.0.2.1" in done.stderr
    assert f"{bad}:7: link a:eth1 -- b:interface-too-long-1" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(n.startswith(prefix) for n in iproute.namespaces())
    assert not (tmp_path / "lab").exists()

"""The README's first command, end to end: `make run`, then the CLI with nothing but the saved
CLI config, the metrics endpoint, a stop and a restart that shows the same inventory. Its
ports and lab addresses are its own, so a `make run` already up on the machine is no clash."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.sim.lab import Ports
from tests.integration.lab.conftest import random_subnet
from tests.peers.lab_process import lab_state_dir
from tests.peers.ports import free_port, free_udp_port

REPO = Path(__file__).resolve().parents[2]
OSS = str(Path(sys.executable).parent / "oss")
MAKEFILE_TRAP_PORT = 10162  # TRAP_PORT's default in the Makefile
EXAMPLE_NODE = "127.10.1.1"  # the first node's mgmt-ipv4 in lab/topologies/metro.clab.yml


class MakeRun:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        # Free ports, never the Makefile's defaults: a `make run` may be up on this machine.
        self.port = free_port()
        self.trap_port = free_udp_port()
        self.subnet = random_subnet()  # not the example's addresses, which a `make run` holds
        self.env = {k: v for k, v in os.environ.items() if k not in ("OSS_URL", "OSS_TOKEN")}
        self.env["OSS_CLI_CONFIG"] = str(tmp / "cli.yaml")
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""  # what make run printed, both streams, once stopped

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "make",
                "-s",
                "run",
                f"STATE={self.tmp / 'state'}",
                f"PORT={self.port}",
                f"TRAP_PORT={self.trap_port}",
                f"LAB_SUBNET={self.subnet}",
                f"VENV={Path(sys.executable).parent.parent}",
            ],
            cwd=REPO,
            env=self.env,
            text=True,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"make run exited: {self.proc.communicate()}")
            if self._lab_recorded():
                return
            time.sleep(0.3)
        raise TimeoutError("make run did not become ready with its lab")

    def _lab_recorded(self) -> bool:
        """The daemon answers and `oss lab up` has recorded the lab's nodes in it."""
        try:
            if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code != 200:
                return False
        except httpx.TransportError:
            return False
        shown = self.oss("-o", "json", "device", "show", "acc6")
        if shown.returncode != 0:
            return False
        device = json.loads(shown.stdout)
        # recorded by this start's `oss lab up` (a restart re-imports the example's addresses)
        address = ipaddress.ip_address(device.get("mgmt_address") or "0.0.0.0")
        recorded = address in ipaddress.ip_network(self.subnet)
        return recorded and device.get("credentials_ref") is not None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # make and the daemon it started, nothing else
        try:
            self.output += "".join(self.proc.communicate(timeout=30))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()
            raise

    def oss(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [OSS, *args], env=self.env, capture_output=True, text=True, timeout=60
        )


@contextlib.contextmanager
def make_run_defaults_held() -> Iterator[None]:
    """What a `make run` already up holds: the Makefile's default trap port and the SNMP port
    of the example's first node (the test failed on both then). One already taken by
    something else is left alone."""
    held = [("127.0.0.1", MAKEFILE_TRAP_PORT), (EXAMPLE_NODE, Ports.for_this_user().snmp)]
    with contextlib.ExitStack() as stack:
        for address in held:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            with contextlib.suppress(OSError):
                sock.bind(address)
        yield


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[MakeRun]:
    runner = MakeRun(tmp_path)
    # make run stops its lab on exit; should that fail, the test still stops it
    with lab_state_dir(tmp_path / "state" / "lab"), make_run_defaults_held():
        try:
            yield runner
        finally:
            runner.stop()


def test_make_run_serves_the_example_and_survives_a_restart(make_run: MakeRun) -> None:
    make_run.start()
    listed = make_run.oss("-o", "json", "device", "list")
    assert listed.returncode == 0, listed.stderr
    devices = json.loads(listed.stdout)
    assert {"agg1", "agg2", "acc1", "acc6"} <= {d["name"] for d in devices}
    path = make_run.oss("topology", "path", "acc1", "acc6")
    assert path.returncode == 0 and "acc1 >" in path.stdout
    metrics = httpx.get(f"http://127.0.0.1:{make_run.port}/metrics").text
    assert "# TYPE oss_http_requests_total counter" in metrics
    console = httpx.get(f"http://127.0.0.1:{make_run.port}/ui/")
    assert console.status_code == 200 and "content-security-policy" in console.headers
    # what make run prints to sign in: the console's address and the saved token that works
    signin = make_run.oss("console", "--show-token")
    assert signin.returncode == 0, signin.stderr
    assert f"console: http://127.0.0.1:{make_run.port}/ui/" in signin.stdout
    assert "signs in as: make-run (operator)" in signin.stdout
    token = signin.stdout.split("token: ")[1].strip()
    me = httpx.get(
        f"http://127.0.0.1:{make_run.port}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )
    assert me.status_code == 200 and me.json()["role"] == "operator"
    # the simulated lab answers for the inventory's devices
    lab = make_run.oss(
        "-o", "json", "lab", "status", "--state-dir", str(make_run.tmp / "state" / "lab")
    )
    assert lab.returncode == 0, lab.stderr
    assert set(json.loads(lab.stdout)["nodes"]) == {d["name"] for d in devices}

    make_run.stop()
    assert "CryptographyDeprecationWarning" not in make_run.output
    assert "shown once" not in make_run.output  # the token is saved, its stdout discarded
    assert f"The console: http://127.0.0.1:{make_run.port}/ui/" in make_run.output
    assert "oss console --show-token" in make_run.output
    make_run.start()  # a new token replaces the old one; the inventory is the same
    again = make_run.oss("-o", "json", "device", "list")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == devices
    entries = json.loads(make_run.oss("-o", "json", "audit", "--type", "token").stdout)
    assert [e["action"] for e in entries[:2]] == ["create", "revoke"]

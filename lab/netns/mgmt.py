"""The daemon's side of a namespace lab: `oss serve` inside the management namespace, its API
published on the root namespace's 127.0.0.1 (lab.netns.forward), and what the inventory learns
of each node.

The daemon is configured for the lab by environment: it may reach only the management subnet
(`drivers.allowed_networks`), receives traps on the gateway address (where every node's snmpd
sends them), and reads the lab's credentials file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab.netns import processes
from lab.netns.iproute import LabError
from lab.netns.state import ROOT_NAMESPACE, LabState, ProcessRecord, credentials_file

PLATFORM = "frr"  # every profile runs FRR (configs/platforms/frr.yaml)
MGMT = "mgmt"  # ProcessRecord.node of the management side's processes
SERVE_LOG, FORWARD_LOG = "oss-serve.log", "forward.log"


def daemon_env(state: LabState, trap_port: int) -> dict[str, str]:
    plan = state.plan
    return {
        "OSS_DRIVERS__ALLOWED_NETWORKS": json.dumps([plan.mgmt_subnet]),
        "OSS_ASSURANCE__TRAPS_HOST": plan.mgmt_gateway,
        "OSS_ASSURANCE__TRAPS_PORT": str(trap_port),
    }


def start_daemon(
    state: LabState,
    serve_dir: Path,
    port: int,
    trap_port: int,
    topology: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcessRecord:
    """`oss serve` (SQLite under `serve_dir`) inside the management namespace on 127.0.0.1:port."""
    argv = [sys.executable, "-m", "oss.cli.main", "serve", "--state-dir", str(serve_dir)]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    if topology is not None:
        argv += ["--topology", str(topology)]
    environment = {**_inherited(), **daemon_env(state, trap_port), **(env or {})}
    return _spawn(state, "oss-serve", argv, environment, state.state_dir / SERVE_LOG, inside=True)


def start_forwarder(state: LabState, port: int, listen_port: int) -> ProcessRecord:
    """Publish the daemon's port on the root namespace's 127.0.0.1:listen_port."""
    ready = state.state_dir / "forward.ready"
    ready.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "lab.netns.forward", "--netns", state.plan.mgmt_namespace]
    argv += ["--port", str(port), "--listen-port", str(listen_port), "--ready-file", str(ready)]
    log = state.state_dir / FORWARD_LOG
    record = _spawn(state, "forward", argv, _inherited(), log, inside=False)
    deadline = time.monotonic() + 10
    while not ready.exists():
        if not processes.alive(record.pid) or time.monotonic() > deadline:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError(f"the forwarder to 127.0.0.1:{listen_port} did not start: {tail}")
        time.sleep(0.02)
    ready.unlink()
    return record


def _inherited() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "TZ")
    return {k: v for k, v in os.environ.items() if k in keep or k.startswith("OSS_")}


def _spawn(
    state: LabState,
    daemon: str,
    argv: list[str],
    env: dict[str, str],
    log_path: Path,
    *,
    inside: bool,
) -> ProcessRecord:
    namespace = state.plan.mgmt_namespace if inside else ROOT_NAMESPACE
    command = ["ip", "netns", "exec", namespace, *argv] if inside else argv
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,  # it outlives the `oss lab up` that started it
        )
    # `ip netns exec` execs the command in place: the pid is the command's own.
    record = ProcessRecord(MGMT, daemon, proc.pid, namespace, argv[0])
    state.record(record)
    return record


def inventory_updates(state: LabState) -> dict[str, dict[str, Any]]:
    """Per node, the PATCH body that points the daemon's inventory at the lab."""
    reference = f"file:{credentials_file(state.state_dir).resolve()}"
    return {
        node.name: {
            "mgmt_address": node.mgmt_address,
            "loopback": node.loopback,
            "platform": PLATFORM,
            "credentials_ref": reference,
        }
        for node in state.plan.nodes
    }

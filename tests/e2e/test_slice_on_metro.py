"""The issue's "done when", with real processes: `oss serve`, `oss lab up` of the metro example,
and the CLI. A slice from site north to site south is created with `oss slice create`, is
visible on every hop over NETCONF and gNMI, shows no drift, and `oss service delete` removes
it everywhere. Then the crash case: the daemon is killed (SIGKILL) between commit and confirm,
restarted, and its journal finishes the transaction.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from drivers.gnmi import GnmiDriver
from drivers.netconf import NetconfDriver
from lab.sim.lab import Ports
from oss.errors import RpcError
from tests.integration.lab.conftest import random_subnet
from tests.peers.daemon import Daemon
from topology.model import Device
from topology.targets import parse_networks, target_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
METRO = REPO / "lab" / "topologies" / "metro.clab.yml"
LOOPBACK = parse_networks(["127.0.0.0/8"])
PORTS = Ports.for_this_user().as_dict()


def daemon_env(**extra: str) -> dict[str, str]:
    return {
        "OSS_DRIVERS__ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "OSS_DRIVERS__PORTS": json.dumps(PORTS),
        "OSS_DRIVERS__TIMEOUT_S": "20",
        **extra,
    }


def start(tmp_path: Path, lab_dir: Path, **env: str) -> Daemon:
    daemon = Daemon(
        state_dir=tmp_path / "daemon", extra_args=["--topology", str(METRO)], env=daemon_env(**env)
    ).start()
    daemon.token = daemon.create_token("operator")
    return daemon


def lab_up(daemon: Daemon, lab_dir: Path) -> None:
    up = daemon.cli(
        "-o",
        "json",
        "lab",
        "up",
        str(METRO),
        "--state-dir",
        str(lab_dir),
        "--subnet",
        random_subnet(),
    )
    assert up.returncode == 0, up.stderr
    assert len(json.loads(up.stdout)["inventory"]["updated"]) == 10


def device(daemon: Daemon, name: str) -> Device:
    shown = daemon.cli_json("device", "show", name)
    return Device.model_validate({k: v for k, v in shown.items() if k in Device.model_fields})


async def holds(daemon: Daemon, names: list[str], vrf: str) -> dict[str, tuple[bool, bool]]:
    """Per device: (seen over NETCONF, seen over gNMI)."""
    seen = {}
    async with NetconfDriver() as nc, GnmiDriver() as gnmi:
        for name in names:
            dev = device(daemon, name)
            t = target_for(dev, "netconf", port=PORTS["netconf"], allowed=LOOPBACK)
            async with nc.connect(t) as session:
                over_netconf = vrf in await session.get_config("running")
            t = target_for(dev, "gnmi", port=PORTS["gnmi"], allowed=LOOPBACK)
            async with gnmi.connect(t) as g:
                try:
                    tree = await g.get(["network-instances"], datatype="config")
                except RpcError as exc:
                    assert "NOT_FOUND" in exc.device_error  # nothing configured there
                    tree = {}
                over_gnmi = vrf in json.dumps(tree)
            seen[name] = (over_netconf, over_gnmi)
    return seen


async def test_slice_create_diff_delete_with_the_cli(tmp_path: Path, lab_dir: Path) -> None:
    daemon = start(tmp_path, lab_dir)
    try:
        lab_up(daemon, lab_dir)
        created = daemon.cli(
            "-o",
            "json",
            "slice",
            "create",
            "--from",
            "north",
            "--to",
            "south",
            "--bandwidth",
            "200M",
            "--latency",
            "5ms",
            "--customer",
            "acme",
        )
        assert created.returncode == 0, created.stderr + created.stdout
        result = json.loads(created.stdout)
        service, txn = result["service"], result["transaction"]
        assert service["state"] == "active" and txn["state"] == "committed"
        hops = service["placement"]["primary"]["devices"]
        assert hops[0] == "pe1" and hops[-1] == "pe2"
        assert {d["device"] for d in txn["devices"]} == set(hops)
        assert all(d["state"] == "confirmed" for d in txn["devices"])
        assert await holds(daemon, hops, service["vrf"]) == {h: (True, True) for h in hops}

        diff = daemon.cli("service", "diff", service["name"])
        assert diff.returncode == 0 and "in sync" in diff.stdout, diff.stdout + diff.stderr

        # In table mode the CLI follows the transaction with a per-device progress table.
        gone = daemon.cli("service", "delete", service["name"], "--yes")
        assert gone.returncode == 0, gone.stderr + gone.stdout
        assert "committed" in gone.stdout and "terminated" in gone.stdout, gone.stdout
        assert all(hop in gone.stdout for hop in hops), gone.stdout
        assert await holds(daemon, hops, service["vrf"]) == {h: (False, False) for h in hops}
    finally:
        daemon.kill()


def create_and_kill_before_confirm(daemon: Daemon) -> tuple[int, int]:
    """Start a slice without waiting, watch its transaction reach `confirming` (the daemon
    holds there), then SIGKILL the daemon."""
    headers = {"Authorization": f"Bearer {daemon.token}"}
    body = {"from": "north", "to": "south", "bandwidth": "100M", "customer": "acme"}
    started = httpx.post(
        f"{daemon.url}/api/v1/slices",
        json=body,
        params={"wait": "false"},
        headers=headers,
        timeout=60,
    )
    assert started.status_code == 202, started.text
    txn_id, service_id = started.json()["transaction_id"], started.json()["service_id"]
    deadline = time.monotonic() + 60
    while True:
        txn = httpx.get(f"{daemon.url}/api/v1/transactions/{txn_id}", headers=headers).json()
        if txn["state"] == "confirming":
            break
        assert txn["state"] not in ("failed", "rolled-back"), txn
        assert time.monotonic() < deadline, txn
        time.sleep(0.1)
    daemon.stop(signal.SIGKILL)
    return int(txn_id), int(service_id)


async def test_kill_between_commit_and_confirm_then_restart(tmp_path: Path, lab_dir: Path) -> None:
    daemon = start(tmp_path, lab_dir, OSS_PROVISIONING__HOLD_BEFORE_CONFIRM_S="60")
    try:
        lab_up(daemon, lab_dir)
        txn_id, service_id = await asyncio.to_thread(create_and_kill_before_confirm, daemon)
    finally:
        daemon.kill()

    # (no --topology: the lab moved the devices to its subnet; re-importing would undo that)
    restarted = Daemon(state_dir=tmp_path / "daemon", env=daemon_env()).start()
    try:
        restarted.token = daemon.token
        txn = restarted.cli_json("transaction", "show", str(txn_id))
        assert txn["state"] == "committed", txn
        service = restarted.cli_json("service", "show", str(service_id))
        assert service["state"] == "active"
        hops = service["placement"]["primary"]["devices"]
        assert await holds(restarted, hops, service["vrf"]) == {h: (True, True) for h in hops}
        diff = restarted.cli("service", "diff", str(service_id))
        assert diff.returncode == 0, diff.stdout
    finally:
        restarted.kill()

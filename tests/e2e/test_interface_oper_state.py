"""Defect 12, with real processes: `oss serve` polling the simulated metro lab writes each
interface's oper_state into the inventory (it stayed `unknown` forever): `oss lab fault link
... down` shows `down` on both ends in /api/v1/interfaces and the graph, `... up` shows `up`
again; only changes are written (audited), not every poll."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_slice_on_metro import METRO, daemon_env, lab_up
from tests.peers.daemon import Daemon

pytestmark = pytest.mark.integration

A_END, B_END = ("acc1", "eth1"), ("agg1", "eth11")  # one link of the metro example


def get(daemon: Daemon, path: str, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    r = httpx.get(daemon.url + path, headers=headers, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def oper_state(daemon: Daemon, end: tuple[str, str]) -> str:
    state: str = get(daemon, f"/api/v1/interfaces/{end[0]}/{end[1]}")["oper_state"]
    return state


def in_graph(daemon: Daemon, end: tuple[str, str]) -> str:
    [device] = [d for d in get(daemon, "/api/v1/topology")["devices"] if d["name"] == end[0]]
    [interface] = [i for i in device["interfaces"] if i["name"] == end[1]]
    state: str = interface["oper_state"]
    return state


def wait_for_state(daemon: Daemon, want: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while {oper_state(daemon, A_END), oper_state(daemon, B_END)} != {want}:
        assert time.monotonic() < deadline, (oper_state(daemon, A_END), oper_state(daemon, B_END))
        time.sleep(0.5)


def test_polling_writes_interface_oper_state_on_change(tmp_path: Path, lab_dir: Path) -> None:
    env = daemon_env(OSS_ASSURANCE__POLLING__INTERVAL_S="1", OSS_ASSURANCE__REFRESH_S="1")
    daemon = Daemon(state_dir=tmp_path / "daemon", extra_args=["--topology", str(METRO)], env=env)
    daemon.start(wait=False)
    try:
        daemon.wait_ready(timeout=120)  # the shared test host can be slow to start it
        daemon.token = daemon.create_token("operator")
        assert oper_state(daemon, A_END) == "unknown"  # nothing observed yet
        lab_up(daemon, lab_dir)
        wait_for_state(daemon, "up")
        listed = get(daemon, "/api/v1/interfaces", device="acc1", oper_state="up")
        assert "eth1" in {i["name"] for i in listed["items"]}

        link = f"{A_END[0]}:{A_END[1]}"
        down = daemon.cli("lab", "fault", "link", link, "down", "--state-dir", str(lab_dir))
        assert down.returncode == 0, down.stderr
        wait_for_state(daemon, "down")
        assert in_graph(daemon, A_END) == in_graph(daemon, B_END) == "down"

        up = daemon.cli("lab", "fault", "link", link, "up", "--state-dir", str(lab_dir))
        assert up.returncode == 0, up.stderr
        wait_for_state(daemon, "up")
        time.sleep(3)  # a few more polls that see the same state
        entries = get(
            daemon,
            "/api/v1/audit",
            actor="system:assurance",
            object_type="interface",
            object_id="acc1:eth1",
        )["items"]
        ordered = sorted(entries, key=lambda e: e["id"])
        states = [(e["before"]["oper_state"], e["after"]["oper_state"]) for e in ordered]
        assert states == [("unknown", "up"), ("up", "down"), ("down", "up")]
    finally:
        daemon.kill()

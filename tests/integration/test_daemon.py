"""`oss serve` as a process: start-up, CLI against it, signals, restart, bad settings."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.peers.daemon import Daemon
from tests.peers.postgres import PostgresServer, create_database

REPO = Path(__file__).resolve().parents[2]
RING = REPO / "lab" / "topologies" / "ring4.clab.yml"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path, extra_args=["--topology", str(RING)])
    d.start()
    try:
        d.token = d.create_token("operator")
        yield d
    finally:
        d.kill()


def test_cli_answers_from_the_imported_topology(daemon: Daemon) -> None:
    devices = daemon.cli_json("device", "list")
    assert sorted(d["name"] for d in devices) == ["r1", "r2", "r3", "r4"]
    table = daemon.cli("device", "list", "--role", "core")
    assert table.returncode == 0 and "r1" in table.stdout and "127.10.0.1" in table.stdout

    path = daemon.cli_json("topology", "path", "r1", "r3")
    best = path["paths"][0]
    assert best["devices"][0] == "r1" and best["devices"][-1] == "r3"
    two = daemon.cli_json("topology", "path", "r1", "r3", "--k", "2")
    assert len(two["paths"]) == 2 and two["paths"][0]["latency_us"] <= two["paths"][1]["latency_us"]
    pair = daemon.cli_json("topology", "path", "r1", "r3", "--disjoint")
    assert not set(pair["paths"][0]["links"]) & set(pair["paths"][1]["links"])
    nodes = daemon.cli_json("topology", "path", "r1", "r3", "--disjoint", "--by", "node")
    inner = [set(p["devices"][1:-1]) for p in nodes["paths"]]
    assert inner[0] and inner[1] and not inner[0] & inner[1]
    human = daemon.cli("topology", "path", "r1", "r3")
    assert human.returncode == 0 and "r1 >" in human.stdout

    links = daemon.cli_json("link", "list")
    assert len(links) == 4
    exported = daemon.cli("topology", "export")
    assert exported.returncode == 0 and "r4:" in exported.stdout


def test_cli_changes_are_audited_and_exit_codes_are_consistent(daemon: Daemon) -> None:
    added = daemon.cli_json(
        "device",
        "add",
        "edge9",
        "--role",
        "access",
        "--mgmt-address",
        "127.10.0.99",
        "--credentials-ref",
        "env:EDGE9",
    )
    assert added["name"] == "edge9"
    assert daemon.cli("device", "add", "edge9").returncode == 1  # 409: the operation failed
    assert daemon.cli("device", "show", "nope").returncode == 1  # 404
    bad = daemon.cli("device", "add", "bad name!")
    assert bad.returncode == 2 and "name" in bad.stderr  # 422: the input was wrong
    assert daemon.cli("device", "list", "--bogus").returncode == 2  # usage
    assert daemon.cli("device", "rm", "edge9").returncode == 2  # no --yes and no terminal
    assert daemon.cli("device", "rm", "edge9", "--yes").returncode == 0
    entries = daemon.cli_json("audit", "--type", "device")
    assert [e["action"] for e in entries[:2]] == ["delete", "create"]
    assert entries[0]["actor"].startswith("token:t-operator#")


def test_bad_topology_file_exit_2_with_line(daemon: Daemon, tmp_path: Path) -> None:
    bad = tmp_path / "bad.clab.yml"
    bad.write_text(
        "name: bad\ntopology:\n  nodes:\n    r1: {kind: linux}\n"
        "  links:\n    - endpoints: [r1:eth1, ghost:eth1]\n"
    )
    result = daemon.cli("topology", "import", str(bad))
    assert result.returncode == 2
    assert f"{bad}:6" in result.stderr.replace("\n", "")
    assert len(daemon.cli_json("device", "list")) == 4


def test_no_token_and_wrong_role(daemon: Daemon) -> None:
    daemon.token = None
    assert daemon.cli("device", "list").returncode == 1
    viewer = daemon.create_token("viewer")
    assert daemon.cli("device", "list", token=viewer).returncode == 0
    denied = daemon.cli("device", "add", "x1", token=viewer)
    assert denied.returncode == 1 and "operator" in denied.stderr


def test_metrics_and_readiness(daemon: Daemon) -> None:
    response = httpx.get(daemon.url + "/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert 'oss_inventory_objects{kind="devices"} 4.0' in response.text
    assert 'oss_service_up{service="api"} 1.0' in response.text
    assert httpx.get(daemon.url + "/readyz").json() == {"status": "ready"}


def test_sigterm_exits_zero_within_budget_and_restart_keeps_inventory(tmp_path: Path) -> None:
    first = Daemon(tmp_path, extra_args=["--topology", str(RING)]).start()
    try:
        first.token = first.create_token("operator")
        assert first.cli("link", "set", "1", "--state", "down").returncode == 0
        before = first.cli_json("device", "list"), first.cli_json("link", "list")
        started = time.monotonic()
        code, log = first.stop(signal.SIGTERM)
        elapsed = time.monotonic() - started
    finally:
        first.kill()
    assert code == 0, log
    budget = 10 + 10 + 5  # the default stage budgets: ingress, workers, storage
    assert elapsed < budget
    assert "shutdown requested" in log and "daemon stopped" in log

    second = Daemon(tmp_path).start()  # no --topology: what it shows came from the database
    try:
        second.token = first.token
        after = second.cli_json("device", "list"), second.cli_json("link", "list")
        assert after == before
        code, _ = second.stop(signal.SIGINT)
        assert code == 0
    finally:
        second.kill()


def test_json_logs(tmp_path: Path) -> None:
    d = Daemon(tmp_path, extra_args=["--log-format", "json"]).start()
    try:
        code, log = d.stop()
    finally:
        d.kill()
    assert code == 0
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert any(e["msg"] == "serving the REST API" and "url" in e for e in lines)
    assert all({"ts", "level", "logger", "msg"} <= e.keys() for e in lines)


def test_invalid_settings_file_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "oss.yaml"
    config.write_text("api:\n  port: 8080\nlog:\n  format: xml\n")
    d = Daemon(tmp_path, extra_args=["--config", str(config)]).start(wait=False)
    assert d.proc is not None
    _, err = d.proc.communicate(timeout=30)
    assert d.proc.returncode == 2
    assert f"{config}:4: log.format" in err


def test_busy_port_fails_clearly(tmp_path: Path, daemon: Daemon) -> None:
    clash = Daemon(tmp_path / "other", port=daemon.port).start(wait=False)
    assert clash.proc is not None
    _, err = clash.proc.communicate(timeout=30)
    assert clash.proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{daemon.port}" in err


def test_postgresql_backend_and_password_never_logged(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = create_database(postgres, "oss_daemon").replace("oss@", "oss:hunter2@")
    d = Daemon(
        tmp_path, extra_args=["--topology", str(RING)], env={"OSS_DATABASE_URL": url}
    ).start()
    try:
        result = d.cli("token", "create", "--role", "viewer", "--state-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "hunter2" not in result.stderr
        d.token = result.stdout.strip()
        assert len(d.cli_json("device", "list")) == 4
        code, log = d.stop()
    finally:
        d.kill()
    assert code == 0
    assert "postgresql+asyncpg://oss:***@" in log
    assert "hunter2" not in log

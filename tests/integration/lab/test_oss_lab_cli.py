"""`oss lab` as engineers run it: subprocesses against a real `oss serve`, a lab in the
background, fault injection through the control socket, and `oss lab down`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from drivers.credentials import resolve_credentials
from lab.sim.lab import read_state
from tests.integration.lab.conftest import IF_OPER_STATUS, RING4, random_subnet
from tests.peers.daemon import OSS, Daemon
from tests.peers.lab_process import lab_state_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    server = Daemon(state_dir=tmp_path / "daemon").start()
    try:
        server.token = server.create_token("operator")
        imported = server.cli("topology", "import", str(RING4))
        assert imported.returncode == 0, imported.stderr
        yield server
    finally:
        server.kill()


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    with lab_state_dir(tmp_path / "lab") as directory:
        yield directory


def _oss(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return daemon.cli(*args)


def _json(daemon: Daemon, *args: str) -> dict:  # type: ignore[type-arg]
    result = daemon.cli("-o", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_up_status_faults_down(daemon: Daemon, lab_dir: Path) -> None:
    subnet = random_subnet()
    where = ("--state-dir", str(lab_dir))
    up = _json(daemon, "lab", "up", str(RING4), *where, "--subnet", subnet)
    address = {name: node["address"] for name, node in up["nodes"].items()}
    ports = up["nodes"]["r1"]["ports"]  # the standard ones as root, else the high-port scheme
    assert set(address) == {"r1", "r2", "r3", "r4"}
    assert all(all(protocols.values()) for protocols in up["answering"].values())
    assert sorted(up["inventory"]["updated"]) == ["r1", "r2", "r3", "r4"]

    # the inventory now points at the lab, with credentials the drivers can read
    device = _json(daemon, "device", "show", "r1")
    assert device["mgmt_address"] == address["r1"]
    credentials = resolve_credentials(device["credentials_ref"], device="r1")
    assert credentials.username == "admin"
    assert credentials.snmp is not None and credentials.snmp.community is not None
    assert credentials.known_hosts is not None and credentials.known_hosts.exists()
    community = credentials.snmp.community.get_secret_value()

    again = _oss(daemon, "lab", "up", str(RING4), *where)
    assert again.returncode == 1 and "already running" in again.stderr

    status = _json(daemon, "lab", "status", *where)
    assert status["nodes"]["r2"]["interfaces"]["eth1"]["oper"] == "up"

    down = _oss(daemon, "lab", "fault", "link", "r1:eth1", "down", *where)
    assert down.returncode == 0, down.stderr
    oper = subprocess.run(
        ["snmpget", "-v2c", "-c", community, "-On", "-OQ", "-m", "", "-t", "2",
         f"{address['r2']}:{ports['snmp']}", f"{IF_OPER_STATUS}.1"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert oper.stdout.strip().endswith("= 2"), oper.stdout + oper.stderr

    impaired = _json(
        daemon, "lab", "fault", "link", "r1:eth1", "latency", "5ms", "loss", "1%", *where
    )
    assert impaired["latency_us"] == 5000 and impaired["loss"] == pytest.approx(0.01)

    node = _json(daemon, "lab", "fault", "node", "r3", "down", *where)
    assert node == {"node": "r3", "up": False}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address["r3"], ports["netconf"]), timeout=2).close()
    status = _json(daemon, "lab", "status", *where)
    assert status["nodes"]["r4"]["interfaces"]["eth1"]["oper"] == "down"
    assert [link["up"] for link in status["links"] if link["a"] == "r1:eth1"] == [False]

    wrong = _oss(daemon, "lab", "fault", "link", "r1:eth9", "down", *where)
    assert wrong.returncode == 2 and "no link at r1:eth9" in wrong.stderr
    bad_loss = _oss(daemon, "lab", "fault", "link", "r1:eth1", "loss", "lots", *where)
    assert bad_loss.returncode == 2

    pid = int(up["pid"])
    stopped = _oss(daemon, "lab", "down", *where)
    assert stopped.returncode == 0, stopped.stderr
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert read_state(lab_dir) is None
    gone = _oss(daemon, "lab", "status", *where)
    assert gone.returncode == 1 and "no lab is running" in gone.stderr


def test_a_bad_topology_file_is_refused(lab_dir: Path, tmp_path: Path) -> None:
    def oss(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "OSS_CLI_CONFIG": str(tmp_path / "cli.yaml"), "COLUMNS": "200"}
        return subprocess.run([OSS, *args], env=env, capture_output=True, text=True, timeout=60)

    broken = tmp_path / "broken.clab.yml"
    broken.write_text(yaml.safe_dump({"name": "x", "topology": {"nodes": {"a": {}}}}))
    result = oss("lab", "up", str(broken), "--state-dir", str(lab_dir))
    assert result.returncode == 2
    assert "no kind" in result.stderr
    outside = oss("lab", "up", str(RING4), "--state-dir", str(lab_dir), "--subnet", "10.0.0.0/24")
    assert outside.returncode == 2 and "127.0.0.0/8" in outside.stderr
    receiver = oss(
        "lab", "up", str(RING4), "--state-dir", str(lab_dir), "--trap-receiver", "192.0.2.1:162"
    )
    assert receiver.returncode == 2 and "127.0.0.0/8" in receiver.stderr
    assert read_state(lab_dir) is None
    assert oss("lab", "down", "--state-dir", str(lab_dir)).returncode == 1

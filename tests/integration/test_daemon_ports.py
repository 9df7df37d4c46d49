"""Every port `oss serve` binds fails start-up the same way when busy (defect 18): one line
naming the setting and the address, exit code 2, no traceback. And the trap receiver's
rejected datagrams are counted on /metrics by reason (defect 13), on a real receiver."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.peers.daemon import Daemon
from tests.peers.ports import free_udp_port

pytestmark = pytest.mark.integration

V3_GARBAGE = b"\x30\x03\x02\x01\x03"  # says "SNMPv3", then ends


def exit_of(daemon: Daemon) -> tuple[int, str]:
    daemon.start(wait=False)
    assert daemon.proc is not None
    _, err = daemon.proc.communicate(timeout=60)
    return daemon.proc.returncode, err


def test_a_busy_trap_port_stops_start_up_with_exit_2_and_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        daemon = Daemon(tmp_path, env={"OSS_ASSURANCE__TRAPS_PORT": str(port)})
        code, err = exit_of(daemon)
    assert code == 2, err
    assert f"assurance.traps_port: cannot listen on 127.0.0.1:{port} (udp)" in err
    assert "OSS_ASSURANCE__TRAPS_PORT" in err
    assert "Traceback" not in err and "crashed" not in err


def test_a_busy_api_port_names_its_setting_too(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code, err = exit_of(Daemon(tmp_path, port=port))
    assert code == 2, err
    assert f"api.port: cannot listen on 127.0.0.1:{port} (tcp)" in err
    assert "Traceback" not in err


def rejected(metrics: str, reason: str) -> float:
    prefix = f'oss_traps_rejected_total{{reason="{reason}"}} '
    [line] = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


def test_malformed_and_unknown_community_traps_are_counted_on_metrics(tmp_path: Path) -> None:
    trap_port = free_udp_port()
    daemon = Daemon(
        tmp_path,
        env={
            "OSS_ASSURANCE__TRAPS_PORT": str(trap_port),
            "OSS_ASSURANCE__TRAP_COMMUNITIES": '["known-community"]',
        },
    ).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for garbage in (b"not snmp at all", b"\x30\x03\x02\x01", b"\x30\x82\xff\xff"):
                sender.sendto(garbage, ("127.0.0.1", trap_port))
            sender.sendto(V3_GARBAGE, ("127.0.0.1", trap_port))  # for pysnmp, which drops it
        # a well-formed v2c linkDown from Net-SNMP's snmptrap, with a community nobody knows
        subprocess.run(
            [
                "snmptrap",
                "-v",
                "2c",
                "-c",
                "guessed",
                f"127.0.0.1:{trap_port}",
                "",
                "1.3.6.1.6.3.1.1.5.3",
            ],
            check=True,
            timeout=10,
        )
        deadline = time.monotonic() + 20
        while True:
            metrics = httpx.get(daemon.url + "/metrics", timeout=5).text
            if rejected(metrics, "decode") == 4 and rejected(metrics, "community") == 1:
                break
            assert time.monotonic() < deadline, metrics
            time.sleep(0.2)
        assert "# TYPE oss_traps_rejected_total counter" in metrics
        code, log = daemon.stop()
    finally:
        daemon.kill()
    assert code == 0
    assert "guessed" not in log  # a community is a secret, even a wrong one

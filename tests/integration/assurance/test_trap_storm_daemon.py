"""A trap storm into `oss serve` (a real process, real UDP): none lost at a rate the daemon
accepts (every trap counted in its alarm), the API answering meanwhile, and past the queue's
bound (a small `assurance.traps_queue_size`) the drops counted on /metrics, with the kernel's
drop counters and the receive buffer the kernel granted beside them."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pysnmp.proto.api import v2c

from tests.peers.daemon import Daemon
from tests.peers.snmpd import free_udp_port
from tests.unit.drivers.test_snmp_trap_codec import v2c_message

pytestmark = pytest.mark.integration

COMMUNITY = "storm-test"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
PAIRS = 10  # (source address, ifindex) pairs, each repeating linkDown: one alarm each
REPEATS = 30


def link_down(ifindex: int, n: int) -> bytes:
    return v2c_message(
        varbinds=[
            ("1.3.6.1.2.1.1.3.0", v2c.TimeTicks(n)),
            ("1.3.6.1.6.3.1.1.4.1.0", v2c.ObjectIdentifier(LINK_DOWN)),
            (f"1.3.6.1.2.1.2.2.1.1.{ifindex}", v2c.Integer(ifindex)),
            (f"1.3.6.1.2.1.2.2.1.8.{ifindex}", v2c.Integer(2)),
        ],
        community=COMMUNITY.encode(),
        request_id=n + 1,
    )


def start_daemon(state_dir: Path, **settings: str) -> Daemon:
    env = {
        "OSS_ASSURANCE__TRAPS_PORT": str(free_udp_port()),
        "OSS_ASSURANCE__TRAP_COMMUNITIES": json.dumps([COMMUNITY]),
        **settings,
    }
    daemon = Daemon(state_dir, env=env).start()
    try:
        daemon.token = daemon.create_token("viewer")
    except BaseException:
        daemon.kill()
        raise
    return daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = start_daemon(tmp_path)
    try:
        yield running
    finally:
        running.kill()


def trap_port(daemon: Daemon) -> int:
    return int(daemon.env["OSS_ASSURANCE__TRAPS_PORT"])


def collection(daemon: Daemon) -> dict[str, float]:
    """oss_collection's counts from /metrics."""
    out: dict[str, float] = {}
    for line in httpx.get(daemon.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith('oss_collection{counter="'):
            name, value = line[len('oss_collection{counter="') :].split('"} ')
            out[name] = float(value)
    return out


def get(daemon: Daemon, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    return httpx.get(daemon.url + path, headers=headers, timeout=30)


def wait_for(what: str, found: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := found()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)
    return result


class Requests(threading.Thread):
    """GETs the alarm and device lists in a loop until stopped; keeps the statuses."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__(daemon=True)
        self.target_daemon = daemon
        self.statuses: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        paths = ("/tmf-api/alarm/v4/alarm?limit=50", "/api/v1/devices")
        while not self.stopping.is_set():
            self.statuses.append(get(self.target_daemon, paths[len(self.statuses) % 2]).status_code)

    def stop(self) -> list[int]:
        self.stopping.set()
        self.join(timeout=60)
        return self.statuses


def test_none_lost_at_an_accepted_rate_and_the_api_answers_meanwhile(daemon: Daemon) -> None:
    # Each pair its own loopback source address: PAIRS alarms, each counting REPEATS traps.
    senders = []
    for n in range(PAIRS):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.10.{200 + n}.1", 0))
        senders.append(sock)
    requests = Requests(daemon)
    requests.start()
    try:
        for repeat in range(REPEATS):  # ~1,000 traps/s: a chunk of PAIRS every 10 ms
            for n, sock in enumerate(senders):
                sock.sendto(link_down(n + 1, repeat), ("127.0.0.1", trap_port(daemon)))
            time.sleep(0.01)

        def counted() -> list[dict[str, Any]] | None:
            alarms = [
                a
                for a in get(daemon, "/tmf-api/alarm/v4/alarm?limit=1000").json()
                if a["reductionKey"].startswith("linkDown:127.10.2")
            ]
            return alarms if sum(a["count"] for a in alarms) == PAIRS * REPEATS else None

        alarms = wait_for("every trap counted in its alarm", counted)
    finally:
        statuses = requests.stop()
        for sock in senders:
            sock.close()
    assert len(alarms) == PAIRS and {a["count"] for a in alarms} == {REPEATS}
    assert statuses and set(statuses) == {200}  # answered during the storm, none refused
    counts = collection(daemon)
    assert counts["traps_received"] == PAIRS * REPEATS
    assert counts["traps_dropped"] == counts["traps_kernel_dropped"] == 0
    assert counts["traps_receive_buffer_bytes"] > 0
    assert "udp_rcvbuf_errors" in counts  # host-wide: other sockets may count there


def test_a_burst_past_the_queue_bound_is_counted_on_metrics(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path, OSS_ASSURANCE__TRAPS_QUEUE_SIZE="20")
    try:
        burst = 2000
        assert daemon.proc is not None
        # Paused while the burst lands in its socket, so that it reads the burst in big gulps
        # once resumed: a daemon that kept pace with the sender would never fill the queue.
        daemon.proc.send_signal(signal.SIGSTOP)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.10.199.1", 0))
                for n in range(burst):
                    sock.sendto(link_down(1 + n % 50, n), ("127.0.0.1", trap_port(daemon)))
        finally:
            daemon.proc.send_signal(signal.SIGCONT)

        counts = wait_for(
            "the burst read off the socket",
            lambda: (
                (c := collection(daemon))["traps_received"] + c["traps_kernel_dropped"] == burst
                and c
            ),
        )
        # The queue of 20 overflowed, counted. (Where the kernel caps the receive buffer low, an
        # unprivileged daemon's socket drops some of the burst too: counted beside, waited for.)
        assert counts["traps_dropped"] > 0
        assert counts["traps_received"] > counts["traps_dropped"]
        assert get(daemon, "/api/v1/devices").status_code == 200
    finally:
        daemon.kill()

"""Fault management against a real Net-SNMP agent in a network namespace of the test's own.

snmpd runs inside the namespace with link up/down notifications (Net-SNMP's
`linkUpDownNotifications yes`, spelled out with numeric OIDs because no MIB files are loaded, and
sampled every second) and a trap2sink to `oss serve`, which runs inside the namespace too; the
test talks to both from a thread that entered the namespace. An interface is shut with
`ip link set X down` inside the namespace, as an operator would on the device.

- #9: an administrative shutdown (linkDown with ifAdminStatus down) raises no alarm, while the
  far end of the veth pair, which lost its carrier with the admin status still up, does.
- #10: stopping snmpd (SIGTERM: nsNotifyShutdown) raises "SNMP agent shut down"; starting it
  again (coldStart) clears it and leaves no open alarm.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers.daemon import Daemon
from tests.peers.netns import NetNs, namespaces_unavailable, network_namespace
from tests.peers.snmpd import SNMPD, cli_env, free_udp_port

pytestmark = pytest.mark.integration

COMMUNITY = "oss-ns-community"
DEVICE = "ns-agent"
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
IF_INDEX, IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
PROBE_IFINDEX = 999  # no such interface: the readiness probe's traps name it
WAIT_S = 60.0


def _snmpd_conf(port: int, trap_port: int) -> str:
    link_objects = f"{IF_INDEX} {IF_ADMIN} {IF_OPER}"
    return "\n".join(
        [
            f"rocommunity {COMMUNITY} 127.0.0.1",
            # The agent's own queries for the event monitors (DISMAN-EVENT-MIB).
            "createUser oss-internal",
            "iquerySecName oss-internal",
            "rouser oss-internal noauth",
            # What `linkUpDownNotifications yes` expands to, numeric, sampled every second.
            f"notificationEvent linkUpTrap {LINK_UP} {link_objects}",
            f"notificationEvent linkDownTrap {LINK_DOWN} {link_objects}",
            f'monitor -r 1 -S -e linkUpTrap "Generate linkUp" {IF_OPER} != 2',
            f'monitor -r 1 -S -e linkDownTrap "Generate linkDown" {IF_OPER} == 2',
            f"trap2sink udp:127.0.0.1:{trap_port} {COMMUNITY}",
            f"agentaddress udp:127.0.0.1:{port}",
        ]
    )


class NsAgent:
    """snmpd inside the namespace; stopped and started again with the same state and port."""

    def __init__(self, ns: NetNs, directory: Path, trap_port: int) -> None:
        self.ns = ns
        self.directory = directory
        self.port = ns.call(free_udp_port)
        self.conf = directory / "snmpd.conf"
        self.conf.write_text(_snmpd_conf(self.port, trap_port) + "\n")
        (directory / "state").mkdir(exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "SNMP_PERSISTENT_DIR": str(self.directory / "state"),
            "SNMPCONFPATH": str(self.directory / "state"),
            "MIBS": "",
            "HOME": str(self.directory),
        }
        argv = [SNMPD, "-f", "-Lo", "-C", "-c", str(self.conf), "-m", "", "-I", "-smux"]
        with (self.directory / "snmpd.log").open("ab") as log:
            proc: subprocess.Popen[bytes] = self.ns.call(
                subprocess.Popen, argv, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.proc = proc
        deadline = time.monotonic() + 15
        while not self._answers():
            assert proc.poll() is None, f"snmpd exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"snmpd does not answer:\n{self.log()}"
            time.sleep(0.1)

    def _answers(self) -> bool:
        argv = ["snmpget", "-v2c", "-c", COMMUNITY, "-t", "1", "-r", "0", "-On"]
        argv += [f"udp:127.0.0.1:{self.port}", "1.3.6.1.2.1.1.3.0"]
        done = self.ns.call(
            subprocess.run, argv, capture_output=True, env=cli_env(self.directory), timeout=10
        )
        return done.returncode == 0

    def stop(self) -> None:
        """SIGTERM, as `systemctl stop snmpd` does: the agent sends nsNotifyShutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: gone without a word (no nsNotifyShutdown left for the next test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.proc = None

    def log(self) -> str:
        return (self.directory / "snmpd.log").read_text(errors="replace")


class NsDaemon:
    """`oss serve` inside the namespace, receiving traps, and its API from inside."""

    def __init__(self, ns: NetNs, state_dir: Path) -> None:
        self.ns = ns
        self.trap_port = ns.call(free_udp_port)
        self.daemon = Daemon(
            state_dir,
            env={
                "OSS_ASSURANCE__TRAPS_PORT": str(self.trap_port),
                "OSS_ASSURANCE__TRAP_COMMUNITIES": json.dumps([COMMUNITY]),
                "OSS_ASSURANCE__REFRESH_S": "0.5",
                "OSS_LOG__LEVEL": "WARNING",
            },
        )
        self.token = ""

    def start(self) -> None:
        self.ns.call(self.daemon.start)
        self.token = self.daemon.create_token("operator")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        reply = self.ns.call(
            httpx.request,
            method,
            self.daemon.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert reply.status_code < 300, reply.text
        return reply.json() if reply.content else None

    def alarms(self) -> list[dict[str, Any]]:
        """Every alarm on the device or its interfaces, open or cleared."""
        docs = self.api("GET", "/tmf-api/alarm/v4/alarm?limit=1000")
        return [a for a in docs if str(a["alarmedObject"]["id"]).split(":")[0] == DEVICE]

    def trap(self, oid: str, *varbinds: str) -> None:
        argv = ["snmptrap", "-v2c", "-c", COMMUNITY, f"127.0.0.1:{self.trap_port}", "", oid]
        self.ns.call(subprocess.run, [*argv, *varbinds], check=True, timeout=10)


def wait_for(what: str, found: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """Poll until `found()` gives something (bounded); fail naming what never came."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = found()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {timeout_s:.0f}s: {what}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def ns() -> Iterator[NetNs]:
    reason = namespaces_unavailable()
    if reason is not None:
        pytest.skip(reason)
    if shutil.which("snmptrap") is None or not Path(SNMPD).exists():
        pytest.skip("Net-SNMP (snmpd, snmp) is not installed: `make system-deps`")
    with network_namespace() as namespace:
        namespace.ip("link", "add", "a0", "type", "veth", "peer", "name", "a1")
        namespace.ip("link", "set", "a0", "up")
        namespace.ip("link", "set", "a1", "up")
        yield namespace


@pytest.fixture(scope="module")
def oss(ns: NetNs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsDaemon]:
    daemon = NsDaemon(ns, tmp_path_factory.mktemp("oss-ns"))
    try:
        daemon.start()
        daemon.api(
            "POST",
            "/api/v1/devices",
            {"name": DEVICE, "platform": "linux", "mgmt_address": "127.0.0.1"},
        )
        _wait_until_traps_are_the_devices(daemon)
        yield daemon
    finally:
        if daemon.daemon.proc is not None and daemon.daemon.proc.poll() is None:
            daemon.daemon.stop()


def _wait_until_traps_are_the_devices(oss: NsDaemon) -> None:
    """The receiver learns the device's address at its next inventory refresh: send a
    down-and-up pair for an interface that does not exist until its alarm is the device's (it
    ends cleared either way)."""
    probe = f"{DEVICE}:ifIndex.{PROBE_IFINDEX}"

    def probed() -> bool:
        for oid, status in ((LINK_DOWN, "2"), (LINK_UP, "1")):
            oss.trap(oid, f"{IF_INDEX}.{PROBE_IFINDEX}", "i", str(PROBE_IFINDEX),
                     f"{IF_ADMIN}.{PROBE_IFINDEX}", "i", "1",
                     f"{IF_OPER}.{PROBE_IFINDEX}", "i", status)  # fmt: skip
        return any(a["alarmedObject"]["id"] == probe for a in oss.alarms())

    wait_for("a probe trap from 127.0.0.1 becomes an alarm of " + DEVICE, probed)
    wait_for(
        "the probe's alarm cleared", lambda: all(a["state"] == "cleared" for a in oss.alarms())
    )


@pytest.fixture
def agent(ns: NetNs, oss: NsDaemon) -> Iterator[NsAgent]:
    directory = Path(tempfile.mkdtemp(prefix="oss-ns-snmpd-"))
    agent = NsAgent(ns, directory, oss.trap_port)
    try:
        agent.start()
        yield agent
    finally:
        agent.kill()
        shutil.rmtree(directory, ignore_errors=True)


def _alarm_on(oss: NsDaemon, obj: str, *, state: str | None = None) -> dict[str, Any] | None:
    for alarm in oss.alarms():
        if alarm["alarmedObject"]["id"] == obj and state in (None, alarm["state"]):
            return alarm
    return None


def test_an_administrative_shutdown_raises_no_alarm(
    ns: NetNs, oss: NsDaemon, agent: NsAgent
) -> None:
    shut, far = f"{DEVICE}:ifIndex.{ns.ifindex('a0')}", f"{DEVICE}:ifIndex.{ns.ifindex('a1')}"
    ns.ip("link", "set", "a0", "down")  # a0: admin down; a1: no carrier, admin still up
    raised = wait_for(f"the far end {far} raises", lambda: _alarm_on(oss, far))
    assert raised["specificProblem"] == f"interface {far} down", raised
    ns.ip("link", "set", "a0", "up")
    # The far end's linkUp left the agent after a0's linkDown and is handled in order: once it
    # has cleared the far end's alarm, every trap about a0 has been handled too.
    wait_for(f"the far end {far} clears", lambda: _alarm_on(oss, far, state="cleared"))
    assert _alarm_on(oss, shut) is None, f"a0 was shut on purpose: {_alarm_on(oss, shut)}"


def test_stopping_and_starting_the_agent_leaves_no_open_alarm(
    oss: NsDaemon, agent: NsAgent
) -> None:
    agent.stop()  # nsNotifyShutdown

    def shutdown_alarm() -> dict[str, Any] | None:
        return next((a for a in oss.alarms() if a["state"] != "cleared"), None)

    alarm = wait_for("an alarm for the agent's shutdown", shutdown_alarm)
    assert alarm["alarmedObject"]["id"] == DEVICE
    assert alarm["specificProblem"] == "SNMP agent shut down", alarm
    agent.start()  # coldStart
    wait_for(
        "the coldStart clears the shutdown alarm",
        lambda: oss.api("GET", f"/tmf-api/alarm/v4/alarm/{alarm['id']}")["state"] == "cleared",
    )
    assert [a for a in oss.alarms() if a["state"] != "cleared"] == []

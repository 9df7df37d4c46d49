"""The simulated lab of lab/topologies/ring4.clab.yml, in-process, checked with real clients.

The lab runs in its own thread and event loop, as it would in its own process, so the tests
can drive it with the blocking clients engineers use (ncclient, netmiko, pygnmi, the Net-SNMP
commands) straight from the test thread. A trap receiver (the drivers' TrapReceiver) runs in
the lab's loop and is the lab's configured trap destination.

Each test gets a fresh lab on a /24 of 127.10.0.0/16 picked at random for the session, on the
standard ports when root (the high-port scheme otherwise): its own addresses keep it clear of
other labs and peers running at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from ncclient import manager
from netmiko import ConnectHandler
from pygnmi.client import gNMIclient

from drivers.snmp_traps import TrapReceiver
from lab.sim.lab import Lab, LabSecrets, Ports
from oss.demo import port_is_free
from oss.events import Event
from tests.peers.ports import worker_share

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[3]
RING4 = REPO / "lab" / "topologies" / "ring4.clab.yml"
OC_NS = "http://openconfig.net/yang/interfaces"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


def random_subnet() -> str:
    """A 127.10.N.0/24 at random among this xdist worker's share of N in 100..250 (labs of
    workers side by side never meet) whose first node address is not held by a lab now (one of
    this worker's fixtures, or another run on the machine)."""
    share = worker_share(range(100, 251))
    netconf = Ports.for_this_user().netconf
    for n in random.sample(share, len(share)):
        if port_is_free(netconf, f"127.10.{n}.1"):
            return f"127.10.{n}.0/24"
    raise AssertionError(f"no free 127.10.N.0/24 for a lab among N in {share}")


class LoopThread:
    """An asyncio loop in its own thread, for servers the blocking test clients talk to."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def lab_in_thread(clab: Path, state: Path, name: str) -> Iterator[tuple[Lab, LoopThread]]:
    """The lab of `clab` (state files under `state`) started in a loop thread of its own
    named `name`, stopped and the thread ended on leaving."""
    loop = LoopThread(name)
    lab = Lab.from_file(clab, state)
    try:
        loop.run(lab.start(), 60)
    except BaseException:
        loop.close()
        raise
    try:
        yield lab, loop
    finally:
        try:
            loop.run(lab.stop(), 60)
        finally:
            loop.close()


@dataclass
class RunningLab:
    lab: Lab
    lab_loop: LoopThread
    traps: TrapReceiver
    # The receiver has its own loop: pysnmp's first notifications load MIB modules for a
    # while, which must not hold up the devices' answers.
    traps_loop: LoopThread

    # --- the lab's loop ------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return self.lab_loop.run(coro, timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async def in_loop() -> T:
            return fn(*args, **kwargs)

        return self.run(in_loop())

    def set_link(self, endpoint: str, up: bool) -> None:
        self.call(self.lab.set_link, endpoint, up)

    def set_node(self, name: str, up: bool) -> None:
        self.run(self.lab.set_node(name, up))

    def next_traps(self, count: int, timeout: float = 5.0) -> list[Event]:
        return [self.traps_loop.run(self.traps.get(timeout_s=timeout)) for _ in range(count)]

    def drain_traps(self) -> list[Event]:
        drained = []
        while True:
            try:
                drained.append(self.traps_loop.run(self.traps.get(timeout_s=0.5)))
            except TimeoutError:
                return drained

    # --- facts ---------------------------------------------------------------------------------

    def address(self, node: str) -> str:
        return self.lab.addresses[node]

    @property
    def username(self) -> str:
        return self.lab.secrets.login.username

    @property
    def password(self) -> str:
        return self.lab.secrets.login.password

    @property
    def community(self) -> str:
        return self.lab.secrets.community

    def ifindex(self, endpoint: str) -> int:
        node, _, ifname = endpoint.partition(":")
        return self.lab.nodes[node].device.interfaces[ifname].index

    # --- clients -------------------------------------------------------------------------------

    def netconf(self, node: str, **kwargs: Any) -> Any:
        return manager.connect(
            host=self.address(node),
            port=self.lab.ports.netconf,
            username=self.username,
            password=self.password,
            ssh_config=str(self.lab.ssh_config_file),  # UserKnownHostsFile: the lab's known_hosts
            hostkey_verify=True,
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
            **kwargs,
        )

    def netmiko(self, node: str) -> Any:
        return ConnectHandler(
            device_type="linux",
            host=self.address(node),
            port=self.lab.ports.cli,
            username=self.username,
            password=self.password,
            secret=self.password,
            ssh_strict=True,
            system_host_keys=False,
            alt_host_keys=True,
            alt_key_file=str(self.lab.known_hosts_file),
            allow_agent=False,
            use_keys=False,
            conn_timeout=10,
        )

    def gnmi(self, node: str) -> gNMIclient:
        return gNMIclient(
            target=(self.address(node), self.lab.ports.gnmi),
            username=self.username,
            password=self.password,
            path_cert=str(self.lab.ca_file),
            gnmi_timeout=10,
        )

    def snmp(self, tool: str, node: str, *args: str, timeout: float = 2) -> str:
        """A Net-SNMP command against a node; its stdout ("OID = value" lines)."""
        result = subprocess.run(
            [
                tool,
                "-v2c",
                "-c",
                self.community,
                "-On",
                "-OQ",
                "-m",
                "",
                "-t",
                str(timeout),
                "-r",
                "0",
                f"{self.address(node)}:{self.lab.ports.snmp}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def snmp_values(self, tool: str, node: str, *args: str) -> dict[str, str]:
        values = {}
        for line in self.snmp(tool, node, *args).splitlines():
            oid, sep, value = line.partition(" = ")
            if sep:
                values[oid.lstrip(".")] = value.strip().strip('"')
        return values

    def oper_status(self, endpoint: str) -> str:
        node = endpoint.partition(":")[0]
        oid = f"{IF_OPER_STATUS}.{self.ifindex(endpoint)}"
        return self.snmp_values("snmpget", node, oid)[oid]


def start_lab(subnet: str, state_dir: Path) -> RunningLab:
    secrets = LabSecrets.load_or_create(state_dir)  # the lab finds and reuses them
    traps_loop = LoopThread("traps")
    lab_loop = LoopThread("lab")
    traps = TrapReceiver("127.0.0.1", 0, communities=[secrets.community])
    try:
        traps_loop.run(traps.start())
        lab = Lab.from_file(
            RING4, state_dir, subnet=subnet, trap_receivers=[("127.0.0.1", traps.port)]
        )
        lab_loop.run(lab.start())
    except BaseException:
        traps_loop.run(traps.stop())
        lab_loop.close()
        traps_loop.close()
        raise
    return RunningLab(lab, lab_loop, traps, traps_loop)


def stop_lab(running: RunningLab) -> None:
    try:
        running.run(running.lab.stop())
        running.traps_loop.run(running.traps.stop())
    finally:
        running.lab_loop.close()
        running.traps_loop.close()


@pytest.fixture(scope="session")
def lab_subnet() -> str:
    return random_subnet()


@pytest.fixture
def lab(lab_subnet: str, tmp_path: Path) -> Iterator[RunningLab]:
    running = start_lab(lab_subnet, tmp_path / "lab")
    try:
        yield running
    finally:
        stop_lab(running)


def interface_xml(ifname: str, **config: str) -> str:
    leaves = "".join(f"<{k}>{v}</{k}>" for k, v in config.items())
    return (
        f'<config><interfaces xmlns="{OC_NS}"><interface><name>{ifname}</name>'
        f"<config>{leaves}</config></interface></interfaces></config>"
    )

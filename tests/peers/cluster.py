"""A cluster for the tests: N `oss serve` processes (cluster mode) on one real PostgreSQL
database, sharing the simulated lab (metro by default, on a random loopback /24, in a loop
thread of the test process).

The first instance imports the lab's topology file (its addresses and credentials); the others
start from the database. Each instance logs to a file in its state directory (a pipe nobody
reads would stall a chatty daemon), has its own API and trap port, and is ended by its pid.
Who polls a device is read off the lab (its SNMP requests per source address, the lab's own
count) and mapped to the instance whose process holds that UDP port (/proc).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import yaml

from lab.sim.lab import Lab, Ports
from tests.integration.lab.conftest import LoopThread, lab_in_thread, random_subnet
from tests.peers.daemon import OSS
from tests.peers.ports import free_port, free_udp_port
from tests.peers.postgres import PostgresServer, create_database, pg_bindir

REPO = Path(__file__).resolve().parents[2]
METRO = REPO / "lab" / "topologies" / "metro.clab.yml"
TRAP_COMMUNITY = "cluster-test"
TOKEN_CREATE = (OSS, "token", "create", "--role", "admin", "--name", "cluster-test")
T = TypeVar("T")
Requests = dict[str, dict[str, int]]  # lab node -> "host:port" -> SNMP requests it answered


def wait_for(what: str, found: Callable[[], T | None], timeout_s: float = 30.0) -> T:
    """`found()` once it is truthy; fails naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (result := found()):
        assert time.monotonic() < deadline, f"never happened within {timeout_s:g} s: {what}"
        time.sleep(0.1)
    return result


def udp_ports(pid: int) -> set[int]:
    """The local ports of the UDP sockets process `pid` holds (its fds' inodes in
    /proc/net/udp)."""
    inodes = set()
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[len("socket:[") : -1])
    ports = set()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[9] in inodes:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class Member:
    """One `oss serve` of the cluster."""

    name: str
    state_dir: Path
    env: dict[str, str]
    extra_args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    trap_port: int = field(default_factory=free_udp_port)
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False  # SIGSTOPped: its process runs, its API does not answer
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "serve.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        return [OSS, "serve", "--state-dir", str(self.state_dir), "--port", str(self.port)]

    def full_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.env,
            "OSS_CLUSTER__INSTANCE": self.name,
            "OSS_CLUSTER__API_URL": self.url,
            "OSS_ASSURANCE__TRAPS_PORT": str(self.trap_port),
            "OSS_MQTT__CLIENT_ID": f"oss-{self.name}",
        }

    def start(self) -> Member:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*self.command(), *self.extra_args],
            env=self.full_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"oss serve {self.name} exited with {self.proc.returncode}:\n{self.log()}"
                )
            try:
                return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(f"{self.name} ready on {self.url}", ready, timeout_s)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL (and SIGCONT, should it be paused), then reap it."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, token: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(self.url + path, headers=headers, params=params, timeout=30)

    def post(self, path: str, token: str, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.post(self.url + path, headers=headers, json=body, timeout=30)


@dataclass
class Cluster:
    postgres: PostgresServer
    database: str
    members: dict[str, Member]
    lab: SharedLab
    token: str = ""
    lease_s: float = 2.0
    # source port -> the member whose process held it (kept: a killed process's ports too)
    _port_owner: dict[int, str] = field(default_factory=dict)

    # --- the API ----------------------------------------------------------------------------

    def live(self) -> list[Member]:
        """The members whose process runs and is not paused."""
        return [m for m in self.members.values() if m.running and not m.paused]

    def status(self, via: Member | None = None) -> dict[str, Any]:
        """GET /api/v1/cluster from `via` (default: the first running member)."""
        member = via or self.live()[0]
        response = member.get("/api/v1/cluster", self.token)
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc

    def cli(self, member: Member, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **member.env, "OSS_URL": member.url, "OSS_TOKEN": self.token}
        env["OSS_CLI_CONFIG"] = str(member.state_dir / "cli.yaml")
        env["COLUMNS"] = "200"
        return subprocess.run(
            [OSS, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def settled(self, expected: set[str] | None = None) -> dict[str, Any] | None:
        """The status once `expected` (default: every running member) are the live ones, every
        device is owned and the shares are even (max - min <= 1); else None."""
        names = expected if expected is not None else {m.name for m in self.live()}
        doc = self.status()
        alive = {i["instance"]: i for i in doc["instances"] if i["alive"]}
        if set(alive) != names or doc["unassigned_devices"] or doc["leader"] not in names:
            return None
        counts = [alive[n]["devices"] for n in names]
        return doc if min(counts) > 0 and max(counts) - min(counts) <= 1 else None

    def wait_settled(
        self, expected: set[str] | None = None, timeout_s: float = 60.0
    ) -> dict[str, Any]:
        names = sorted(expected or {m.name for m in self.live()})
        try:
            return wait_for(
                f"cluster settled on {names}", lambda: self.settled(expected), timeout_s
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnosis()}") from None

    def diagnosis(self) -> str:
        """The last status and each member's last warnings: why it did not settle."""
        lines = []
        with contextlib.suppress(Exception):
            lines.append(f"status: {json.dumps(self.status())}")
        for member in self.members.values():
            warnings = [
                ln for ln in member.log().splitlines() if " WARNING " in ln or " ERROR " in ln
            ]
            lines.append(f"--- {member.name} (running: {member.running}):")
            lines.extend(line[:400] for line in warnings[-15:])
        return "\n".join(lines)

    # --- the database -----------------------------------------------------------------------

    def sql(self, query: str) -> list[list[str]]:
        """Rows of `query` (psql, unaligned, fields split on '|')."""
        out = subprocess.run(
            [*self._psql(), "-v", "ON_ERROR_STOP=1", "-At", "-F", "|", "-c", query],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return [line.split("|") for line in out.splitlines() if line]

    def shares(self) -> dict[str, str]:
        """device -> instance, as the database holds them."""
        return {
            device: owner
            for device, owner in self.sql("SELECT device, instance FROM device_shares")
        }

    def lease(self, name: str) -> tuple[str, int] | None:
        rows = self.sql(f"SELECT holder, token FROM cluster_leases WHERE name = '{name}'")
        return (rows[0][0], int(rows[0][1])) if rows else None

    def db_now(self) -> str:
        return self.sql("SELECT clock_timestamp()")[0][0]

    def _psql(self) -> list[str]:
        bindir = pg_bindir()
        assert bindir is not None
        pg = self.postgres
        return [
            str(bindir / "psql"),
            *("-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", self.database),
        ]

    @contextlib.contextmanager
    def lease_row_held(self, name: str) -> Iterator[None]:
        """Another session holds the lease row `name` FOR SHARE meanwhile: its holder cannot
        renew or re-take it (both update the row) while `oss_fence` still reads it, so every
        write it makes meanwhile is judged on the token it had (the race between a resumed
        instance's first write and its renewal, taken out)."""
        app = f"oss-test-hold-{name}"
        query = (
            f"BEGIN; SELECT 1 FROM cluster_leases WHERE name = '{name}' FOR SHARE; "
            "SELECT pg_sleep(120); COMMIT;"
        )
        holder = subprocess.Popen(
            [*self._psql(), "-c", query],
            env={**os.environ, "PGAPPNAME": app},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(
                f"the lease row {name} held",
                lambda: (
                    self.sql(
                        "SELECT count(*) FROM pg_stat_activity "
                        f"WHERE application_name = '{app}' AND query LIKE '%pg_sleep%' "
                        "AND state = 'active'"
                    )
                    == [["1"]]
                ),
            )
            yield
        finally:
            self.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE application_name = '{app}'"
            )
            holder.wait(timeout=30)

    # --- poll evidence ----------------------------------------------------------------------

    def snmp_requests(self) -> Requests:
        """Per lab node: SNMP requests answered per source "host:port" (the lab's count)."""
        self._map_ports()
        return self.lab.snmp_requests()

    def ports_of(self, member: str) -> set[int]:
        """The source ports seen held by `member`'s process (as of the last reading)."""
        return {port for port, owner in self._port_owner.items() if owner == member}

    def _map_ports(self) -> None:
        for member in self.members.values():
            if member.running:
                for port in udp_ports(member.pid):
                    self._port_owner[port] = member.name

    def pollers_since(self, before: Requests, now: Requests) -> dict[str, set[str]]:
        """Per device: the members that polled it between two `snmp_requests()` readings
        ("?" for a source port no member's process holds)."""
        self._map_ports()  # a socket opened after `now` was read is theirs too
        polled: dict[str, set[str]] = {}
        for device, sources in now.items():
            earlier = before.get(device, {})
            polled[device] = {
                self._port_owner.get(int(source.rsplit(":", 1)[1]), "?")
                for source, count in sources.items()
                if count > earlier.get(source, 0)
            }
        return polled

    def heal(self) -> dict[str, Any]:
        """Every member running again (a paused one resumed, a dead one restarted), settled."""
        for member in self.members.values():
            if member.paused:
                member.resume()
            if not member.running:
                member.kill()  # reaped, its log closed
                member.start()
        for member in self.members.values():
            member.wait_ready()
        return self.wait_settled(set(self.members))

    def stop(self) -> None:
        for member in self.members.values():
            member.kill()


def cluster_env(database_url: str, lease_s: float, **extra: str) -> dict[str, str]:
    return {
        "OSS_DATABASE_URL": database_url,
        "OSS_CLUSTER__ENABLED": "true",
        "OSS_CLUSTER__LEASE_S": str(lease_s),
        "OSS_DRIVERS__ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "OSS_DRIVERS__PORTS": json.dumps(Ports.for_this_user().as_dict()),
        "OSS_DRIVERS__TIMEOUT_S": "10",
        "OSS_ASSURANCE__POLLING__INTERVAL_S": "1",
        "OSS_ASSURANCE__TRAP_COMMUNITIES": json.dumps([TRAP_COMMUNITY]),
        **extra,
    }


@dataclass
class SharedLab:
    """The simulated lab in its own loop thread; `clab_file` is its topology with the
    addresses it serves on and its credentials, for the daemons to import."""

    lab: Lab
    loop: LoopThread
    clab_file: Path

    def snmp_requests(self) -> Requests:
        async def read() -> Requests:
            return {n: dict(node.snmp.requests_by_source) for n, node in self.lab.nodes.items()}

        return self.loop.run(read())


def lab_topology(topology: Path, subnet: str, credentials: Path) -> str:
    """`topology` with its nodes on `subnet` (in node order) and the lab's credentials."""
    data = yaml.safe_load(topology.read_text())
    prefix = subnet.rsplit(".", 1)[0]
    for n, node in enumerate(data["topology"]["nodes"].values(), start=1):
        node["mgmt-ipv4"] = f"{prefix}.{n}"
        node.setdefault("labels", {})["oss.credentials-ref"] = f"file:{credentials}"
    return str(yaml.safe_dump(data, sort_keys=False))


@contextlib.contextmanager
def running_lab(state: Path, topology: Path = METRO) -> Iterator[SharedLab]:
    state.mkdir(parents=True, exist_ok=True)
    clab = state / topology.name
    clab.write_text(lab_topology(topology, random_subnet(), state / "credentials.yaml"))
    with lab_in_thread(clab, state, "cluster-lab") as (lab, loop):
        yield SharedLab(lab, loop, clab)


@contextlib.contextmanager
def running_cluster(
    postgres: PostgresServer,
    database: str,
    base_dir: Path,
    lab: SharedLab,
    *,
    names: tuple[str, ...] = ("a", "b", "c"),
    lease_s: float = 2.0,
    env: Mapping[str, str] | None = None,
    member_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Cluster]:
    """A settled cluster of `names` over `lab`; every process it started is ended (by pid) on
    the way out."""
    url = create_database(postgres, database)
    common = cluster_env(url, lease_s, **(env or {}))
    members = {
        name: Member(name, base_dir / name, {**common, **(member_env or {}).get(name, {})})
        for name in names
    }
    first = members[names[0]]
    first.extra_args = ["--topology", str(lab.clab_file)]
    cluster = Cluster(postgres, database, members, lab, lease_s=lease_s)
    try:
        first.start().wait_ready()  # the database migrated, the topology imported
        for member in list(members.values())[1:]:
            member.start()
        created = subprocess.run(
            [*TOKEN_CREATE, "--state-dir", str(first.state_dir)],
            env=first.full_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        cluster.token = created.stdout.strip()
        for member in list(members.values())[1:]:
            member.wait_ready()
        cluster.wait_settled(set(names))
        yield cluster
    finally:
        cluster.stop()

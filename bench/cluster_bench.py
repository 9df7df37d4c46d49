"""Several instances, one network: three `oss serve` processes on one real PostgreSQL polling
1,500 simulated SNMP devices. How the devices are shared, how long after a `kill -9` every
orphaned device is polled again against the lease period, the database's load, and the
cluster's CPU per device poll against one instance polling the same devices, in the same run.

The network: --devices simulated devices (default 1,500) with 4 interfaces each (two ring
links), in --sites sites, served by one lab process of its own (`bench.cluster_lab`: the lab
of `oss lab up` whose nodes note when each poll begins and from which address and port), on
127.18.0.0/21, the non-root port scheme. The database: a real PostgreSQL (`tests/peers`, free
loopback port), with `pg_stat_statements` loaded when the server has it.

1. The cluster: instances a, b and c (`cluster.enabled`, `cluster.lease_s` --lease, polling
   every --interval seconds); a imports the inventory at start, b and c start once a is ready.
   Once the leader's shares cover every device and stayed put for a lease period, and one
   polling interval passed, a window of --window seconds: each instance's share as the
   database assigns it (`device_shares`) and as the lab saw it polled (a request's source port
   belongs to one instance's socket, /proc/net/udp), devices polled by two instances, devices
   not polled; each instance's CPU (/proc), the database server's CPU (the postmaster and its
   backends), statements/s (pg_stat_statements, the daemons' role only) and transactions/s
   (pg_stat_database, the bench's own few reads included).
2. `kill -9` of a member (not the leader): the devices it owned (by `device_shares` just
   before) are orphaned; the time from the kill to each orphan's first poll by another
   instance (the lab's record, from a socket a survivor holds), the last of them against
   the lease period (the goal: <= 2 lease periods); statements/s meanwhile. The killed
   instance starts again: the devices moved back, any moved twice (flapping), the spread.
3. The same with the leader killed (a new leader must be elected first).
4. The cluster stopped (SIGTERM), ONE instance (cluster mode off, same database, same
   devices) polls them: after its first interval, a window of the same length. CPU per device
   poll = the processes' CPU in the window / the polls the lab saw in it; the cluster's (sum of
   its instances) against the one instance's (the goal: overhead <= 10%), with the database
   server's CPU per poll beside it.

Bounded: every wait has a limit (start-up 600 s, shares settling 12 lease periods, each
failover 10 lease periods); the defaults take about 8 minutes. Every process it starts (the
lab, the instances, PostgreSQL) is ended by its pid.

    .venv/bin/python -m bench.cluster_bench [--devices 1500] [--sites 15] [--lease 10]
        [--interval 60] [--window 75] [--quick]

Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import text

from bench.polling_bench import cpu_s
from lab.sim.control import control_request
from lab.sim.lab import CONTROL_SOCKET, Ports, read_state
from oss.store import Database, leases
from tests.peers.daemon import OSS
from tests.peers.ports import free_port
from tests.peers.postgres import PostgresServer, create_database, pg_bindir, running_postgres

INSTANCES = ("a", "b", "c")
INTERFACES = 4  # two ring links per device: a light poll, so the coordination's share shows
START_LIMIT_S = 600.0  # an instance importing 1,500 devices on a loaded 2-CPU machine
LAB_LIMIT_S = 180.0
STOP_LIMIT_S = 40.0  # the systemd unit's TimeoutStopSec (docs/deploy/oss.service)
SETTLE_LEASES = 12  # the shares must settle within this many lease periods
FAILOVER_LEASES = 10  # a failover is given this many lease periods before it counts as missed
REJOIN_LEASES = 8
GOAL_LEASES = 2.0
GOAL_OVERHEAD = 0.10
WATCH_S = 0.5  # how often a failover is checked
BENCH_ROLE = "bench"  # the bench reads as another role, so its statements are not counted


# --------------------------------------------------------------------------- the network


def address_of(index: int) -> str:
    """Device d<index> (1-based): 127.18.0.1 .. 127.18.7.250, 250 a /24."""
    return f"127.18.{(index - 1) // 250}.{(index - 1) % 250 + 1}"


def cluster_clab(devices: int, sites: int, credentials: Path) -> str:
    """Devices d1..dN in sites s01.. (round robin), each linked to the next two along a ring
    (eth1-eth2 to the next, eth3-eth4 to the one after): 4 interfaces each."""
    nodes = "\n".join(
        f"    d{i}:\n      mgmt-ipv4: {address_of(i)}\n      labels:\n"
        f"        oss.platform: lab-sim\n        oss.site: s{(i - 1) % sites + 1:02d}\n"
        f"        oss.credentials-ref: file:{credentials}"
        for i in range(1, devices + 1)
    )
    links = "\n".join(
        f'    - endpoints: ["d{i}:eth{2 * k - 1}", "d{(i - 1 + k) % devices + 1}:eth{2 * k}"]'
        for i in range(1, devices + 1)
        for k in (1, 2)
    )
    return (
        f"name: cluster{devices}\ntopology:\n  defaults: {{kind: linux}}\n"
        f"  nodes:\n{nodes}\n  links:\n{links}\n"
    )


@dataclass(frozen=True)
class RunningLab:
    pid: int
    state_dir: Path

    def polls(self, since: float) -> dict[str, list[tuple[float, str]]]:
        """Every node's poll starts since `since`: (unix time, "host:port" of the poller)."""
        found = control_request(
            self.state_dir / CONTROL_SOCKET, {"op": "polls", "since": since}, timeout_s=60
        )
        return {node: [(float(t), str(s)) for t, s in starts] for node, starts in found.items()}


@contextmanager
def lab_process(clab: Path, state: Path) -> Iterator[RunningLab]:
    log = (state.parent / "lab.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cluster_lab", str(clab), "--state-dir", str(state),
         "--high-ports"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + LAB_LIMIT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the lab exited with {proc.returncode}; see {log.name}")
            ready = read_state(state)
            if ready is not None and ready.get("pid") == proc.pid:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the lab was not ready within {LAB_LIMIT_S:g} s")
            time.sleep(0.2)
        yield RunningLab(proc.pid, state)
    finally:
        end_process(proc, STOP_LIMIT_S)
        log.close()


def end_process(proc: subprocess.Popen[bytes], limit_s: float) -> int | None:
    """SIGTERM to the process this bench started, SIGKILL past `limit_s`; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(limit_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# --------------------------------------------------------------------------- the instances


@dataclass
class Instance:
    name: str
    state_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *extra: str) -> None:
        self.starts += 1
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = (self.state_dir / f"serve-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [OSS, "serve", "--state-dir", str(self.state_dir), "--port", str(self.port), *extra],
            env={**os.environ, "OSS_CLI_CONFIG": str(self.state_dir / "cli.yaml"), **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child holds it

    async def wait_ready(self, limit_s: float = START_LIMIT_S) -> float:
        began = time.monotonic()
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() - began < limit_s:
                if not self.alive:
                    raise RuntimeError(f"instance {self.name} exited; see {self.log_tail()}")
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return time.monotonic() - began
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"instance {self.name} not ready within {limit_s:g} s")

    def step_downs(self) -> int:
        """Times this instance lost its membership lease (and stepped down), as it logged."""
        logs = self.state_dir.glob("serve-*.log")
        return sum(f.read_text(errors="replace").count(" steps down: lease 'member:") for f in logs)

    def log_tail(self) -> str:
        log = self.state_dir / f"serve-{self.starts}.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"

    def kill(self) -> float:
        """kill -9; returns the time (unix) by which the process is gone."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        return time.time()

    def stop(self) -> int | None:
        return end_process(self.proc, STOP_LIMIT_S) if self.proc is not None else None

    def cpu(self) -> float:
        return cpu_s(self.pid)


def instance_env(
    name: str, port: int, url: str, interval_s: float, lease_s: float | None
) -> dict[str, str]:
    env = {
        "OSS_DATABASE_URL": url,
        "OSS_DRIVERS__ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "OSS_DRIVERS__PORTS": json.dumps(Ports.high().as_dict()),
        "OSS_ASSURANCE__POLLING__INTERVAL_S": str(interval_s),
        "OSS_LOG__LEVEL": "WARNING",
        "OSS_CLUSTER__ENABLED": "false",
    }
    if lease_s is not None:
        env |= {
            "OSS_CLUSTER__ENABLED": "true",
            "OSS_CLUSTER__INSTANCE": name,
            "OSS_CLUSTER__LEASE_S": str(lease_s),
            "OSS_CLUSTER__API_URL": f"http://127.0.0.1:{port}",
        }
    return env


def udp_ports(instances: Iterable[Instance]) -> dict[int, str]:
    """Local UDP port -> instance, for every UDP socket the live instances hold now."""
    by_inode: dict[str, str] = {}
    for inst in instances:
        if not inst.alive:
            continue
        fds = Path(f"/proc/{inst.pid}/fd")
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                by_inode[target[8:-1]] = inst.name
    ports = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[9] in by_inode:
                ports[int(cols[1].rsplit(":", 1)[1], 16)] = by_inode[cols[9]]
    return ports


def port_of(source: str) -> int:
    return int(source.rsplit(":", 1)[1])


# --------------------------------------------------------------------------- the database


@dataclass
class DbLoad:
    at: float
    statements: int | None  # the daemons' role, pg_stat_statements; None: not loadable
    transactions: int
    server_cpu_s: float


class Pg:
    """The bench's view of the database: shares and leases (the store's own reads), load."""

    def __init__(self, server: PostgresServer, database: str, statements: bool) -> None:
        self.server = server
        self.database = database
        self.has_statements = statements
        url = server.url(database).replace(f"//{server.user}@", f"//{BENCH_ROLE}@")
        self.db = Database(url)
        self.reads = 0

    async def close(self) -> None:
        await self.db.close()

    async def shares(self) -> dict[str, str]:
        self.reads += 1
        async with self.db.read() as session:
            return await session.run_sync(lambda s: leases.shares(s.connection()))

    async def leader(self) -> str | None:
        self.reads += 1
        async with self.db.read() as session:
            held = await session.run_sync(lambda s: leases.all_leases(s.connection()))
        return next((x.holder for x in held if x.name == "leader" and x.expires_in_s > 0), None)

    async def devices(self) -> int:
        self.reads += 1
        async with self.db.read() as session:
            return int((await session.execute(text("SELECT count(*) FROM devices"))).scalar_one())

    async def load(self) -> DbLoad:
        self.reads += 1
        async with self.db.read() as session:
            transactions = (
                await session.execute(
                    text(
                        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                        " WHERE datname = current_database()"
                    )
                )
            ).scalar_one()
            statements = None
            if self.has_statements:
                statements = (
                    await session.execute(
                        text(
                            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s"
                            " JOIN pg_roles r ON r.oid = s.userid"
                            " WHERE s.dbid = (SELECT oid FROM pg_database"
                            "                 WHERE datname = current_database())"
                            "   AND r.rolname = :daemons"
                        ),
                        {"daemons": self.server.user},
                    )
                ).scalar_one()
        return DbLoad(
            time.time(),
            int(statements) if statements is not None else None,
            int(transactions),
            server_cpu_s(self.server),
        )


def psql(server: PostgresServer, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    bindir = pg_bindir()
    assert bindir is not None
    return subprocess.run(
        [str(bindir / "psql"), "-h", server.host, "-p", str(server.port), "-U", server.user,
         "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def load_pg_stat_statements(server: PostgresServer, database: str) -> str | None:
    """Preload pg_stat_statements (a restart: pg_ctl keeps the server's options) and create it
    in `database`. None when done, else why not (then only transactions are counted)."""
    bindir = pg_bindir()
    assert bindir is not None
    done = psql(
        server, "postgres", "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
    )
    if done.returncode != 0:
        return done.stderr.strip()
    restart = [
        *(str(bindir / "pg_ctl"), "-D", str(server.datadir), "-m", "fast", "-w"),
        *("-l", str(server.datadir.parent / "server.log"), "restart"),  # the server's log
    ]
    if os.geteuid() == 0:
        restart = ["runuser", "-u", "postgres", "--", *restart]  # as tests/peers/postgres.py
    restarted = subprocess.run(
        restart, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )
    if restarted.returncode != 0:
        return restarted.stderr.strip() or restarted.stdout.strip()
    made = psql(server, database, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return None if made.returncode == 0 else made.stderr.strip()


def server_cpu_s(server: PostgresServer) -> float:
    """CPU seconds of the server: the postmaster, the backends that ended (its children's
    times) and the live ones."""
    postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(stat[1]) == postmaster:
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


# --------------------------------------------------------------------------- measuring


@dataclass
class Window:
    seconds: float
    cpu_s: dict[str, float]  # per instance
    db_before: DbLoad
    db_after: DbLoad
    starts: dict[str, list[tuple[float, str]]]  # device -> poll starts in the window
    ports: dict[int, str]
    assigned: dict[str, str]  # device -> instance (the database's shares), at the start
    moved: int  # devices whose owner changed during the window (0 in a settled cluster)

    @property
    def polls(self) -> int:
        return sum(len(s) for s in self.starts.values())

    def cpu_per_poll_ms(self) -> float:
        return 1000 * sum(self.cpu_s.values()) / max(1, self.polls)

    def db_cpu_per_poll_ms(self) -> float:
        return (
            1000 * (self.db_after.server_cpu_s - self.db_before.server_cpu_s) / max(1, self.polls)
        )

    def pollers(self) -> dict[str, set[str]]:
        """Device -> the instances that polled it in the window ("?": a socket gone since)."""
        return {
            d: {self.ports.get(port_of(src), "?") for _, src in s} for d, s in self.starts.items()
        }


async def measure(
    window_s: float, instances: Sequence[Instance], lab: RunningLab, pg: Pg
) -> Window:
    live = [i for i in instances if i.alive]
    assigned = await pg.shares()
    ports = udp_ports(live)
    cpu0 = {i.name: i.cpu() for i in live}
    db0 = await pg.load()
    await asyncio.sleep(window_s)
    db1 = await pg.load()
    cpu = {i.name: i.cpu() - cpu0[i.name] for i in live}
    ports |= udp_ports(live)
    starts = await asyncio.to_thread(lab.polls, db0.at)
    window = {d: [s for s in found if s[0] <= db1.at] for d, found in starts.items()}
    moved = sum(1 for d, owner in (await pg.shares()).items() if assigned.get(d) != owner)
    return Window(db1.at - db0.at, cpu, db0, db1, window, ports, assigned, moved)


def rate(a: DbLoad, b: DbLoad, what: str) -> float | None:
    first: int | None = getattr(a, what)
    second: int | None = getattr(b, what)
    if first is None or second is None:
        return None
    return (second - first) / max(1e-9, b.at - a.at)


async def settle(pg: Pg, members: set[str], devices: int, lease_s: float) -> float:
    """Wait until the shares give every device to one of `members`, each some, unchanged for a
    lease period; returns how long it took."""
    began = time.monotonic()
    limit = SETTLE_LEASES * lease_s
    last: dict[str, str] = {}
    since = time.monotonic()
    while time.monotonic() - began < limit:
        shares = await pg.shares()
        if shares != last:
            last, since = shares, time.monotonic()
        covered = len(shares) == devices and set(shares.values()) == members
        if covered and time.monotonic() - since >= lease_s:
            return time.monotonic() - began
        await asyncio.sleep(1.0)
    spread = Counter(last.values())
    raise TimeoutError(
        f"the shares did not settle on {sorted(members)} within {limit:g} s: {len(last)} of"
        f" {devices} devices assigned, {dict(spread)} (is the cluster code in this tree?)"
    )


@dataclass
class Failover:
    victim: str
    role: str  # "leader" or "member"
    orphans: int
    after_s: dict[str, float]  # orphan -> seconds from the kill to its first poll elsewhere
    limit_s: float
    db_before: DbLoad
    db_after: DbLoad
    taken_by: dict[str, int]  # survivor -> orphans it owns afterwards
    new_leader: str | None

    @property
    def missing(self) -> int:
        return self.orphans - len(self.after_s)


async def failover(
    victim: Instance, role: str, instances: Sequence[Instance], lab: RunningLab, pg: Pg,
    lease_s: float,
) -> Failover:  # fmt: skip
    orphans = {d for d, owner in (await pg.shares()).items() if owner == victim.name}
    survivors = [i for i in instances if i.alive and i is not victim]
    db0 = await pg.load()
    killed = victim.kill()
    limit = FAILOVER_LEASES * lease_s
    after: dict[str, float] = {}
    ports: dict[int, str] = {}
    while len(after) < len(orphans) and time.time() - killed < limit:
        await asyncio.sleep(WATCH_S)
        starts = await asyncio.to_thread(lab.polls, killed)
        ports |= udp_ports(survivors)  # a poll counts once a survivor's socket is seen to send it
        for device in orphans - after.keys():
            first = next((t for t, s in starts[device] if port_of(s) in ports), None)
            if first is not None:
                after[device] = first - killed
    db1 = await pg.load()
    shares = await pg.shares()
    taken = Counter(shares.get(d, "none") for d in orphans)
    return Failover(
        victim.name, role, len(orphans), after, limit, db0, db1, dict(taken), await pg.leader()
    )


@dataclass
class Rejoin:
    instance: str
    ready_s: float
    moved: int  # devices given to the returning instance
    flapped: int  # devices that changed owner more than once
    first_move_s: float | None  # from ready
    spread: dict[str, int]


async def rejoin(inst: Instance, pg: Pg, lease_s: float) -> Rejoin:
    inst.start()
    ready_s = await inst.wait_ready()
    began = time.monotonic()
    previous = await pg.shares()
    changes: Counter[str] = Counter()
    first_move = None
    quiet_since = time.monotonic()
    while time.monotonic() - began < REJOIN_LEASES * lease_s:
        await asyncio.sleep(1.0)
        shares = await pg.shares()
        moved = [d for d, owner in shares.items() if previous.get(d) != owner]
        if moved:
            changes.update(moved)
            quiet_since = time.monotonic()
            if first_move is None:
                first_move = time.monotonic() - began
        previous = shares
        if first_move is not None and time.monotonic() - quiet_since >= 2 * lease_s:
            break
    return Rejoin(
        inst.name,
        ready_s,
        sum(1 for d, owner in previous.items() if owner == inst.name),
        sum(1 for n in changes.values() if n > 1),
        first_move,
        dict(sorted(Counter(previous.values()).items())),
    )


# --------------------------------------------------------------------------- the run


@dataclass
class Result:
    devices: int
    lease_s: float
    interval_s: float
    statements: str | None  # why pg_stat_statements is off, or None
    cluster: Window | None = None
    settle_s: float = 0.0
    failovers: list[Failover] = field(default_factory=list)
    rejoins: list[Rejoin] = field(default_factory=list)
    solo: Window | None = None


async def run_cluster(
    instances: list[Instance], clab: Path, lab: RunningLab, pg: Pg, args: argparse.Namespace,
    result: Result,
) -> None:  # fmt: skip
    first, *others = instances
    first.start("--topology", str(clab))
    took = await first.wait_ready()
    print(f"instance {first.name} ready in {took:.1f} s (imported {await pg.devices()} devices)")
    for inst in others:
        inst.start()
    for inst in others:
        print(f"instance {inst.name} ready in {await inst.wait_ready():.1f} s")
    result.settle_s = await settle(pg, {i.name for i in instances}, args.devices, args.lease)
    print(f"shares settled {result.settle_s:.1f} s after the last start")
    await asyncio.sleep(args.interval * 1.1 + 1)  # every device polled by its owner once
    result.cluster = await measure(args.window, instances, lab, pg)
    report_window("cluster", result.cluster, args.interval)
    print(f"  step-downs logged so far: { {i.name: i.step_downs() for i in instances} }")
    for role in ("member", "leader"):
        leader = await pg.leader()
        owned = Counter((await pg.shares()).values())
        victim = max(  # the leader, or the member owning the most devices
            (i for i in instances if i.alive and (i.name == leader) == (role == "leader")),
            key=lambda i: owned.get(i.name, 0),
        )
        done = await failover(victim, role, instances, lab, pg, args.lease)
        result.failovers.append(done)
        report_failover(done, args.lease)
        back = await rejoin(victim, pg, args.lease)
        result.rejoins.append(back)
        report_rejoin(back)
        print(f"  step-downs logged so far: { {i.name: i.step_downs() for i in instances} }")


async def run_solo(solo: Instance, lab: RunningLab, pg: Pg, args: argparse.Namespace) -> Window:
    solo.start()
    print(f"one instance ready in {await solo.wait_ready():.1f} s")
    await asyncio.sleep(args.interval * 1.1 + 1)
    window = await measure(args.window, [solo], lab, pg)
    report_window("one instance", window, args.interval)
    return window


async def run(args: argparse.Namespace, tmp: Path) -> Result:
    with running_postgres() as server:
        url = create_database(server, "oss_cluster_bench")
        role = psql(server, "postgres", f"CREATE ROLE {BENCH_ROLE} LOGIN SUPERUSER")
        assert role.returncode == 0, role.stderr
        why_not = load_pg_stat_statements(server, "oss_cluster_bench")
        if why_not:
            print(f"pg_stat_statements not loaded ({why_not}): transactions/s only")
        result = Result(args.devices, args.lease, args.interval, why_not)
        lab_dir = tmp / "lab"
        clab = tmp / "cluster.clab.yml"
        clab.write_text(cluster_clab(args.devices, args.sites, lab_dir / "credentials.yaml"))
        pg = Pg(server, "oss_cluster_bench", why_not is None)
        ports = {n: free_port() for n in [*INSTANCES, "solo"]}
        instances = [
            Instance(
                n, tmp / n, instance_env(n, ports[n], url, args.interval, args.lease), ports[n]
            )
            for n in INSTANCES
        ]
        solo = Instance(
            "solo", tmp / "solo", instance_env("solo", ports["solo"], url, args.interval, None),
            ports["solo"],
        )  # fmt: skip
        try:
            began = time.monotonic()
            with lab_process(clab, lab_dir) as lab:
                print(f"lab of {args.devices} devices up in {time.monotonic() - began:.1f} s")
                await run_cluster(instances, clab, lab, pg, args, result)
                for inst in instances:
                    code = inst.stop()
                    if code not in (0, None):
                        print(f"instance {inst.name} exited with {code}:\n{inst.log_tail()}")
                result.solo = await run_solo(solo, lab, pg, args)
                solo.stop()
        except BaseException:
            for inst in [*instances, solo]:
                if inst.starts:
                    print(f"\n--- instance {inst.name}'s last log lines:\n{inst.log_tail()}")
            raise
        finally:
            for inst in [*instances, solo]:
                if inst.alive:
                    inst.kill()  # a failed run: none of ours is left behind
            await pg.close()
    return result


# --------------------------------------------------------------------------- reporting


def report_window(what: str, w: Window, interval_s: float) -> None:
    pollers = w.pollers()
    polled_by = Counter(next(iter(p)) for p in pollers.values() if len(p) == 1)
    assigned = Counter(w.assigned.values())
    shares = ", ".join(
        f"{name} {assigned.get(name, 0)}/{polled_by.get(name, 0)}"
        for name in sorted(set(assigned) | set(polled_by))
    )
    due = len(w.starts) * w.seconds / interval_s
    print(f"\n{what}: a window of {w.seconds:.0f} s, {w.polls} polls (due ~{due:.0f})")
    if w.assigned:
        print(f"  devices that changed owner during the window: {w.moved}")
        print(f"  devices assigned / polled by each instance: {shares}")
    twice = sum(1 for p in pollers.values() if len(p) > 1)
    unpolled = sum(1 for s in w.starts.values() if not s)
    if w.seconds >= interval_s * 1.1:  # every device is due at least once in the window
        print(f"  devices polled by two instances: {twice}; not polled: {unpolled}")
    else:
        print(f"  devices polled by two instances: {twice}")
    polls = Counter(w.ports.get(port_of(src), "?") for s in w.starts.values() for _, src in s)
    cpu = ", ".join(
        f"{n} {c:.1f} s / {polls.get(n, 0)} polls = {1000 * c / max(1, polls.get(n, 0)):.1f} ms"
        for n, c in sorted(w.cpu_s.items())
    )
    print(
        f"  CPU: {cpu}; in all {w.cpu_per_poll_ms():.2f} ms per device poll;"
        f" the database server {w.db_cpu_per_poll_ms():.2f} ms per poll"
    )
    print(f"  PostgreSQL: {load_line(w.db_before, w.db_after)}")


def load_line(a: DbLoad, b: DbLoad) -> str:
    statements = rate(a, b, "statements")
    transactions = rate(a, b, "transactions") or 0.0
    said = f"{statements:.0f} statements/s, " if statements is not None else ""
    cpu = b.server_cpu_s - a.server_cpu_s
    return f"{said}{transactions:.0f} transactions/s (server CPU {cpu:.1f} s)"


def report_failover(f: Failover, lease_s: float) -> None:
    print(f"\nkill -9 {f.victim} ({f.role}, {f.orphans} devices):")
    if f.after_s:
        times = sorted(f.after_s.values())
        last = times[-1]
        which = "every orphan" if not f.missing else f"{len(times)} of {f.orphans} orphans"
        print(
            f"  {which} polled again, the last after {last:.1f} s = {last / lease_s:.2f} lease"
            f" periods (goal <= {GOAL_LEASES:g}); median {statistics.median(times):.1f} s,"
            f" first {times[0]:.1f} s"
        )
    if f.missing:
        print(f"  NOT polled again within {f.limit_s:g} s: {f.missing} of {f.orphans}")
    print(f"  taken by {f.taken_by}; leader now {f.new_leader}")
    print(f"  PostgreSQL meanwhile: {load_line(f.db_before, f.db_after)}")


def report_rejoin(r: Rejoin) -> None:
    first = f"{r.first_move_s:.1f} s" if r.first_move_s is not None else "never"
    print(
        f"  {r.instance} back (ready in {r.ready_s:.1f} s): first devices given back after"
        f" {first}, {r.moved} devices now its own, {r.flapped} moved more than once;"
        f" shares {r.spread}"
    )


def report(result: Result) -> None:
    print("\n== summary")
    if result.cluster is not None:
        shares = dict(sorted(Counter(result.cluster.assigned.values()).items()))
        print(f"shares of {result.devices} devices: {shares}")
    for f in result.failovers:
        if not f.orphans:
            print(f"kill -9 of the {f.role}: it owned no device (nothing to measure)")
        elif not f.missing:
            last = max(f.after_s.values())
            verdict = "met" if last <= GOAL_LEASES * result.lease_s else "NOT met"
            print(
                f"kill -9 of the {f.role}: every orphan polled again after {last:.1f} s ="
                f" {last / result.lease_s:.2f}x the lease period ({verdict}; goal <= 2x)"
            )
        else:
            print(f"kill -9 of the {f.role}: {f.missing} of {f.orphans} orphans never polled")
        print(f"  PostgreSQL, kill to last re-poll: {load_line(f.db_before, f.db_after)}")
    for r in result.rejoins:
        print(f"{r.instance} back: {r.moved} devices its own again, {r.flapped} moved twice")
    for what, w in (("cluster", result.cluster), ("one instance", result.solo)):
        if w is not None:
            print(f"PostgreSQL, {what}, steady: {load_line(w.db_before, w.db_after)}")
    if result.cluster is not None and result.solo is not None:
        c, s = result.cluster, result.solo
        ratio = c.cpu_per_poll_ms() / s.cpu_per_poll_ms()
        verdict = "met" if ratio - 1 <= GOAL_OVERHEAD else "NOT met"
        if c.moved:  # take-overs poll at once: the window is not a steady cluster's
            verdict = f"no verdict: {c.moved} devices changed owner in the cluster's window"
        with_db = (c.cpu_per_poll_ms() + c.db_cpu_per_poll_ms()) / (
            s.cpu_per_poll_ms() + s.db_cpu_per_poll_ms()
        )
        print(
            f"CPU per device poll: cluster {c.cpu_per_poll_ms():.2f} ms (3 instances) vs one"
            f" instance {s.cpu_per_poll_ms():.2f} ms = {ratio:.2f}x, overhead"
            f" {100 * (ratio - 1):+.0f}% ({verdict}; goal <= +10%); with the database server's"
            f" CPU: {with_db:.2f}x"
        )
    print(f"load average at the end: {loadavg()}")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=1500)
    parser.add_argument("--sites", type=int, default=15)
    parser.add_argument("--lease", type=float, default=10.0, help="cluster.lease_s")
    parser.add_argument(
        "--interval", type=float, default=60.0, help="polling interval, s (the daemon's default)"
    )
    parser.add_argument(
        "--window", type=float, default=75.0, help="CPU window, s (past an interval + jitter)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small run: 300 devices, 5 s lease, 10 s polls"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.sites, args.lease, args.interval, args.window = 300, 5, 5.0, 10.0, 15.0
    if args.devices > 2000:
        parser.error("at most 2,000 devices (127.18.0.0/21)")
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
        f" load {loadavg()}; {args.devices} devices x {INTERFACES} interfaces, polled every"
        f" {args.interval:g} s; lease {args.lease:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="oss-cluster-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Provisioning a slice across a chain of N simulated devices vs one device's raw NETCONF round
trips for the same steps, in the same run (goal: 50 devices in no more than 2x one device).

The network: N lab-sim devices (configured over NETCONF) in a line, d1 - d2 - ... - dN, on a
/24 of 127.11.0.0/16 picked at random; d1 is site "a" and dN site "z", both role pe, so a slice
from a to z crosses every device. The lab runs in its own process by default (as `oss lab up`
runs it), so the simulated devices do not share the engine's interpreter lock; `--lab thread`
runs it in a thread and loop of this process instead (as the integration tests do). The oss
side is the daemon's stack with its defaults (oss/runtime.py): an Inventory in a fresh SQLite
database with the topology imported, DeviceAccess -> Engine -> ServiceManager.

Timed, per N:

- create: `ServiceManager.create("slice", {customer, from: a, to: z, bandwidth: 100M})` end to
  end: placement, render, journal, read, prepare (lock, discard-changes, edit-config, validate),
  confirmed commit, verify, confirm; then delete (decommissioning, the same kind of
  transaction). The first create opens a session per device ("cold"); later ones reuse the
  pooled sessions ("warm"), and their median is the result.
- one device (the middle one, between the provisioning runs): the round trips the engine sends
  a device, with the project's NetconfDriver on the engine's own open session and the payload
  the engine sent that device: one get-config of the change's scope (read), lock,
  discard-changes, edit-config, validate, commit confirmed with persist, get-config again
  (verify), commit persist-id (confirm), unlock. The create payload is timed, then the delete
  payload (which puts the device back) is. A second baseline opens the session first, from a
  fresh driver, as the cold create does for every device.

Two scenarios, each printed with the ratio to one device, the cost per device, where the time
goes (before the first read, each phase's wall time and per-device step times, the journal
writes between phases) and the CPU each side spends per device. "Engine CPU" is this process's
CPU but its NETCONF client's threads (`client_threads`: the driver's ncclient workers,
paramiko's SSH transports, ncclient's session readers), per device and warm create, beyond
what open idle sessions cost; the client's and the lab's are printed beside it (goal: engine
<= 3 ms per device; needs the lab in its own process):

- loopback (--sizes, default 10,50,200): devices answer as fast as the simulator can, so one
  device's round trips are CPU time (client and simulated device) with nothing to wait for;
  N devices cannot take less than N times that CPU over the machine's CPUs (the "floor").
- device latency (--delayed-sizes, default 10,50): every device holds each reply back by
  --reply-delay-ms (default 100 ms, the lab's own management-plane delay), as real devices take
  time to answer; what parallelism can overlap shows here.

`--netconf-workers W` gives the engine's NETCONF driver W worker threads instead of the
daemon's (provisioning.max_parallel; a what-if: the lab's password login takes the driver's
threaded paramiko path, where each call holds a worker until its reply). `--profile` adds a
cProfile of one warm create at the largest size (the event-loop thread only).

Bounded: at most --repeats warm runs per size, about --size-seconds per size (at least one warm
run), and --budget seconds for the whole run (a size that would not fit is skipped, and said).

    .venv/bin/python -m bench.provisioning_bench [--sizes 10,50,200] [--delayed-sizes 10,50]
        [--reply-delay-ms 100] [--repeats 5] [--size-seconds 60] [--budget 290]
        [--lab process|thread] [--netconf-workers W] [--profile]

Only loopback addresses are used (127.11.x.0/24).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import paramiko
from ncclient.transport.session import Session as NcclientSession
from sqlalchemy import select

from drivers.netconf import NetconfDriver, NetconfSession
from drivers.platforms import load_platform
from lab.sim.control import control_request
from lab.sim.lab import Lab, Ports, read_state
from oss.inventory import Inventory
from oss.provisioning.access import DeviceAccess
from oss.provisioning.engine import Engine, Step, StepEvent, Transaction
from oss.provisioning.journal import DbJournal
from oss.provisioning.leaves import subtree_filters
from oss.provisioning.protocols import build_drivers, parse_payload
from oss.provisioning.protocols.netconf import NetconfAdapter
from oss.provisioning.services import ServiceManager
from oss.settings import ProvisioningSettings
from oss.store.database import Database
from oss.store.tables import TransactionDeviceRow
from topology.clab import parse_clab
from topology.targets import parse_networks, target_for

T = TypeVar("T")

GOAL_SIZE, GOAL_RATIO, LOOPBACK_GOAL_RATIO = 50, 2.0, 25.0
SLICE = {"customer": "bench", "from": "a", "to": "z", "bandwidth": "100M"}
LOOPBACK = parse_networks(["127.0.0.0/8"])
DRIVER_TIMEOUT_S = 60.0
PHASES: tuple[Step, ...] = ("read", "prepare", "commit", "verify", "confirm")
PLATFORM = "lab-sim"
IDLE_SETTLE_S, IDLE_SAMPLE_S = 0.5, 2.0
ENGINE_CPU_GOAL_MS = 3.0  # per device and transaction
NETCONF_WORKERS = "netconf"  # the NETCONF driver's worker threads' name (drivers.base)


# --------------------------------------------------------------------------- the lab


def chain_clab(size: int, prefix: str, credentials: Path) -> str:
    """d1 - d2 - ... - dN on prefix.1..prefix.N: one path only, so a slice crosses them all."""
    nodes = []
    for i in range(1, size + 1):
        site, role = ("a", "pe") if i == 1 else ("z", "pe") if i == size else ("core", "p")
        labels = (
            f"{{oss.role: {role}, oss.site: {site}, oss.platform: {PLATFORM}, "
            f"oss.credentials-ref: 'file:{credentials}'}}"
        )
        nodes.append(f"    d{i}:\n      mgmt-ipv4: {prefix}.{i}\n      labels: {labels}")
    links = [
        f'    - endpoints: ["d{i}:eth2", "d{i + 1}:eth1"]\n'
        "      vars: {capacity: 10G, latency: 100us}"
        for i in range(1, size)
    ]
    return (
        f"name: chain{size}\ntopology:\n  defaults: {{kind: linux}}\n  nodes:\n"
        + "\n".join(nodes)
        + "\n  links:\n"
        + "\n".join(links)
        + "\n"
    )


class LoopThread:
    """An asyncio loop in its own thread: the lab's, apart from the engine's."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class RunningLab:
    ports: Ports
    set_delay: Callable[[float], Awaitable[None]]  # every device's reply delay, in seconds
    cpu_s: Callable[[], float]  # the lab process's CPU seconds (0 when it is this process)


@asynccontextmanager
async def lab_in_thread(clab: Path, state: Path) -> AsyncIterator[RunningLab]:
    loop = LoopThread(f"lab-{clab.stem}")
    try:
        lab = Lab.from_file(clab, state, gnmi=False)  # NETCONF configures every device
        await loop.run(lab.start())

        async def set_delay(seconds: float) -> None:
            async def in_lab() -> None:
                for name in lab.nodes:
                    lab.set_delay(name, seconds)

            await loop.run(in_lab())

        try:
            yield RunningLab(lab.ports, set_delay, lambda: 0.0)
        finally:
            await loop.run(lab.stop())
    finally:
        loop.close()


@asynccontextmanager
async def lab_in_process(clab: Path, state: Path) -> AsyncIterator[RunningLab]:
    log = state.parent / f"{clab.stem}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lab.sim.lab", str(clab), "--state-dir", str(state), "--no-gnmi",
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        ready = await wait_ready(proc, state, log)
        names = list(ready["nodes"])

        async def set_delay(seconds: float) -> None:
            for name in names:
                request = {"op": "delay", "name": name, "seconds": seconds}
                await asyncio.to_thread(control_request, Path(ready["control"]), request)

        def cpu_s() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        yield RunningLab(Ports.for_this_user(), set_delay, cpu_s)
    finally:
        if proc.returncode is None:
            proc.terminate()  # the lab process this run started
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def wait_ready(proc: asyncio.subprocess.Process, state: Path, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"the lab exited with {proc.returncode}; see {log}")
        ready = await asyncio.to_thread(read_state, state)
        if ready is not None and ready.get("pid") == proc.pid:
            return ready
        await asyncio.sleep(0.05)
    raise TimeoutError("the lab was not ready within 120 s")


# --------------------------------------------------------------------------- measuring


class Timeline:
    """An engine observer: when each phase started on its first device and ended on its last."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    async def __call__(self, device: str, step: Step, event: StepEvent, error: str | None) -> None:
        now = time.perf_counter()
        if event == "start":
            self.first.setdefault(step, now)
        else:
            self.last[step] = now


class TimedJournal(DbJournal):
    """The service manager's journal, counting its writes and their time."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.writes = 0
        self.seconds = 0.0

    async def open(self, kind: str, service_id: int | None, actor: str) -> int:
        started = time.perf_counter()
        try:
            return await super().open(kind, service_id, actor)
        finally:
            self.writes += 1
            self.seconds += time.perf_counter() - started

    async def record(self, txn: Transaction, **options: Any) -> None:
        started = time.perf_counter()
        try:
            await super().record(txn, **options)
        finally:
            self.writes += 1
            self.seconds += time.perf_counter() - started


@dataclass(frozen=True)
class CpuSpent:
    wall_s: float
    own_s: float  # this process, all threads (the lab's too when it runs in a thread here)
    lab_s: float  # the lab's process (0 when the lab runs in this one)
    client_s: float = 0.0  # of own_s: the NETCONF client's threads (see client_threads)

    @property
    def engine_s(self) -> float:
        """The engine's CPU: this process but the NETCONF client's threads."""
        return self.own_s - self.client_s


def client_threads() -> dict[int, float]:
    """CPU seconds so far of each NETCONF client thread of this process, by thread id: the
    driver's worker threads (ncclient's Manager calls: building requests, parsing replies),
    paramiko's transport threads (SSH: ciphers, MACs, packets) and ncclient's session threads
    (reading replies off the channel). The lab logs in with a password, which takes this
    threaded paramiko path; everything else in the process (the event loop: engine, journal,
    rendering, reading the replies as leaves; SQLite's thread; the default executor) is the
    engine's."""
    spent: dict[int, float] = {}
    for thread in threading.enumerate():
        ours = isinstance(thread, paramiko.Transport | NcclientSession) or (
            thread.name.startswith(NETCONF_WORKERS)
        )
        if ours and thread.ident is not None:
            try:
                clock = time.pthread_getcpuclockid(thread.ident)
                spent[thread.ident] = time.clock_gettime(clock)
            except OSError:
                continue  # it ended meanwhile
    return spent


class Cpu:
    """CPU time spent from here on by this process (its NETCONF client threads apart) and by
    the lab's."""

    def __init__(self, lab: RunningLab) -> None:
        self._lab = lab
        self._wall = time.perf_counter()
        self._own = time.process_time()
        self._lab_s = lab.cpu_s()
        self._client = client_threads()

    def spent(self) -> CpuSpent:
        own = time.process_time() - self._own
        client = sum(s - self._client.get(t, 0.0) for t, s in client_threads().items())
        return CpuSpent(
            wall_s=time.perf_counter() - self._wall,
            own_s=own,
            lab_s=self._lab.cpu_s() - self._lab_s,
            client_s=min(client, own),
        )


@dataclass
class Run:
    """One timed create or delete."""

    total_s: float
    cpu: CpuSpent
    before_s: float  # call to the first device read: validate, place, reserve, render, journal
    phases_s: dict[str, float]  # first start to last end of each phase, over all devices
    gaps_s: float  # between phases: the journal writes
    after_s: float  # last confirmation to the reply: journal, service state
    journal_writes: int
    journal_s: float
    device_ms: dict[str, list[float]]  # per step, every device's own time
    txn_id: int


Work = Callable[[Timeline], Awaitable[dict[str, Any]]]


async def timed_run(journal: TimedJournal, lab: RunningLab, work: Work) -> tuple[Run, int]:
    """A create or delete, timed; returns the run and the service id."""
    timeline = Timeline()
    writes, journal_s = journal.writes, journal.seconds
    cpu = Cpu(lab)
    started = time.perf_counter()
    result = await work(timeline)
    ended = time.perf_counter()
    spent = cpu.spent()
    txn = result["transaction"]
    if txn["state"] != "committed":
        raise RuntimeError(f"transaction {txn['id']} ended {txn['state']}: {txn['error']}")
    phases: dict[str, float] = {
        p: timeline.last[p] - timeline.first[p] for p in PHASES if p in timeline.first
    }
    first, last = min(timeline.first.values()), max(timeline.last.values())
    device_ms: dict[str, list[float]] = {}
    for d in txn["devices"]:
        for s in d["steps"]:
            device_ms.setdefault(s["step"], []).append(s["ms"])
    run = Run(
        total_s=ended - started,
        cpu=spent,
        before_s=first - started,
        phases_s=phases,
        gaps_s=(last - first) - sum(phases.values()),
        after_s=ended - last,
        journal_writes=journal.writes - writes,
        journal_s=journal.seconds - journal_s,
        device_ms=device_ms,
        txn_id=int(txn["id"]),
    )
    return run, int(result["service"]["id"])


@dataclass
class RoundTrips:
    """The engine's NETCONF requests for one device and one payload, sent by hand."""

    payload: str
    filters: list[str]  # the subtree filters of the engine's one get-config per read
    confirm_timeout_s: int

    @classmethod
    def of(cls, payload: str, owned: Sequence[str]) -> RoundTrips:
        platform_ = load_platform(PLATFORM)
        intent = parse_payload(platform_, payload)
        filters = subtree_filters(intent, owned, platform_.model)
        return cls(payload, filters, int(platform_.confirm_timeout_s))

    @property
    def count(self) -> int:
        return (2 if self.filters else 0) + 7

    async def run(self, nc: NetconfSession, persist: str) -> dict[str, float]:
        """Seconds per engine step: NetconfAdapter's RPCs, in its order."""
        marks = [time.perf_counter()]
        if self.filters:
            await nc.get_config_data("running", filter=self.filters)
        marks.append(time.perf_counter())
        await nc.lock("candidate")
        await nc.discard_changes()
        await nc.edit_config(self.payload, target="candidate", operation="merge")
        await nc.validate("candidate")
        marks.append(time.perf_counter())
        await nc.commit(confirmed=True, timeout_s=self.confirm_timeout_s, persist=persist)
        marks.append(time.perf_counter())
        if self.filters:
            await nc.get_config_data("running", filter=self.filters)
        marks.append(time.perf_counter())
        await nc.commit(persist_id=persist)
        await nc.unlock("candidate")
        marks.append(time.perf_counter())
        return {p: b - a for p, (a, b) in zip(PHASES, itertools.pairwise(marks), strict=True)}


@dataclass
class Baseline:
    create: list[dict[str, float]] = field(default_factory=list)  # per step, open session
    delete: list[dict[str, float]] = field(default_factory=list)
    with_open: list[float] = field(default_factory=list)  # open + the create steps
    cpu: list[CpuSpent] = field(default_factory=list)  # the create steps
    rpcs: int = 0

    def create_s(self) -> float:
        return statistics.median(sum(r.values()) for r in self.create)

    def delete_s(self) -> float:
        return statistics.median(sum(r.values()) for r in self.delete)

    def step_s(self, step: str) -> float:
        return statistics.median(r[step] for r in self.create)


@dataclass
class SizeResult:
    size: int
    start_s: float = 0.0
    cold_create: Run | None = None
    creates: list[Run] = field(default_factory=list)  # warm
    deletes: list[Run] = field(default_factory=list)
    baseline: Baseline = field(default_factory=Baseline)
    idle: CpuSpent | None = None  # with every session open, nothing to do
    baseline_round_s: float = 0.0  # the one-device rounds between two provisioning runs
    profile: str = ""
    note: str = ""

    def create_s(self) -> float:
        return statistics.median(r.total_s for r in self.creates)

    def delete_s(self) -> float:
        return statistics.median(r.total_s for r in self.deletes)

    def ratio(self) -> float:
        return self.create_s() / self.baseline.create_s()

    def busy(self, spent: Sequence[CpuSpent]) -> tuple[float, float]:
        """Mean CPU seconds (this process, the lab's) beyond what idle sessions cost anyway."""
        idle = self.idle or CpuSpent(1.0, 0.0, 0.0)
        own = statistics.fmean(s.own_s - idle.own_s / idle.wall_s * s.wall_s for s in spent)
        lab = statistics.fmean(s.lab_s - idle.lab_s / idle.wall_s * s.wall_s for s in spent)
        return own, lab

    def engine_client(self, spent: Sequence[CpuSpent]) -> tuple[float, float]:
        """Mean CPU seconds of the engine and of the NETCONF client (`client_threads`), each
        beyond what it costs with every session open and nothing to do."""
        idle = self.idle or CpuSpent(1.0, 0.0, 0.0)
        engine_rate, client_rate = idle.engine_s / idle.wall_s, idle.client_s / idle.wall_s
        engine = statistics.fmean(s.engine_s - engine_rate * s.wall_s for s in spent)
        client = statistics.fmean(s.client_s - client_rate * s.wall_s for s in spent)
        return engine, client


@dataclass
class Stack:
    db: Database
    inventory: Inventory
    access: DeviceAccess
    services: ServiceManager
    journal: TimedJournal


@asynccontextmanager
async def oss_stack(
    clab: Path, ports: Ports, workdir: Path, netconf_workers: int | None
) -> AsyncIterator[Stack]:
    """The daemon's provisioning stack (oss/runtime.py) over SQLite, the topology imported."""
    db = Database(f"sqlite+aiosqlite:///{workdir / 'oss.db'}")
    await db.migrate()
    inventory = Inventory(db)
    await inventory.load()
    text = await asyncio.to_thread(clab.read_text)
    await inventory.import_topology(parse_clab(text, str(clab)), actor="bench", source=str(clab))
    # as the daemon sizes them: one worker per device a phase works on at once
    drivers = build_drivers(max_workers=ProvisioningSettings().max_parallel)
    if netconf_workers:
        drivers["netconf"] = NetconfDriver(max_workers=netconf_workers)
    access = DeviceAccess(
        device_of=inventory.graph.device,
        allowed=LOOPBACK,
        ports=ports.as_dict(),
        timeout_s=DRIVER_TIMEOUT_S,
        drivers=drivers,
    )
    services = ServiceManager(db, inventory, Engine(access))
    journal = TimedJournal(db)
    services.journal = journal  # the same journal, its writes counted
    try:
        yield Stack(db, inventory, access, services, journal)
    finally:
        await access.close()
        await db.close()


async def round_trips_of(db: Database, txn_id: int, device: str) -> RoundTrips:
    """The engine's requests to `device` in a journaled transaction: its payload, and reads
    of what the change owns there."""
    async with db.transaction() as s:
        row = (
            await s.execute(
                select(TransactionDeviceRow.payload, TransactionDeviceRow.owned).where(
                    TransactionDeviceRow.transaction_id == txn_id,
                    TransactionDeviceRow.device == device,
                )
            )
        ).first()
    if row is None:
        raise RuntimeError(f"transaction {txn_id} has no payload for {device}")
    return RoundTrips.of(str(row.payload), list(row.owned))


async def baseline_round(
    stack: Stack, lab: RunningLab, device: str, trips: tuple[RoundTrips, RoundTrips], into: Baseline
) -> None:
    """One device: the create round trips, then the delete ones (which put it back), on the
    engine's own open session; then the same from a fresh driver, opening the session."""
    create, delete = trips
    n = len(into.create)
    async with stack.access.adapter(device) as adapter:
        assert isinstance(adapter, NetconfAdapter)
        cpu = Cpu(lab)
        into.create.append(await create.run(adapter.session, f"bench-c{n}"))
        into.cpu.append(cpu.spent())
        into.delete.append(await delete.run(adapter.session, f"bench-d{n}"))
    target = target_for(
        stack.inventory.graph.device(device),
        "netconf",
        port=stack.access.ports.get("netconf"),
        timeout_s=DRIVER_TIMEOUT_S,
        allowed=LOOPBACK,
    )
    async with NetconfDriver() as fresh:
        started = time.perf_counter()
        async with fresh.connect(target) as nc:
            await create.run(nc, f"bench-o{n}")
            into.with_open.append(time.perf_counter() - started)
            await delete.run(nc, f"bench-p{n}")
    into.rpcs = create.count


@dataclass(frozen=True)
class Options:
    lab: str
    repeats: int
    size_seconds: float
    deadline: float
    netconf_workers: int | None
    profile: bool


@dataclass(frozen=True)
class Scenario:
    name: str
    sizes: list[int]
    reply_delay_s: float
    repeats: int


async def measure_size(size: int, workdir: Path, opts: Options, delay_s: float) -> SizeResult:
    result = SizeResult(size)
    began = time.perf_counter()
    directory = Path(tempfile.mkdtemp(prefix=f"n{size}-", dir=workdir))
    state = directory / "lab"
    clab = directory / f"chain{size}.clab.yml"
    prefix = f"127.11.{random.randint(1, 254)}"
    clab.write_text(chain_clab(size, prefix, state / "credentials.yaml"))
    runner = lab_in_process if opts.lab == "process" else lab_in_thread
    async with (
        runner(clab, state) as lab,
        oss_stack(clab, lab.ports, directory, opts.netconf_workers) as stack,
    ):
        result.start_s = time.perf_counter() - began
        if delay_s:
            await lab.set_delay(delay_s)
        services, journal = stack.services, stack.journal
        middle = f"d{(size + 1) // 2}"

        async def create(timeline: Timeline) -> dict[str, Any]:
            return await services.create("slice", SLICE, actor="bench", observer=timeline)

        def delete(service_id: int) -> Work:
            async def work(timeline: Timeline) -> dict[str, Any]:
                return await services.delete(service_id, actor="bench", observer=timeline)

            return work

        async def create_delete() -> tuple[Run, Run]:
            made, service_id = await timed_run(journal, lab, create)
            if len(made.device_ms["read"]) != size:
                raise RuntimeError(f"the slice crossed {len(made.device_ms['read'])} devices")
            gone, _ = await timed_run(journal, lab, delete(service_id))
            return made, gone

        result.cold_create, cold_delete = await create_delete()
        trips = (
            await round_trips_of(stack.db, result.cold_create.txn_id, middle),
            await round_trips_of(stack.db, cold_delete.txn_id, middle),
        )
        # untimed: the fresh driver's first session warms up as the engine's did when cold
        await baseline_round(stack, lab, middle, trips, Baseline())
        await asyncio.sleep(IDLE_SETTLE_S)  # the fresh driver's threads wind down
        idle = Cpu(lab)
        await asyncio.sleep(IDLE_SAMPLE_S)
        result.idle = idle.spent()
        for i in range(1, opts.repeats + 1):
            took = time.perf_counter()
            made, gone = await create_delete()
            result.creates.append(made)
            result.deletes.append(gone)
            base_began = time.perf_counter()
            await baseline_round(stack, lab, middle, trips, result.baseline)
            now = time.perf_counter()
            result.baseline_round_s = now - base_began
            if i == opts.repeats:
                break
            if now - began > opts.size_seconds or opts.deadline - now < 1.5 * (now - took):
                result.note = "time limit"
                break
        if opts.profile:
            result.profile = await profiled(create, delete)
    return result


async def profiled(create: Work, delete: Callable[[int], Work]) -> str:
    """cProfile of one warm create: the event loop thread's CPU time (not the driver's
    workers), by function's own time and by cumulative time."""
    profiler = cProfile.Profile(time.thread_time)  # CPU, not the waits for the devices
    profiler.enable()
    out = await create(Timeline())
    profiler.disable()
    await delete(int(out["service"]["id"]))(Timeline())
    text = io.StringIO()
    for order in ("tottime", "cumtime"):
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(25)
    return text.getvalue()


def estimate(previous: SizeResult, size: int) -> float:
    """Seconds a size needs at the least (its lab, a cold and one warm round), from the last
    size: provisioning time grows with N (taken as linear, on the safe side), the one-device
    rounds do not."""
    scale = size / previous.size
    provisioning = previous.create_s() + previous.delete_s()
    return (previous.start_s + IDLE_SETTLE_S + IDLE_SAMPLE_S) * scale + 2 * (
        provisioning * scale + previous.baseline_round_s
    )


async def run_scenarios(scenarios: list[Scenario], opts: Options) -> list[list[SizeResult]]:
    out: list[list[SizeResult]] = []
    largest = max((s for sc in scenarios for s in sc.sizes), default=0)
    profiled_once = False
    with tempfile.TemporaryDirectory(prefix="provisioning-bench-") as tmp:
        for scenario in scenarios:
            results: list[SizeResult] = []
            for size in scenario.sizes:
                left = opts.deadline - time.perf_counter()
                need = estimate(results[-1], size) if results else 10.0
                if need > left:
                    print(
                        f"({scenario.name}: skipping N={size}: about {need:.0f} s needed,"
                        f" {left:.0f} s left)"
                    )
                    continue
                profile = opts.profile and size == largest and not profiled_once
                profiled_once = profiled_once or profile
                took = time.perf_counter()
                result = await measure_size(
                    size,
                    Path(tmp),
                    replace(opts, profile=profile, repeats=scenario.repeats),
                    scenario.reply_delay_s,
                )
                spent = time.perf_counter() - took
                print(
                    f"{scenario.name}: N={size}, {len(result.creates)} warm run(s), {spent:.0f} s",
                    flush=True,
                )
                results.append(result)
            out.append(results)
    return out


# --------------------------------------------------------------------------- reporting


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def median_of(runs: Sequence[Run], get: Callable[[Run], float]) -> float:
    return statistics.median(get(r) for r in runs)


def print_times(results: list[SizeResult]) -> None:
    print(
        f"{'N':>5} {'runs':>4} {'create':>7} {'1 dev':>6} {'ratio':>6} {'ms/dev':>7}"
        f" {'delete':>7} {'1 dev':>6} {'ratio':>6}"
        f" {'cold':>7} {'1+open':>6} {'ratio':>6} {'lab up s':>8}"
    )
    for r in results:
        base, cold = r.baseline, r.cold_create
        assert cold is not None
        with_open = statistics.median(base.with_open)
        print(
            f"{r.size:>5} {len(r.creates):>4} {ms(r.create_s()):>7} {ms(base.create_s()):>6}"
            f" {r.ratio():>6.1f} {r.create_s() * 1000 / r.size:>7.1f}"
            f" {ms(r.delete_s()):>7} {ms(base.delete_s()):>6}"
            f" {r.delete_s() / base.delete_s():>6.1f}"
            f" {ms(cold.total_s):>7} {ms(with_open):>6} {cold.total_s / with_open:>6.1f}"
            f" {r.start_s:>8.1f}" + (f"  ({r.note})" if r.note else "")
        )


def print_breakdown(results: list[SizeResult]) -> None:
    print(
        f"{'N':>5} {'before':>7} "
        + " ".join(f"{p:>15}" for p in PHASES)
        + f" {'gaps':>6} {'after':>6} {'journal':>10}"
    )
    for r in results:
        cells = []
        for p in PHASES:
            wall = statistics.median(run.phases_s.get(p, 0.0) for run in r.creates)
            dev = [x for run in r.creates for x in run.device_ms.get(p, [])]
            cells.append(f"{ms(wall)} ({statistics.median(dev):.0f}/{max(dev):.0f})")
        journal = (
            f"{r.creates[0].journal_writes}w {ms(median_of(r.creates, lambda x: x.journal_s))}"
        )
        print(
            f"{r.size:>5} {ms(median_of(r.creates, lambda x: x.before_s)):>7} "
            + " ".join(f"{c:>15}" for c in cells)
            + f" {ms(median_of(r.creates, lambda x: x.gaps_s)):>6}"
            f" {ms(median_of(r.creates, lambda x: x.after_s)):>6} {journal:>10}"
        )
    for r in results:
        base = r.baseline
        print(f"{'1 dev':>5} {'':>7} " + " ".join(f"{ms(base.step_s(p)):>15}" for p in PHASES)
              + f"   (N={r.size}'s lab)")  # fmt: skip


def print_cpu(results: list[SizeResult], lab_mode: str) -> None:
    # In a thread, the lab's CPU is this process's, and both share one interpreter lock.
    apart = lab_mode == "process"
    cpus = (os.cpu_count() or 1) if apart else 1
    engine_name = "engine" if apart else "engine+lab"
    print(
        f"{'N':>5} {engine_name:>10} {'client':>7} {'lab':>6}"
        f" {'1 dev engine':>13} {'client':>7} {'lab':>6} {'idle oss ms/s':>14} {'floor':>7}"
    )
    for r in results:
        _, lab = r.busy([x.cpu for x in r.creates])
        engine, client = r.engine_client([x.cpu for x in r.creates])
        one_own, one_lab = r.busy(r.baseline.cpu)
        one_engine, one_client = r.engine_client(r.baseline.cpu)
        idle = r.idle or CpuSpent(1.0, 0.0, 0.0)
        floor = r.size * (one_own + one_lab) / cpus / r.baseline.create_s()
        print(
            f"{r.size:>5} {engine * 1000 / r.size:>10.1f} {client * 1000 / r.size:>7.1f}"
            f" {ms(lab / r.size) if apart else '-':>6}"
            f" {one_engine * 1000:>13.1f} {one_client * 1000:>7.1f}"
            f" {ms(one_lab) if apart else '-':>6}"
            f" {idle.own_s / idle.wall_s * 1000:>14.0f} {floor:>6.1f}x"
        )


def report(scenarios: list[Scenario], all_results: list[list[SizeResult]], opts: Options) -> None:
    cpus = os.cpu_count() or 1
    verdicts = []
    for scenario, results in zip(scenarios, all_results, strict=True):
        if not results:
            continue
        delay = (
            f"every reply held back {ms(scenario.reply_delay_s)} ms"
            if scenario.reply_delay_s
            else "devices answer at once"
        )
        print(f"\n== {scenario.name}: slice across N devices vs one device ({delay}; ms) ==")
        print_times(results)
        print("\nwhere a warm create's time goes (medians, ms; per-device step time median/max)")
        print_breakdown(results)
        print("\nCPU per device (ms; idle sessions' CPU excluded)")
        print_cpu(results, opts.lab)
        goal = next((r for r in results if r.size == GOAL_SIZE), None)
        if goal is not None:
            ratio_goal = GOAL_RATIO if scenario.reply_delay_s else LOOPBACK_GOAL_RATIO
            met = goal.ratio() <= ratio_goal
            verdicts.append(
                f"  {scenario.name}: N={GOAL_SIZE} {goal.ratio():.1f}x (goal <= {ratio_goal:g}x)"
                f" -> {'met' if met else 'NOT met'}"
            )
        if opts.lab == "process":
            for r in results:
                engine, _ = r.engine_client([x.cpu for x in r.creates])
                per_device = engine * 1000 / r.size
                met = per_device <= ENGINE_CPU_GOAL_MS
                verdicts.append(
                    f"  {scenario.name}: N={r.size} engine CPU {per_device:.1f} ms per device"
                    f" (goal <= {ENGINE_CPU_GOAL_MS:g}) -> {'met' if met else 'NOT met'}"
                )
        for r in results:
            if r.profile:
                print(f"\ncProfile of one warm create at N={r.size} (the event loop's CPU):")
                print(r.profile)
    rpcs = next((r.baseline.rpcs for results in all_results for r in results), 0)
    workers = str(opts.netconf_workers or ProvisioningSettings().max_parallel)
    used_cpus = cpus if opts.lab == "process" else 1
    print(
        "\ncreate, delete: ServiceManager end to end, warm (sessions open). cold: the first"
        " create, which opens a session per device. 1 dev: the engine's round trips"
        f" ({rpcs} RPCs) to one device on its open session; 1+open: opening a session first."
        " ms/dev: create time per device.\n"
        "before: the call to the first device read (validate, place, reserve, render, journal)."
        " phases: wall time from the first device's start to the last one's end. gaps: between"
        " phases (journal writes). after: the last confirmation to the reply.\n"
        "engine, client, lab: CPU per device in a warm create, beyond what idle sessions cost:"
        " engine = this process but its NETCONF client threads (event loop: placement,"
        " rendering, journal, the engine, reading replies as leaves; SQLite's thread); client ="
        " those threads (the driver's workers running ncclient, paramiko's transports,"
        " ncclient's session readers: SSH and NETCONF framing and parsing); lab = the"
        " simulated devices' process. 1 dev: the same for one device's round trips."
        f" floor: the ratio N devices cannot beat on {used_cpus}"
        " CPU(s) even with no engine overhead (N times one device's CPU, spread over them,"
        f" against one device's time). NETCONF driver workers: {workers}.\n"
        f"goals: {GOAL_SIZE} devices in <= {LOOPBACK_GOAL_RATIO:g}x one device's time when"
        f" devices answer at once, <= {GOAL_RATIO:g}x with device latency; engine CPU <="
        f" {ENGINE_CPU_GOAL_MS:g} ms per device"
    )
    print("\n".join(verdicts) if verdicts else f"  N={GOAL_SIZE} not measured")


def sizes_of(text: str) -> list[int]:
    return sorted(int(s) for s in text.split(",") if s.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.provisioning_bench")
    parser.add_argument("--sizes", default="10,50,200", help="loopback scenario sizes")
    parser.add_argument("--delayed-sizes", default="10,50", help="device latency scenario sizes")
    parser.add_argument("--reply-delay-ms", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per size at most")
    parser.add_argument("--size-seconds", type=float, default=60.0, help="per size, about")
    parser.add_argument("--budget", type=float, default=290.0, help="seconds for the whole run")
    parser.add_argument("--lab", choices=("process", "thread"), default="process")
    parser.add_argument("--netconf-workers", type=int, help="NETCONF driver worker threads")
    parser.add_argument("--profile", action="store_true", help="cProfile at the largest size")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    opts = Options(
        lab=args.lab,
        repeats=max(1, args.repeats),
        size_seconds=args.size_seconds,
        deadline=began + args.budget,
        netconf_workers=args.netconf_workers,
        profile=args.profile,
    )
    scenarios = [
        Scenario("loopback", sizes_of(args.sizes), 0.0, opts.repeats),
        # a fixed delay varies little from run to run: fewer runs do
        Scenario(
            "device latency",
            sizes_of(args.delayed_sizes),
            args.reply_delay_ms / 1000,
            min(3, opts.repeats),
        ),
    ]
    scenarios = [s for s in scenarios if s.sizes]
    print(
        f"provisioning bench: {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, lab in a {opts.lab}"
    )
    all_results = asyncio.run(run_scenarios(scenarios, opts))
    if not any(all_results):
        print("no size measured")
        return 1
    report(scenarios, all_results, opts)
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Trap storm: SNMPv2c linkDown/linkUp traps into the daemon's pipeline vs `snmptrapd` logging the
same traps, from the same sender, in the same run.

    sender --UDP--> snmptrapd -Lf file                                  (the baseline)
    sender --UDP--> TrapReceiver -> AssurancePipeline.sink -> Rules -> AlarmManager (SQLite)
                    -> NocFeed outbox -> NocPublisher -> Mosquitto -> subscriber  (the daemon)

A third contender, "receiver", is the daemon's first stage alone (TrapReceiver: UDP receive and
the lean v1/v2c codec, drivers.snmp_trap_codec, decoding into Events), and a last section prints
the CPU per trap of the later stages in-process (rules; AlarmManager.signals with the NOC feed's
outbox writes) and the CPU per QoS 1 publish of the MQTT client, so that a miss of the goal says
where the time goes.

Storms of three shapes (`--shape`, all by default; see `plan`): one link flapping (every trap
a state change), 1,000 distinct interfaces going down once (1,000 new alarms), and repeats of a
few problems (reduction: one alarm each whose `count` grows); a fourth, `cycle` (100 pairs, each
linkDown x3 then linkUp), is the earlier bench's storm, kept for the API step and the stages.
Each device is its own loopback source address (127.10.0.x), the sender its own process. Per
shape the rate steps up (bounded) until a contender loses traps or falls behind; for each step:
throughput, CPU seconds of the contender's process (so traps per CPU-second, i.e. per core), and
losses (traps snmptrapd did not log / traps no MQTT message reflects). Latency trap -> MQTT is
the time from the sender's sendto() to the first message on `<prefix>/events/#` reflecting the
trap (the alarm of that episode with a count at least the trap's repeat number, or cleared),
p50/p99 at the latency rate. A `gc.collect()` precedes each measured slice.

The API under a storm: `oss serve` as a process (the API, the trap path and the NOC feed on one
event loop, as deployed) takes a `--api-rate` storm while a client process GETs the TMF alarm
list (limit=50) and the device list with a bearer token, from the first trap to a second after
the last: p50/p99 per path, errors, and the daemon's counts from /metrics.

    .venv/bin/python -m bench.trap_storm_bench [--seconds 2] [--rates 2000 10000]
        [--shape flap|distinct|repeats|cycle|all] [--api-rate 10000] [--budget 240]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from drivers.snmp_traps import TrapReceiver
from oss.assurance.pipeline import AssurancePipeline
from oss.assurance.traps import TRAP_BATCH, TrapCollector
from oss.events import Event, Value
from oss.faults.alarm_output import alarm_output
from oss.faults.alarms import AlarmManager
from oss.faults.noc_feed import NocFeed
from oss.faults.rules import Rules
from oss.inventory import Inventory
from oss.outputs import mqtt_client
from oss.outputs.mqtt_outbox import NocPublisher
from oss.outputs.prometheus import KpiGauges
from oss.outputs.rollup import MinuteRollup
from oss.settings import AssuranceSettings, NocFeedSettings
from oss.store import Database
from oss.store.outbox import Outbox
from tests.peers.daemon import Daemon as ServedDaemon
from tests.peers.mosquitto import MosquittoServer, running_mosquitto
from tests.peers.ports import free_port
from topology.graph import InventoryGraph

COMMUNITY = "storm-bench"
DEVICES = tuple(f"127.10.0.{n}" for n in range(1, 41))  # each its own loopback source
IFINDEXES = tuple(range(1, 26))
CYCLE_DEVICES = 4  # the cycle's 4 x 25 = 100 (device, ifindex) pairs
DOWNS = 3  # the cycle's linkDown repeats before the linkUp of one episode
PHASES = DOWNS + 1
UP = -1  # Trap.repeat of a linkUp
REPEAT_PAIRS = ((0, 1), (0, 2), (1, 1), (1, 2), (2, 7))  # the few problems that repeat
SHAPES = ("flap", "distinct", "repeats", "cycle")
DEFAULT_SHAPES = ("flap", "distinct", "repeats")  # --shape all
PREFIX = "storm"
GRACE_S = 1.0  # a contender keeps up when it is done this long after the last send (+10 %)
MAX_WAIT_S = 15.0  # give up on a step this long after the last send
LATENCY_RATE = 2000
CONTENDERS = ("snmptrapd", "receiver", "daemon")
STAGE_TRAPS = 4000
SMALL_STAGE_BATCH = 10  # the in-process stages' second batch size: a 2k/s storm's
RING = Path(__file__).resolve().parents[1] / "lab" / "topologies" / "ring4.clab.yml"
API_RATE = 10_000

SYS_UPTIME_0 = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID_0 = "1.3.6.1.6.3.1.1.4.1.0"
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
IF_INDEX, IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"


# --------------------------------------------------------------------------- the traps


@dataclass(frozen=True)
class Trap:
    device: int  # index into DEVICES
    ifindex: int
    episode: int  # the n-th alarm of this (device, ifindex): a linkUp ends one
    repeat: int  # the (repeat+1)-th linkDown of its episode; UP: the linkUp

    @property
    def down(self) -> bool:
        return self.repeat != UP


def plan(count: int, shape: str = "cycle") -> list[Trap]:
    """`count` traps of a storm shape (distinct: at most its 1,000 pairs):
    flap      one link going down, up, down, up, ...: every trap a state change;
    distinct  40 devices x 25 ifindexes going down once each: 1,000 new alarms;
    repeats   the few REPEAT_PAIRS sending linkDown over and over: one alarm each, counted;
    cycle     4 devices x 25 ifindexes, each linkDown x DOWNS then linkUp, round after round."""
    if shape == "flap":
        return [Trap(0, 1, i // 2, UP if i % 2 else 0) for i in range(count)]
    if shape == "distinct":
        pairs = [(d, i) for d in range(len(DEVICES)) for i in IFINDEXES]
        return [Trap(d, i, 0, 0) for d, i in pairs[:count]]
    if shape == "repeats":
        n = len(REPEAT_PAIRS)
        return [Trap(*REPEAT_PAIRS[i % n], 0, i // n) for i in range(count)]
    if shape != "cycle":
        raise ValueError(f"unknown storm shape {shape!r}")
    pairs = [(d, i) for d in range(CYCLE_DEVICES) for i in IFINDEXES]
    out = []
    for i in range(count):
        device, ifindex = pairs[i % len(pairs)]
        step = i // len(pairs)
        phase = step % PHASES
        out.append(Trap(device, ifindex, step // PHASES, phase if phase < DOWNS else UP))
    return out


def shape_count(shape: str, rate: int, seconds: float) -> int:
    """Traps in one step: rate x seconds, but a distinct storm is its 1,000 interfaces."""
    count = int(rate * seconds)
    return min(count, len(DEVICES) * len(IFINDEXES)) if shape == "distinct" else count


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _len(len(body)) + body


def _int(value: int, tag: int = 0x02) -> bytes:
    return _tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _varbind(oid: str, value: bytes) -> bytes:
    return _tlv(0x30, _oid(oid) + value)


def encode(trap: Trap, request_id: int) -> bytes:
    """One SNMPv2c SNMPv2-Trap-PDU (RFC 3416) as the agent would send it."""
    varbinds = b"".join(
        [
            _varbind(SYS_UPTIME_0, _int(request_id, tag=0x43)),  # TimeTicks
            _varbind(SNMP_TRAP_OID_0, _oid(LINK_DOWN if trap.down else LINK_UP)),
            _varbind(f"{IF_INDEX}.{trap.ifindex}", _int(trap.ifindex)),
            _varbind(f"{IF_ADMIN}.{trap.ifindex}", _int(1)),
            _varbind(f"{IF_OPER}.{trap.ifindex}", _int(2 if trap.down else 1)),
        ]
    )
    pdu = _tlv(0xA7, _int(request_id) + _int(0) + _int(0) + _tlv(0x30, varbinds))
    return _tlv(0x30, _int(1) + _tlv(0x04, COMMUNITY.encode()) + pdu)


def send(port: int, rate: int, shape: str, count: int, out: Connection) -> None:
    """The sender process: `count` traps of `shape` paced at `rate`/s to 127.0.0.1:port; sends
    back the monotonic time of each sendto()."""
    traps = plan(count, shape)
    packets = [encode(t, i + 1) for i, t in enumerate(traps)]
    socks = []
    for address in DEVICES[: max(t.device for t in traps) + 1]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 0))
        socks.append(sock)
    sent = [0] * count
    start = time.monotonic_ns()
    interval_ns = 1_000_000_000 / rate
    try:
        for i, (trap, packet) in enumerate(zip(traps, packets, strict=True)):
            due = start + int(i * interval_ns)
            now = time.monotonic_ns()
            if due - now > 200_000:  # sleep only when well ahead; otherwise send at once
                time.sleep((due - now) / 1e9)
            socks[trap.device].sendto(packet, ("127.0.0.1", port))
            sent[i] = time.monotonic_ns()
    finally:
        for sock in socks:
            sock.close()
    out.send(sent)
    out.close()


@dataclass(frozen=True)
class Sending:
    results: Connection  # the send times come here
    process: multiprocessing.process.BaseProcess


@contextlib.contextmanager
def sender(port: int, rate: int, count: int, shape: str = "cycle") -> Iterator[Sending]:
    """The sender process. Leaving the block waits for the process to end: an async caller
    reads the send times with `sent_times`, which waits in a thread (the process takes ~0.5 s
    to exit, which would stall the event loop measured)."""
    ctx = multiprocessing.get_context("spawn")
    receiving, sending = ctx.Pipe(duplex=False)
    process = ctx.Process(target=send, args=(port, rate, shape, count, sending), daemon=True)
    process.start()
    sending.close()
    try:
        yield Sending(receiving, process)
    finally:
        process.join(timeout=MAX_WAIT_S)
        if process.is_alive():
            process.kill()
            process.join()


async def sent_times(sending: Sending) -> list[int]:
    """The sender's send times, once its process has ended (waited for in a thread)."""
    sent_at: list[int] = await asyncio.to_thread(sending.results.recv)
    await asyncio.to_thread(sending.process.join, MAX_WAIT_S)
    return sent_at


# ------------------------------------------------------------------------------ results


@dataclass
class Step:
    contender: str
    rate: int
    sent: int
    handled: int  # traps logged (snmptrapd) / reflected in MQTT (daemon)
    seconds: float  # first send -> last trap handled
    cpu_s: float  # CPU time of the contender's process over the step
    latencies_ms: list[float] = field(default_factory=list)
    note: str = ""
    shape: str = "cycle"

    @property
    def lost(self) -> int:
        return self.sent - self.handled

    @property
    def throughput(self) -> float:
        return self.handled / self.seconds if self.seconds > 0 else 0.0

    @property
    def per_core(self) -> float:
        return self.handled / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def kept_up(self) -> bool:
        return self.lost == 0 and self.seconds <= self.sent / self.rate * 1.1 + GRACE_S

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -------------------------------------------------------------------------- snmptrapd


@contextlib.contextmanager
def running_snmptrapd(base: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    binary = shutil.which("snmptrapd") or "/usr/sbin/snmptrapd"
    port = free_port()
    conf, log = base / "snmptrapd.conf", base / "traps.log"
    conf.write_text("disableAuthorization yes\ndoNotRetainNotificationLogs yes\n")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(base), "MIBS": ""}
    argv = [binary, "-f", "-n", "-C", "-c", str(conf), "-Lf", str(log)]
    argv += ["-F", "TRAP %B %v\\n", f"udp:127.0.0.1:{port}"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not log.exists() or "NET-SNMP" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"snmptrapd did not start: {err}")
            time.sleep(0.05)
        yield process, port, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def _logged(log: Path) -> int:
    with log.open("rb") as f:
        return sum(1 for line in f if line.startswith(b"TRAP "))


def bench_snmptrapd(base: Path, shape: str, rate: int, count: int) -> Step:
    with running_snmptrapd(base) as (process, port, log):
        cpu0 = _proc_cpu_s(process.pid)
        with sender(port, rate, count, shape) as sending:
            sent_at = sending.results.recv()
        last_send = sent_at[-1]
        seen, seen_at = 0, time.monotonic_ns()
        while time.monotonic_ns() - last_send < MAX_WAIT_S * 1e9:
            now_seen = _logged(log)
            now = time.monotonic_ns()
            if now_seen != seen:
                seen, seen_at = now_seen, now
            if seen >= count or now - seen_at > 1e9:  # all there, or nothing new for 1 s
                break
            time.sleep(0.02)
        # When the last line was written, on the monotonic clock the sender used.
        done_at = log.stat().st_mtime_ns - (time.time_ns() - time.monotonic_ns())
        cpu = _proc_cpu_s(process.pid) - cpu0
    return Step("snmptrapd", rate, count, seen, (done_at - sent_at[0]) / 1e9, cpu, shape=shape)


# ---------------------------------------------------------------------- receiver alone


async def bench_receiver(shape: str, rate: int, count: int) -> Step:
    """The daemon's first stage alone (receive + lean decode into Events, drained in batches
    as the trap collector takes them): what the rest of the pipeline could at best reach."""
    # The daemon's receive buffer (its setting's default), not the driver's smaller default.
    buffer = AssuranceSettings().traps_receive_buffer_bytes
    receiver = TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY], receive_buffer_bytes=buffer)
    async with receiver:
        handled, last = 0, 0

        async def drain() -> None:
            nonlocal handled, last
            while True:
                try:
                    batch = await receiver.get_batch(TRAP_BATCH)
                except LookupError:  # stopped
                    return
                handled += len(batch)
                last = time.monotonic_ns()

        drainer = asyncio.create_task(drain())
        gc.collect()  # not a collection left over from start-up in the measured slice
        cpu0 = time.process_time()
        with sender(receiver.port, rate, count, shape) as sending:
            sent_at = await sent_times(sending)
        deadline = time.monotonic_ns() + int(MAX_WAIT_S * 1e9)
        quiet_since = time.monotonic_ns()
        while handled < count and time.monotonic_ns() < deadline:
            seen = handled
            await asyncio.sleep(0.05)
            if handled != seen:
                quiet_since = time.monotonic_ns()
            elif time.monotonic_ns() - quiet_since > 1e9:
                break
        cpu = time.process_time() - cpu0
    await drainer
    taken = (last - sent_at[0]) / 1e9 if last else float("inf")
    note = f"receive + decode only; kernel-dropped {receiver.kernel_dropped}"
    return Step("receiver", rate, count, handled, taken, cpu, note=note, shape=shape)


# ----------------------------------------------------------------------------- daemon


def subscribe(host: str, port: int, ready: Connection, out: Connection) -> None:
    """The subscriber process: every message on <prefix>/events/# as (monotonic ns, reduction
    key, alarm id, count, cleared), until told to stop."""
    import aiomqtt  # imported here: the spawned process needs nothing else of the bench

    async def main() -> None:
        got: list[tuple[int, str, int, int, bool]] = []
        async with aiomqtt.Client(host, port, identifier="storm-subscriber") as client:
            await client.subscribe(f"{PREFIX}/events/#", qos=0)
            ready.send("ready")
            loop = asyncio.get_running_loop()
            stopped = loop.run_in_executor(None, ready.recv)
            messages = aiomqtt_messages(client)
            while True:
                getter = asyncio.ensure_future(anext(messages))
                done, _ = await asyncio.wait({getter, stopped}, return_when="FIRST_COMPLETED")
                if getter not in done:
                    getter.cancel()
                    break
                message = getter.result()
                at = time.monotonic_ns()
                doc = json.loads(bytes(message.payload))
                got.append(
                    (
                        at,
                        str(doc["reductionKey"]),
                        int(doc["id"]),
                        int(doc["count"]),
                        doc["state"] == "cleared",
                    )
                )
        out.send(got)

    asyncio.run(main())


async def aiomqtt_messages(client: Any) -> Any:
    async for message in client.messages:
        yield message


class NoServices:
    async def services_on(
        self, *, link_id: int | None = None, device: str | None = None
    ) -> list[dict[str, Any]]:
        return []


@dataclass
class Daemon:
    """The daemon's trap path, wired as oss.runtime wires it, in this process."""

    service: AssurancePipeline
    traps: TrapCollector
    publisher: NocPublisher
    db: Database
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]


@contextlib.asynccontextmanager
async def running_daemon(base: Path, broker: MosquittoServer) -> Any:
    db = Database(f"sqlite+aiosqlite:///{base / 'oss.db'}")
    await db.migrate()
    mqtt = NocFeedSettings(
        enabled=True, host=broker.host, port=broker.port, prefix=PREFIX, client_id="storm-oss"
    )
    publisher = NocPublisher(db, mqtt)
    graph = InventoryGraph()
    alarms = AlarmManager(db, lambda: graph, NoServices(), NocFeed(mqtt, Outbox(publisher.offer)))
    from prometheus_client import CollectorRegistry

    settings = AssuranceSettings(traps_port=free_port(), trap_communities=[COMMUNITY])
    outputs = [
        KpiGauges(CollectorRegistry()),
        MinuteRollup(db),
        alarm_output(settings.thresholds, alarms),
    ]
    service = AssurancePipeline(settings, Inventory(db), outputs)
    traps = service.collector("traps")
    assert isinstance(traps, TrapCollector)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(service.run(stop)), asyncio.create_task(publisher.run())]
    try:
        while traps.receiver is None or not publisher.connected:  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.02)
        # As the daemon's runtime does once started: start-up's objects frozen, so the storm's
        # full collections do not walk the imported modules again (here ~100 us per trap).
        gc.collect()
        gc.freeze()
        yield Daemon(service, traps, publisher, db, stop, tasks)
    finally:
        gc.unfreeze()
        stop.set()
        await tasks[0]
        tasks[1].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[1]
        alarms.close()
        await db.close()


def latencies(
    traps: Sequence[Trap], sent_at: Sequence[int], got: Sequence[tuple[int, str, int, int, bool]]
) -> tuple[int, list[float], int]:
    """(traps reflected, their latencies in ms, time of the last message)."""
    # Per reduction key, the n-th distinct alarm id is the n-th episode of that pair.
    episodes: dict[str, dict[int, int]] = {}
    seen: dict[tuple[str, int], list[tuple[int, int, bool]]] = {}
    for at, key, alarm_id, count, cleared in sorted(got):
        ids = episodes.setdefault(key, {})
        episode = ids.setdefault(alarm_id, len(ids))
        seen.setdefault((key, episode), []).append((at, count, cleared))
    reflected, out = 0, []
    for trap, at_send in zip(traps, sent_at, strict=True):
        key = f"linkDown:{DEVICES[trap.device]}:ifIndex.{trap.ifindex}"
        for at, count, cleared in seen.get((key, trap.episode), ()):
            if cleared or (trap.down and count > trap.repeat):
                reflected += 1
                out.append((at - at_send) / 1e6)
                break
    return reflected, out, max((g[0] for g in got), default=0)


async def bench_daemon(
    base: Path, broker: MosquittoServer, shape: str, rate: int, count: int
) -> Step:
    ctx = multiprocessing.get_context("spawn")
    ready_here, ready_there = ctx.Pipe()
    got_here, got_there = ctx.Pipe(duplex=False)
    subscriber = ctx.Process(
        target=subscribe, args=(broker.host, broker.port, ready_there, got_there), daemon=True
    )
    subscriber.start()
    got_there.close()
    try:
        await asyncio.to_thread(ready_here.recv)
        async with running_daemon(base, broker) as daemon:
            assert daemon.traps.receiver is not None
            traps_port = daemon.traps.receiver.port
            gc.collect()  # not a collection left over from start-up in the measured slice
            cpu0 = time.process_time()
            with sender(traps_port, rate, count, shape) as sending:
                sent_at = await sent_times(sending)
            deadline = sent_at[-1] + int(MAX_WAIT_S * 1e9)
            while time.monotonic_ns() < deadline:
                # Every trap through the alarms, every offered row sent; only then the outbox
                # is asked (a query every 20 ms would cost the daemon CPU it is measured on).
                idle = daemon.traps.handled >= count and daemon.publisher.idle
                if idle and await daemon.publisher.pending() == 0:
                    break
                await asyncio.sleep(0.02)
            cpu = time.process_time() - cpu0
            counts = daemon.traps.counts()
            dropped, received = counts["traps_dropped"], counts["traps_received"]
            kernel_dropped = counts["traps_kernel_dropped"]
            await asyncio.sleep(0.5)  # the last messages on their way to the subscriber
        ready_here.send("stop")
        got = await asyncio.to_thread(got_here.recv)
    finally:
        subscriber.join(timeout=10)
        if subscriber.is_alive():
            subscriber.kill()
            subscriber.join()
    reflected, lat, last = latencies(plan(count, shape), sent_at, got)
    note = (
        f"received {received}, queue-dropped {dropped}, kernel-dropped {kernel_dropped},"
        f" {len(got)} MQTT events"
    )
    seconds_taken = (last - sent_at[0]) / 1e9 if last else float("inf")
    return Step("daemon", rate, count, reflected, seconds_taken, cpu, lat, note, shape)


# ------------------------------------------------------------------ the API under a storm

API_PATHS = ("/tmf-api/alarm/v4/alarm?limit=50", "/api/v1/devices")
API_GOAL_P99_MS = 200.0
API_SECONDS = 3.0  # of storm at least, for a sample of requests worth a p99
API_TAIL_S = 1.0  # the client's requests go on this long after the last trap sent


def query_api(url: str, token: str, ready: Connection, out: Connection) -> None:
    """The API client process: for each "go", GET each of API_PATHS in turn until "stop" (or
    MAX_WAIT_S x 2) and send back (path, ms, status) per request (status 0: no answer); "end"
    ends it."""
    import httpx  # imported here: the spawned process needs nothing else of the bench

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        client.get(API_PATHS[1])  # the connection, before the storm
        ready.send("ready")
        while ready.recv() == "go":
            got: list[tuple[str, float, int]] = []
            end = time.monotonic() + 2 * MAX_WAIT_S
            while time.monotonic() < end and not ready.poll():
                path = API_PATHS[len(got) % len(API_PATHS)]
                start = time.perf_counter()
                try:
                    status = client.get(path, timeout=10).status_code
                except httpx.HTTPError:
                    status = 0
                got.append((path, (time.perf_counter() - start) * 1e3, status))
            ready.recv()  # the "stop"
            out.send(got)


@dataclass
class ApiStep:
    shape: str
    rate: int
    sent: int
    cpu_s: float  # the daemon process's, over the storm and its drain
    answers: list[tuple[str, float, int]]
    metrics: dict[str, float]
    quiet: list[tuple[str, float, int]]  # the same requests before the storm, same run

    def percentile(self, path: str, q: float, *, quiet: bool = False) -> float:
        answers = self.quiet if quiet else self.answers
        ordered = sorted(ms for p, ms, _ in answers if p == path)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    @property
    def errors(self) -> int:
        return sum(1 for _, _, status in self.answers if status != 200)


def _scrape(url: str) -> dict[str, float]:
    """oss_collection's trap counts from /metrics."""
    import httpx

    out: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith('oss_collection{counter="'):
            name, value = line[len('oss_collection{counter="') :].split('"} ')
            out[name] = float(value)
    return out


def bench_api(
    base: Path, broker: MosquittoServer, shape: str, rate: int, seconds: float
) -> ApiStep:
    """`oss serve` as a process (the real daemon: the API, the trap path and the NOC feed on
    one event loop), a storm into its trap port, and a client process querying the API."""
    count = shape_count(shape, rate, max(seconds, API_SECONDS))
    traps_port = free_port()
    daemon = ServedDaemon(
        base,
        extra_args=["--topology", str(RING)],
        env={
            "OSS_ASSURANCE__TRAPS_PORT": str(traps_port),
            "OSS_ASSURANCE__TRAP_COMMUNITIES": json.dumps([COMMUNITY]),
            "OSS_MQTT__ENABLED": "true",
            "OSS_MQTT__HOST": broker.host,
            "OSS_MQTT__PORT": str(broker.port),
            "OSS_MQTT__PREFIX": PREFIX,
            "OSS_MQTT__CLIENT_ID": "storm-api-oss",
            "OSS_LOG__LEVEL": "WARNING",
        },
    )
    ctx = multiprocessing.get_context("spawn")
    ready_here, ready_there = ctx.Pipe()
    got_here, got_there = ctx.Pipe(duplex=False)
    daemon.start(wait=False)
    client = None
    try:
        daemon.wait_ready(timeout=120)  # start-up takes long on a busy host
        token = daemon.create_token("viewer")
        assert daemon.proc is not None
        pid = daemon.proc.pid
        client = ctx.Process(
            target=query_api,
            args=(daemon.url, token, ready_there, got_there),
            daemon=True,
        )
        client.start()
        got_there.close()
        ready_here.recv()
        ready_here.send("go")  # the floor: the same requests, no storm
        time.sleep(API_SECONDS)
        ready_here.send("stop")
        quiet = got_here.recv()
        cpu0 = _proc_cpu_s(pid)
        ready_here.send("go")
        with sender(traps_port, rate, count, shape) as sending:
            sending.results.recv()
        time.sleep(API_TAIL_S)  # the client goes on a moment after the last trap sent
        ready_here.send("stop")
        answers = got_here.recv()
        ready_here.send("end")
        # Then the daemon works through what is left: until its CPU time stands still.
        deadline, cpu = time.monotonic() + MAX_WAIT_S, _proc_cpu_s(pid)
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = _proc_cpu_s(pid)
            if now - cpu < 0.01:  # idle
                break
            cpu = now
        cpu = _proc_cpu_s(pid) - cpu0
        metrics = _scrape(daemon.url)
    finally:
        if client is not None:
            client.join(timeout=MAX_WAIT_S)
            if client.is_alive():
                client.kill()
                client.join()
        daemon.kill()
    return ApiStep(shape, rate, count, cpu, answers, metrics, quiet)


def _print_api(step: ApiStep) -> None:
    print(
        f"\nthe API under a {step.rate}/s {step.shape} storm ({step.sent} traps; `oss serve`,"
        f" one event loop): {len(step.answers)} requests from the first trap to"
        f" {API_TAIL_S:g} s after the last, {step.errors} not 200:"
    )
    for path in API_PATHS:
        p50, p99 = step.percentile(path, 0.5), step.percentile(path, 0.99)
        q50, q99 = (step.percentile(path, q, quiet=True) for q in (0.5, 0.99))
        verdict = "MET" if p99 <= API_GOAL_P99_MS else "NOT MET"
        print(
            f"  GET {path:<36} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
            f"  (goal p99 <= 200 ms: {verdict}); no storm, same run: p50 {q50:.1f} ms,"
            f" p99 {q99:.1f} ms ({len(step.quiet)} requests)"
        )
    m = step.metrics
    received, dropped = m.get("traps_received", 0), m.get("traps_dropped", 0)
    taken = received - dropped
    print(
        f"  daemon: received {received:.0f}, queue-dropped {dropped:.0f},"
        f" kernel-dropped {m.get('traps_kernel_dropped', 0):.0f}"
        f" (receive buffer {m.get('traps_receive_buffer_bytes', 0):.0f} bytes);"
        f" {step.cpu_s:.2f} CPU-s: {taken / step.cpu_s if step.cpu_s else 0:.0f} traps through"
        " the alarms per CPU-second (the whole daemon, the API's requests included)",
        flush=True,
    )


# ------------------------------------------------------------------------- stage costs


def trap_events(count: int) -> list[Event]:
    """The plan's traps as the receiver turns them into Events (without the UDP and BER)."""
    out = []
    for trap in plan(count):
        oid = LINK_DOWN if trap.down else LINK_UP
        tags = {
            "device": DEVICES[trap.device],
            "trap": "linkDown" if trap.down else "linkUp",
            "trap_oid": oid,
            "ifindex": str(trap.ifindex),
        }
        values: dict[str, Value] = {
            f"ifIndex.{trap.ifindex}": trap.ifindex,
            f"ifOperStatus.{trap.ifindex}": 2 if trap.down else 1,
        }
        out.append(Event("snmp.trap", time.time_ns(), tags, values))
    return out


async def stage_costs(base: Path, count: int, batch: int) -> None:
    """CPU per trap of the stages after the receiver, in this process, no network: the rules,
    then AlarmManager.signals with the NOC feed's outbox writes (SQLite), per slice of the run
    (the outbox grows as the traps go in)."""
    events = trap_events(count)
    rules = Rules()
    cpu = time.process_time()
    signals = [
        [s for e in events[i : i + batch] for s in rules.signals(e)] for i in range(0, count, batch)
    ]
    rules_us = (time.process_time() - cpu) / count * 1e6
    db = Database(f"sqlite+aiosqlite:///{base / 'stages.db'}")
    await db.migrate()
    graph = InventoryGraph()
    written: list[Any] = []  # the outbox rows, as handed to the publisher
    feed = NocFeed(NocFeedSettings(prefix=PREFIX), Outbox(written.extend))
    alarms = AlarmManager(db, lambda: graph, NoServices(), feed)
    slices = 4
    per_slice = len(signals) // slices
    print(f"\nstage costs, in-process, {count} traps, batches of {batch}:")
    print(f"  rules (Event -> Signal)            {rules_us:8.0f} us CPU per trap")
    gc.collect()
    gc.freeze()  # as the daemon's runtime does once started (see running_daemon)
    try:
        for n in range(slices):
            cpu, wall, rows = time.process_time(), time.perf_counter(), len(written)
            for group in signals[n * per_slice : (n + 1) * per_slice]:
                await alarms.signals(group)
            traps = per_slice * batch
            print(
                f"  alarms + outbox, traps {n * traps:>5}-{(n + 1) * traps:<5}"
                f" {(time.process_time() - cpu) / traps * 1e6:8.0f} us CPU per trap"
                f"  ({traps / (time.perf_counter() - wall):6.0f} traps/s,"
                f" {(len(written) - rows) / traps:.2f} messages per trap)",
                flush=True,
            )
        # The batches a storm of 2,000 traps/s makes (a few ms of linger): each trap its own
        # alarm change, so per trap the batch's fixed costs and two messages.
        small = SMALL_STAGE_BATCH
        groups = [
            [s for e in events[i : i + small] for s in rules.signals(e)]
            for i in range(0, count // 4, small)
        ]
        cpu, rows = time.process_time(), len(written)
        for group in groups:
            await alarms.signals(group)
        traps = len(groups) * small
        print(
            f"  alarms + outbox, batches of {small:<4}  "
            f" {(time.process_time() - cpu) / traps * 1e6:8.0f} us CPU per trap"
            f"  ({(len(written) - rows) / traps:.2f} messages per trap)",
            flush=True,
        )
    finally:
        gc.unfreeze()
        alarms.close()
        await db.close()


async def mqtt_cost(broker: MosquittoServer, count: int) -> None:
    """CPU per QoS 1 publish to the same broker, in rounds of 500 as the NOC publisher sends
    them (oss.outputs.mqtt_client over gmqtt, PUBACKs awaited together): the floor of the
    daemon's last stage. (bench/mqtt_client_bench.py compares the clients.)"""
    payload = "x" * 700  # about an alarm's TMF642 JSON
    settings = NocFeedSettings(host=broker.host, port=broker.port)
    async with mqtt_client.connect(settings, "storm-cost") as link:
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, count, 500):
            topics = [f"{PREFIX}/cost/{n}" for n in range(start, min(count, start + 500))]
            await link.publish_round([(t, payload, 1, False) for t in topics], wait_s=10)
        print(
            f"  MQTT QoS 1, {'gmqtt round':<16} {(time.process_time() - cpu) / count * 1e6:8.0f}"
            f" us CPU per message  ({count / (time.perf_counter() - wall):6.0f} msg/s)"
        )


# --------------------------------------------------------------------------------- run


def _print(step: Step) -> None:
    lat = ""
    if step.latencies_ms:
        lat = f"  p50 {step.percentile(0.5):7.1f} ms  p99 {step.percentile(0.99):7.1f} ms"
    print(
        f"  {step.contender:<10} {step.rate:>6}/s  sent {step.sent:>6}  lost {step.lost:>6}"
        f"  {step.throughput:8.0f} traps/s  {step.per_core:8.0f} traps/CPU-s"
        f"  {'ok ' if step.kept_up else 'BEHIND/LOST'}{lat}"
        + (f"  ({step.note})" if step.note else ""),
        flush=True,
    )


def run(
    seconds: float, rates: Sequence[int], budget_s: float, shapes: Sequence[str], api_rate: int
) -> None:
    base = Path(tempfile.mkdtemp(prefix="oss-trap-storm-"))
    try:
        with running_mosquitto() as broker:
            print(
                f"storm shapes {', '.join(shapes)}; {seconds:g} s per step (distinct: its 1,000"
                f" traps); {os.cpu_count()} CPUs; budget {budget_s:g} s per shape"
            )
            results = []
            for shape in shapes:  # each shape its own time budget
                began = time.monotonic()
                results.append(
                    (shape, *storm(base, broker, shape, seconds, rates, began, budget_s))
                )
            for shape, best, latency in results:
                summarise(shape, best, latency)
            if api_rate:
                api_dir = Path(tempfile.mkdtemp(dir=base))
                _print_api(bench_api(api_dir, broker, "cycle", api_rate, seconds))
            if budget_s > 0:
                asyncio.run(stage_costs(base, STAGE_TRAPS, TRAP_BATCH))
                asyncio.run(mqtt_cost(broker, STAGE_TRAPS))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def storm(
    base: Path,
    broker: MosquittoServer,
    shape: str,
    seconds: float,
    rates: Sequence[int],
    started: float,
    budget_s: float,
) -> tuple[dict[str, Step], Step | None]:
    """One shape, the rate stepped up (bounded) until a contender loses traps or falls behind;
    the latency rate always runs. The best step kept up with per contender, and the latency's."""
    print(f"\n{shape} storm: {SHAPE_LINES[shape]}")
    best: dict[str, Step] = {}
    latency: Step | None = None
    alive = dict.fromkeys(CONTENDERS, True)
    for rate in sorted(set(rates) | {LATENCY_RATE}):
        if not any(alive.values()) or time.monotonic() - started > budget_s:
            print(f"  (stopping at {rate}/s: time budget or every contender behind)")
            break
        count = shape_count(shape, rate, seconds)
        print(f"rate {rate}/s", flush=True)
        for name in CONTENDERS:
            if not alive[name] and rate != LATENCY_RATE:
                continue
            step_dir = Path(tempfile.mkdtemp(dir=base))
            if name == "snmptrapd":
                step = bench_snmptrapd(step_dir, shape, rate, count)
            elif name == "receiver":
                step = asyncio.run(bench_receiver(shape, rate, count))
            else:
                step = asyncio.run(bench_daemon(step_dir, broker, shape, rate, count))
                if rate == LATENCY_RATE:
                    latency = step
            _print(step)
            if step.kept_up and alive[name]:
                best[name] = step
            else:
                alive[name] = False
    return best, latency


SHAPE_LINES = {
    "flap": "one link going down, up, down, ...: every trap a state change",
    "distinct": "40 devices x 25 ifindexes going down once: 1,000 new alarms",
    "repeats": f"{len(REPEAT_PAIRS)} (device, ifindex) pairs sending linkDown over and over",
    "cycle": f"{CYCLE_DEVICES} devices x 25 ifindexes, linkDown x{DOWNS} then linkUp, in rounds",
}


def summarise(shape: str, best: dict[str, Step], latency: Step | None) -> None:
    print(f"\n{shape}: max sustained rate without loss (highest step kept up with):")
    for name in CONTENDERS:
        step = best.get(name)
        if step is None:
            print(f"  {name:<10} none of the steps")
            continue
        print(
            f"  {name:<10} {step.rate:>6}/s  ({step.throughput:.0f} traps/s measured,"
            f" {step.per_core:.0f} traps per CPU-second)"
        )
    daemon, trapd = best.get("daemon"), best.get("snmptrapd")
    if daemon and trapd:
        print(
            f"  ratio daemon/snmptrapd: sustained {daemon.rate / trapd.rate:.2f}x,"
            f" per CPU-second {daemon.per_core / trapd.per_core:.2f}x"
        )
    per_core_ok = daemon is not None and daemon.per_core >= 10_000 and daemon.rate >= 10_000
    p99 = latency.percentile(0.99) if latency else float("nan")
    lat_ok = latency is not None and latency.lost == 0 and p99 < 20.0
    print("  goal: >= 10k traps/s per core, p99 < 20 ms at 2k/s, none lost")
    print(f"  throughput per core: {'MET' if per_core_ok else 'NOT MET'}")
    if latency is not None:
        print(
            f"  latency at {latency.rate}/s: p50 {latency.percentile(0.5):.1f} ms,"
            f" p99 {p99:.1f} ms, lost {latency.lost}: {'MET' if lat_ok else 'NOT MET'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="per step (max 10)")
    parser.add_argument("--rates", type=int, nargs="+", default=[2000, 10_000])
    parser.add_argument("--shape", choices=(*SHAPES, "all"), default="all")
    parser.add_argument(
        "--api-rate", type=int, default=API_RATE, help="storm rate of the API step (0: none)"
    )
    parser.add_argument(
        "--budget", type=float, default=120.0, help="per shape: stop stepping after (s)"
    )
    args = parser.parse_args()
    shapes = DEFAULT_SHAPES if args.shape == "all" else (args.shape,)
    rates = [min(r, 100_000) for r in args.rates]
    run(min(args.seconds, 10.0), rates, args.budget, shapes, min(args.api_rate, 100_000))


if __name__ == "__main__":
    main()

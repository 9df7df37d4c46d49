"""SNMP polling at scale: the collector's CPU share and memory, and the InfluxDB output's write
rate vs a bare HTTP client writing the same line protocol, in the same run.

The network: N simulated devices with I interfaces each (default 48), served by one lab
process of its own (as `oss lab up` runs it), so the lab's CPU is not the collector's. The
default is the issue's load, N = 1000 devices every 60 s: the simulated agent writes its BER
itself (about 8 ms of the lab's CPU for a 48-interface poll), so the lab takes about a fifth
of a CPU and the collector has the rest of this 2-CPU machine.
Every device gets its interfaces from I/2 links to its neighbours k = 1..I/2 places further
along a ring (devices on 127.13.0.0/22, one address each). A real VictoriaMetrics (Debian
`victoria-metrics`, which takes the InfluxDB v2 write API) on a free loopback port receives.

This process runs the daemon's collection path: SnmpPoller (gufo-snmp backend, --interval
seconds per device with the default 10 % jitter, the first poll of each device at a random
point of its first interval) -> KpiCalculator -> InfluxOutput (influxdb-client, batches of
5000). Measured:

- polling: over the window after the first interval (the first samples only set the rate
  baselines), this process's CPU time (all threads: the event loop, the output's writer)
  over wall time, as a share of one CPU; the lab's the same way; polls done vs due, failures;
  samples (fields) per second written into VictoriaMetrics; the output's queue at the end.
- memory: this process's RSS every --sample-s seconds over the whole polling run; the slope
  after the first interval (least squares, MB/min) and the growth it means over 30 minutes.
- output vs bare client: after polling stops, the events of real polls (poll_once on a sample
  of devices, repeated with shifted timestamps up to --records lines) go through a fresh
  InfluxOutput (`offer`, i.e. encoding included) and, as line protocol made from the same
  events beforehand, through httpx POSTs to /api/v2/write in batches of the same size, one
  after the other; alternating, --rounds rounds each; best of each. VictoriaMetrics' own
  count of ingested rows checks that both wrote every sample.

Bounded: polling lasts --minutes (default 3; the issue's memory run is --minutes 30); the
lab must be up within 180 s; the comparison writes at most --records lines per round. The
defaults take about 4.5 minutes.

    .venv/bin/python -m bench.polling_bench [--devices 1000] [--interfaces 48] [--interval 60]
        [--minutes 3] [--sample-s 5] [--records 200000] [--rounds 2]

Only loopback addresses are used (127.13.0.0/22 and VictoriaMetrics on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from drivers.base import Target
from drivers.credentials import resolve_credentials
from drivers.snmp import SnmpDriver
from lab.sim.lab import Ports, read_state
from oss.assurance.poller import SnmpPoller
from oss.events import Event
from oss.outputs.influx import InfluxOutput, to_line
from oss.settings import InfluxSettings, PollerSettings
from tests.peers.victoria import VictoriaMetrics, running_victoria

LAB_READY_S = 180.0
SNMP_TIMEOUT_S = 10.0
BATCH = 5000  # InfluxSettings' default batch size; the bare client uses the same
SAMPLE_POLLS = 300  # real polls whose events feed the output-vs-bare comparison
DRAIN_LIMIT_S = 120.0
GOAL_DEVICES, GOAL_INTERVAL_S = 1000, 60.0  # the load
ROWS_WAIT_S = 30.0
OFFER_CHUNK = 150  # about one poll's events (48 interface + 48 KPI + a few)


# --------------------------------------------------------------------------- the lab


def address_of(index: int) -> str:
    """Device d<index> (1-based): 127.13.0.1 .. 127.13.3.250, 250 a /24."""
    return f"127.13.{(index - 1) // 250}.{(index - 1) % 250 + 1}"


def ring_clab(devices: int, interfaces: int) -> str:
    """Each device's eth(2k-1) links to eth(2k) of the device k places on, k = 1..I/2: every
    device ends up with eth1..ethI and no link joins a device to itself."""
    nodes = "\n".join(f"    d{i}: {{mgmt-ipv4: {address_of(i)}}}" for i in range(1, devices + 1))
    links = "\n".join(
        f'    - endpoints: ["d{i}:eth{2 * k - 1}", "d{(i - 1 + k) % devices + 1}:eth{2 * k}"]'
        for i in range(1, devices + 1)
        for k in range(1, interfaces // 2 + 1)
    )
    return (
        f"name: poll{devices}\ntopology:\n  defaults: {{kind: linux}}\n"
        f"  nodes:\n{nodes}\n  links:\n{links}\n"
    )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


@dataclass(frozen=True)
class RunningLab:
    pid: int
    ports: Ports
    credentials: Path
    ready_s: float


@asynccontextmanager
async def lab_process(clab: Path, state: Path) -> AsyncIterator[RunningLab]:
    log = state.parent / "lab.log"
    began = time.monotonic()
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "lab.sim.lab", str(clab), "--state-dir", str(state), "--no-gnmi",
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = began + LAB_READY_S
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"the lab exited with {proc.returncode}; see {log}")
            ready = await asyncio.to_thread(read_state, state)
            if ready is not None and ready.get("pid") == proc.pid:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the lab was not ready within {LAB_READY_S:g} s")
            await asyncio.sleep(0.2)
        yield RunningLab(
            proc.pid, Ports.for_this_user(), Path(ready["credentials"]), time.monotonic() - began
        )
    finally:
        if proc.returncode is None:
            proc.terminate()  # the lab process this run started
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def targets_of(lab: RunningLab, devices: int) -> list[Target]:
    creds = resolve_credentials(f"file:{lab.credentials}", device="lab")
    return [
        Target(
            f"d{i}", address_of(i), lab.ports.snmp, creds, SNMP_TIMEOUT_S, {"platform": "lab-sim"}
        )
        for i in range(1, devices + 1)
    ]


# --------------------------------------------------------------------------- polling


@dataclass
class Mark:
    at: float  # monotonic
    own_cpu_s: float
    lab_cpu_s: float
    rss_mb: float
    polls: int
    failures: int
    written: int


@dataclass
class PollRun:
    devices: int
    interfaces: int
    interval_s: float
    marks: list[Mark] = field(default_factory=list)
    warm_index: int = 0  # the first mark after the first interval
    fields_per_line: float = 0.0
    events: int = 0
    lines_written: int = 0
    end_stats: dict[str, int] = field(default_factory=dict)
    kpi_skipped: dict[str, int] = field(default_factory=dict)
    reachable: int = 0

    @property
    def window(self) -> tuple[Mark, Mark]:
        return self.marks[self.warm_index], self.marks[-1]

    def cpu_share(self) -> tuple[float, float]:
        a, b = self.window
        wall = b.at - a.at
        return (b.own_cpu_s - a.own_cpu_s) / wall, (b.lab_cpu_s - a.lab_cpu_s) / wall

    def polls_due(self) -> float:
        a, b = self.window
        return self.devices * (b.at - a.at) / self.interval_s

    def rss_slope(self) -> float:
        """MB per minute after the first interval (least squares)."""
        points = self.marks[self.warm_index :]
        if len(points) < 3:
            return float("nan")
        xs = [(m.at - points[0].at) / 60 for m in points]
        ys = [m.rss_mb for m in points]
        return statistics.linear_regression(xs, ys).slope


class CountingSink:
    """The poller's sink: the events go to the output; counts what went (cheap)."""

    def __init__(self, output: InfluxOutput) -> None:
        self.output = output
        self.events = 0

    async def __call__(self, events: list[Event]) -> None:
        self.events += len(events)
        await self.output.offer(events)


def influx_settings(vm: VictoriaMetrics, queue_max: int = 100_000) -> InfluxSettings:
    return InfluxSettings(enabled=True, url=vm.url, batch_size=BATCH, queue_max=queue_max)


async def poll(
    lab: RunningLab, vm: VictoriaMetrics, args: argparse.Namespace
) -> tuple[PollRun, list[Event]]:
    """Poll for args.minutes; then the events of SAMPLE_POLLS real polls (for the comparison)."""
    run = PollRun(args.devices, args.interfaces, args.interval)
    me = os.getpid()
    settings = PollerSettings(interval_s=args.interval)
    async with SnmpDriver() as driver, InfluxOutput(influx_settings(vm)) as output:
        sink = CountingSink(output)
        poller = SnmpPoller(driver, sink, settings=settings, rng=random.Random(1))
        poller.set_targets(targets_of(lab, args.devices))

        def mark() -> Mark:
            return Mark(
                time.monotonic(), cpu_s(me), cpu_s(lab.pid), rss_mb(me),
                poller.polls, poller.failures, output.counters.written,
            )  # fmt: skip

        began = time.monotonic()
        run.marks.append(mark())
        await poller.start()
        try:
            end = began + args.minutes * 60
            while (now := time.monotonic()) < end:
                await asyncio.sleep(min(args.sample_s, end - now))
                run.marks.append(mark())
                if not run.warm_index and run.marks[-1].at - began >= args.interval:
                    run.warm_index = len(run.marks) - 1
                print_progress(run)
        finally:
            await poller.stop()
        run.warm_index = run.warm_index or len(run.marks) // 2
        run.events = sink.events
        run.end_stats = output.stats()
        run.kpi_skipped = dict(poller.kpi.skipped)
        run.reachable = sum(1 for r in poller.reachability.values() if r)
        # untimed: real polls (rates included, the baselines are set) for the comparison
        names = [f"d{i}" for i in range(1, args.devices + 1)]
        sample = random.Random(2).sample(names, min(SAMPLE_POLLS, len(names)))
        polled = await asyncio.gather(*(poller.poll_once(n) for n in sample))
        events = [e for batch in polled for e in batch]
    lines = [line for e in events if (line := to_line(e)) is not None]
    run.fields_per_line = fields_in(lines) / max(1, len(lines))
    return run, events


def print_progress(run: PollRun) -> None:
    m = run.marks[-1]
    first = run.marks[0]
    print(
        f"  {m.at - first.at:6.0f} s  polls {m.polls:>6}  failures {m.failures:>4}  "
        f"written {m.written:>8}  RSS {m.rss_mb:6.1f} MB  "
        f"cpu {m.own_cpu_s - first.own_cpu_s:6.1f} s  "
        f"lab cpu {m.lab_cpu_s - first.lab_cpu_s:6.1f} s",
        flush=True,
    )


def fields_in(lines: Sequence[str]) -> int:
    """Fields (VictoriaMetrics' samples) in lines made by to_line: the field set is the second
    space-separated part; the lab's strings ("up", "down", interface names) hold no space or
    comma."""
    return sum(line.split(" ")[1].count(",") + 1 for line in lines)


# --------------------------------------------------------------------------- output vs bare


def replicate(events: list[Event], records: int) -> list[Event]:
    """`events` repeated (timestamps shifted by 1 ms a copy, so no point repeats) up to about
    `records` events."""
    if not events:
        return []
    copies = max(1, records // len(events))
    return [
        dataclasses.replace(e, timestamp_ns=e.timestamp_ns + k * 1_000_000)
        for k in range(copies)
        for e in events
    ]


def _vm_rows_now(vm: VictoriaMetrics) -> int:
    with urllib.request.urlopen(f"{vm.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("vm_rows_inserted_total") and 'type="influx"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def settled_rows(vm: VictoriaMetrics) -> int:
    """The ingested-row count once it stopped moving for a second (earlier writes counted)."""
    vm.flush()
    last = _vm_rows_now(vm)
    for _ in range(int(ROWS_WAIT_S)):
        time.sleep(1.0)
        now = _vm_rows_now(vm)
        if now == last:
            break
        last = now
    return last


def rows_after(vm: VictoriaMetrics, before: int, expected: int) -> int:
    """The rows VictoriaMetrics ingested since its count was `before`: it counts them after
    its HTTP answer (ingestion goes on behind it), so wait for `expected`, a while at most."""
    vm.flush()
    deadline = time.monotonic() + ROWS_WAIT_S
    while (seen := _vm_rows_now(vm) - before) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


@dataclass
class WriteRound:
    seconds: float
    lines: int
    samples: int
    rows_seen: int  # VictoriaMetrics' own count, for the check

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds


async def through_output(vm: VictoriaMetrics, events: list[Event], samples: int) -> WriteRound:
    rows = await asyncio.to_thread(_vm_rows_now, vm)
    settings = influx_settings(vm, queue_max=len(events) + 1)
    async with InfluxOutput(settings) as output:
        began = time.perf_counter()
        # as a producer offers them: a poll's worth at a time, so the writer thread writes
        # one batch while the loop encodes the next
        for i in range(0, len(events), OFFER_CHUNK):
            await output.offer(events[i : i + OFFER_CHUNK])
            await asyncio.sleep(0)
        limit = began + DRAIN_LIMIT_S
        while output.counters.written + output.counters.dropped < len(events):
            if time.perf_counter() > limit:
                raise TimeoutError(f"the output wrote {output.counters.written} of {len(events)}")
            await asyncio.sleep(0.005)
        took = time.perf_counter() - began
        if output.counters.dropped:
            raise RuntimeError(f"the output dropped {output.counters.dropped} records")
    seen = await asyncio.to_thread(rows_after, vm, rows, samples)
    return WriteRound(took, len(events), samples, seen)


def through_bare_client(vm: VictoriaMetrics, lines: list[str], samples: int) -> WriteRound:
    rows = _vm_rows_now(vm)
    bodies = ["\n".join(lines[i : i + BATCH]) for i in range(0, len(lines), BATCH)]
    params = {"org": "oss", "bucket": "oss", "precision": "ns"}
    with httpx.Client(base_url=vm.url, timeout=30) as client:
        began = time.perf_counter()
        for body in bodies:
            client.post("/api/v2/write", params=params, content=body).raise_for_status()
        took = time.perf_counter() - began
    return WriteRound(took, len(lines), samples, rows_after(vm, rows, samples))


async def compare(
    vm: VictoriaMetrics, events: list[Event], rounds: int
) -> tuple[list[WriteRound], list[WriteRound], float]:
    """Rounds of the output and of the bare client; and to_line's time per line (seconds)."""
    began = time.process_time()
    lines = [line for e in events if (line := to_line(e)) is not None]
    encode_s = (time.process_time() - began) / max(1, len(lines))
    if len(lines) != len(events):
        raise RuntimeError(f"{len(events) - len(lines)} events have nothing to write")
    samples = fields_in(lines)
    await asyncio.to_thread(settled_rows, vm)  # the polling's rows are all counted
    # untimed: VictoriaMetrics registers new series slowly (seconds for the first batches)
    await asyncio.to_thread(through_bare_client, vm, lines, samples)
    output_rounds, bare_rounds = [], []
    for _ in range(rounds):
        bare_rounds.append(await asyncio.to_thread(through_bare_client, vm, lines, samples))
        output_rounds.append(await through_output(vm, events, samples))
    return output_rounds, bare_rounds, encode_s


# --------------------------------------------------------------------------- report


def report(
    run: PollRun,
    lab: RunningLab,
    output: list[WriteRound],
    bare: list[WriteRound],
    encode_s: float,
) -> list[str]:
    cpus = os.cpu_count() or 1
    a, b = run.window
    wall = b.at - a.at
    own, lab_share = run.cpu_share()
    polls = b.polls - a.polls
    due = run.polls_due()
    failures = b.failures - a.failures
    written_rate = (b.written - a.written) / wall
    sample_rate = written_rate * run.fields_per_line
    per_poll = own * wall / max(1, polls)
    at_goal = per_poll * GOAL_DEVICES / GOAL_INTERVAL_S  # share of one CPU
    slope = run.rss_slope()
    warm_rss = a.rss_mb
    growth_30 = slope * 30
    peak = max(m.rss_mb for m in run.marks)
    print(
        f"\n== polling: {run.devices} devices x {run.interfaces} interfaces every "
        f"{run.interval_s:g} s (+-10 % jitter); window {wall:.0f} s after the first interval =="
    )
    print(f"{'':<34} {'value':>14}")
    rows = [
        ("lab up (spawn to serving)", f"{lab.ready_s:.1f} s"),
        ("polls done / due in the window", f"{polls} / {due:.0f}"),
        ("failed polls in the window", f"{failures}"),
        ("devices reachable at the end", f"{run.reachable} / {run.devices}"),
        ("collector CPU (share of one CPU)", f"{own:.1%}"),
        (f"  of the machine ({cpus} CPUs)", f"{own / cpus:.1%}"),
        ("collector CPU per poll", f"{per_poll * 1000:.2f} ms"),
        (f"  at {GOAL_DEVICES} devices / {GOAL_INTERVAL_S:g} s",
         f"{at_goal:.1%}"),
        ("lab CPU (share of one CPU)", f"{lab_share:.1%}"),
        ("lines written / s", f"{written_rate:,.0f}"),
        ("samples (fields) written / s", f"{sample_rate:,.0f}"),
        ("output at the end: queue, dropped", f"{run.end_stats.get('queue_depth')}, "
                                              f"{run.end_stats.get('dropped')}"),
        ("KPI samples skipped", f"{run.kpi_skipped or 0}"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"{name:<34} {value:>14}")

    print(f"\n== memory of this process (RSS every {run.marks[1].at - run.marks[0].at:.0f} s) ==")
    print(
        f"start {run.marks[0].rss_mb:.1f} MB, after the first interval {warm_rss:.1f} MB, "
        f"end {run.marks[-1].rss_mb:.1f} MB, peak {peak:.1f} MB; slope after the first interval "
        f"{slope:+.2f} MB/min ({growth_30:+.1f} MB over 30 min)"
    )

    best_out = max(output, key=lambda r: r.samples_per_s)
    best_bare = max(bare, key=lambda r: r.samples_per_s)
    ratio = best_out.samples_per_s / best_bare.samples_per_s
    print(
        f"\n== write rate: InfluxOutput vs bare httpx, the same {best_out.lines:,} lines "
        f"({best_out.samples:,} samples), batches of {BATCH} =="
    )
    print(f"{'':<16} {'rounds samples/s':>34} {'best':>12} {'VM rows':>12}")
    for name, rounds, best in (("InfluxOutput", output, best_out), ("bare httpx", bare, best_bare)):
        each = ", ".join(f"{r.samples_per_s:,.0f}" for r in rounds)
        print(f"{name:<16} {each:>34} {best.samples_per_s:>12,.0f} {best.rows_seen:>12,}")
    print(
        f"ratio output / bare: {ratio:.2f}x (the output's time includes encoding the events: "
        f"to_line takes {encode_s * 1e6:.0f} us a line, {encode_s * BATCH:.2f} s a batch)"
    )

    verdicts = []
    keeps_up = (
        failures == 0
        and polls >= 0.9 * due
        and run.end_stats.get("dropped", 0) == 0
        and run.end_stats.get("queue_depth", 0) < BATCH * 2
    )
    verdicts.append(
        f"  polling keeps up (every poll due done, none failed, nothing dropped or backlogged):"
        f" {'yes' if keeps_up else 'NO'}; collector CPU {own:.1%} of one CPU"
    )
    flat = abs(growth_30) <= max(10.0, 0.05 * warm_rss)
    verdicts.append(
        f"  memory flat (30-min growth by the slope within max(10 MB, 5 % of RSS)):"
        f" {'yes' if flat else 'NO'} ({slope:+.2f} MB/min over {(b.at - a.at) / 60:.1f} min)"
    )
    complete = all(r.rows_seen == r.samples for r in output + bare)
    verdicts.append(
        f"  every sample written (VictoriaMetrics' row count): {'yes' if complete else 'NO'}"
    )
    verdicts.append(f"  output write rate {ratio:.2f}x a bare HTTP client's")
    print("\nverdicts\n" + "\n".join(verdicts))
    return verdicts


# --------------------------------------------------------------------------- main


async def run_all(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="polling-bench-") as tmp:
        clab = Path(tmp) / "ring.clab.yml"
        clab.write_text(ring_clab(args.devices, args.interfaces))
        async with lab_process(clab, Path(tmp) / "state") as lab:
            print(f"lab of {args.devices} devices up in {lab.ready_s:.1f} s", flush=True)
            with running_victoria() as vm:
                run, events = await poll(lab, vm, args)
                sample = replicate(events, args.records)
                print(f"comparison: {len(sample):,} events from {len(events):,}", flush=True)
                output, bare, encode_s = await compare(vm, sample, args.rounds)
        report(run, lab, output, bare, encode_s)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.polling_bench")
    parser.add_argument("--devices", type=int, default=1000, help="at most 1000")
    parser.add_argument("--interfaces", type=int, default=48, help="per device, even")
    parser.add_argument("--interval", type=float, default=60.0, help="polling interval, seconds")
    parser.add_argument("--minutes", type=float, default=3.0, help="polling run (memory window)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="RSS/CPU sampling period")
    parser.add_argument("--records", type=int, default=200_000, help="lines per write round")
    parser.add_argument("--rounds", type=int, default=2, help="write rounds per contender")
    args = parser.parse_args(argv)
    if args.interfaces % 2 or args.interfaces < 2:
        parser.error("--interfaces must be even (two per link)")
    if args.devices <= args.interfaces // 2 or args.devices > 1000:
        parser.error("--devices must be above interfaces/2 and at most 1000 (127.13.0.0/22)")
    if args.minutes * 60 < 2 * args.interval:
        parser.error("--minutes must cover at least two intervals (the first one warms up)")
    began = time.perf_counter()
    print(
        f"polling bench: {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {args.devices} devices x {args.interfaces} "
        f"interfaces, every {args.interval:g} s, {args.minutes:g} min",
        flush=True,
    )
    code = asyncio.run(run_all(args))
    print(f"total {time.perf_counter() - began:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())

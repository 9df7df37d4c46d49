"""The InfluxDB output: canonical events as line protocol, batched, through influxdb-client's
v2 write API, with no loss while the database is away (inside a byte bound).

Data moves as one FIFO in two tiers: the on-disk spool holds the oldest records, the memory
queue the newest. `offer` only appends to memory; when memory is full its oldest records
move to the spool. The writer takes a batch from the spool while the spool holds anything,
else from memory, so the database receives records in the order they were offered, with the
timestamps they were offered with. A batch leaves the spool only after the database took it.
A batch the database rejects as malformed (4xx) would never succeed: it is dropped and
counted. Every loss is counted in `dropped`; none is silent.

influxdb-client's synchronous write API runs in a worker thread and the spool in another
(one thread each, so their order is the order of submission); the event loop never waits on
the network or the disk. All bookkeeping happens on the event loop.

Registered as the "influx" output (settings section `influx`, built when `enabled`); it is
also a component (`run(stop)`): the runtime runs its writer in the workers stage.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from oss.backoff import Backoff
from oss.components import Stage
from oss.events import Event, Value
from oss.metrics import Metrics
from oss.outputs.registry import OutputContext, register_output
from oss.outputs.spool import Spool, SpoolBatch
from oss.settings import InfluxSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
MiB = 1024 * 1024
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


# -- line protocol ---------------------------------------------------------------------------

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\\": "\\\\"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\\": "\\\\"})
_STRING = str.maketrans({'"': r"\"", "\\": "\\\\", "\n": r"\n"})


def _field(value: Value) -> str | None:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        if -INT64_MAX - 1 <= value <= INT64_MAX:
            return f"{value}i"
        if INT64_MAX < value <= UINT64_MAX:  # 64-bit counters
            return f"{value}u"
        return repr(float(value))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None  # line protocol has no NaN/inf
    return '"' + value.translate(_STRING) + '"'


def to_line(event: Event) -> str | None:
    """One line of line protocol (nanosecond timestamp), or None if it has no usable field."""
    fields = []
    for key, value in event.values.items():
        encoded = _field(value)
        if encoded is not None and key:
            fields.append(f"{key.translate(_KEY)}={encoded}")
    if not fields or not event.name:
        return None
    tags = "".join(
        f",{k.translate(_KEY)}={v.translate(_KEY)}"
        for k, v in sorted(event.tags.items())
        if k and v  # line protocol has no empty tag values
    )
    return f"{event.name.translate(_MEASUREMENT)}{tags} {','.join(fields)} {event.timestamp_ns}"


# -- the database side ----------------------------------------------------------------------


class WriteFailed(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class BatchWriter(Protocol):
    """Writes one batch of lines or raises WriteFailed; blocking (runs in a worker thread)."""

    def write(self, lines: list[str]) -> None: ...

    def close(self) -> None: ...


class InfluxClientWriter:
    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token.get_secret_value(),  # empty: no Authorization header
            org=settings.org,
            timeout=int(settings.timeout_s * 1000),
            verify_ssl=settings.verify_tls,
            retries=False,  # the output retries, with backoff, and keeps count
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str]) -> None:
        try:
            self._api.write(
                bucket=self._settings.bucket,
                org=self._settings.org,
                record=lines,  # the library's default precision is ns, as the lines are
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            body = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
            retryable = status >= 500 or status in (408, 429) or status == 0
            # the reason and body are the server's words; the request (and token) is not in them
            raise WriteFailed(
                f"HTTP {status} {exc.reason}: {str(body or '')[:200]}", retryable=retryable
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise WriteFailed(f"{type(exc).__name__}: {exc}", retryable=True) from None

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


# -- the output -----------------------------------------------------------------------------


@dataclass
class InfluxCounters:
    written: int = 0  # records the database accepted
    retried: int = 0  # failed write attempts that will be retried
    spooled: int = 0  # records moved to the on-disk spool
    dropped: int = 0  # records lost: spool bound, rejected batches, memory-only overflow
    invalid: int = 0  # events with nothing writable (no finite value, no name)


@dataclass
class _Inflight:
    lines: list[str]
    from_spool: bool
    base: int  # number of lines[0] in the spool (spool's next number when taken from memory)
    spooled: bool  # a memory batch copied to the spool while its write was under way


class InfluxOutput:
    """`async with InfluxOutput(settings) as out: await out.offer(events)`; or
    `await out.run(stop)`."""

    name = "influx"
    stage = Stage.WORKERS

    def __init__(
        self,
        settings: InfluxSettings,
        *,
        writer_factory: Callable[[InfluxSettings], BatchWriter] = InfluxClientWriter,
    ) -> None:
        self.settings = settings
        self.counters = InfluxCounters()
        self._writer_factory = writer_factory
        self._writer: BatchWriter | None = None
        self._queue: deque[str] = deque()
        self._to_spool: deque[str] = deque()  # handed over to the spool thread, in order
        self._spool_append_running = False
        self._spill_generation = 0
        self._inflight: _Inflight | None = None
        self._spool: Spool | None = None
        self._spool_records = 0  # as of the last spool operation, for stats
        self._spool_bytes = 0
        self._spool_dropped_seen = 0
        self._spool_jobs: set[asyncio.Future[Any]] = set()
        self._net_thread: ThreadPoolExecutor | None = None
        self._disk_thread: ThreadPoolExecutor | None = None
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    # -- public ------------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def stats(self) -> dict[str, int]:
        return {
            "written": self.counters.written,
            "retried": self.counters.retried,
            "spooled": self.counters.spooled,
            "dropped": self.counters.dropped,
            "invalid": self.counters.invalid,
            "queue_depth": self.queue_depth,
            "spool_records": self._spool_records + len(self._to_spool),
            "spool_bytes": self._spool_bytes,
        }

    async def offer(self, events: Iterable[Event]) -> None:
        """Queue events for writing; never waits, never loses silently."""
        for event in events:
            line = to_line(event)
            if line is None:
                self.counters.invalid += 1
            else:
                self._queue.append(line)
        if len(self._queue) > self.settings.queue_max:
            self._overflow()
        if len(self._queue) >= self.settings.batch_size:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        async with self:
            await stop.wait()

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        self._net_thread = ThreadPoolExecutor(1, thread_name_prefix="influx-write")
        self._disk_thread = ThreadPoolExecutor(1, thread_name_prefix="influx-spool")
        if self.settings.spool_dir is not None:
            spool_dir, max_bytes = self.settings.spool_dir, self.settings.spool_max_bytes
            self._spool = await loop.run_in_executor(
                self._disk_thread, lambda: Spool(spool_dir, max_bytes)
            )
            self._note_spool()
        self._writer = await loop.run_in_executor(
            self._net_thread, self._writer_factory, self.settings
        )
        self._task = asyncio.create_task(self._write_loop(), name="influx-output")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Write what is queued if the database takes it quickly, else spool it; then stop."""
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(self.settings.shutdown_flush_s):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._spill_rest()
        if self._spool is not None:
            spool = self._spool
            await self._on_disk(spool.close)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await self._on_net(writer.close)
        for pool in (self._net_thread, self._disk_thread):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        log.info("influx output stopped: %s", self.stats())

    # -- memory and spool --------------------------------------------------------------------

    def _overflow(self) -> None:
        """Memory is full: move its oldest records to the spool (down to half, in one chunk)."""
        if self._spool is None or len(self._to_spool) >= self.settings.queue_max:
            # no spool, or the disk has not taken the last hand-over yet: memory stays bounded
            for _ in range(len(self._queue) - self.settings.queue_max):
                self._queue.popleft()
                self.counters.dropped += 1
            return
        excess = len(self._queue) - self.settings.queue_max // 2
        self._spill([self._queue.popleft() for _ in range(excess)])

    def _spill(self, lines: list[str]) -> None:
        """Append to the spool's end, behind a memory batch whose write is still under way."""
        inflight = self._inflight
        if inflight is not None and not inflight.from_spool and not inflight.spooled:
            # the batch on the wire is older than these: it goes first, and stays in the
            # spool until its write succeeds (at-least-once)
            inflight.spooled = True
            self._to_spool.extend(inflight.lines)
            self.counters.spooled += len(inflight.lines)
        self._to_spool.extend(lines)
        self.counters.spooled += len(lines)
        self._spill_generation += 1
        if not self._spool_append_running:
            self._start_spool_append()

    def _start_spool_append(self) -> None:
        assert self._spool is not None
        chunk = list(self._to_spool)
        self._to_spool.clear()
        self._spool_append_running = True
        job = self._submit_disk(self._spool.append, chunk)
        job.add_done_callback(self._spool_append_done)

    def _spool_append_done(self, job: asyncio.Future[Any]) -> None:
        self._spool_append_running = False
        if not job.cancelled() and job.exception() is not None:
            log.error("influx spool append failed: %s", job.exception())
        self._note_spool()
        if self._to_spool and self._disk_thread is not None:
            self._start_spool_append()

    def _note_spool(self) -> None:
        """Copy the spool's numbers to the loop side (read after its thread finished a job)."""
        spool = self._spool
        if spool is None:
            return
        self._spool_records, self._spool_bytes = spool.records, spool.size
        if spool.dropped > self._spool_dropped_seen:
            lost = spool.dropped - self._spool_dropped_seen
            self._spool_dropped_seen = spool.dropped
            self.counters.dropped += lost
            log.warning("influx spool full: dropped the %d oldest records", lost)

    async def _spool_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run on the spool thread after every append handed over before it."""
        assert self._spool is not None
        if self._to_spool:
            chunk = list(self._to_spool)
            self._to_spool.clear()
            self._submit_disk(self._spool.append, chunk)
        result: T = await self._submit_disk(fn, *args)
        self._note_spool()
        return result

    def _submit_disk(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._disk_thread, fn, *args)
        self._spool_jobs.add(job)
        job.add_done_callback(self._spool_jobs.discard)
        return job

    async def _on_disk(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._submit_disk(fn, *args)

    async def _on_net(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._net_thread, fn, *args)

    def _spill_rest(self) -> None:
        """On stop: what is in memory (and a batch cut off mid-write) goes to the spool."""
        inflight, self._inflight = self._inflight, None
        rest = list(self._queue)
        self._queue.clear()
        if inflight is not None and not inflight.from_spool and not inflight.spooled:
            rest = inflight.lines + rest
        if not rest:
            return
        if self._spool is None:
            self.counters.dropped += len(rest)
            log.warning("influx output stopped with %d unwritten records (no spool)", len(rest))
            return
        self._to_spool.extend(rest)
        self.counters.spooled += len(rest)
        chunk = list(self._to_spool)
        self._to_spool.clear()
        self._submit_disk(self._spool.append, chunk).add_done_callback(
            lambda _job: self._note_spool()
        )

    # -- the writer --------------------------------------------------------------------------

    async def _next_batch(self) -> _Inflight | None:
        """The oldest records: from the spool while it holds any, else from memory."""
        while True:
            generation = self._spill_generation
            base = 0
            if self._spool is not None:
                batch: SpoolBatch = await self._spool_call(
                    self._spool.peek, self.settings.batch_size
                )
                if batch.lines:
                    return _Inflight(batch.lines, from_spool=True, base=batch.first, spooled=True)
                base = batch.first
                if generation != self._spill_generation or self._to_spool:
                    continue  # something was spilled meanwhile: it is older than memory
            if self._queue:
                n = min(len(self._queue), self.settings.batch_size)
                lines = [self._queue.popleft() for _ in range(n)]
                return _Inflight(lines, from_spool=False, base=base, spooled=False)
            return None

    async def _wait_for_work(self) -> None:
        if len(self._queue) >= self.settings.batch_size or self._closing.is_set():
            return
        self._wake.clear()
        try:
            async with asyncio.timeout(self.settings.flush_interval_s):
                await self._wake.wait()
        except TimeoutError:
            pass  # flush what there is

    async def _write_loop(self) -> None:
        # No jitter: one writer per daemon, nothing to spread.
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s, jitter=0)
        while True:
            if not self._spool_records and not self._to_spool:
                await self._wait_for_work()
            batch = await self._next_batch()
            if batch is None:
                if self._closing.is_set():
                    return
                continue
            self._inflight = batch
            try:
                assert self._writer is not None
                await self._on_net(self._writer.write, batch.lines)
            except WriteFailed as exc:
                self._inflight = None
                if not exc.retryable:
                    await self._reject(batch, str(exc))
                    continue
                self.counters.retried += 1
                self._on_failure(batch, str(exc))
                if self._closing.is_set():
                    return  # the database is away: close() spools the rest
                await self._sleep(backoff.pause())
                continue
            self._inflight = None
            backoff.reset()
            self.counters.written += len(batch.lines)
            if self._failing:
                self._failing = False
                log.info("influx output: database reachable again, replaying")
            if batch.spooled and self._spool is not None:
                await self._spool_call(self._spool.ack, batch.base + len(batch.lines))

    def _on_failure(self, batch: _Inflight, reason: str) -> None:
        if not self._failing:
            self._failing = True
            log.warning("influx output: write failed, will retry and spool: %s", reason)
        if batch.spooled:
            return  # it is in the spool already, at its head
        if self._spool is not None:
            # nothing was spilled while it was away (else it would be spooled): the spool is
            # empty, so appending puts it at the head, in front of memory
            self._to_spool.extendleft(reversed(batch.lines))
            self.counters.spooled += len(batch.lines)
            self._spill_generation += 1
            return
        self._queue.extendleft(reversed(batch.lines))
        if len(self._queue) > self.settings.queue_max:
            self._overflow()

    async def _reject(self, batch: _Inflight, reason: str) -> None:
        self.counters.dropped += len(batch.lines)
        log.error("influx output: database rejected %d records: %s", len(batch.lines), reason)
        if batch.spooled and self._spool is not None:
            await self._spool_call(self._spool.ack, batch.base + len(batch.lines))

    async def _sleep(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            pass  # backoff over


def watch_influx(metrics: Metrics, output: InfluxOutput) -> None:
    """The output's counts on /metrics (oss_output_influx{counter})."""
    metrics.watch_counts(
        "oss_output_influx",
        "InfluxDB output: written, retried, spooled, dropped, queue",
        "counter",
        output.stats,
    )


@register_output("influx")
def _influx(context: OutputContext) -> InfluxOutput | None:
    settings = context.settings.influx
    if not settings.enabled:
        return None
    output = InfluxOutput(settings)
    watch_influx(context.metrics, output)
    return output

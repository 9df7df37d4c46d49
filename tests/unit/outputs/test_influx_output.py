"""The output's ordering with a batch on the wire while memory overflows into the spool,
using a scripted writer (the real database is in tests/integration/outputs)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from oss.events import Event
from oss.outputs.influx import InfluxOutput, WriteFailed
from oss.settings import InfluxSettings


class GatedWriter:
    """Holds the first write until released; then succeeds or fails it as told."""

    def __init__(self, fail_first: bool) -> None:
        self.fail_first = fail_first
        self.release = threading.Event()
        self.started = threading.Event()
        self.written: list[str] = []
        self.calls = 0

    def write(self, lines: list[str]) -> None:
        self.calls += 1
        if self.calls == 1:
            self.started.set()
            self.release.wait(10)
            if self.fail_first:
                raise WriteFailed("scripted outage", retryable=True)
        self.written.extend(lines)

    def close(self) -> None:
        pass


def events(start: int, n: int) -> list[Event]:
    return [Event("m", 1_000 + i, {"k": "v"}, {"i": i}) for i in range(start, start + n)]


@pytest.mark.parametrize("fail_first", [False, True])
async def test_overflow_while_a_batch_is_on_the_wire_keeps_order(
    tmp_path: Path, fail_first: bool
) -> None:
    writer = GatedWriter(fail_first)
    cfg = InfluxSettings(
        batch_size=10,
        queue_max=20,
        flush_interval_s=0.01,
        spool_dir=tmp_path,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
    )
    async with InfluxOutput(cfg, writer_factory=lambda _s: writer) as out:
        await out.offer(events(0, 10))
        await asyncio.to_thread(writer.started.wait, 10)  # batch 0..9 is on the wire
        await out.offer(events(10, 100))  # memory overflows: spilled behind the batch on the wire
        assert out.counters.spooled > 0
        writer.release.set()
        for _ in range(500):
            if (
                out.stats()["spool_records"] == 0
                and out.queue_depth == 0
                and len(writer.written) >= 110
            ):
                break
            await asyncio.sleep(0.01)
    assert [int(line.split("i=")[1].split("i")[0]) for line in writer.written] == list(range(110))
    assert out.counters.written == 110
    assert out.counters.dropped == 0
    assert out.counters.retried == (1 if fail_first else 0)

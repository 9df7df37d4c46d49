"""The InfluxDB output against a real VictoriaMetrics: an outage under load loses nothing
inside the spool bound and keeps the original timestamps; a small bound drops the oldest
and counts exactly what is missing; the spool survives a restart of the output."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from oss.events import Event
from oss.outputs.influx import InfluxOutput
from oss.settings import InfluxSettings
from tests.peers.victoria import VictoriaMetrics

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-influx-token-do-not-log"
BASE_NS = (time.time_ns() // 1_000_000 - 3_600_000) * 1_000_000  # an hour ago, whole ms
DEVICES, INTERFACES = 4, 5  # 20 series


def settings(vm: VictoriaMetrics, spool: Path, **overrides: object) -> InfluxSettings:
    values: dict[str, object] = {
        "enabled": True,
        "url": vm.url,
        "token": SecretStr(TOKEN),
        "batch_size": 200,
        "flush_interval_s": 0.1,
        "queue_max": 1000,
        "spool_dir": spool,
        "spool_max_bytes": 64 * 1024 * 1024,
        "timeout_s": 2.0,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.4,
        "shutdown_flush_s": 5.0,
    }
    values.update(overrides)
    return InfluxSettings.model_validate(values)


def events(measurement: str, start: int, n: int) -> list[Event]:
    """Point i: a series picked round-robin, a unique whole-millisecond timestamp (VM keeps ms)."""
    out = []
    for i in range(start, start + n):
        series = i % (DEVICES * INTERFACES)
        out.append(
            Event(
                measurement,
                BASE_NS + i * 1_000_000,
                {"device": f"d{series // INTERFACES}", "interface": f"eth{series % INTERFACES}"},
                {"seq": i, "half": i / 2},
            )
        )
    return out


def read_back(vm: VictoriaMetrics, measurement: str) -> dict[int, tuple[int, str, str]]:
    """seq -> (timestamp ms, device, interface), from every `<measurement>_seq` series."""
    found: dict[int, tuple[int, str, str]] = {}
    for series in vm.export(f'{{__name__="{measurement}_seq"}}'):
        labels = series["metric"]
        for value, ts in zip(series["values"], series["timestamps"], strict=True):
            found[int(value)] = (int(ts), labels["device"], labels["interface"])
    return found


def expected(i: int) -> tuple[int, str, str]:
    series = i % (DEVICES * INTERFACES)
    return (BASE_NS // 1_000_000 + i, f"d{series // INTERFACES}", f"eth{series % INTERFACES}")


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def drained(out: InfluxOutput) -> bool:
    s = out.stats()
    return s["queue_depth"] == 0 and s["spool_records"] == 0


async def test_outage_under_load_loses_nothing(
    victoria: VictoriaMetrics, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    name = "outage_interface"
    offered = 0

    async def offer(out: InfluxOutput, n: int) -> None:
        nonlocal offered
        await out.offer(events(name, offered, n))
        offered += n

    async with InfluxOutput(settings(victoria, tmp_path / "spool")) as out:
        # healthy: everything goes straight through
        for _ in range(10):
            await offer(out, 200)
            await until(lambda: out.counters.written == offered, "first writes")
        assert out.counters.spooled == 0

        # outage under load: offers keep coming while the database stops and stays away
        stopping = asyncio.create_task(asyncio.to_thread(victoria.stop))
        while not stopping.done():
            await offer(out, 100)
            await asyncio.sleep(0.01)
        await stopping
        for _ in range(60):  # ~1.2 s down, 6000 points: more than memory holds
            await offer(out, 100)
            await asyncio.sleep(0.02)
        assert out.counters.retried > 0
        assert out.counters.spooled > 0
        assert out.stats()["queue_depth"] <= out.settings.queue_max

        # back on the same port and data; still under load while it starts
        starting = asyncio.create_task(asyncio.to_thread(victoria.start))
        while not starting.done():
            await offer(out, 100)
            await asyncio.sleep(0.01)
        await starting
        for _ in range(10):
            await offer(out, 100)
            await asyncio.sleep(0.01)
        await until(lambda: drained(out) and out.counters.written >= offered, "replay")
        stats = out.stats()
        print(f"outage: offered {offered}, {stats}")

    assert stats["dropped"] == 0
    assert out.counters.invalid == 0
    found = read_back(victoria, name)
    missing = sorted(set(range(offered)) - set(found))
    assert not missing, f"{len(missing)} of {offered} points lost, first {missing[:10]}"
    for i in range(offered):
        assert found[i] == expected(i)  # original timestamp, right series
    assert TOKEN not in caplog.text


async def test_small_spool_drops_oldest_and_counts_it(
    victoria: VictoriaMetrics, tmp_path: Path
) -> None:
    name = "small_spool_interface"
    total = 4000
    cfg = settings(
        victoria, tmp_path / "spool", spool_max_bytes=32 * 1024, queue_max=200, batch_size=50
    )
    await asyncio.to_thread(victoria.stop)
    async with InfluxOutput(cfg) as out:
        for start in range(0, total, 100):
            await out.offer(events(name, start, 100))
            await asyncio.sleep(0.005)
        await until(lambda: out.counters.dropped > 0, "the bound to bite")
        await asyncio.to_thread(victoria.start)
        await until(lambda: drained(out), "replay")
        dropped = out.counters.dropped

    found = read_back(victoria, name)
    assert 0 < len(found) < total
    assert dropped == total - len(found)  # every loss is counted, nothing else is lost
    # The newest are kept: the last offers always (memory drops its oldest first), and what the
    # spool kept is contiguous unless its disk thread fell behind (memory then drops instead).
    assert set(range(total - 100, total)) <= set(found)
    assert 0 not in found
    for i in found:
        assert found[i] == expected(i)


async def test_spool_survives_output_restart(victoria: VictoriaMetrics, tmp_path: Path) -> None:
    name = "restart_interface"
    cfg = settings(victoria, tmp_path / "spool", shutdown_flush_s=0.5)
    await asyncio.to_thread(victoria.stop)
    async with InfluxOutput(cfg) as out:
        await out.offer(events(name, 0, 1500))
        await asyncio.sleep(0.3)
    assert out.counters.written == 0
    await asyncio.to_thread(victoria.start)
    async with InfluxOutput(cfg) as again:
        await again.offer(events(name, 1500, 100))
        await until(lambda: drained(again) and again.counters.written >= 1600, "replay")
    found = read_back(victoria, name)
    assert sorted(found) == list(range(1600))
    for i in found:
        assert found[i] == expected(i)

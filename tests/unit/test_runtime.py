"""The supervisor: open and close hooks in order, staged shutdown, crashes surface, no
half-alive daemon."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from oss.components import Stage
from oss.metrics import Metrics
from oss.runtime import Runtime
from oss.settings import load_settings


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []


class Polite:
    """Stops when asked, taking `linger` seconds to do so."""

    def __init__(self, name: str, stage: Stage, rec: Recorder, linger: float = 0.0) -> None:
        self.name, self.stage, self.rec, self.linger = name, stage, rec, linger

    async def run(self, stop: asyncio.Event) -> None:
        self.rec.events.append(f"{self.name} started")
        await stop.wait()
        self.rec.events.append(f"{self.name} stopping")
        await asyncio.sleep(self.linger)
        self.rec.events.append(f"{self.name} stopped")


class Stubborn:
    """Ignores the stop request; only cancellation ends it."""

    name = "stubborn"
    stage = Stage.WORKERS

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.rec.events.append("stubborn cancelled")
            raise


class Crashing:
    name = "crashing"
    stage = Stage.WORKERS

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("collector exploded")


class Quitter:
    name = "quitter"
    stage = Stage.WORKERS

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.05)


def runtime(tmp_path: Path, **shutdown: float) -> Runtime:
    settings = load_settings(None, state_dir=tmp_path, shutdown=shutdown or None)
    return Runtime(settings.shutdown, Metrics())


async def stop_soon(rt: Runtime) -> None:
    async def later() -> None:
        while not rt.ready:  # noqa: ASYNC110  (readiness is a flag, as /readyz reads it)
            await asyncio.sleep(0.01)
        rt.request_stop("test")

    asyncio.get_running_loop().create_task(later())


async def test_stages_stop_in_order_and_exit_zero(tmp_path: Path) -> None:
    rec = Recorder()
    rt = runtime(tmp_path)
    rt.add_component(Polite("collector", Stage.WORKERS, rec))
    rt.add_component(Polite("api", Stage.INGRESS, rec, linger=0.05))
    await stop_soon(rt)
    assert await rt.run() == 0
    # Ingress has fully stopped before any worker is asked to stop.
    assert rec.events.index("api stopped") < rec.events.index("collector stopping")
    assert not rt.ready


async def test_component_over_budget_is_cancelled(tmp_path: Path) -> None:
    rec = Recorder()
    rt = runtime(tmp_path, workers_s=0.2)
    rt.add_component(Stubborn(rec))
    await stop_soon(rt)
    assert await asyncio.wait_for(rt.run(), timeout=10) == 0
    assert rec.events == ["stubborn cancelled"]


async def test_crash_is_logged_and_exits_nonzero(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    rt = runtime(tmp_path)
    rt.add_component(Crashing())
    rt.add_component(Polite("api", Stage.INGRESS, rec))
    with caplog.at_level(logging.ERROR):
        assert await asyncio.wait_for(rt.run(), timeout=10) == 1
    crash = [r for r in caplog.records if r.exc_info and "collector exploded" in str(r.exc_info[1])]
    assert crash, "the crash must be logged with its traceback"
    assert "api started" in rec.events  # the other component was taken down, not left running


async def test_component_returning_unasked_is_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt = runtime(tmp_path)
    rt.add_component(Quitter())
    with caplog.at_level(logging.ERROR):
        assert await asyncio.wait_for(rt.run(), timeout=10) == 1
    assert "returned without being asked to stop" in caplog.text


async def test_hooks_open_in_order_and_close_in_reverse(tmp_path: Path) -> None:
    rec = Recorder()
    rt = runtime(tmp_path)

    def step(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            rec.events.append(name)

        return run

    rt.add_hook(open=step("migrate"), close=step("close db"))
    rt.add_hook(open=step("load inventory"))
    rt.add_hook(close=step("close services"))
    rt.add_hook(open=step("recover"))
    async with rt:
        assert rec.events == ["migrate", "load inventory", "recover"]
    assert rec.events[3:] == ["close services", "close db"]


async def test_a_failed_open_closes_what_was_opened(tmp_path: Path) -> None:
    rec = Recorder()
    rt = runtime(tmp_path)

    async def broken() -> None:
        raise RuntimeError("migration failed")

    async def close(name: str) -> None:
        rec.events.append(name)

    rt.add_hook(open=broken, close=lambda: close("close db"))
    rt.add_hook(close=lambda: close("close services"))  # registered after the failure: not run
    with pytest.raises(RuntimeError, match="migration failed"):
        await rt.open()
    await rt.close()
    assert rec.events == ["close db"]


class FreezeWatcher:
    """Notes how many objects the collector leaves alone while the components run."""

    name = "watcher"
    stage = Stage.WORKERS

    def __init__(self) -> None:
        self.frozen = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.frozen = gc.get_freeze_count()
        await stop.wait()


async def test_start_up_objects_are_frozen_while_the_daemon_runs(tmp_path: Path) -> None:
    watcher = FreezeWatcher()
    rt = runtime(tmp_path)
    rt.add_component(watcher)
    await stop_soon(rt)
    assert await rt.run() == 0
    assert watcher.frozen > 0  # a full collection under a storm skips them
    assert gc.get_freeze_count() == 0  # collectable again once it stopped

"""The daemon's runtime: it supervises the components `oss.app` built and handed to it.

`Runtime.run()` runs the open hooks in order (`oss.app` registers them: migrate the database,
load the inventory, recover transactions then orders), starts every component in one
`asyncio.TaskGroup` and waits. A stop request (SIGTERM, SIGINT) shuts components down stage by
stage, each stage within its time budget, then runs the close hooks in reverse; a component that
crashes, or returns while nobody asked it to stop, takes the whole daemon down with its
traceback logged, so it is never half alive. It knows no domain: what the components are is
`oss.app`'s business (an import-linter contract keeps it so).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from oss.components import Component, Stage
from oss.metrics import Metrics
from oss.settings import ShutdownSettings

log = logging.getLogger(__name__)


class ComponentExited(RuntimeError):
    """A component returned although no stop was requested."""


@dataclass
class _Running:
    component: Component
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Hook:
    open: Callable[[], Awaitable[object]] | None
    close: Callable[[], Awaitable[object]] | None


class Runtime:
    def __init__(self, shutdown: ShutdownSettings, metrics: Metrics) -> None:
        self.shutdown = shutdown
        self.metrics = metrics
        self._components: list[Component] = []
        self._hooks: list[_Hook] = []
        self._stop_requested = asyncio.Event()
        self._resources = AsyncExitStack()
        self.ready = False
        self.stopping = False

    def add_component(self, component: Component) -> None:
        self._components.append(component)

    def add_hook(
        self,
        *,
        open: Callable[[], Awaitable[object]] | None = None,
        close: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """A step of opening the shared resources, run in the order added; its `close` runs
        when the runtime closes, in reverse order, even if a later open step failed."""
        self._hooks.append(_Hook(open, close))

    # --- resources -------------------------------------------------------------------------

    async def open(self) -> None:
        """Run the open hooks in order; each hook's close is registered before its open runs,
        so what a failed open began is closed too."""
        for hook in self._hooks:
            if hook.close is not None:
                self._resources.push_async_callback(hook.close)
            if hook.open is not None:
                await hook.open()

    async def close(self) -> None:
        self.ready = False
        await self._resources.aclose()

    async def __aenter__(self) -> Runtime:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- supervision -----------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        if self._stop_requested.is_set():
            return
        log.info("shutdown requested", extra={"reason": reason})
        self._stop_requested.set()

    async def run(self, *, on_ready: Callable[[], Awaitable[None]] | None = None) -> int:
        """Run until stopped. Returns the process exit code: 0 after an orderly stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        running = [_Running(c) for c in self._components]
        failed = False
        try:
            async with self:
                if on_ready is not None:
                    await on_ready()
                # What start-up made (modules, settings, the inventory) lives as long as the
                # process: frozen, a full collection under load does not walk it again (after
                # importing the daemon one took 0.66-0.76 s here, a trap storm's p99 outlier).
                gc.freeze()
                try:
                    async with asyncio.TaskGroup() as tg:
                        for r in running:
                            r.task = tg.create_task(self._supervise(r), name=r.component.name)
                        tg.create_task(self._shutdown(running), name="shutdown")
                        self.ready = True
                        self.metrics.ready.set(1)
                except* Exception as group:  # noqa: BLE001  (logged below, exits 1)
                    # Crashes were logged with their traceback where they happened.
                    for exc in group.exceptions:
                        log.error("daemon stopping after a failure: %s", exc)
                    failed = True
                finally:
                    self.ready = False
                    self.metrics.ready.set(0)
                await self._close_storage()
        finally:
            gc.unfreeze()  # collectable again (a process that runs the daemon more than once)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        if failed:
            return 1
        log.info("daemon stopped")
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop_requested.is_set():
            log.warning("second %s: shutting down now", sig.name)
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            return
        self.request_stop(sig.name)

    async def _supervise(self, r: _Running) -> None:
        name = r.component.name
        self.metrics.component_up.labels(name).set(1)
        try:
            await r.component.run(r.stop)
        except asyncio.CancelledError:
            if not self._stop_requested.is_set():
                raise
            return
        except Exception:
            log.exception("component %s crashed", name)  # with its traceback, then re-raised
            raise
        finally:
            self.metrics.component_up.labels(name).set(0)
        if not r.stop.is_set():
            raise ComponentExited(f"component {name} returned without being asked to stop")

    async def _shutdown(self, running: list[_Running]) -> None:
        await self._stop_requested.wait()
        self.stopping = True
        self.ready = False
        budgets = {
            Stage.INGRESS: self.shutdown.ingress_s,
            Stage.WORKERS: self.shutdown.workers_s,
        }
        for stage in Stage:
            members = [r for r in running if r.component.stage is stage and r.task is not None]
            await self._stop_stage(stage, members, budgets[stage])

    async def _stop_stage(self, stage: Stage, members: list[_Running], budget: float) -> None:
        if not members:
            return
        started = time.monotonic()
        for r in members:
            r.stop.set()
        tasks = [r.task for r in members if r.task is not None]
        _, late = await asyncio.wait(tasks, timeout=budget)
        for task in late:
            log.warning(
                "component %s overran the %s stage budget (%.1fs): cancelled",
                task.get_name(),
                stage.value,
                budget,
            )
            task.cancel()
        if late:
            await asyncio.wait(late)
        log.info(
            "shutdown stage done",
            extra={"stage": stage.value, "seconds": round(time.monotonic() - started, 3)},
        )

    async def _close_storage(self) -> None:
        budget = self.shutdown.storage_s
        try:
            await asyncio.wait_for(self._resources.aclose(), timeout=budget)
        except TimeoutError:
            log.warning("storage did not close within %.1fs", budget)

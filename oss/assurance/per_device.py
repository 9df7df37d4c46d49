"""One task per device, following a changing device list: what the SNMP poller and the gNMI
collector share. A subclass says what state a device has and what its task does.

A `PerDevice` is a collector of the registry (oss/assurance/collectors.py): its `name` is the
platform `telemetry` value whose devices it collects, `run(stop)` opens its driver and keeps
a task per device until `stop`."""

from __future__ import annotations

import asyncio
import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, Protocol, TypeVar

from drivers.base import Target
from oss.assurance.collectors import Targets
from oss.assurance.kpi import KpiCalculator

log = logging.getLogger(__name__)

_CANCEL_WAIT_S = 2.0


class DeviceState(Protocol):
    target: Target


S = TypeVar("S", bound=DeviceState)


class PerDevice(ABC, Generic[S]):
    name = "collector"  # the platform `telemetry` value it collects (its registry name)
    what = "collector"  # for task names and logs

    def __init__(self, kpi: KpiCalculator | None) -> None:
        self.kpi = kpi or KpiCalculator()
        self._devices: dict[str, S] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._joined_running: set[str] = set()  # added while running: collected at once

    @abstractmethod
    def _new_state(self, target: Target) -> S: ...

    @abstractmethod
    def _driver(self) -> AbstractAsyncContextManager[Any]:
        """The driver `run` opens and closes."""

    async def run(self, stop: asyncio.Event) -> None:
        async with self._driver():
            await self.start()
            try:
                await stop.wait()
            finally:
                await self.stop()

    def follow(self, targets: Targets) -> None:
        self.set_targets(targets.of(self.name))

    def restarted(self, device: str) -> None:
        self.kpi.reset_device(device)  # counters start again: no spike

    def counts(self) -> Mapping[str, int]:
        return {}

    @abstractmethod
    async def _device_loop(self, name: str) -> None:
        """Runs while running and `name` is in `self._devices`; a change of target is read from
        there."""

    def set_targets(self, targets: Iterable[Target]) -> None:
        """Work on exactly these devices from now on (started, stopped or updated as needed)."""
        wanted = {t.name: t for t in targets}
        for name in [n for n in self._devices if n not in wanted]:
            del self._devices[name]
            self._joined_running.discard(name)
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()
            self.kpi.forget_device(name)
        for name, target in wanted.items():
            state = self._devices.get(name)
            if state is None:
                self._devices[name] = self._new_state(target)
                if self._running:
                    self._joined_running.add(name)
                    self._spawn(name)
            else:
                state.target = target  # picked up by the device's task

    def joined_running(self, name: str) -> bool:
        """Whether the device came while the collector ran (added to the inventory, or taken
        over from a cluster instance that died): its first collection should not wait for a
        start-up spread meant for devices that all start together. Answered once."""
        joined = name in self._joined_running
        self._joined_running.discard(name)
        return joined

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        for name in self._devices:
            self._spawn(name)

    async def stop(self) -> None:
        self._running = False
        pending = set(self._tasks.values())
        self._tasks.clear()
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=_CANCEL_WAIT_S)
            if pending:
                # Python 3.11's wait_for can swallow a cancellation that meets a ready result
                # (fixed in 3.12): such a task runs on; cancel it again rather than hang.
                log.warning("%d %s tasks still running after cancel", len(pending), self.what)

    def _spawn(self, name: str) -> None:
        task = asyncio.create_task(self._device_loop(name), name=f"{self.what}-{name}")
        self._tasks[name] = task
        # Tracked in _tasks; a loop that ends (its device removed) leaves the table.
        task.add_done_callback(functools.partial(self._forget_task, name))

    def _forget_task(self, name: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]
        if not task.cancelled() and task.exception() is not None:
            log.error("%s of %s ended", self.what, name, exc_info=task.exception())

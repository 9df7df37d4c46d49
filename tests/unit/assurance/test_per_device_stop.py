"""Stopping the per-device tasks ends every one, even one that swallowed its cancellation
(as Python 3.11's `asyncio.wait_for` can when the cancellation meets a ready result)."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from drivers.base import Target
from oss.assurance.per_device import PerDevice


@dataclass
class _State:
    target: Target


class _Stubborn(PerDevice[_State]):
    what = "stubborn"

    def __init__(self) -> None:
        super().__init__(None)
        self.swallowed: list[str] = []

    def _new_state(self, target: Target) -> _State:
        return _State(target)

    def _driver(self) -> AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()

    async def _device_loop(self, name: str) -> None:
        while True:  # even a loop that does not look at `_running` is ended
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if name in self.swallowed:
                    raise
                self.swallowed.append(name)  # carries on, as if the cancel never came


async def test_stop_ends_tasks_that_swallowed_a_cancel() -> None:
    collector = _Stubborn()
    collector.set_targets([Target(name=f"d{i}", host="127.0.0.1", port=161) for i in range(3)])
    await collector.start()
    await asyncio.sleep(0.05)
    tasks = list(collector._tasks.values())

    await asyncio.wait_for(collector.stop(), 20)

    assert sorted(collector.swallowed) == ["d0", "d1", "d2"]
    assert all(t.done() for t in tasks)

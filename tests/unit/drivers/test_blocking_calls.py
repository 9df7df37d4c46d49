"""drivers.base.BlockingCalls: a blocking call in a worker thread, with a time limit; a call
that takes too long or whose caller is cancelled is aborted (the thread is never killed)."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator

import pytest

from drivers.base import BlockingCalls

GUARD_S = 10.0  # only so a broken release cannot hang the suite


@pytest.fixture
def calls() -> Iterator[BlockingCalls]:
    pool = BlockingCalls("test", max_workers=2)
    yield pool
    pool.close()


async def test_a_call_returns_its_result_or_raises_its_error(calls: BlockingCalls) -> None:
    assert await calls.run(lambda a, b: a + b, 2, b=3, time_limit=GUARD_S) == 5

    def fails() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await calls.run(fails, time_limit=GUARD_S)


async def test_a_call_over_its_time_limit_is_aborted(calls: BlockingCalls) -> None:
    released = threading.Event()
    aborted: list[bool] = []

    def abort() -> None:
        aborted.append(True)
        released.set()  # as a transport's abort makes the blocked read return

    def blocked() -> None:
        released.wait(GUARD_S)
        raise OSError("the transport was closed")  # what the aborted call then raises

    with pytest.raises(TimeoutError):
        await calls.run(blocked, time_limit=0.05, abort=abort)
    assert aborted == [True]
    # the abandoned call's error is taken, not left for asyncio to log as never retrieved
    await asyncio.sleep(0.1)
    gc.collect()


async def test_a_cancelled_caller_aborts_the_call(calls: BlockingCalls) -> None:
    started, released = threading.Event(), threading.Event()
    aborted: list[bool] = []

    def blocked() -> str:
        started.set()
        released.wait(GUARD_S)
        return "late"

    def abort() -> None:
        aborted.append(True)
        released.set()

    task = asyncio.create_task(calls.run(blocked, time_limit=GUARD_S, abort=abort))
    await asyncio.to_thread(started.wait, GUARD_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert aborted == [True]
    # the pool goes on: the next call runs
    assert await calls.run(lambda: "next", time_limit=GUARD_S) == "next"

"""`Broadcast[T]`: committed changes handed to live listeners (the API's server-sent-event
streams: alarms, inventory), each through a bounded queue of its own.

A listener too slow to keep up is dropped (its `lost` is set and `get` answers None) rather
than letting its backlog grow or slowing the publisher: it re-reads the state when it comes
back. Publishing never blocks and never awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Subscription(Generic[T]):
    """One live listener."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue(size)
        self.lost = False
        self.closed = asyncio.Event()

    async def get(self) -> T | None:
        """The next change, or None once this subscription was dropped or closed."""
        if self.queue.empty() and self.closed.is_set():
            return None
        getter = asyncio.ensure_future(self.queue.get())
        closer = asyncio.ensure_future(self.closed.wait())
        try:
            await asyncio.wait({getter, closer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closer.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None


class Broadcast(Generic[T]):
    def __init__(self, name: str = "live", queue_size: int = 1000) -> None:
        self.name = name  # what the log says was dropped
        self._queue_size = queue_size
        self._subscribers: set[Subscription[T]] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription[T]]:
        sub: Subscription[T] = Subscription(self._queue_size)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every live stream (the daemon is stopping)."""
        for sub in self._subscribers:
            sub.closed.set()
        self._subscribers.clear()

    def publish(self, item: T) -> None:
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning("%s stream listener too slow: dropped", self.name)
                sub.lost = True
                sub.closed.set()
                self._subscribers.discard(sub)

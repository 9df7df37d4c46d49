"""Server-sent events from a `oss.broadcast.Broadcast`: the live streams' one shape.

`: subscribed` first (a client knows it is subscribed before it acts), then one event per
change, a `: keepalive` comment after `KEEPALIVE_S` of quiet, and `event: lost` when the
listener was dropped for being too slow or the daemon is stopping (the client re-reads the
state, then subscribes again).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import StreamingResponse

from oss.broadcast import Broadcast

KEEPALIVE_S = 15.0
T = TypeVar("T")

# For the OpenAPI document of a stream route.
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
}


def event_stream(
    broadcast: Broadcast[T], request: Request, render: Callable[[T], str]
) -> StreamingResponse:
    """The response streaming `broadcast`'s changes, each written by `render` as one event
    (`event: ...\\ndata: ...\\n\\n`)."""
    return StreamingResponse(
        _events(broadcast, request, render),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    broadcast: Broadcast[T], request: Request, render: Callable[[T], str]
) -> AsyncIterator[str]:
    async with broadcast.subscribe() as sub:
        yield ": subscribed\n\n"
        while not await request.is_disconnected():
            try:
                change = await asyncio.wait_for(sub.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if change is None:  # dropped (too slow) or the daemon is stopping
                yield "event: lost\ndata: {}\n\n"
                return
            yield render(change)

"""Inventory changes as server-sent events, for live views (the console's map): each site,
device, interface (operational state included) and link added, changed or removed, once the
change is stored and applied to the graph (`Inventory.changes`)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from oss.api.deps import DaemonDep, Viewer
from oss.api.sse import STREAM_RESPONSES, event_stream
from topology.graph import GraphChange
from topology.model import Device

router = APIRouter(prefix="/api/v1/topology", tags=["topology"])

# What a reader of the inventory never gets in a stream: where a device's secret lives.
_PRIVATE = {"credentials_ref"}


@router.get(
    "/stream",
    summary="Inventory changes as server-sent events (device, interface, link, site)",
    response_class=StreamingResponse,
    responses=STREAM_RESPONSES,
)
async def stream_topology(daemon: DaemonDep, _: Viewer, request: Request) -> StreamingResponse:
    return event_stream(daemon.inventory.changes, request, _event)


def _event(change: GraphChange) -> str:
    data = orjson.dumps({"op": change.op, "object": public(change.object)}).decode()
    return f"event: {change.kind}\ndata: {data}\n\n"


def public(item: Any) -> dict[str, Any]:
    """An inventory object as a reader may see it (a device without its credentials'
    reference)."""
    exclude = _PRIVATE if isinstance(item, Device) else None
    document: dict[str, Any] = item.model_dump(mode="json", exclude=exclude)
    return document

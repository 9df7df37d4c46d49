"""The inventory's large lists as JSON, fast: each device's and interface's JSON is rendered once
and reused while that object is the graph's (the graph's objects are immutable: a change
replaces the object), so a page of 1,000 devices with their 10,000 interfaces is a join of
cached fragments instead of building and serialising 11,000 models per request.

The document is the one the route's `response_model` documents (`CursorPage`), byte for byte
what pydantic writes for it (tests/unit/api/test_listing_json.py compares them)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from oss.web.paging import CursorPage
from topology.graph import InventoryGraph
from topology.model import Device, Interface

_KEY = "api.json_fragments"
_SLACK = 10_000  # objects replaced since the last pruning, past the inventory's size


class JsonFragments:
    """Each object's JSON by identity. An entry keeps its object alive, so its id cannot be
    reused by another object while the entry exists; replaced objects' entries are dropped
    all at once when the cache outgrows twice the inventory (oper-state churn)."""

    def __init__(self, bound: int) -> None:
        self._by_id: dict[int, tuple[BaseModel, bytes]] = {}
        self.bound = bound

    def of(self, item: BaseModel) -> bytes:
        found = self._by_id.get(id(item))
        if found is not None and found[0] is item:
            return found[1]
        if len(self._by_id) >= self.bound:
            self._by_id.clear()
        text = item.__pydantic_serializer__.to_json(item)
        self._by_id[id(item)] = (item, text)
        return text

    def join(self, items: Iterable[BaseModel]) -> bytes:
        """The items as a JSON array. `of` inlined: this loop is the listing's hot path."""
        get, parts = self._by_id.get, []
        for item in items:
            found = get(id(item))
            parts.append(found[1] if found is not None and found[0] is item else self.of(item))
        return b"[" + b",".join(parts) + b"]"


def fragments(graph: InventoryGraph) -> JsonFragments:
    """The graph's fragment cache (kept with the graph, `InventoryGraph.derived`). After a
    change to devices or links every entry is still right (entries are checked by identity):
    the cache carries over, with a bound for the new size."""
    counts = graph.counts()
    bound = 2 * (counts["devices"] + counts["interfaces"]) + _SLACK

    def build(before: JsonFragments | None) -> JsonFragments:
        if before is None:
            return JsonFragments(bound)
        before.bound = bound
        return before

    return graph.derived(_KEY, build)


def devices_page(
    page: CursorPage[Device], graph: InventoryGraph, *, with_interfaces: bool
) -> Response:
    """`page` as JSON; each device with its interfaces (`DeviceWithInterfaces`) if asked."""
    cache = fragments(graph)
    if not with_interfaces:
        return _response(page, cache.join(page.items))
    parts = [
        cache.of(d)[:-1] + b',"interfaces":' + cache.join(graph.interfaces(d.name)) + b"}"
        for d in page.items
    ]
    return _response(page, b"[" + b",".join(parts) + b"]")


def interfaces_page(page: CursorPage[Interface], graph: InventoryGraph) -> Response:
    return _response(page, fragments(graph).join(page.items))


def _response(page: CursorPage[Any], items: bytes) -> Response:
    tail = json.dumps(
        {
            "total": page.total,
            "limit": page.limit,
            "offset": page.offset,
            "next_cursor": page.next_cursor,
        },
        separators=(",", ":"),
    )
    body = b'{"items":' + items + b"," + tail[1:].encode()
    return Response(body, media_type="application/json")

"""`GET /api/v1/topology/stream`: inventory changes as server-sent events through a real HTTP
server (uvicorn on a loopback port), an interface's oper_state change included, never a
device's credentials reference."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from oss.api import create_app
from oss.auth_roles import Role
from tests.integration.api.console_fixtures import ACTOR, seed_inventory
from tests.integration.conftest import Api
from tests.peers.app_server import serving
from topology.model import Device, OperState

URL = "/api/v1/topology/stream"
Event = tuple[str, dict[str, object]]


async def events_after(
    response: httpx.Response, act: Callable[[], Awaitable[None]], count: int
) -> list[Event]:
    """The first `count` events the stream sends once subscribed and `act` ran."""
    lines: AsyncIterator[str] = response.aiter_lines()
    assert await anext(lines) == ": subscribed"
    await act()
    found: list[Event] = []
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            found.append((kind, json.loads(line.removeprefix("data: "))))
            if len(found) == count:
                break
    return found


async def test_the_stream_carries_inventory_changes(api: Api) -> None:
    await seed_inventory(api.daemon)
    inventory = api.daemon.inventory
    headers = {"Authorization": f"Bearer {api.tokens[Role.VIEWER]}"}

    async def changes() -> None:
        await inventory.set_oper_states({("r3", "eth1"): OperState.DOWN}, actor=ACTOR)
        await inventory.add_device(
            Device(name="r20", site="north", credentials_ref="env:R20_SECRET"), actor=ACTOR
        )
        await inventory.remove_device("r10", actor=ACTOR)

    async with (
        serving(create_app(api.daemon)) as url,
        httpx.AsyncClient(base_url=url, headers=headers) as http,
        http.stream("GET", URL) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = await asyncio.wait_for(events_after(response, changes, 4), 20)

    (k1, oper), (k2, added), (k3, link_gone), (k4, device_gone) = events
    assert (k1, oper["op"]) == ("interface", "changed")
    assert oper["object"] == {
        "device": "r3", "name": "eth1", "speed_bps": 10**9, "admin_state": "up",
        "oper_state": "down", "description": "",
    }  # fmt: skip
    assert (k2, added["op"]) == ("device", "added")
    assert added["object"]["name"] == "r20"  # type: ignore[index]
    assert "credentials_ref" not in added["object"]  # type: ignore[operator]
    assert (k3, link_gone["op"]) == ("link", "removed")  # the removed device's link first
    assert link_gone["object"]["b"] == {"device": "r10", "interface": "eth1"}  # type: ignore[index]
    assert (k4, device_gone["op"]) == ("device", "removed")


async def test_the_stream_needs_a_token(api: Api) -> None:
    response = await api.anonymous.get(URL)
    assert response.status_code == 401

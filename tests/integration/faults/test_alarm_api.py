"""The TMF642 alarm API over a real daemon: list/get/patch validate against the official
schema, and the server-sent-events stream carries changes through a real HTTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection
from typer.testing import CliRunner

import oss.cli.alarm  # noqa: F401  (attaches `oss alarm` to the CLI app)
from oss.api import create_app
from oss.api.routes import alarms as alarm_routes
from oss.app import assemble
from oss.auth_roles import Role
from oss.cli.main import app as cli_app
from oss.faults import tmf_schema
from oss.faults.alarms import AlarmManager, Signal
from oss.settings import load_settings
from tests.peers.app_server import serving

BASE = "/tmf-api/alarm/v4/alarm"


class NullFeed:
    def write_changes(self, conn: Connection, changes: Sequence[Any]) -> None:
        return None

    def committed(self, written: None) -> None:
        return None


@dataclass
class AlarmApi:
    manager: AlarmManager
    app: FastAPI
    viewer: httpx.AsyncClient
    operator: httpx.AsyncClient
    tokens: dict[Role, str]


@pytest.fixture
async def alarm_api(tmp_path: Path) -> AsyncIterator[AlarmApi]:
    async with assemble(load_settings(None, state_dir=tmp_path)) as daemon:
        manager = AlarmManager(
            daemon.db, lambda: daemon.inventory.graph, daemon.services, NullFeed()
        )
        app = create_app(replace(daemon, alarms=manager))
        app.include_router(alarm_routes.router)
        tokens = {}
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[role], _ = await daemon.tokens.create(
                name=f"alarm-{role.value}", role=role, actor="test"
            )
        transport = httpx.ASGITransport(app=app)

        def client(token: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=transport,
                base_url="http://oss.test",
                headers={"Authorization": f"Bearer {token}"},
            )

        async with client(tokens[Role.VIEWER]) as viewer, client(tokens[Role.OPERATOR]) as op:
            yield AlarmApi(manager, app, viewer, op, tokens)
        manager.close()


def link_down(device: str, interface: str, kind: str = "raise", severity: str = "major") -> Signal:
    return Signal(
        kind=kind,  # type: ignore[arg-type]
        reduction_key=f"linkDown:{device}:{interface}",
        alarm_type="communicationsAlarm",
        severity=severity,
        probable_cause="lossOfSignal",
        specific_problem=f"interface {device}:{interface} down",
        object_type="interface",
        object=f"{device}:{interface}",
        time_ns=1_700_000_000_000_000_000,
    )


def valid(doc: Any) -> Any:
    assert tmf_schema.errors(doc, "Alarm") == [], doc
    return doc


def test_the_router_sits_at_the_spec_base_path() -> None:
    assert tmf_schema.base_path() == alarm_routes.BASE_PATH


async def test_list_filters_and_get(alarm_api: AlarmApi) -> None:
    await alarm_api.manager.signal(link_down("r1", "eth1", severity="critical"))
    await alarm_api.manager.signal(link_down("r1", "eth2"))
    await alarm_api.manager.signal(link_down("r1", "eth2"))
    await alarm_api.manager.signal(link_down("r1", "eth2", "clear"))

    r = await alarm_api.viewer.get(BASE)
    assert r.status_code == 200
    docs = [valid(d) for d in r.json()]
    assert r.headers["X-Total-Count"] == "2"
    assert [d["alarmedObject"]["id"] for d in docs] == ["r1:eth2", "r1:eth1"]

    r = await alarm_api.viewer.get(BASE, params={"perceivedSeverity": "critical"})
    assert [d["alarmedObject"]["id"] for d in r.json()] == ["r1:eth1"]
    r = await alarm_api.viewer.get(BASE, params={"state": "cleared"})
    (cleared,) = r.json()
    assert valid(cleared)["count"] == 2
    r = await alarm_api.viewer.get(BASE, params={"alarmedObject.id": "r1:eth1"})
    assert [valid(d)["id"] for d in r.json()] == [docs[1]["id"]]
    r = await alarm_api.viewer.get(BASE, params={"ackState": "acknowledged"})
    assert r.json() == []
    r = await alarm_api.viewer.get(BASE, params={"fields": "state,perceivedSeverity"})
    assert set(r.json()[0]) == {"id", "href", "state", "perceivedSeverity"}
    assert all(valid(d) for d in r.json())

    r = await alarm_api.viewer.get(f"{BASE}/{docs[1]['id']}")
    assert r.status_code == 200
    assert valid(r.json())["specificProblem"] == "interface r1:eth1 down"
    r = await alarm_api.viewer.get(f"{BASE}/99999")
    assert r.status_code == 404
    assert tmf_schema.errors(r.json(), "Error") == []  # a problem document and a TMF Error


async def test_patch_acknowledges_as_the_token_and_clears(alarm_api: AlarmApi) -> None:
    (change,) = await alarm_api.manager.signal(link_down("r2", "eth1"))
    url = f"{BASE}/{change[1]['id']}"

    r = await alarm_api.viewer.patch(url, json={"ackState": "acknowledged"})
    assert r.status_code == 403  # viewers only look
    r = await alarm_api.operator.patch(url, json={"ackState": "acknowledged", "ackUserId": "eve"})
    assert r.status_code == 200
    doc = valid(r.json())
    assert doc["ackState"] == "acknowledged"
    assert doc["ackUserId"].startswith("token:alarm-operator#")  # the principal, not the body
    assert doc["state"] == "raised"

    r = await alarm_api.operator.patch(url, json={"state": "cleared"})
    assert r.status_code == 200
    doc = valid(r.json())
    assert (doc["state"], doc["perceivedSeverity"]) == ("cleared", "cleared")
    assert "alarmClearedTime" in doc

    r = await alarm_api.operator.patch(url, json={"state": "cleared"})
    assert r.status_code == 409
    for body in ({"perceivedSeverity": "minor"}, {"state": "raised"}, {"ackState": 3}, {}):
        r = await alarm_api.operator.patch(url, json=body)
        assert r.status_code == 422, body
        assert tmf_schema.errors(r.json(), "Error") == []


@pytest.fixture
async def alarm_server(alarm_api: AlarmApi) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a loopback port (streams need a real server)."""
    async with serving(alarm_api.app) as url:
        yield url


async def test_the_stream_carries_changes_as_server_sent_events(
    alarm_api: AlarmApi, alarm_server: str
) -> None:
    headers = {"Authorization": f"Bearer {alarm_api.tokens[Role.VIEWER]}"}
    async with (
        httpx.AsyncClient(base_url=alarm_server, headers=headers) as http,
        http.stream("GET", f"{BASE}/stream") as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = await asyncio.wait_for(_read_events(r, alarm_api.manager, 3), 20)
    assert [e["event"] for e in events] == ["raised", "changed", "cleared"]
    docs = [valid(json.loads(e["data"])) for e in events]
    assert [d["sequence"] for d in docs] == [1, 2, 3]
    assert events[2]["id"] == f"{docs[0]['id']}.3"


def oss_cli(url: str, token: str, *args: str) -> Any:
    """Run `oss --url URL --token T -o json ARGS` in-process; returns its parsed output."""
    result = CliRunner().invoke(cli_app, ["--url", url, "--token", token, "-o", "json", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


async def test_the_cli_lists_shows_acks_clears_and_watches(
    alarm_api: AlarmApi, alarm_server: str
) -> None:
    token = alarm_api.tokens[Role.OPERATOR]
    (change,) = await alarm_api.manager.signal(link_down("r5", "eth1"))
    alarm_id = change[1]["id"]

    # The CLI is synchronous: it runs in a thread while the server runs on this loop.
    listed = json.loads(await asyncio.to_thread(oss_cli, alarm_server, token, "alarm", "list"))
    assert [d["id"] for d in listed] == [alarm_id]
    shown = json.loads(
        await asyncio.to_thread(oss_cli, alarm_server, token, "alarm", "show", str(alarm_id))
    )
    assert shown["alarmedObject"]["id"] == "r5:eth1"
    acked = json.loads(
        await asyncio.to_thread(oss_cli, alarm_server, token, "alarm", "ack", str(alarm_id))
    )
    assert acked["ackState"] == "acknowledged"

    watching = asyncio.create_task(
        asyncio.to_thread(oss_cli, alarm_server, token, "alarm", "watch", "--count", "2")
    )
    async with asyncio.timeout(20):
        while alarm_api.manager.broadcast.subscribers == 0:
            assert not watching.done(), watching.result()
            await asyncio.sleep(0.02)
    # (CliRunner swaps sys.stdout: no second CLI run while `watch` prints.)
    await alarm_api.manager.signal(link_down("r6", "eth1"))
    await alarm_api.manager.clear(alarm_id, "someone")
    lines = (await asyncio.wait_for(watching, 20)).splitlines()
    seen = [json.loads(line) for line in lines]
    assert [(e["event"], e["alarm"]["alarmedObject"]["id"]) for e in seen] == [
        ("raised", "r6:eth1"),
        ("cleared", "r5:eth1"),
    ]
    r6 = seen[0]["alarm"]["id"]
    cleared = json.loads(
        await asyncio.to_thread(oss_cli, alarm_server, token, "alarm", "clear", str(r6))
    )
    assert cleared["state"] == "cleared"
    assert cleared["clearUserId"].startswith("token:alarm-operator#")

    table = await asyncio.to_thread(
        CliRunner(env={"COLUMNS": "200"}).invoke,
        cli_app,
        ["--url", alarm_server, "--token", token, "alarm", "list"],
    )
    assert table.exit_code == 0 and "r6:eth1" in table.output and "cleared" in table.output


async def _read_events(
    response: httpx.Response, manager: AlarmManager, count: int
) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    lines = response.aiter_lines()
    assert await anext(lines) == ": subscribed"
    await manager.signal(link_down("r3", "eth1"))
    await manager.signal(link_down("r3", "eth1"))
    await manager.signal(link_down("r3", "eth1", "clear"))
    async for line in lines:
        if not line:
            if current:
                events.append(current)
                current = {}
            if len(events) == count:
                return events
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(": ")
        current[key] = value
    return events


async def test_ack_and_clear_are_audited_and_a_refused_clear_is_not(alarm_api: AlarmApi) -> None:
    """Issue 14, defect 8: an operator's acknowledge and clear are audit entries (who, before,
    after) in the change's transaction; a refused clear (409) adds none."""
    from oss.audit import list_entries

    (change,) = await alarm_api.manager.signal(link_down("r2", "eth1"))
    alarm_id = str(change[1]["id"])
    url = f"{BASE}/{alarm_id}"
    assert (await alarm_api.operator.patch(url, json={"ackState": "acknowledged"})).is_success
    assert (await alarm_api.operator.patch(url, json={"state": "cleared"})).is_success
    assert (await alarm_api.operator.patch(url, json={"state": "cleared"})).status_code == 409

    entries, _ = await list_entries(
        alarm_api.manager.db, limit=10, offset=0, object_type="alarm", object_id=alarm_id
    )
    ack, clear = entries[::-1]
    assert ack.action == "acknowledge" and ack.actor.startswith("token:alarm-operator#")
    assert ack.before == {"ackState": "unacknowledged", "ackUserId": None}
    assert ack.after == {"ackState": "acknowledged", "ackUserId": ack.actor}
    assert clear.action == "clear" and clear.actor == ack.actor
    assert clear.before == {"state": "raised", "severity": "major"}
    assert clear.after == {"state": "cleared", "severity": "cleared"}

"""Issue 14, defect 8: requests refused by authentication (401) or role (403) are in the audit
log, rate-limited per token, route and reason (with a count), with the token's id and never the
token; `GET /api/v1/audit` finds them by action, object type or `refused`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from typer.testing import CliRunner

import oss.cli.audit  # noqa: F401  (attaches `oss audit` to the CLI app)
from oss.api import create_app
from oss.audit import Refusal, RefusalLog, list_entries, record
from oss.auth_roles import Role
from oss.cli.main import app as cli_app
from oss.store import Database
from tests.integration.conftest import Api
from tests.peers.app_server import serving


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def manual_clock(api: Api) -> Clock:
    """The refusal log with a clock the test moves (no waiting on real time)."""
    clock = Clock()
    api.daemon.tokens.refusals = RefusalLog(api.daemon.db, window_s=60.0, clock=clock)
    return clock


async def refusals(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = await api.admin.get("/api/v1/audit", params={"refused": "true", **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def token_id(api: Api, role: Role) -> int:
    listed = (await api.admin.get("/api/v1/tokens")).json()
    (found,) = [t["id"] for t in listed if t["name"] == f"test-{role.value}"]
    return int(found)


async def test_401s_are_audited_once_per_window_with_a_count(api: Api) -> None:
    clock = manual_clock(api)
    for _ in range(5):
        assert (await api.anonymous.get("/api/v1/devices")).status_code == 401
    (entry,) = await refusals(api, action="unauthorized.refused")
    assert entry["actor"] == "anonymous"
    assert entry["object_type"] == "request"
    assert entry["object_id"] == "GET /api/v1/devices"
    assert entry["after"]["status"] == 401 and entry["after"]["reason"] == "no bearer token"
    assert entry["after"]["count"] == 1 and entry["after"]["token_id"] is None

    clock.now += 61  # the window is over: the next refusal writes the four it only counted
    assert (await api.anonymous.get("/api/v1/devices")).status_code == 401
    newest, oldest = await refusals(api, action="unauthorized.refused")
    assert newest["after"]["count"] == 5 and oldest["id"] == entry["id"]

    # another route or reason is another key: written at once
    assert (await api.anonymous.get("/api/v1/sites")).status_code == 401
    bogus = {"Authorization": "Bearer oss_not-a-real-token"}
    assert (await api.anonymous.get("/api/v1/sites", headers=bogus)).status_code == 401
    reasons = {
        (e["object_id"], e["after"]["reason"]) for e in await refusals(api, object_type="request")
    }
    assert ("GET /api/v1/sites", "no bearer token") in reasons
    assert ("GET /api/v1/sites", "unknown token") in reasons


async def test_403s_name_the_token_id_route_and_reason_never_the_token(api: Api) -> None:
    manual_clock(api)
    for _ in range(3):
        r = await api.viewer.post("/api/v1/devices", json={"name": "r1", "role": "pe"})
        assert r.status_code == 403
    viewer = await token_id(api, Role.VIEWER)
    (entry,) = await refusals(api, action="forbidden.refused")
    assert entry["actor"] == f"token:test-viewer#{viewer}"
    assert entry["object_id"] == "POST /api/v1/devices"
    assert entry["after"]["token_id"] == viewer
    assert entry["after"]["reason"] == "needs operator, token has viewer"
    assert entry["after"]["method"] == "POST" and entry["after"]["route"] == "/api/v1/devices"
    # the route's template, not the raw path
    assert (await api.viewer.delete("/api/v1/devices/r9")).status_code == 403
    ids = {e["object_id"] for e in await refusals(api, action="forbidden.refused")}
    assert "DELETE /api/v1/devices/{name}" in ids
    # nothing was created, and no token appears anywhere in the log
    assert (await api.admin.get("/api/v1/audit", params={"refused": "false"})).json()["items"] == [
        e for e in await all_entries(api) if not e["action"].endswith(".refused")
    ]
    text = json.dumps(await all_entries(api))
    for token in api.tokens.values():
        assert token not in text


async def test_a_revoked_token_is_named_by_its_id(api: Api) -> None:
    manual_clock(api)
    r = await api.admin.post("/api/v1/tokens", json={"name": "gone", "role": "viewer"})
    created = r.json()
    await api.admin.delete(f"/api/v1/tokens/{created['info']['id']}")
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert (await api.anonymous.get("/api/v1/devices", headers=headers)).status_code == 401
    (entry,) = await refusals(api, action="unauthorized.refused")
    assert entry["after"]["reason"] == "revoked token"
    assert entry["after"]["token_id"] == created["info"]["id"]
    assert entry["actor"] == f"token:gone#{created['info']['id']}"
    assert created["token"] not in json.dumps(entry)


async def all_entries(api: Api) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await api.admin.get("/api/v1/audit", params={"limit": 1000})
    ).json()["items"]
    return items


async def test_oss_audit_lists_refusals_or_changes(api: Api) -> None:
    manual_clock(api)
    assert (await api.anonymous.get("/api/v1/devices")).status_code == 401
    token = api.tokens[Role.ADMIN]
    async with serving(create_app(api.daemon)) as url:
        refused = await asyncio.to_thread(cli, url, token, "-o", "json", "audit", "--refused")
        changed = await asyncio.to_thread(cli, url, token, "-o", "json", "audit", "--changes")
    assert [e["action"] for e in json.loads(refused)] == ["unauthorized.refused"]
    assert {e["action"] for e in json.loads(changed)} == {"create"}  # the test's tokens


def cli(url: str, token: str, *args: str) -> str:
    result = CliRunner().invoke(cli_app, ["--url", url, "--token", token, *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


async def test_refusal_log_and_filter_on_both_backends(database_url: str) -> None:
    """The window, the count and the `refused` filter on SQLite and PostgreSQL."""
    db = Database(database_url)
    await db.migrate()
    try:
        clock = Clock()
        log = RefusalLog(db, window_s=60.0, clock=clock)
        refusal = Refusal(401, "unknown token", "GET", "/api/v1/sites", None, "anonymous")
        assert await log.refused(refusal)
        assert not await log.refused(refusal)
        assert not await log.refused(refusal)
        clock.now += 60
        assert await log.refused(refusal)
        async with db.transaction() as s:
            record(s, actor="t", action="create", object_type="site", object_id="x", after={})
        refused, total = await list_entries(db, limit=10, offset=0, refused=True)
        assert total == 2 and [e.after["count"] for e in refused] == [3, 1]
        changes, total = await list_entries(db, limit=10, offset=0, refused=False)
        assert total == 1 and changes[0].action == "create"
    finally:
        await db.close()

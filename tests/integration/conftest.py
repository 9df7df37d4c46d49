"""An in-process daemon (its assembled parts, `oss.app.assemble`, and the FastAPI app over
httpx's ASGI transport) with tokens, and a migrated database on each backend (`db`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from oss.api import create_app
from oss.app import assemble
from oss.auth_roles import Role
from oss.daemon import Daemon
from oss.settings import load_settings
from oss.store import Database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each backend (`database_url`: SQLite, PostgreSQL)."""
    database = Database(database_url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@dataclass
class Api:
    daemon: Daemon
    viewer: httpx.AsyncClient
    operator: httpx.AsyncClient
    admin: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    tokens: dict[Role, str]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with assemble(load_settings(None, state_dir=tmp_path)) as daemon:
        app = create_app(daemon)
        transport = httpx.ASGITransport(app=app)
        tokens = {}
        for role in Role:
            tokens[role], _ = await daemon.tokens.create(
                name=f"test-{role.value}", role=role, actor="test"
            )

        def client(token: str | None) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return httpx.AsyncClient(
                transport=transport, base_url="http://oss.test", headers=headers
            )

        async with (
            client(tokens[Role.VIEWER]) as viewer,
            client(tokens[Role.OPERATOR]) as operator,
            client(tokens[Role.ADMIN]) as admin,
            client(None) as anonymous,
        ):
            yield Api(daemon, viewer, operator, admin, anonymous, tokens)

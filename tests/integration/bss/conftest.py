"""The BSS's integration tests: a migrated database on each backend (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from oss.store import Database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()

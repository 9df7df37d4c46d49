"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oss.store.database import Database


@pytest.fixture
async def migrated_db(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty SQLite database at the Alembic head, closed after the test. Named apart from
    the `db` fixtures tests define for themselves, so it applies only where asked for."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    await database.migrate()
    yield database
    await database.close()

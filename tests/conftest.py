"""Shared fixtures: real peers (PostgreSQL) and databases on both backends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.postgres import PostgresServer, create_database, running_postgres

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend: a SQLite file, and a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return create_database(server, f"oss_test_{next(_db_numbers)}")

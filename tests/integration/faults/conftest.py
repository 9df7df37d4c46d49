"""Real Mosquitto brokers for the NOC feed tests: one anonymous, one with a password file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from oss.store.database import Database
from tests.peers.mosquitto import MosquittoServer, running_mosquitto

NOC_USER = "noc"
NOC_PASSWORD = "right-horse-battery"


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MosquittoServer]:
    with running_mosquitto() as server:
        yield server


@pytest.fixture(scope="session")
def mosquitto_auth() -> Iterator[MosquittoServer]:
    with running_mosquitto({NOC_USER: NOC_PASSWORD}) as server:
        yield server


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    await database.migrate()
    yield database
    await database.close()

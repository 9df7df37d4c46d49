"""A real OpenSSH server (tests/peers/sshd.py) for the CLI driver, and the driver itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from drivers.cli import CliDriver
from tests.peers.sshd import SshServer, running_sshd


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    with running_sshd() as server:
        yield server


@pytest.fixture
async def driver() -> AsyncIterator[CliDriver]:
    async with CliDriver(max_workers=4) as cli:
        yield cli

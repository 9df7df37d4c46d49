"""A real snmpd for the SNMP driver tests, and drivers on both polling backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from drivers.snmp import Backend, SnmpDriver
from tests.peers.snmpd import SnmpdServer, running_snmpd


@pytest.fixture(scope="session")
def snmpd() -> Iterator[SnmpdServer]:
    with running_snmpd() as server:
        yield server


@pytest.fixture(params=["gufo", "pysnmp"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def driver(backend: Backend) -> AsyncIterator[SnmpDriver]:
    async with SnmpDriver(backend=backend) as snmp_driver:
        yield snmp_driver

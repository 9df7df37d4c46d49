"""A real netconfd (yuma123) under its own sshd for the NETCONF driver tests, shared by the
session; every test starts from empty oss-lab configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from drivers.base import Target
from drivers.netconf import NetconfDriver
from oss.errors import RpcError
from tests.peers.netconfd import NetconfServer, running_netconfd

EMPTY = (
    '<interfaces xmlns="urn:oss:lab" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"'
    ' nc:operation="remove"/>'
    '<vrfs xmlns="urn:oss:lab" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"'
    ' nc:operation="remove"/>'
)


@pytest.fixture(scope="session")
def netconf_server() -> Iterator[NetconfServer]:
    with running_netconfd() as server:
        yield server


@pytest.fixture
def netconf_target(netconf_server: NetconfServer) -> Target:
    """The server as a device, with known_hosts that trust its generated host key."""
    return netconf_server.target()


@pytest.fixture
async def driver() -> AsyncIterator[NetconfDriver]:
    async with NetconfDriver(max_workers=8) as nc_driver:
        yield nc_driver


@pytest.fixture(autouse=True)
async def empty_device(netconf_server: NetconfServer) -> None:
    """Running and candidate hold no oss-lab configuration when a test starts."""
    async with (
        NetconfDriver(max_workers=2) as cleaner,
        cleaner.connect(netconf_server.target("cleaner")) as nc,
    ):
        await nc.discard_changes()
        await nc.edit_config(EMPTY, operation="none")
        try:
            await nc.commit()
        except RpcError as exc:  # a test left a confirmed commit pending: report it loudly
            raise AssertionError(f"could not reset netconfd: {exc}") from exc

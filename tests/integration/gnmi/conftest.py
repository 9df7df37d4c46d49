"""The simulated device's gNMI server, in-process on 127.10.0.1 (TLS, optionally mTLS), and
targets for the gNMI driver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from drivers.base import Target
from drivers.credentials import Credentials, TlsSettings
from drivers.gnmi import GnmiDriver
from lab.sim.gnmi_server import GnmiServerHandle, start_gnmi_server
from lab.sim.model import SimDevice
from tests.peers.ports import free_port
from tests.peers.tls_certs import Pki, make_pki

HOST = "127.10.0.1"


@pytest.fixture(scope="session")
def pki() -> Iterator[Pki]:
    with make_pki(server_ips=(HOST, "127.0.0.1")) as made:
        yield made


@dataclass
class Lab:
    device: SimDevice
    server: GnmiServerHandle
    pki: Pki

    def target(self, tls: TlsSettings | None = None, **creds: Any) -> Target:
        if tls is None:
            tls = TlsSettings(ca_file=self.pki.ca)
        return Target(
            name=self.device.name,
            host=self.server.host,
            port=self.server.port,
            credentials=Credentials(tls=tls, **creds),
            timeout_s=5.0,
            options={"encoding": "json_ietf"},
        )

    def mtls(self) -> TlsSettings:
        return TlsSettings(
            ca_file=self.pki.ca, cert_file=self.pki.client_cert, key_file=self.pki.client_key
        )


def new_device() -> SimDevice:
    device = SimDevice("r1", interfaces=["eth1", "eth2"])
    device.set_link_up("eth1", True)  # eth2 stays uncabled: oper-down
    return device


@pytest.fixture
async def lab(pki: Pki) -> AsyncIterator[Lab]:
    """A device served over TLS (server certificate only)."""
    device = new_device()
    server = await start_gnmi_server(
        device, HOST, free_port(HOST), tls=pki.server_tls(require_client_cert=False)
    )
    try:
        yield Lab(device, server, pki)
    finally:
        await server.stop()


@pytest.fixture
async def mtls_lab(pki: Pki) -> AsyncIterator[Lab]:
    """A device whose server requires a client certificate signed by the test CA."""
    device = new_device()
    server = await start_gnmi_server(
        device, HOST, free_port(HOST), tls=pki.server_tls(require_client_cert=True)
    )
    try:
        yield Lab(device, server, pki)
    finally:
        await server.stop()


@pytest.fixture
async def driver() -> AsyncIterator[GnmiDriver]:
    async with GnmiDriver(max_workers=4) as gnmi:
        yield gnmi

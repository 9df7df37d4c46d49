"""The simulated chain lab (the same seven devices as tests/integration/provisioning) and the
daemon's assembled parts (`oss.app.assemble`) with the REST app over them, for the BSS order
tests. Test modules import the fixtures they use from here
(`from tests.integration.bss.lab_fixtures import ...`).

    pe1 (NETCONF) -- p1 (gNMI) -- p2 (CLI) -- p3 (NETCONF) -- pe2 (gNMI), ce1/ce2 on the PEs
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from oss.api import create_app
from oss.app import assemble
from oss.auth_roles import Role
from oss.daemon import Daemon as Parts
from oss.settings import load_settings
from tests.integration.provisioning.conftest import ChainLab, running_chain_lab

BOUND_S = 90.0  # every wait for an order is bounded by this
FINAL = {"completed", "failed", "cancelled"}
PO = "/tmf-api/productOrderingManagement/v4"
SO = "/tmf-api/serviceOrdering/v4"
SI = "/tmf-api/serviceInventory/v4"


@pytest.fixture(scope="module")
def bss_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainLab]:
    with running_chain_lab(tmp_path_factory.mktemp("bss-lab"), "bss-lab") as lab:
        yield lab


@dataclass
class Daemon:
    parts: Parts
    viewer: httpx.AsyncClient
    operator: httpx.AsyncClient

    async def wait_order(self, order_id: str) -> dict[str, Any]:
        """The order once it reached a final state (bounded wait)."""
        async with asyncio.timeout(BOUND_S):
            while True:
                r = await self.viewer.get(f"{PO}/productOrder/{order_id}")
                assert r.status_code == 200, r.text
                doc: dict[str, Any] = r.json()
                if doc["state"] in FINAL:
                    return doc
                await asyncio.sleep(0.1)

    async def customer_and_account(self, customer: str, account: str) -> None:
        r = await self.operator.post(
            "/api/v1/customers", json={"id": customer, "name": f"{customer} Ltd"}
        )
        assert r.status_code == 201, r.text
        r = await self.operator.post(
            "/api/v1/accounts",
            json={"id": account, "customer": customer, "name": "main", "currency": "EUR"},
        )
        assert r.status_code == 201, r.text


def lab_settings(bss_lab: ChainLab, tmp_path: Path, **extra: Any) -> Any:
    return load_settings(
        None,
        state_dir=tmp_path,
        drivers={
            "allowed_networks": ["127.0.0.0/8"],
            "ports": bss_lab.lab.ports.as_dict(),
            "timeout_s": 15,
        },
        **extra,
    )


async def open_daemon(parts: Parts, clab_file: Path) -> AsyncIterator[Daemon]:
    """Clients for a viewer and an operator, the lab's topology imported."""
    transport = httpx.ASGITransport(app=create_app(parts))
    tokens = {}
    for role in (Role.VIEWER, Role.OPERATOR):
        tokens[role], _ = await parts.tokens.create(name=role.value, role=role, actor="t")

    def client(role: Role) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        return httpx.AsyncClient(transport=transport, base_url="http://oss.test", headers=headers)

    async with client(Role.VIEWER) as viewer, client(Role.OPERATOR) as operator:
        r = await operator.post(
            "/api/v1/topology/import",
            content=await asyncio.to_thread(clab_file.read_bytes),
            params={"filename": "chain5.clab.yml"},
            headers={"Content-Type": "application/yaml"},
        )
        assert r.status_code == 200, r.text
        yield Daemon(parts, viewer, operator)


@pytest.fixture
async def daemon(bss_lab: ChainLab, tmp_path: Path) -> AsyncIterator[Daemon]:
    async with assemble(lab_settings(bss_lab, tmp_path)) as parts:
        async for d in open_daemon(parts, bss_lab.clab_file):
            yield d
        await parts.services.close()

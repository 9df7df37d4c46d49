"""A simulated lab of seven devices configured over three protocols, an inventory of it in a
fresh SQLite database, and the provisioning engine and service manager wired to both.

    west                                                                  east
    pe1 (NETCONF) -- p1 (gNMI) -- p2 (CLI) -- p3 (NETCONF) -- pe2 (gNMI)
     |  \\____________________ slow 5 ms link ___________________/  |
    ce1 (customer edge on pe1:eth3)                       ce2 (on pe2:eth3)

The lab runs in its own thread and loop (as it would in its own process); the engine runs in
the test's loop and reaches the devices over loopback like any daemon would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from drivers.netconf import NetconfDriver
from lab.sim.lab import Lab
from oss.api import create_app
from oss.app import assemble
from oss.auth_roles import Role
from oss.inventory import Inventory
from oss.provisioning.access import DeviceAccess
from oss.provisioning.engine import Engine
from oss.provisioning.services import ServiceManager
from oss.settings import load_settings
from oss.store.database import Database
from tests.integration.lab.conftest import LoopThread, lab_in_thread, random_subnet
from topology.clab import parse_clab
from topology.targets import parse_networks, target_for

PLATFORMS = {
    "pe1": "lab-sim",
    "p1": "lab-sim-gnmi",
    "p2": "lab-sim-cli",
    "p3": "lab-sim",
    "pe2": "lab-sim-gnmi",
    "ce1": "lab-sim",
    "ce2": "lab-sim",
}
ROLES = {"pe1": "pe", "pe2": "pe", "p1": "p", "p2": "p", "p3": "p", "ce1": "ce", "ce2": "ce"}
SITES = {
    "pe1": "west",
    "pe2": "east",
    "p1": "core",
    "p2": "core",
    "p3": "core",
    "ce1": "west",
    "ce2": "east",
}
LOOPBACK = parse_networks(["127.0.0.0/8"])
TIMEOUT_S = 15.0  # driver time limit in these tests; the delay fault waits longer


def chain_clab(subnet_prefix: str, credentials: Path) -> str:
    nodes = []
    for i, (name, platform) in enumerate(PLATFORMS.items(), start=1):
        labels = (
            f"{{oss.role: {ROLES[name]}, oss.site: {SITES[name]}, oss.platform: {platform}, "
            f"oss.credentials-ref: 'file:{credentials}'}}"
        )
        nodes.append(f"    {name}:\n      mgmt-ipv4: {subnet_prefix}.{i}\n      labels: {labels}")
    links = [
        ("pe1:eth1", "p1:eth1", "100us"),
        ("p1:eth2", "p2:eth1", "100us"),
        ("p2:eth2", "p3:eth1", "100us"),
        ("p3:eth2", "pe2:eth1", "100us"),
        ("pe1:eth2", "pe2:eth2", "5ms"),
        ("ce1:eth1", "pe1:eth3", "50us"),  # customer access ports pe1:eth3, pe2:eth3
        ("ce2:eth1", "pe2:eth3", "50us"),
    ]
    link_text = "\n".join(
        f'    - endpoints: ["{a}", "{b}"]\n      vars: {{capacity: 1G, latency: {lat}}}'
        for a, b, lat in links
    )
    return (
        "name: chain5\ntopology:\n  defaults: {kind: linux}\n  nodes:\n"
        + "\n".join(nodes)
        + "\n  links:\n"
        + link_text
        + "\n"
    )


@dataclass
class ChainLab:
    lab: Lab
    loop: LoopThread
    clab_file: Path

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return self.loop.run(coro, timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        async def in_loop() -> Any:
            return fn(*args)

        return self.run(in_loop())

    async def set_node(self, name: str, up: bool) -> None:
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self.lab.set_node(name, up), self.loop.loop)
        )

    async def set_delay(self, name: str, seconds: float) -> None:
        async def in_loop() -> None:
            self.lab.set_delay(name, seconds)

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(in_loop(), self.loop.loop))


@pytest.fixture(scope="module")
def chain_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainLab]:
    with running_chain_lab(tmp_path_factory.mktemp("chain-lab"), "chain-lab") as lab:
        yield lab


@contextlib.contextmanager
def running_chain_lab(state: Path, name: str) -> Iterator[ChainLab]:
    """The chain lab on a random loopback subnet, started in its own loop thread `name`
    (state files under `state`), stopped on leaving."""
    prefix = random_subnet().rsplit(".", 1)[0]
    clab = state / "chain5.clab.yml"
    clab.write_text(chain_clab(prefix, state / "credentials.yaml"))
    with lab_in_thread(clab, state, name) as (lab, loop):
        yield ChainLab(lab, loop, clab)


@dataclass
class Stack:
    db: Database
    inventory: Inventory
    access: DeviceAccess
    engine: Engine
    services: ServiceManager


@pytest.fixture
async def stack(chain_lab: ChainLab, tmp_path: Path) -> AsyncIterator[Stack]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    await db.migrate()
    inventory = Inventory(db)
    await inventory.load()
    topo = parse_clab(chain_lab.clab_file.read_text(), str(chain_lab.clab_file))
    await inventory.import_topology(topo, actor="test", source=str(chain_lab.clab_file))
    access = DeviceAccess(
        device_of=inventory.graph.device,
        allowed=LOOPBACK,
        ports=chain_lab.lab.ports.as_dict(),
        timeout_s=TIMEOUT_S,
    )
    engine = Engine(access)
    services = ServiceManager(db, inventory, engine)
    try:
        yield Stack(db, inventory, access, engine, services)
    finally:
        await access.close()
        await db.close()


async def snapshot(stack: Stack) -> dict[str, str]:
    """Every device's whole running configuration, read over NETCONF (which every lab device
    serves, whatever protocol configures it)."""
    out: dict[str, str] = {}
    async with NetconfDriver() as nc:
        for name in PLATFORMS:
            device = stack.inventory.graph.device(name)
            target = target_for(
                device,
                "netconf",
                port=stack.access.ports.get("netconf"),
                allowed=LOOPBACK,
                timeout_s=10,
            )
            async with nc.connect(target) as session:
                out[name] = await session.get_config("running")
    return out


@dataclass
class Clients:
    viewer: httpx.AsyncClient
    operator: httpx.AsyncClient


@pytest.fixture
async def api(chain_lab: ChainLab, tmp_path: Path) -> AsyncIterator[Clients]:
    settings = load_settings(
        None,
        state_dir=tmp_path,
        drivers={
            "allowed_networks": ["127.0.0.0/8"],
            "ports": chain_lab.lab.ports.as_dict(),
            "timeout_s": 15,
        },
    )
    async with assemble(settings) as daemon:
        transport = httpx.ASGITransport(app=create_app(daemon))
        tokens = {}
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[role], _ = await daemon.tokens.create(name=role.value, role=role, actor="t")

        def client(role: Role) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {tokens[role]}"}
            return httpx.AsyncClient(
                transport=transport, base_url="http://oss.test", headers=headers
            )

        async with client(Role.VIEWER) as viewer, client(Role.OPERATOR) as operator:
            r = await operator.post(
                "/api/v1/topology/import",
                content=chain_lab.clab_file.read_bytes(),
                params={"filename": "chain5.clab.yml"},
                headers={"Content-Type": "application/yaml"},
            )
            assert r.status_code == 200, r.text
            yield Clients(viewer, operator)
        await daemon.services.close()

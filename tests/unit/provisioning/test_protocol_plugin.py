"""A configuration protocol is one module plus its registration: a toy protocol registered from
this test (an in-memory driver and its adapter, "key=value" payloads) renders a device's plan
and runs a transaction through the engine, with nothing else in provisioning edited. The
platform names it as a platform file would once drivers/ speaks it (the platform schema,
drivers.platforms.Protocol, is the driver's to extend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Target
from drivers.platforms import Platform, load_platform
from oss.provisioning.adapters import Adapter, Reached, restore_of
from oss.provisioning.engine import DeviceTxn, Engine, NoJournal, Transaction
from oss.provisioning.leaves import Intent
from oss.provisioning.plan import DevicePlan
from oss.provisioning.protocols import (
    PROTOCOLS,
    ConfigProtocol,
    build_drivers,
    config_protocol,
    register_protocol,
    render_device,
    template_kind,
)
from oss.provisioning.render import Renderer

DESCRIPTION = "interfaces/interface[name=eth9]/config/description"


class ToySession:
    """One device's configuration, kept by the driver between sessions."""

    def __init__(self, config: dict[str, str]) -> None:
        self.config = config


class ToyDriver:
    def __init__(self, *, max_workers: int) -> None:
        self.devices: dict[str, dict[str, str]] = {}
        self.closed = False

    @asynccontextmanager
    async def connect(self, target: Target) -> AsyncIterator[ToySession]:
        yield ToySession(self.devices.setdefault(target.name, {}))

    async def close(self) -> None:
        self.closed = True


class ToyAdapter:
    def __init__(self, session: ToySession) -> None:
        self.session = session

    async def read(self, plan: DevicePlan) -> dict[str, Any]:
        return dict(self.session.config)

    async def prepare(self, plan: DevicePlan) -> None:
        """Nothing staged: lines apply on commit."""

    async def commit(self, plan: DevicePlan, persist_id: str) -> None:
        self._apply(plan.intent)

    async def confirm(self, plan: DevicePlan, persist_id: str) -> None:
        """Nothing to confirm."""

    async def undo(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        if reached in ("committed", "confirmed"):
            self._apply(restore_of(plan, await self.read(plan)))

    recover = undo

    def _apply(self, intent: Intent) -> None:
        config = self.session.config
        for removed in intent.removals:
            for path in [p for p in config if p.startswith(removed)]:
                del config[path]
        config.update({path: str(value) for path, value in intent.leaves.items()})


def parse_toy(payload: str, platform: Platform) -> Intent:
    lines = [line for line in payload.splitlines() if line]
    leaves = dict(line.split(" = ", 1) for line in lines if not line.startswith("-"))
    return Intent(leaves, tuple(line[1:] for line in lines if line.startswith("-")))


def write_toy(intent: Intent, platform: Platform) -> str:
    lines = [f"-{path}" for path in intent.removals]
    return "\n".join([*lines, *(f"{path} = {value}" for path, value in intent.leaves.items())])


@pytest.fixture
def toy() -> Iterator[ConfigProtocol[ToySession]]:
    """The toy protocol, registered for the test only."""
    with PROTOCOLS.restoring():
        yield register_protocol(
            ConfigProtocol("toy", ToyDriver, ToyAdapter, "toy", parse=parse_toy, write=write_toy)
        )


@pytest.fixture
def platform() -> Platform:
    # A platform file naming "toy" loads once drivers.platforms.Protocol has the name.
    return load_platform("lab-sim-gnmi").model_copy(
        update={"name": "toy-box", "config_protocol": "toy"}
    )


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    (tmp_path / "toy-box").mkdir()
    (tmp_path / "toy-box" / "port.toy.j2").write_text(
        "-interfaces/interface[name=eth9]\n"
        "{% if mode != 'delete' %}" + DESCRIPTION + " = {{ description }}\n{% endif %}"
    )
    return Renderer(tmp_path)


class RegistryAccess:
    """DeviceAccess's part that the registry serves: the platform's protocol, a session from
    that protocol's driver, wrapped in its adapter (finding the target is the driver's)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.drivers = build_drivers(max_workers=1)

    @asynccontextmanager
    async def adapter(self, name: str) -> AsyncIterator[Adapter]:
        protocol = config_protocol(self.platform)
        target = Target(name=name, host="127.0.0.1", port=1)
        async with self.drivers[protocol.name].connect(target) as session:
            yield protocol.adapter(session)


async def test_a_registered_protocol_renders_and_runs_a_transaction(
    toy: ConfigProtocol[ToySession], platform: Platform, renderer: Renderer
) -> None:
    assert config_protocol(platform) is toy
    assert template_kind("toy") == "toy"

    plan = render_device(
        renderer,
        platform,
        f"toy-box/port.{template_kind('toy')}.j2",
        {"description": "svc-1 access"},
        mode="create",
        device="pe9",
    )
    assert plan.intent == Intent(
        {DESCRIPTION: "svc-1 access"}, ("interfaces/interface[name=eth9]",)
    )
    assert plan.owned == ("interfaces/interface[name=eth9]",)
    assert toy.parse(toy.write(plan.intent, platform), platform) == plan.intent

    access = RegistryAccess(platform)
    assert isinstance(access.drivers["toy"], ToyDriver)
    device = access.drivers["toy"].devices.setdefault("pe9", {})
    device["interfaces/interface[name=eth9]/config/mtu"] = "1500"  # a stale leaf it owns

    txn = Transaction(id=1, kind="create", devices=[DeviceTxn(plan, 0)])
    done = await Engine(access).run(txn, NoJournal())

    assert done.state == "committed"
    assert [d.state for d in done.devices] == ["confirmed"]
    assert device == {DESCRIPTION: "svc-1 access"}
    assert plan.pre_image == {"interfaces/interface[name=eth9]/config/mtu": "1500"}


def test_a_registered_protocol_leaves_with_its_test() -> None:
    assert "toy" not in PROTOCOLS
    assert set(PROTOCOLS) == {"netconf", "gnmi", "cli"}

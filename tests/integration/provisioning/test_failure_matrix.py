"""The failure-injection matrix: a slice across five devices (NETCONF, gNMI, CLI) while one
device refuses the change, goes down between prepare and commit, or stops answering at one
step, at the first, a middle and the last position. After every failure every device holds
exactly its original configuration, read back over NETCONF, and no bandwidth stays reserved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from drivers.netconf import NetconfDriver
from oss.provisioning.access import DeviceAccess
from oss.provisioning.engine import Engine, Step, StepEvent, TransactionFailed
from oss.provisioning.services import ServiceManager
from tests.integration.provisioning.conftest import LOOPBACK, ChainLab, Stack, snapshot
from topology.targets import target_for

pytestmark = pytest.mark.integration

SLICE = {"customer": "acme", "from": "west", "to": "east", "bandwidth": "100M"}
FAST_TIMEOUT_S = 4.0
DELAY_S = FAST_TIMEOUT_S + 3
# first, middle and last device of the path, one per protocol
POSITIONS = {"pe1": "eth1", "p2": "eth1", "pe2": "eth1"}
PROTOCOL = {"pe1": "netconf", "p2": "cli", "pe2": "gnmi"}
OC_NS = "http://openconfig.net/yang/interfaces"


@pytest.fixture
async def fast(stack: Stack, chain_lab: ChainLab) -> AsyncIterator[ServiceManager]:
    """The same stack with a short device time limit, so timeouts come quickly."""
    access = DeviceAccess(
        device_of=stack.inventory.graph.device,
        allowed=LOOPBACK,
        ports=chain_lab.lab.ports.as_dict(),
        timeout_s=FAST_TIMEOUT_S,
    )
    try:
        yield ServiceManager(stack.db, stack.inventory, Engine(access))
    finally:
        await access.close()


@dataclass
class Injection:
    device: str
    step: Step
    fault: str  # "down" or "timeout"
    chain_lab: ChainLab
    fired: bool = False

    async def __call__(self, device: str, step: Step, event: StepEvent, error: str | None) -> None:
        if device != self.device or step != self.step:
            return
        if event == "start" and not self.fired:
            self.fired = True
            if self.fault == "down":
                await self.chain_lab.set_node(device, False)
            else:
                await self.chain_lab.set_delay(device, DELAY_S)
        elif event == "failed" and self.fault == "timeout":
            await self.chain_lab.set_delay(device, 0)  # a transient stall: undo can reach it


async def assert_rolled_back(
    services: ServiceManager, stack: Stack, before: dict[str, str], exc: TransactionFailed
) -> None:
    assert await snapshot(stack) == before
    assert await services.reserved() == {}
    [service] = [s for s in await services.find() if s["state"] != "terminated"]
    assert service["state"] == "failed"
    assert service["error"] == exc.transaction.error
    await _forget(stack)


async def _forget(stack: Stack) -> None:
    """Failed services hold nothing; drop them so the next case starts from an empty book."""
    from sqlalchemy import delete

    from oss.store.tables import ServiceRow

    async with stack.db.transaction() as s:
        await s.execute(delete(ServiceRow))


@pytest.mark.parametrize("device", list(POSITIONS))
async def test_down_between_prepare_and_commit(
    fast: ServiceManager, stack: Stack, chain_lab: ChainLab, device: str
) -> None:
    before = await snapshot(stack)
    inject = Injection(device, "commit", "down", chain_lab)
    try:
        with pytest.raises(TransactionFailed) as failed:
            await fast.create("slice", SLICE, actor="test", observer=inject)
    finally:
        await chain_lab.set_node(device, True)
    assert inject.fired
    assert f"device {device}, step commit" in str(failed.value)
    await assert_rolled_back(fast, stack, before, failed.value)


TIMEOUT_CASES = [
    ("pe1", "prepare"),
    ("pe1", "commit"),
    ("pe1", "verify"),
    ("pe1", "confirm"),
    ("p2", "commit"),
    ("p2", "verify"),
    ("pe2", "commit"),
    ("pe2", "verify"),
]


@pytest.mark.parametrize(("device", "step"), TIMEOUT_CASES)
async def test_device_times_out(
    fast: ServiceManager, stack: Stack, chain_lab: ChainLab, device: str, step: Step
) -> None:
    before = await snapshot(stack)
    inject = Injection(device, step, "timeout", chain_lab)
    try:
        with pytest.raises(TransactionFailed) as failed:
            await fast.create("slice", SLICE, actor="test", observer=inject)
    finally:
        await chain_lab.set_delay(device, 0)
    assert inject.fired
    assert f"device {device}, step {step}" in str(failed.value)
    assert "within" in str(failed.value)  # the driver's time-limit message
    await assert_rolled_back(fast, stack, before, failed.value)


@pytest.mark.parametrize("device", list(POSITIONS))
async def test_device_refuses_the_change(stack: Stack, chain_lab: ChainLab, device: str) -> None:
    """Someone configured VLAN 100 on the device's uplink by hand: the slice's VLAN (the
    pool's first) clashes there, and the device refuses: at validate over NETCONF, at Set
    over gNMI, at the line over the CLI."""
    interface = POSITIONS[device]
    await _hand_config(stack, device, interface, vlan=100, create=True)
    try:
        before = await snapshot(stack)
        with pytest.raises(TransactionFailed) as failed:
            await stack.services.create("slice", SLICE, actor="test")
        step = "prepare" if PROTOCOL[device] == "netconf" else "commit"
        assert f"device {device}, step {step}" in str(failed.value)
        assert "vlan" in str(failed.value).lower()
        await assert_rolled_back(stack.services, stack, before, failed.value)
    finally:
        await _hand_config(stack, device, interface, vlan=100, create=False)


async def _hand_config(
    stack: Stack, device: str, interface: str, *, vlan: int, create: bool
) -> None:
    sub = (
        f"<index>7</index><config><index>7</index></config>"
        f"<vlan><config><vlan-id>{vlan}</vlan-id></config></vlan>"
        if create
        else "<index>7</index>"
    )
    base_ns = 'xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"'
    op = "" if create else f' {base_ns} nc:operation="remove"'
    xml = (
        f'<interfaces xmlns="{OC_NS}"><interface><name>{interface}</name><subinterfaces>'
        f"<subinterface{op}>{sub}</subinterface></subinterfaces></interface></interfaces>"
    )
    target = target_for(
        stack.inventory.graph.device(device),
        "netconf",
        port=stack.access.ports.get("netconf"),
        allowed=LOOPBACK,
        timeout_s=10,
    )
    async with NetconfDriver() as nc, nc.connect(target) as session:
        await session.edit_config(xml)
        await session.commit()

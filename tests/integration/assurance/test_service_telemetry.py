"""The assurance service on the simulated lab, telemetry chosen per device by its platform:
r1 on lab-sim-gnmi (gNMI streaming), r3 on lab-sim (SNMP polling). KPIs arrive from both; a
link brought down on the gNMI device raises its interface-down alarm; the gNMI device going
down and coming back gives one unreachable alarm, raised once and cleared once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from oss.assurance.gnmi_collector import GnmiCollectorSettings
from oss.assurance.service import AssuranceService
from oss.events import KPI_INTERFACE, REACHABILITY
from oss.faults.rules import interface_down_key, unreachable_key
from oss.outputs.prometheus import KpiGauges
from oss.outputs.rollup import MinuteRollup
from oss.runtime import Runtime
from oss.settings import AssuranceSettings, PollerSettings, load_settings
from oss.store.tables import AlarmRow
from tests.integration.assurance.conftest import LOOPBACK, CollectingSink, wait_until
from tests.integration.lab.conftest import RunningLab
from topology.model import Device, Interface, OperState

pytestmark = pytest.mark.integration

GNMI_DEVICE, SNMP_DEVICE = "r1", "r3"  # not neighbours in ring4: r1's links reach r2 and r4


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime(load_settings(None, state_dir=tmp_path / "state")) as running:
        yield running


async def open_alarm_keys(runtime: Runtime) -> set[str]:
    async with runtime.db.transaction() as session:
        rows = await session.scalars(select(AlarmRow.reduction_key).where(AlarmRow.open))
        return set(rows.all())


async def test_gnmi_and_snmp_devices_side_by_side(lab: RunningLab, runtime: Runtime) -> None:
    for name, platform in ((GNMI_DEVICE, "lab-sim-gnmi"), (SNMP_DEVICE, "lab-sim")):
        device = Device(
            name=name,
            platform=platform,
            mgmt_address=lab.address(name),
            credentials_ref=f"file:{lab.lab.credentials_file}",
        )
        await runtime.inventory.add_device(device, actor="test")
    await runtime.inventory.add_interface(Interface(device=GNMI_DEVICE, name="eth1"), actor="test")
    sink = CollectingSink()
    settings = AssuranceSettings(polling=PollerSettings(interval_s=0.5), refresh_s=0.5)
    service = AssuranceService(
        settings,
        runtime.inventory,
        runtime.alarms,
        KpiGauges(CollectorRegistry()),
        MinuteRollup(runtime.db),
        allowed=LOOPBACK,
        snmp_port=lab.lab.ports.snmp,
        gnmi_port=lab.lab.ports.gnmi,
        gnmi=GnmiCollectorSettings(sample_interval_s=0.5, backoff_initial_s=0.2, backoff_max_s=1.0),
        outputs=[sink],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:

        def rates(device: str) -> int:
            return sum("in-bps" in e.values for e in sink.named(KPI_INTERFACE, device))

        await wait_until(lambda: rates(GNMI_DEVICE) >= 4 and rates(SNMP_DEVICE) >= 4)
        # Each device is collected by the protocol its platform names, and only by that one.
        assert service.gnmi is not None and service.poller is not None
        assert set(service.gnmi.reachability) == {GNMI_DEVICE}
        assert set(service.poller.reachability) == {SNMP_DEVICE}
        gnmi_ifs = sink.named("interface", GNMI_DEVICE)
        assert gnmi_ifs and all("ifindex" not in e.tags for e in gnmi_ifs)  # no SNMP rows
        assert all("ifindex" in e.tags for e in sink.named("interface", SNMP_DEVICE))

        # A link fault on the gNMI device: its interface-down alarm, from the ON_CHANGE update.
        # The inventory's oper_state follows the streamed status (defect 12).
        def oper_state() -> OperState:
            return runtime.inventory.graph.interface(GNMI_DEVICE, "eth1").oper_state

        await wait_until(lambda: oper_state() == OperState.UP)
        lab.set_link(f"{GNMI_DEVICE}:eth1", False)
        key = interface_down_key(GNMI_DEVICE, "eth1")
        await wait_until_async(lambda: key_open(runtime, key))
        await wait_until(lambda: oper_state() == OperState.DOWN)
        lab.set_link(f"{GNMI_DEVICE}:eth1", True)
        await wait_until_async(lambda: key_closed(runtime, key))
        await wait_until(lambda: oper_state() == OperState.UP)

        # The gNMI device goes down (its session drops and cannot come back): unreachable once;
        # it returns: reachable once, and the alarm clears.
        lab.set_node(GNMI_DEVICE, False)
        unreachable = unreachable_key(GNMI_DEVICE)
        await wait_until_async(lambda: key_open(runtime, unreachable))
        collector = service.gnmi
        attempts = collector.subscriptions(GNMI_DEVICE)
        failures = collector.failures
        await wait_until(lambda: collector.failures >= failures + 3)  # still down: silent
        lab.set_node(GNMI_DEVICE, True)
        await wait_until_async(lambda: key_closed(runtime, unreachable))
        assert collector.subscriptions(GNMI_DEVICE) == attempts + 1
        flips = [e.values["reachable"] for e in sink.named(REACHABILITY, GNMI_DEVICE)]
        assert flips == [True, False, True]
        assert [e.values["reachable"] for e in sink.named(REACHABILITY, SNMP_DEVICE)] == [True]
        # Raised once, cleared once: one alarm, with no repeats folded into it.
        async with runtime.db.transaction() as session:
            rows = await session.scalars(
                select(AlarmRow).where(AlarmRow.reduction_key == unreachable)
            )
            [alarm] = rows.all()
        assert alarm.count == 1 and not alarm.open
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def key_open(runtime: Runtime, key: str) -> bool:
    return key in await open_alarm_keys(runtime)


async def key_closed(runtime: Runtime, key: str) -> bool:
    return key not in await open_alarm_keys(runtime)


async def wait_until_async(
    condition: Callable[[], Awaitable[bool]], timeout_s: float = 20.0
) -> None:
    """`wait_until` for a condition that needs the database."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.1)

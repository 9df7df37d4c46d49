"""The assurance pipeline on the simulated lab, telemetry chosen per device by its platform:
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

from oss.app import assemble
from oss.assurance.gnmi_collector import GnmiCollector, GnmiCollectorSettings
from oss.assurance.pipeline import AssurancePipeline
from oss.assurance.poller import SnmpPoller
from oss.daemon import Daemon
from oss.events import KPI_INTERFACE, REACHABILITY
from oss.faults.alarm_output import alarm_output
from oss.faults.rules import interface_down_key, unreachable_key
from oss.outputs.prometheus import KpiGauges
from oss.outputs.rollup import MinuteRollup
from oss.settings import AssuranceSettings, PollerSettings, load_settings
from oss.store.tables import AlarmRow
from tests.integration.assurance.conftest import LOOPBACK, CollectingSink, wait_until
from tests.integration.lab.conftest import RunningLab
from topology.model import Device, Interface, OperState

pytestmark = pytest.mark.integration

GNMI_DEVICE, SNMP_DEVICE = "r1", "r3"  # not neighbours in ring4: r1's links reach r2 and r4


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with assemble(load_settings(None, state_dir=tmp_path / "state")) as running:
        yield running


async def open_alarm_keys(daemon: Daemon) -> set[str]:
    async with daemon.db.transaction() as session:
        rows = await session.scalars(select(AlarmRow.reduction_key).where(AlarmRow.open))
        return set(rows.all())


async def test_gnmi_and_snmp_devices_side_by_side(lab: RunningLab, daemon: Daemon) -> None:
    for name, platform in ((GNMI_DEVICE, "lab-sim-gnmi"), (SNMP_DEVICE, "lab-sim")):
        device = Device(
            name=name,
            platform=platform,
            mgmt_address=lab.address(name),
            credentials_ref=f"file:{lab.lab.credentials_file}",
        )
        await daemon.inventory.add_device(device, actor="test")
    await daemon.inventory.add_interface(Interface(device=GNMI_DEVICE, name="eth1"), actor="test")
    sink = CollectingSink()
    settings = AssuranceSettings(polling=PollerSettings(interval_s=0.5), refresh_s=0.5)
    outputs = [
        KpiGauges(CollectorRegistry()),
        MinuteRollup(daemon.db),
        sink,
        alarm_output(settings.thresholds, daemon.alarms),
    ]
    gnmi = GnmiCollectorSettings(sample_interval_s=0.5, backoff_initial_s=0.2, backoff_max_s=1.0)
    service = AssurancePipeline(
        settings,
        daemon.inventory,
        outputs,
        allowed=LOOPBACK,
        ports={"snmp": lab.lab.ports.snmp, "gnmi": lab.lab.ports.gnmi},
        options={"gnmi": gnmi},
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:

        def rates(device: str) -> int:
            return sum("in-bps" in e.values for e in sink.named(KPI_INTERFACE, device))

        await wait_until(lambda: rates(GNMI_DEVICE) >= 4 and rates(SNMP_DEVICE) >= 4)
        # Each device is collected by the protocol its platform names, and only by that one.
        collector, poller = service.collector("gnmi"), service.collector("snmp")
        assert isinstance(collector, GnmiCollector) and isinstance(poller, SnmpPoller)
        assert set(collector.reachability) == {GNMI_DEVICE}
        assert set(poller.reachability) == {SNMP_DEVICE}
        gnmi_ifs = sink.named("interface", GNMI_DEVICE)
        assert gnmi_ifs and all("ifindex" not in e.tags for e in gnmi_ifs)  # no SNMP rows
        assert all("ifindex" in e.tags for e in sink.named("interface", SNMP_DEVICE))

        # A link fault on the gNMI device: its interface-down alarm, from the ON_CHANGE update.
        # The inventory's oper_state follows the streamed status (defect 12).
        def oper_state() -> OperState:
            return daemon.inventory.graph.interface(GNMI_DEVICE, "eth1").oper_state

        await wait_until(lambda: oper_state() == OperState.UP)
        lab.set_link(f"{GNMI_DEVICE}:eth1", False)
        key = interface_down_key(GNMI_DEVICE, "eth1")
        await wait_until_async(lambda: key_open(daemon, key))
        await wait_until(lambda: oper_state() == OperState.DOWN)
        lab.set_link(f"{GNMI_DEVICE}:eth1", True)
        await wait_until_async(lambda: key_closed(daemon, key))
        await wait_until(lambda: oper_state() == OperState.UP)

        # The gNMI device goes down (its session drops and cannot come back): unreachable once;
        # it returns: reachable once, and the alarm clears.
        lab.set_node(GNMI_DEVICE, False)
        unreachable = unreachable_key(GNMI_DEVICE)
        await wait_until_async(lambda: key_open(daemon, unreachable))
        attempts = collector.subscriptions(GNMI_DEVICE)
        failures = collector.failures
        await wait_until(lambda: collector.failures >= failures + 3)  # still down: silent
        lab.set_node(GNMI_DEVICE, True)
        await wait_until_async(lambda: key_closed(daemon, unreachable))
        assert collector.subscriptions(GNMI_DEVICE) == attempts + 1
        flips = [e.values["reachable"] for e in sink.named(REACHABILITY, GNMI_DEVICE)]
        assert flips == [True, False, True]
        assert [e.values["reachable"] for e in sink.named(REACHABILITY, SNMP_DEVICE)] == [True]
        # Raised once, cleared once: one alarm, with no repeats folded into it.
        async with daemon.db.transaction() as session:
            rows = await session.scalars(
                select(AlarmRow).where(AlarmRow.reduction_key == unreachable)
            )
            [alarm] = rows.all()
        assert alarm.count == 1 and not alarm.open
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def key_open(daemon: Daemon, key: str) -> bool:
    return key in await open_alarm_keys(daemon)


async def key_closed(daemon: Daemon, key: str) -> bool:
    return key not in await open_alarm_keys(daemon)


async def wait_until_async(
    condition: Callable[[], Awaitable[bool]], timeout_s: float = 20.0
) -> None:
    """`wait_until` for a condition that needs the database."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.1)

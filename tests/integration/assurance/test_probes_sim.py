"""Active latency probes on the simulated lab (ring4), through the daemon's own parts: the
assurance pipeline probes an active service from its A-end's SSH CLI (the lab's `ping`, which
answers from the lab's route), the minute roll-ups keep `latency-ms`, and

- a latency fault on a link of the service's route moves the KPI by the round trip it adds;
- the SLA report (GET /api/v1/sla/svc-a) goes from met to a missed latency window;
- a `latency-ms` threshold raises its alarm on the service, and clears once the fault ends.

Nothing is timed: each step waits (bounded) for the probe round that shows it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oss.app import assemble
from oss.assurance.pipeline import AssurancePipeline
from oss.assurance.probes import LATENCY, ProbeCollector
from oss.daemon import Daemon
from oss.events import KPI_SERVICE
from oss.faults.alarm_output import alarm_output
from oss.outputs.rollup import MinuteRollup
from oss.settings import AssuranceSettings, PollerSettings, ProbeSettings, load_settings
from oss.store.service_queries import active_service_ends
from tests.integration.assurance.conftest import LOOPBACK, CollectingSink, wait_until
from tests.integration.lab.conftest import RunningLab
from tests.probe_service import add_active_service, alarm_open, sla_report, until_alarm
from topology.model import Device

pytestmark = pytest.mark.integration

SERVICE = "svc-a"  # r1 -> r3: the lab routes it r1, r2, r3 (0.5 ms a link, each way)
FAULTED = "r2:eth2"  # the r2-r3 link, on that route
THRESHOLD = {"metric": LATENCY, "raise_above": 15, "clear_below": 10}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with assemble(load_settings(None, state_dir=tmp_path / "state")) as running:
        yield running


def _latencies(sink: CollectingSink) -> list[float]:
    return [
        float(e.values[LATENCY])
        for e in sink.events
        if e.name == KPI_SERVICE and LATENCY in e.values
    ]


async def test_a_latency_fault_moves_the_kpi_the_sla_and_raises_a_threshold_alarm(
    lab: RunningLab, daemon: Daemon
) -> None:
    for name in ("r1", "r2", "r3"):
        device = Device(
            name=name,
            platform="lab-sim",
            mgmt_address=lab.address(name),
            credentials_ref=f"file:{lab.lab.credentials_file}",
        )
        await daemon.inventory.add_device(device, actor="test")
    await add_active_service(daemon, SERVICE, ["r1", "r2", "r3"])
    sink = CollectingSink()
    rollup = MinuteRollup(daemon.db)
    settings = AssuranceSettings(
        polling=PollerSettings(interval_s=60),
        refresh_s=0.5,
        thresholds=[THRESHOLD],
        probes=ProbeSettings(interval_s=0.2),
    )
    pipeline = AssurancePipeline(
        settings,
        daemon.inventory,
        [rollup, sink, alarm_output(settings.thresholds, daemon.alarms)],
        allowed=LOOPBACK,
        ports={"snmp": lab.lab.ports.snmp, "cli": lab.lab.ports.cli},
        services=lambda: active_service_ends(daemon.db),
    )
    probes = pipeline.collector("probes")
    assert isinstance(probes, ProbeCollector)
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(stop))
    try:
        # Before: the route's round trip, 2 x (0.5 + 0.5) ms, and the SLA's 10 ms is met.
        await wait_until(lambda: len(_latencies(sink)) >= 1)
        before = _latencies(sink)
        assert all(1.9 < ms < 3.0 for ms in before), before
        event = next(e for e in sink.events if e.name == KPI_SERVICE)
        assert event.tags == {"service": SERVICE, "device": "r1", "target": lab.address("r3")}
        assert event.values["loss-pct"] == 0.0
        await rollup.flush()
        met = await sla_report(daemon, SERVICE)
        assert met["latency"]["windowsMeasured"] >= 1 and met["latency"]["met"] is True
        assert not await alarm_open(daemon, f"tca:{LATENCY}:{SERVICE}")

        # 20 ms more on one link of the route, each way: the round trip grows by 40 ms.
        lab.call(lab.lab.impair, FAULTED, latency_us=20_500)
        seen = len(_latencies(sink))
        await wait_until(lambda: len(_latencies(sink)) >= seen + 2)
        after = _latencies(sink)[seen + 1 :]  # a round may have started before the fault
        assert all(39.0 < ms - max(before) < 41.0 for ms in after), (before, after)
        await rollup.flush()
        missed = await sla_report(daemon, SERVICE)
        assert missed["met"] is False and missed["latency"]["met"] is False
        assert missed["latency"]["windowsMissed"] >= 1
        assert missed["availability"]["outageWindows"] == []  # slow is not down
        await until_alarm(daemon, f"tca:{LATENCY}:{SERVICE}", True)

        # The fault ends: the KPI comes back and the threshold alarm clears.
        lab.call(lab.lab.impair, FAULTED, latency_us=500)
        seen = len(_latencies(sink))
        await wait_until(lambda: len(_latencies(sink)) >= seen + 2)
        assert _latencies(sink)[-1] < 3.0
        await until_alarm(daemon, f"tca:{LATENCY}:{SERVICE}", False)
        assert probes.counts()["probes_failed"] == 0
        assert probes.skipped == {}
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

"""Active latency probes on real software: the triangle namespace lab (FRR, sshd with vtysh as
the login shell, tests/data/netns/triangle.clab.yml) and the daemon's parts running inside the
lab's management namespace, as `oss serve` would.

The service r1 -> r2 is probed from r1's vtysh (`ping WORD`, ended by Ctrl-C: the frr
platform's probe data) to r2's loopback, which OSPF routes over the r1:eth1 -- r2:eth1 link.
`delay 20ms` on r1:eth1 (the lab's fault: tc netem, or its user-space delay line) moves
`latency-ms` by about 20 ms (the echo requests wait, the replies do not), and the SLA report
shows the 10 ms latency target missed. Before and after are compared; nothing is timed."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.netns.plan import LabPlan
from lab.netns.safety import assert_contained
from oss.app import assemble
from oss.assurance.pipeline import AssurancePipeline
from oss.assurance.probes import LATENCY, ProbeCollector
from oss.events import KPI_SERVICE, Event
from oss.outputs.rollup import MinuteRollup
from oss.settings import AssuranceSettings, PollerSettings, ProbeSettings, load_settings
from oss.store.service_queries import active_service_ends
from tests.peers.netns_lab import NetnsLab, netns_lab_unavailable, running_netns_lab
from tests.peers.ports import free_udp_port
from tests.probe_service import add_active_service, sla_report
from topology.model import Device
from topology.targets import parse_networks

# serial: under -n 3 its SLA window once closed before the delayed probes counted; alone it passes
pytestmark = [pytest.mark.integration, pytest.mark.serial]

TRIANGLE = Path(__file__).resolve().parents[2] / "data" / "netns" / "triangle.clab.yml"
SERVICE = "svc-r1-r2"
FAULTED = "r1:eth1"  # r1's end of the r1 -- r2 link: its egress carries the echo requests
WAIT_S = 60.0
SLA_TARGET_MS = 10.0  # tests/probe_service.py's offering: a round trip


@dataclass
class Triangle:
    lab: NetnsLab
    credentials: Path  # the lab's credentials file (its known_hosts named in it)


def _routed(plan: LabPlan, source: str, destination: str) -> bool:
    """Whether `source` has its OSPF route to `destination`'s loopback."""
    namespace, loopback = plan.node(source).namespace, plan.node(destination).loopback
    done = subprocess.run(
        ["ip", "-n", namespace, "route", "show", loopback],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "via" in done.stdout


@pytest.fixture(scope="module")
def triangle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Triangle]:
    reason = netns_lab_unavailable()
    if reason is not None:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("probes-netns")
    with running_netns_lab(TRIANGLE, base / "lab", trap_port=free_udp_port()) as lab:
        assert_contained(lab.plan)  # before any traffic: no namespace of the lab has a way out
        deadline = time.monotonic() + WAIT_S
        while not _routed(lab.plan, "r1", "r2"):
            assert time.monotonic() < deadline, "r1 never had its OSPF route to r2's loopback"
            time.sleep(0.3)
        yield Triangle(lab, lab.credentials_file)


def _latencies(events: list[Event]) -> list[float]:
    return [
        float(e.values[LATENCY]) for e in events if e.name == KPI_SERVICE and LATENCY in e.values
    ]


class _Sink:
    name = "collected"

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def offer(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


async def _until(what: str, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"never happened within {timeout_s:.0f}s: {what}") from None


async def _scenario(
    triangle: Triangle, state_dir: Path
) -> tuple[list[float], list[float], dict[str, Any], dict[str, Any]]:
    """In the management namespace: the daemon's parts probe the service before and during the
    fault; returns the latencies and the SLA reports before and after."""
    lab, plan = triangle.lab, triangle.lab.plan
    settings = load_settings(
        None,
        state_dir=state_dir,
        drivers={
            "credentials_dirs": [str(lab.state_dir)],
            "allowed_networks": [plan.mgmt_subnet],
        },
    )
    async with assemble(settings) as daemon:
        for node in plan.nodes:
            device = Device(
                name=node.name,
                platform="frr",
                mgmt_address=node.mgmt_address,
                loopback=node.loopback,
                credentials_ref=f"file:{triangle.credentials}",
            )
            await daemon.inventory.add_device(device, actor="test")
        await add_active_service(daemon, SERVICE, ["r1", "r2"])
        sink, rollup = _Sink(), MinuteRollup(daemon.db)
        pipeline = AssurancePipeline(
            AssuranceSettings(
                polling=PollerSettings(interval_s=60),
                refresh_s=0.5,
                probes=ProbeSettings(interval_s=0.1),
            ),
            daemon.inventory,
            [rollup, sink],
            allowed=parse_networks([plan.mgmt_subnet]),
            credentials_dirs=settings.drivers.credentials_dirs,
            services=lambda: active_service_ends(daemon.db),
        )
        probes = pipeline.collector("probes")
        assert isinstance(probes, ProbeCollector)
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        try:
            await _until("a probe of the service", lambda: len(_latencies(sink.events)) >= 1)
            before = _latencies(sink.events)
            first = next(e for e in sink.events if e.name == KPI_SERVICE)
            target = plan.node("r2").loopback
            assert first.tags == {"service": SERVICE, "device": "r1", "target": target}
            await rollup.flush()
            met = await sla_report(daemon, SERVICE)

            await asyncio.to_thread(lab.fault_link, FAULTED, "delay", "20ms")
            seen = len(_latencies(sink.events))

            # a round may have started before the fault: the second one after it counts; and the
            # SLA window's mean (every probe in it, the quick ones before the fault too) must
            # pass the target, which takes a few delayed probes.
            def delayed_enough() -> bool:
                every = _latencies(sink.events)
                return len(every) >= seen + 2 and sum(every) / len(every) > SLA_TARGET_MS + 2

            await _until("probes under the fault pass the SLA's target", delayed_enough)
            after = _latencies(sink.events)[seen + 1 :]
            await rollup.flush()
            missed = await sla_report(daemon, SERVICE)
            await asyncio.to_thread(lab.fault_link, FAULTED, "clear")
            assert probes.counts()["probes_failed"] == 0, "a probe failed (see the log)"
            return before, after, met, missed
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


def test_a_delay_fault_moves_latency_ms_by_its_delay_and_breaks_the_sla(
    triangle: Triangle, tmp_path: Path
) -> None:
    before, after, met, missed = triangle.lab.mgmt.call(
        asyncio.run, _scenario(triangle, tmp_path / "daemon")
    )
    assert all(ms < 5.0 for ms in before), before  # a veth or two: well under a millisecond
    assert met["latency"]["met"] is True and met["latency"]["windowsMeasured"] >= 1
    moved = min(after) - max(before)
    # 20 ms one way: each request waits at least that; a loaded host's delay line (no netem in
    # this kernel) can hold a frame longer, never shorter.
    assert 15.0 < moved < 100.0, (before, after)
    assert missed["met"] is False and missed["latency"]["met"] is False
    assert missed["latency"]["windowsMissed"] >= 1

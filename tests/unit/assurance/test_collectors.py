"""The collectors registry: SNMP poll, gNMI stream and traps register themselves, the pipeline
builds every registered collector, follows the inventory for each and offers every event list
they make to its outputs; a new collector is one registration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from oss.app import assemble
from oss.assurance import collectors
from oss.assurance.collectors import (
    CollectorContext,
    Sink,
    Targets,
    collector_names,
    register_collector,
)
from oss.assurance.gnmi_collector import GnmiCollector
from oss.assurance.pipeline import COLLECTOR_MODULES, AssurancePipeline
from oss.assurance.poller import SnmpPoller
from oss.assurance.traps import TrapCollector
from oss.daemon import Daemon
from oss.events import Event
from oss.metrics import Metrics
from oss.settings import AssuranceSettings, load_settings
from topology.model import Device


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with assemble(load_settings(None, state_dir=tmp_path)) as running:
        await running.inventory.add_device(
            Device(name="r1", mgmt_address="127.0.0.9"), actor="test"
        )
        yield running


@pytest.fixture
def only_new_collectors() -> Iterator[None]:
    """The registry holds only what the test registers, and is restored after it."""
    with collectors.COLLECTORS.restoring(empty=True):
        yield


def test_the_shipped_collectors_register_themselves() -> None:
    assert [module.__name__ for module in COLLECTOR_MODULES] == [
        "oss.assurance.poller",
        "oss.assurance.gnmi_collector",
        "oss.assurance.traps",
        "oss.assurance.probes",
    ]
    assert set(collector_names()) >= {"snmp", "gnmi", "traps", "probes"}


async def test_the_pipeline_builds_every_collector(daemon: Daemon) -> None:
    pipeline = AssurancePipeline(AssuranceSettings(), daemon.inventory, [])
    assert isinstance(pipeline.collector("snmp"), SnmpPoller)
    assert isinstance(pipeline.collector("gnmi"), GnmiCollector)
    assert isinstance(pipeline.collector("traps"), TrapCollector)
    # oss_collection keeps its counters, zero before anything ran (the trap receiver's: its
    # queue's and the kernel's drops, and its socket's receive buffer)
    assert pipeline.collection_counts() == {
        "polls": 0,
        "poll_failures": 0,
        "traps_received": 0,
        "traps_dropped": 0,
        "traps_kernel_dropped": 0,
        "udp_rcvbuf_errors": 0,
        "traps_receive_buffer_bytes": 0,
        "probes": 0,
        "probes_failed": 0,
        "probe_services_skipped": 0,
    }
    metrics = Metrics()
    pipeline.watch(metrics)
    exposition = metrics.exposition().decode()
    assert 'oss_collection{counter="traps_dropped"} 0.0' in exposition


class Once:
    """A collector that reports one event list, then waits for the stop."""

    name = "once"

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.followed: list[Targets] = []
        self.restarts: list[str] = []

    def follow(self, targets: Targets) -> None:
        self.followed.append(targets)

    def restarted(self, device: str) -> None:
        self.restarts.append(device)

    def counts(self) -> Mapping[str, int]:
        return {"once": 1}

    async def run(self, stop: asyncio.Event) -> None:
        trap = Event("snmp.trap", 1, {"device": "r1", "trap": "coldStart"})
        await self.sink([trap])
        await stop.wait()


class Stopping:
    """An output that keeps what it is offered and stops the pipeline."""

    name = "stopping"

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.events: list[Event] = []

    async def offer(self, events: Sequence[Event]) -> None:
        self.events.extend(events)
        self.stop.set()


@pytest.mark.usefixtures("only_new_collectors")
async def test_a_new_collector_is_one_registration(daemon: Daemon) -> None:
    @register_collector("once")
    def _once(context: CollectorContext) -> Once:
        return Once(context.sink)

    stop = asyncio.Event()
    output = Stopping(stop)
    pipeline = AssurancePipeline(AssuranceSettings(), daemon.inventory, [output])
    once = pipeline.collector("once")
    assert isinstance(once, Once)
    await pipeline.run(stop)  # returns once the output has the list and set the stop

    assert [e.name for e in output.events] == ["snmp.trap"]
    assert once.restarts == ["r1"]  # a coldStart: the collectors' counters start again
    # the inventory as targets: by protocol (the registry's names), and every device's address
    [targets] = once.followed
    assert dict(targets.by_protocol) == {"once": []}  # r1 has no credentials: not collected
    assert dict(targets.sources) == {"127.0.0.9": "r1"}
    assert pipeline.collection_counts() == {"once": 1}

"""An output that fails (defect 2: the roll-up's KeyError took the batch from the outputs and
the alarms) is counted on /metrics by name and logged; the other outputs still get the batch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from oss.app import assemble
from oss.assurance.pipeline import AssurancePipeline
from oss.daemon import Daemon
from oss.errors import Fenced
from oss.events import Event
from oss.faults.alarm_output import alarm_output
from oss.outputs.prometheus import KpiGauges
from oss.outputs.registry import Output
from oss.outputs.rollup import MinuteRollup
from oss.settings import AssuranceSettings, load_settings
from oss.store.tables import AlarmRow
from topology.model import Device


class BrokenRollup(MinuteRollup):
    async def offer(self, events: Sequence[Event]) -> None:
        raise KeyError("an open bucket")


class Collected:
    name = "collected"

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def offer(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with assemble(load_settings(None, state_dir=tmp_path)) as running:
        await running.inventory.add_device(Device(name="acc4"), actor="test")
        yield running


def link_down(device: str) -> Event:
    tags = {"device": device, "trap": "linkDown", "ifindex": "2", "source": "127.0.0.1:1"}
    return Event("snmp.trap", 1, tags, {"ifIndex.2": 2, "ifOperStatus.2": 2})


async def test_a_failing_sink_is_counted_logged_once_and_skipped(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    output = Collected()
    settings = AssuranceSettings()
    outputs: list[Output] = [
        KpiGauges(CollectorRegistry()),
        BrokenRollup(daemon.db),
        output,
        alarm_output(settings.thresholds, daemon.alarms),
    ]
    service = AssurancePipeline(settings, daemon.inventory, outputs)
    service.watch(daemon.metrics)
    with caplog.at_level(logging.DEBUG, logger="oss.assurance.pipeline"):
        await service.sink([link_down("acc4")])
        await service.sink([link_down("acc4"), link_down("acc4")])

    assert len(output.events) == 3  # the output after the failing roll-up got every batch
    async with daemon.db.read() as session:
        keys = (await session.scalars(select(AlarmRow.reduction_key))).all()
    assert len(keys) == 1  # and so did the alarms
    exposition = daemon.metrics.exposition().decode()
    assert 'oss_event_sink_failed_events_total{sink="rollup"} 3.0' in exposition
    logged = [r for r in caplog.records if "the rollup sink failed" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.ERROR, logging.DEBUG]  # once per streak


class RefusedFlush(MinuteRollup):
    async def flush(self, *, before: object = None) -> None:
        raise Fenced("write refused by the database: lease 'member:a' token 4 is stale")


class Flushed(Collected):
    flushed = 0

    async def flush(self) -> None:
        self.flushed += 1


async def test_a_last_flush_refused_by_the_fence_is_said_and_the_others_still_flush(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    """At stop, an instance that is no longer a member of its cluster has its last roll-ups
    refused: said, not a crash (oss serve exited 1 on SIGTERM), and the next output flushes."""
    later = Flushed()
    service = AssurancePipeline(
        AssuranceSettings(), daemon.inventory, [RefusedFlush(daemon.db), later]
    )
    stop = asyncio.Event()
    stop.set()
    with caplog.at_level(logging.WARNING, logger="oss.assurance.pipeline"):
        await service.run(stop)
    assert later.flushed == 1
    assert any(
        "rollup: its last flush was refused" in r.getMessage() and "token 4" in r.getMessage()
        for r in caplog.records
    )

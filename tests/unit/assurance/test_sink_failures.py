"""A sink that fails (defect 2: the roll-up's KeyError took the batch from the outputs and the
alarms) is counted on /metrics by name and logged; the other sinks still get the batch."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from oss.app import watch_assurance
from oss.assurance.service import AssuranceService
from oss.events import Event
from oss.runtime import Runtime
from oss.settings import AssuranceSettings, load_settings
from oss.store.tables import AlarmRow
from oss.telemetry.metrics import KpiGauges
from oss.telemetry.rollup import MinuteRollup
from topology.model import Device


class BrokenRollup(MinuteRollup):
    async def sink(self, events: list[Event]) -> None:
        raise KeyError("an open bucket")


class Collected:
    name = "collected"

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def offer(self, events: list[Event]) -> None:
        self.events.extend(events)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime(load_settings(None, state_dir=tmp_path)) as running:
        await running.inventory.add_device(Device(name="acc4"), actor="test")
        yield running


def link_down(device: str) -> Event:
    tags = {"device": device, "trap": "linkDown", "ifindex": "2", "source": "127.0.0.1:1"}
    return Event("snmp.trap", 1, tags, {"ifIndex.2": 2, "ifOperStatus.2": 2})


async def test_a_failing_sink_is_counted_logged_once_and_skipped(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    output = Collected()
    service = AssuranceService(
        AssuranceSettings(),
        runtime.inventory,
        runtime.alarms,
        KpiGauges(CollectorRegistry()),
        BrokenRollup(runtime.db),
        outputs=[output.offer],
    )
    watch_assurance(runtime.metrics, service)
    with caplog.at_level(logging.DEBUG, logger="oss.assurance.service"):
        await service.sink([link_down("acc4")])
        await service.sink([link_down("acc4"), link_down("acc4")])

    assert len(output.events) == 3  # the output after the failing roll-up got every batch
    async with runtime.db.read() as session:
        keys = (await session.scalars(select(AlarmRow.reduction_key))).all()
    assert len(keys) == 1  # and so did the alarms
    exposition = runtime.metrics.exposition().decode()
    assert 'oss_event_sink_failed_events_total{sink="rollup"} 3.0' in exposition
    logged = [r for r in caplog.records if "the rollup sink failed" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.ERROR, logging.DEBUG]  # once per streak

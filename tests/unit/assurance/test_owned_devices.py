"""In a cluster the pipeline collects only the devices this instance owns (`owns`), follows a
change of its shares at once (a device taken over), and its outputs forget a device that left
the share; traps are still taken from every device. A device that comes while the SNMP poller
runs is polled at once, not at a random point of its first interval."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Target
from oss.app import assemble
from oss.assurance import collectors
from oss.assurance.collectors import CollectorContext, Sink, Targets, register_collector
from oss.assurance.pipeline import AssurancePipeline
from oss.assurance.poller import SnmpPoller
from oss.daemon import Daemon
from oss.errors import ConnectError
from oss.events import Event
from oss.settings import AssuranceSettings, PollerSettings, load_settings
from topology.model import Device

DEVICES = ("r1", "r2", "r3")


@pytest.fixture
async def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Daemon]:
    monkeypatch.setenv("R_CREDS", '{"username": "oss", "password": "x"}')
    async with assemble(load_settings(None, state_dir=tmp_path)) as running:
        for i, name in enumerate(DEVICES, start=1):
            device = Device(
                name=name, mgmt_address=f"127.0.0.{10 + i}", credentials_ref="env:R_CREDS"
            )
            await running.inventory.add_device(device, actor="test")
        yield running


@pytest.fixture
def only_new_collectors() -> Iterator[None]:
    with collectors.COLLECTORS.restoring(empty=True):
        yield


class Recorder:
    """The "snmp" collector: records what it is told to follow."""

    name = "snmp"

    def __init__(self, sink: Sink) -> None:
        self.followed: list[Targets] = []
        self.changed = asyncio.Event()

    def follow(self, targets: Targets) -> None:
        self.followed.append(targets)
        self.changed.set()

    def restarted(self, device: str) -> None:
        """Nothing to reset."""

    def counts(self) -> Mapping[str, int]:
        return {}

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()

    def devices(self) -> set[str]:
        return {t.name for t in self.followed[-1].of("snmp")}


class Forgetting:
    """An output that records the devices it was told to forget."""

    name = "forgetting"

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    async def offer(self, events: Sequence[Event]) -> None:
        """Nothing collected here."""

    def device_removed(self, device: str) -> None:
        self.forgotten.append(device)


@pytest.mark.usefixtures("only_new_collectors")
async def test_only_owned_devices_are_collected_and_a_share_change_is_followed_at_once(
    daemon: Daemon,
) -> None:
    recorders: list[Recorder] = []

    @register_collector("snmp")
    def _recorder(context: CollectorContext) -> Recorder:
        recorders.append(Recorder(context.sink))
        return recorders[-1]

    owned = {"r1", "r2"}
    output = Forgetting()
    settings = AssuranceSettings(refresh_s=3600.0)  # no periodic refresh during the test
    pipeline = AssurancePipeline(settings, daemon.inventory, [output], owns=owned.__contains__)
    (recorder,) = recorders
    stop = asyncio.Event()
    task = asyncio.create_task(pipeline.run(stop))
    await asyncio.wait_for(recorder.changed.wait(), 5)
    assert recorder.devices() == {"r1", "r2"}
    # traps from every device are still accepted: each instance processes what it receives
    assert set(recorder.followed[-1].sources.values()) == set(DEVICES)

    recorder.changed.clear()
    owned.clear()
    owned.update({"r2", "r3"})  # r3 taken over from an instance that died, r1 given away
    pipeline.shares_changed()
    await asyncio.wait_for(recorder.changed.wait(), 5)
    assert recorder.devices() == {"r2", "r3"}
    assert output.forgotten == ["r1"]  # taken back later, it is judged afresh
    stop.set()
    await asyncio.wait_for(task, 5)


class _Unreachable:
    """An SNMP driver whose devices never answer; it records who was polled."""

    def __init__(self) -> None:
        self.polled: list[str] = []
        self.polled_event = asyncio.Event()

    async def __aenter__(self) -> _Unreachable:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    @asynccontextmanager
    async def connect(self, target: Target) -> AsyncIterator[Any]:
        self.polled.append(target.name)
        self.polled_event.set()
        raise ConnectError(f"{target.name}: no answer")
        yield  # pragma: no cover


async def test_a_device_that_comes_while_polling_runs_is_polled_at_once() -> None:
    driver = _Unreachable()
    events: list[Event] = []

    async def sink(batch: list[Event]) -> None:
        events.extend(batch)

    rng = random.Random(7)  # the first device's start lands late in its hour
    poller = SnmpPoller(
        driver,  # type: ignore[arg-type]
        sink,
        settings=PollerSettings(interval_s=3600.0),
        rng=rng,
    )
    first = Target(name="r1", host="127.0.0.11", port=161)
    poller.set_targets([first])
    await poller.start()
    try:
        taken_over = Target(name="r2", host="127.0.0.12", port=161)
        poller.set_targets([first, taken_over])
        await asyncio.wait_for(driver.polled_event.wait(), 5)
        assert driver.polled == ["r2"]  # r1 waits for its spread start, r2 does not
    finally:
        await poller.stop()

"""The simulated ring4 lab (in its own thread, as tests/integration/lab/conftest.py runs it)
and the helpers the assurance tests share: targets for the lab's nodes, a collecting sink."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from drivers.base import Target
from drivers.platforms import Protocol
from oss.events import Event
from tests.integration.lab.conftest import RunningLab, random_subnet, start_lab, stop_lab
from topology.model import Device
from topology.targets import parse_networks, target_for

LOOPBACK = parse_networks(["127.0.0.0/8"])


@pytest.fixture(scope="session")
def assurance_subnet() -> str:
    return random_subnet()


@pytest.fixture
def lab(assurance_subnet: str, tmp_path: Path) -> Iterator[RunningLab]:
    running = start_lab(assurance_subnet, tmp_path / "lab")
    try:
        yield running
    finally:
        stop_lab(running)


def lab_target(lab: RunningLab, name: str, protocol: Protocol, timeout_s: float = 2.0) -> Target:
    device = Device(
        name=name,
        platform="lab-sim",
        mgmt_address=lab.address(name),
        credentials_ref=f"file:{lab.lab.credentials_file}",
    )
    port = getattr(lab.lab.ports, protocol)
    return target_for(device, protocol, port=port, allowed=LOOPBACK, timeout_s=timeout_s)


class CollectingSink:
    """The sink callback (or an output of the pipeline): keeps every event, in order."""

    name = "collected"

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def offer(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def named(self, name: str, device: str | None = None) -> list[Event]:
        return [e for e in self.events if e.name == name and (device is None or e.device == device)]


async def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Wait (bounded) until `condition()` holds; fail the test if it never does."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)

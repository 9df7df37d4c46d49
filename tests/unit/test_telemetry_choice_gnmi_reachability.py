"""gNMI reachability as the SNMP poller reports it: the first outcome, then only changes. A
session that drops and comes straight back is no outage; one whose resubscription cannot reach
the device is, once, however many attempts fail; the first data after that is the recovery.

The driver is scripted (each subscription attempt delivers updates, then ends or fails): what
is tested is the collector's bookkeeping, not gNMI (tests/integration/assurance covers that)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

from drivers.base import Target
from drivers.credentials import Credentials
from drivers.gnmi_events import EVENT_UPDATE
from oss.assurance.gnmi_collector import GnmiCollector, GnmiCollectorSettings
from oss.errors import AuthError, ConnectError, DeviceTimeout, DriverError
from oss.events import REACHABILITY, Event

STATE = "interfaces/interface[name=eth1]/state"
UPDATE = Event(
    EVENT_UPDATE,
    1,
    {"device": "r1", "path": STATE, "interface": "eth1"},
    {"oper-status": "UP"},
)

Attempt = tuple[int, DriverError | None]  # updates delivered, then how it ends (None: hangs)


class ScriptedDriver:
    def __init__(self, attempts: list[Attempt]) -> None:
        self._attempts: Iterator[Attempt] = iter(attempts)
        self.done = asyncio.Event()

    @contextlib.asynccontextmanager
    async def connect(self, target: Target) -> AsyncIterator[ScriptedDriver]:
        yield self

    async def subscribe(self, paths: list[str], **options: Any) -> AsyncIterator[Event]:
        updates, ending = next(self._attempts)
        for _ in range(updates):
            yield UPDATE
        if ending is None:
            self.done.set()
            await asyncio.Event().wait()  # the last attempt streams on until cancelled
        raise ending


def dropped() -> ConnectError:
    return ConnectError("subscribe: socket closed", device="r1", protocol="gnmi")


def refused() -> ConnectError:
    return ConnectError("connect: connection refused", device="r1", protocol="gnmi")


async def run(attempts: list[Attempt]) -> tuple[list[bool], GnmiCollector]:
    events: list[Event] = []

    async def sink(batch: list[Event]) -> None:
        events.extend(batch)

    driver = ScriptedDriver(attempts)
    settings = GnmiCollectorSettings(backoff_initial_s=0.001, backoff_max_s=0.002)
    collector = GnmiCollector(driver, sink, settings=settings, rng=random.Random(1))  # type: ignore[arg-type]
    collector.set_targets([Target("r1", "127.0.0.1", 57400, Credentials())])
    await collector.start()
    try:
        async with asyncio.timeout(10):
            await driver.done.wait()
    finally:
        await collector.stop()
    flips = [bool(e.values["reachable"]) for e in events if e.name == REACHABILITY]
    return flips, collector


async def test_a_session_that_comes_straight_back_is_no_outage() -> None:
    flips, collector = await run([(2, dropped()), (1, dropped()), (3, None)])
    assert flips == [True]
    assert collector.failures == 0
    assert collector.subscriptions("r1") == 3


async def test_an_outage_is_reported_once_each_way() -> None:
    timeout = DeviceTimeout("connect: no answer within 5 s", device="r1", protocol="gnmi")
    attempts: list[Attempt] = [
        (2, dropped()),  # the session drops...
        (0, refused()),  # ...and the resubscription cannot reach the device: unreachable
        (0, timeout),
        (0, refused()),
        (1, None),  # back
    ]
    flips, collector = await run(attempts)
    assert flips == [True, False, True]
    assert collector.failures == 3
    assert collector.reachability == {"r1": True}


async def test_a_device_that_refuses_is_reachable() -> None:
    refusal = AuthError("connect: bad credentials", device="r1", protocol="gnmi")
    flips, collector = await run([(0, refused()), (0, refusal), (0, refusal), (1, None)])
    assert flips == [False, True]
    assert collector.failures == 3

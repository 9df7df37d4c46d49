"""The trap collector's batching: after a quiet moment a batch goes to the sink at once (a lone
trap pays no linger); a batch right behind another lingers for more, so a storm's batches share
their fixed costs; a full batch never lingers."""

from __future__ import annotations

import pytest

from drivers.snmp_traps import TrapReceiver
from oss.assurance import traps
from oss.assurance.traps import TRAP_BATCH, TRAP_LINGER_S, TrapCollector
from oss.events import Event
from oss.settings import AssuranceSettings


def trap(n: int) -> Event:
    return Event("snmp.trap", n, {"device": "r1", "trap": "linkDown"}, {})


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def __call__(self, events: list[Event]) -> None:
        self.batches.append(events)


@pytest.fixture
def lingers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The collector's sleeps (the linger), recorded instead of slept."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(traps.asyncio, "sleep", sleep)
    return slept


async def test_a_batch_after_a_quiet_moment_goes_at_once_one_behind_another_lingers(
    lingers: list[float],
) -> None:
    sink = Sink()
    collector = TrapCollector(AssuranceSettings(), sink)
    receiver = TrapReceiver()  # never bound: nothing queued in it
    await collector._deliver(receiver, [trap(1)])  # the first since start: idle
    assert lingers == []
    await collector._deliver(receiver, [trap(2)])  # right behind it: a storm
    assert lingers == [TRAP_LINGER_S]
    await collector._deliver(receiver, [trap(n) for n in range(TRAP_BATCH)])  # full: no wait
    assert lingers == [TRAP_LINGER_S]
    assert [len(b) for b in sink.batches] == [1, 1, TRAP_BATCH]
    assert collector.handled == TRAP_BATCH + 2

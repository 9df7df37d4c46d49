"""The in-memory index of open alarms (`OpenAlarmIndex`) says what the grouped query says, kept
from the manager's committed changes: raises, repeats, severity changes, acks, clears, batches."""

from __future__ import annotations

import pytest

from oss.faults import summary
from oss.faults.alarms import AlarmManager, Signal
from oss.faults.summary import OpenAlarmIndex, Worst, open_by_object
from oss.store import Database

T0 = 1_700_000_000_000_000_000


def sig(kind: str, obj: str, problem: str, severity: str = "major", t: int = 0) -> Signal:
    return Signal(
        kind=kind,  # type: ignore[arg-type]
        reduction_key=f"{problem}:{obj}",
        alarm_type="processingErrorAlarm",
        severity=severity,
        probable_cause="cpuCyclesLimitExceeded",
        specific_problem=problem,
        object_type="device",
        object=obj,  # not in the graph: no correlation
        time_ns=T0 + t,
    )


async def test_the_index_follows_every_committed_change(
    manager: AlarmManager, db: Database
) -> None:
    await manager.signal(sig("raise", "r8", "before-load"))  # read by the first summary
    index = OpenAlarmIndex(db)
    manager.listeners.append(index.heard)
    assert (await index.summary()).of("device", "r8") == Worst("major", 1)

    await manager.signals([sig("raise", "r9", "cpu"), sig("raise", "r9", "fan", "minor")])
    await manager.signal(sig("raise", "r9", "cpu", "critical", t=1))  # a repeat, worse
    (change,) = await manager.signal(sig("raise", "r7", "psu"))
    await manager.acknowledge(int(change[1]["id"]), "someone")
    await manager.signal(sig("clear", "r8", "before-load", t=2))
    await manager.signals([sig("raise", "r6", "x"), sig("clear", "r6", "x", t=3)])

    kept = await index.summary()
    assert kept == await open_by_object(db)
    assert kept.of("device", "r9") == Worst("critical", 2)
    assert kept.of("device", "r7") == Worst("major", 1)
    assert kept.of("device", "r8") is None and kept.of("device", "r6") is None


async def test_a_change_heard_while_loading_makes_it_read_again(
    manager: AlarmManager, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = OpenAlarmIndex(db)
    manager.listeners.append(index.heard)
    await manager.signal(sig("raise", "r5", "cpu"))
    reads = 0
    real = summary._open_rows

    async def racing(database: Database) -> list[tuple[int, str, str, str, int]]:
        """The read, with an alarm change committed while it runs (the first time)."""
        nonlocal reads
        reads += 1
        rows = await real(database)
        if reads == 1:
            await manager.signal(sig("raise", "r4", "cpu"))
        return rows

    monkeypatch.setattr(summary, "_open_rows", racing)
    found = await index.summary()
    assert reads == 2  # read again: the first read may have missed the change
    assert found.of("device", "r4") == Worst("major", 1)
    await manager.signal(sig("clear", "r5", "cpu", t=1))
    assert (await index.summary()).of("device", "r5") is None  # loaded: kept from changes
    assert reads == 2


async def test_without_a_quiet_read_it_answers_from_the_read_alone(
    manager: AlarmManager, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = OpenAlarmIndex(db)
    manager.listeners.append(index.heard)
    real = summary._open_rows

    async def always_racing(database: Database) -> list[tuple[int, str, str, str, int]]:
        rows = await real(database)
        index.heard(("raised", {}))  # heard before loading: only marks the read as stale
        return rows

    monkeypatch.setattr(summary, "_open_rows", always_racing)
    await manager.signal(sig("raise", "r3", "cpu"))
    assert (await index.summary()).of("device", "r3") == Worst("major", 1)
    assert (await index.summary()) == await open_by_object(db)  # still read each time

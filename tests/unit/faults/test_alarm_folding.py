"""A storm's batch in AlarmManager.signals: repeats of a key fold into one change of its alarm
(exact `count`), the batch's new alarms go in together, and a clear needs no extra look-up,
while the alarms end exactly as with the signals applied one by one through the ORM (AlarmTx,
the reference: `reference=True`); a batch no correlation acts on takes the storm path
(oss.faults.uncorrelated), one with a correlated signal the ORM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from oss.faults.alarms import AlarmManager, Signal
from oss.store import Database
from oss.store.tables import AlarmRow
from tests.unit.faults.test_alarm_batches import alarm_state, fresh_manager
from tests.unit.faults.test_alarms import sig
from tests.unit.faults.test_correlate import down


def storm(pairs: int, steps: int) -> list[Signal]:
    """Like a trap storm: each key in turn, raise x3 then clear, interleaved over the keys."""
    out = []
    for step in range(steps):
        for pair in range(pairs):
            kind = "clear" if step % 4 == 3 else "raise"
            out.append(sig(kind, key=f"linkDown:r9:if{pair}", t=step))
    return out


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()[:3]))

    engines = (db.engine.sync_engine, db.write_engine)  # the ORM's, the storm path's
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def test_a_storm_batch_ends_as_one_by_one_with_exact_counts(tmp_path: Path) -> None:
    signals = storm(pairs=5, steps=10)  # 2.5 episodes per key
    single, single_feed = await fresh_manager(tmp_path, "single.db", reference=True)
    batched, _ = await fresh_manager(tmp_path, "batched.db")
    try:
        for s in signals:
            await single.signal(s)
        changes = await batched.signals(signals)

        assert await alarm_state(batched.db) == await alarm_state(single.db)
        # Per key: two cleared episodes of 3 raises, the third one open with 2 so far.
        counts = [(d["reductionKey"], d["state"], d["count"]) for _, d in changes]
        for pair in range(5):
            key = f"linkDown:r9:if{pair}"
            assert [c[1:] for c in counts if c[0] == key] == [
                ("cleared", 3),
                ("cleared", 3),
                ("updated", 2),  # raised, then counted once more
            ]
        assert len(single_feed.sent) > len(changes)  # one-by-one sent every repeat
    finally:
        await single.db.close()
        await batched.db.close()


async def test_a_storm_batch_costs_a_fixed_number_of_statements(tmp_path: Path) -> None:
    manager, _ = await fresh_manager(tmp_path, "storm.db")
    try:
        with statements(manager.db) as seen:
            await manager.signals(storm(pairs=50, steps=12))  # 600 signals, 150 new alarms
        inserts = [s for s in seen if s.startswith("INSERT INTO alarms")]
        selects = [s for s in seen if s.startswith("SELECT")]
        assert len(inserts) == 1  # the new alarms together (SQLite: numbered in the tx)
        assert len(selects) <= 4  # open alarms, the next id, children, the feed's outbox
    finally:
        await manager.db.close()


async def test_the_database_holds_one_open_alarm_per_reduction_key(tmp_path: Path) -> None:
    """Whichever writer tries (another instance, a bug), a second open alarm of one key is
    refused by the database (ux_alarms_open_key, migration 0008); a cleared one is kept."""
    manager, _ = await fresh_manager(tmp_path, "unique.db")

    def alarm(open_: bool) -> AlarmRow:
        return AlarmRow(
            reduction_key="cpu:r9",
            open=open_,
            alarm_type="processingErrorAlarm",
            perceived_severity="major",
            probable_cause="cpuCyclesLimitExceeded",
            alarmed_object_type="device",
            alarmed_object="r9",
            state="raised" if open_ else "cleared",
        )

    try:
        async with manager.db.transaction() as session:
            session.add_all([alarm(False), alarm(False), alarm(True)])
        with pytest.raises(IntegrityError, match="reduction_key"):
            async with manager.db.transaction() as session:
                session.add(alarm(True))
        # the storm path clears before it inserts: a clear and a new raise of the key in one
        # batch replace the open alarm
        await manager.signals([sig("clear", key="cpu:r9", t=1), sig(key="cpu:r9", t=2)])
        state = await alarm_state(manager.db)
        assert [r["open"] for r in state] == [False, False, False, True]
    finally:
        await manager.db.close()


async def test_one_signal_alone_still_works(manager: AlarmManager) -> None:
    [(event_name, doc)] = await manager.signal(sig(t=0))
    assert event_name == "raised" and doc["id"] == 1 and doc["count"] == 1


async def test_a_folded_run_keeps_first_raise_time_last_severity_and_all_details(
    tmp_path: Path,
) -> None:
    def raised(t: int, severity: str, details: dict[str, Any]) -> Signal:
        return replace(sig(t=t, severity=severity), details=details)

    signals = [
        raised(0, "minor", {"cpu": 91, "core": 0}),
        raised(4, "critical", {}),
        raised(9, "major", {"cpu": 99}),
    ]
    single, _ = await fresh_manager(tmp_path, "single.db", reference=True)
    batched, _ = await fresh_manager(tmp_path, "batched.db")
    try:
        for s in signals:
            await single.signal(s)
        changes = await batched.signals(signals)
        assert [e for e, _ in changes] == ["raised"]  # one change for three raises
        doc = changes[0][1]
        assert (doc["count"], doc["perceivedSeverity"], doc["state"]) == (3, "major", "updated")
        assert doc["alarmRaisedTime"] != doc["alarmChangedTime"]  # the first's and the last's
        expected = await single.get(doc["id"])
        for key in ("alarmRaisedTime", "alarmChangedTime", "alarmDetails", "count", "state"):
            assert doc[key] == expected[key], key
        assert doc["alarmDetails"] == "core=0, cpu=99"
    finally:
        await single.db.close()
        await batched.db.close()


async def test_a_storm_with_a_correlated_signal_ends_as_one_by_one(tmp_path: Path) -> None:
    # The link r2:eth3 - r3:eth1 is in the graph: its down signal is correlated, so this batch
    # goes through AlarmTx; one by one, the storm's signals take the storm path in between.
    signals = storm(pairs=3, steps=6)
    signals.insert(7, down("r2:eth3"))
    signals.append(down("r2:eth3", "clear", 9))
    reference, reference_feed = await fresh_manager(tmp_path, "ref.db", reference=True)
    mixed, mixed_feed = await fresh_manager(tmp_path, "mixed.db")
    batched, _ = await fresh_manager(tmp_path, "batched.db")
    try:
        for s in signals:
            await reference.signal(s)
            await mixed.signal(s)
        await batched.signals(signals)
        expected = await alarm_state(reference.db)
        assert await alarm_state(mixed.db) == expected
        assert await alarm_state(batched.db) == expected
        assert mixed_feed.sent == reference_feed.sent  # same documents, same order
        assert any(row["services"] for row in expected)  # the correlation did happen
    finally:
        for manager in (reference, mixed, batched):
            await manager.db.close()


async def test_an_uncorrelated_batch_skips_the_orm(tmp_path: Path) -> None:
    manager, _ = await fresh_manager(tmp_path, "plain.db")
    try:
        with statements(manager.db) as seen:
            await manager.signals(storm(pairs=50, steps=3))  # 50 alarms raised, count 3
            await manager.signals(storm(pairs=50, steps=3))  # each counted 3 more times
        updates = [s for s in seen if s.startswith("UPDATE alarms")]
        assert len(updates) == 1  # the 50 existing alarms in one executemany
        alarms, total = await manager.find()
        assert total == 50 and {d["count"] for d in alarms} == {6}
    finally:
        await manager.db.close()

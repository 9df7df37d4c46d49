"""AlarmManager.signals: a batch of signals in one transaction ends in the same alarms as the
signals applied one by one, with one feed message per changed alarm and one commit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from oss.faults.alarms import AlarmManager, Signal
from oss.faults.correlate import Context, Correlator
from oss.store import Database
from oss.store.tables import AlarmRow
from tests.unit.faults.conftest import FakeServices, RecordingFeed, chain_graph, outbox_count
from tests.unit.faults.test_alarms import sig
from tests.unit.faults.test_correlate import down, unreachable


class FeedFailingOnCall(RecordingFeed):
    def __init__(self, call: int) -> None:
        super().__init__()
        self.call = call

    def write_changes(self, conn: Connection, changes: list[tuple[dict[str, Any], str]]) -> int:
        written = super().write_changes(conn, changes)
        if len(self.sent) >= self.call:
            raise RuntimeError("outbox full")
        return written


async def alarm_state(db: Database) -> list[dict[str, Any]]:
    """Every alarm's row, the way both paths must leave it (ids included)."""
    async with db.transaction() as s:
        rows = (await s.scalars(select(AlarmRow).order_by(AlarmRow.id))).all()
        return [
            {
                "id": r.id,
                "key": r.reduction_key,
                "open": r.open,
                "state": r.state,
                "severity": r.perceived_severity,
                "count": r.count,
                "parent": r.parent_id,
                "root": r.is_root_cause,
                "services": r.affected_services,
                "impact": r.impact,
                "cleared": r.cleared_time,
            }
            for r in rows
        ]


class EverySignal(Correlator):
    """A correlator that takes every signal (none is inert), so that each one goes through
    AlarmTx (the ORM) on its own, in order: the reference the storm path is compared with."""

    def inert(self, s: Signal, ctx: Context) -> bool:
        return False


async def fresh_manager(
    tmp_path: Path, name: str, *, reference: bool = False
) -> tuple[AlarmManager, RecordingFeed]:
    """`reference`: every signal through AlarmTx one by one (`EverySignal`)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / name}")
    await db.migrate()
    feed = RecordingFeed()
    services = FakeServices(on_link={3: [{"id": 7, "name": "svc-a", "customer": "acme"}]})
    graph = chain_graph()
    correlator = EverySignal(lambda: graph, services) if reference else None
    manager = AlarmManager(db, lambda: graph, services, feed, correlator=correlator)
    return manager, feed


async def test_repeats_in_a_batch_fold_into_one_alarm_sent_once(
    manager: AlarmManager, feed: RecordingFeed, db: Database
) -> None:
    changes = await manager.signals([sig(t=0), sig(t=1, severity="critical"), sig(t=2)])

    assert [e for e, _ in changes] == ["raised"]
    doc = changes[0][1]
    assert doc["count"] == 3 and doc["sequence"] == 1
    assert doc["perceivedSeverity"] == "major"  # the last raise's severity
    assert feed.sent == changes
    assert await outbox_count(db) == 1  # one message, committed with the alarm
    assert (await manager.get(doc["id"]))["count"] == 3


async def test_a_batch_moves_an_existing_alarm_on_by_one_sequence(
    manager: AlarmManager, feed: RecordingFeed
) -> None:
    [(_, raised)] = await manager.signal(sig(t=0))
    changes = await manager.signals([sig(t=1), sig(t=2)])
    assert [(e, d["id"], d["count"], d["sequence"]) for e, d in changes] == [
        ("changed", raised["id"], 3, 2)
    ]


async def test_raise_clear_raise_in_one_batch_leaves_a_cleared_alarm_and_a_new_one(
    manager: AlarmManager,
) -> None:
    changes = await manager.signals([sig(t=0), sig(t=1), sig("clear", t=2), sig(t=3)])

    assert [(e, d["state"], d["count"]) for e, d in changes] == [
        ("cleared", "cleared", 2),
        ("raised", "raised", 1),
    ]
    first, second = (d["id"] for _, d in changes)
    assert second > first
    assert (await manager.get(first))["alarmClearedTime"] == "2023-11-14T22:13:22Z"


@pytest.mark.parametrize(
    "signals",
    [
        pytest.param(
            [down("r2:eth3"), unreachable("r4"), down("r4:eth1"), down("r2:eth3", "clear", 1)],
            id="link-failure-one-end-back",
        ),
        pytest.param(
            [
                down("r2:eth3"),
                unreachable("r4"),
                down("r4:eth1"),
                down("r2:eth3", "clear", 1),
                down("r4:eth1", "clear", 2),
            ],
            id="link-failure-and-recovery",
        ),
        pytest.param(
            [down("r1:eth1"), unreachable("r2"), down("r1:eth1"), unreachable("r3")],
            id="node-failure",
        ),
    ],
)
async def test_a_batch_ends_in_the_same_alarms_as_one_by_one(
    tmp_path: Path, signals: list[Signal]
) -> None:
    single, single_feed = await fresh_manager(tmp_path, "single.db")
    batched, batched_feed = await fresh_manager(tmp_path, "batched.db")
    for s in signals:
        await single.signal(s)
    changes = await batched.signals(signals)

    assert await alarm_state(batched.db) == await alarm_state(single.db)
    # Each changed alarm is sent once, in its final state.
    ids = [d["id"] for _, d in changes]
    assert len(ids) == len(set(ids)) == len({d["id"] for _, d in single_feed.sent})
    final = {d["id"]: (d["state"], d["count"]) for _, d in single_feed.sent}
    assert {d["id"]: (d["state"], d["count"]) for _, d in changes} == final
    assert batched_feed.sent == changes
    await single.db.close()
    await batched.db.close()


@pytest.mark.parametrize("orm", [False, True], ids=["storm-path", "orm"])
async def test_a_failing_feed_rolls_the_whole_batch_back(db: Database, orm: bool) -> None:
    feed = FeedFailingOnCall(2)
    correlator = EverySignal(chain_graph, FakeServices()) if orm else None
    manager = AlarmManager(db, chain_graph, FakeServices(), feed, correlator=correlator)
    with pytest.raises(RuntimeError, match="outbox full"):
        await manager.signals([sig(key="a"), sig(key="b"), sig(key="c")])
    async with db.transaction() as s:
        assert (await s.scalars(select(AlarmRow))).all() == []
    assert await outbox_count(db) == 0
    assert feed.committed_rows == 0  # nothing offered to a publisher


async def test_an_empty_batch_changes_nothing(
    manager: AlarmManager, feed: RecordingFeed, db: Database
) -> None:
    assert await manager.signals([]) == []
    assert feed.sent == [] and await outbox_count(db) == 0


async def test_live_listeners_hear_a_committed_batch(manager: AlarmManager) -> None:
    async with manager.broadcast.subscribe() as sub:
        changes = await manager.signals([sig(key="a"), sig(key="b"), sig("clear", key="a")])
        heard = [await sub.get() for _ in changes]
    assert heard == changes
    assert [(e, d["reductionKey"]) for e, d in changes] == [("cleared", "a"), ("raised", "b")]

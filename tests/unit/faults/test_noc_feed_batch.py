"""NocFeed.write_changes on a batch: the outbox rows of many alarm changes, exactly as one call
per change writes them, with one look-up of the last retained topics per chunk and one bulk
insert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from oss.errors import InvalidInput
from oss.faults.noc_feed import NocFeed
from oss.outputs.mqtt_client import NocFeedError
from oss.outputs.mqtt_outbox import NocPublisher
from oss.settings import NocFeedSettings
from oss.store.database import Database
from tests.noc_feed_writes import write_batch, write_one_by_one
from tests.unit.faults.test_noc_feed import FakeBroker, alarm, outbox

feed_settings = NocFeedSettings(prefix="noc")
feed = NocFeed(feed_settings)


@pytest.fixture(autouse=True)
def fresh_feed() -> None:
    """One feed per test: a feed remembers what it committed to its database (the retained
    topic of each open alarm), and each test has a database of its own."""
    global feed
    feed = NocFeed(feed_settings)


# (alarm, event) changes covering every retained-topic rule: a new alarm, same-severity and
# severity changes, a clear, an alarm changed several times in one call, a change of an alarm
# whose history was pruned, and a change of an alarm raised and cleared in the same call.
HISTORY = [(alarm(1), "raised"), (alarm(2, "minor"), "raised")]
CHANGES = [
    (alarm(1, sequence=2), "changed"),
    (alarm(1, "critical", sequence=3), "changed"),
    (alarm(2, "cleared", sequence=2, state="cleared"), "cleared"),
    (alarm(3, "warning"), "raised"),
    (alarm(3, "major", sequence=2), "changed"),
    (alarm(4, "minor", sequence=9), "changed"),  # no history: pruned
    (alarm(5), "raised"),
    (alarm(5, "cleared", sequence=2, state="cleared"), "cleared"),
    (alarm(1, "cleared", sequence=4, state="cleared"), "cleared"),
]


async def other_db(tmp_path: Path, name: str) -> Database:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / name}")
    await database.migrate()
    return database


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(str(args[2]).split()[:4]))

    engine = db.write_engine  # the engine of Database.write, the alarm manager's writes
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_batch_writes_the_same_rows_as_one_by_one(tmp_path: Path) -> None:
    single, batched = await other_db(tmp_path, "single.db"), await other_db(tmp_path, "b.db")
    try:
        # A feed per database: it remembers the retained topics it committed there.
        feeds = {single: NocFeed(feed_settings), batched: NocFeed(feed_settings)}
        for database in (single, batched):
            await write_batch(database, feeds[database], HISTORY)
        await write_one_by_one(single, feeds[single], *CHANGES)
        await write_batch(batched, feeds[batched], CHANGES)

        expected = await outbox(single)
        assert await outbox(batched) == expected
        # Sanity: the rules did something (deletes of stale retained messages included).
        assert ("noc/alarms/major/r1/1", "", True) in expected
        assert ("noc/alarms/minor/r1/2", "", True) in expected
    finally:
        await single.close()
        await batched.close()


async def test_a_batch_costs_one_look_up_per_chunk_and_one_insert(db: Database) -> None:
    changes = [(alarm(n, sequence=2), "changed") for n in range(300)]
    with statements(db) as seen:
        await write_batch(db, feed, changes)
    # 300 alarms x 6 candidate topics (one per severity): 1,800 topics in chunks of 500, and
    # the largest id (SQLite: the rows are numbered in the transaction).
    assert sum(s.startswith("SELECT") for s in seen) == 5
    assert sum(s.startswith("INSERT") for s in seen) == 1
    # No history: each empties its 5 other severities' topics, then its state and its event.
    assert len(await outbox(db)) == 300 * 7


async def test_new_alarms_need_no_look_up(db: Database) -> None:
    changes = [(alarm(n), "raised") for n in range(300)]
    with statements(db) as seen:
        await write_batch(db, feed, changes)
    assert [s for s in seen if s.startswith("SELECT")] == ["SELECT max(outbox.id) AS max_1"]
    assert len(await outbox(db)) == 600


async def test_the_feed_remembers_what_committed_and_writes_what_a_look_up_would(
    tmp_path: Path,
) -> None:
    # The same writes through one feed (it remembers the retained topic of each open alarm it
    # committed) and through a new feed each time (every change looked up in the outbox).
    remembering, looking = await other_db(tmp_path, "r.db"), await other_db(tmp_path, "l.db")
    kept = NocFeed(feed_settings)
    rolled_back = [(alarm(1, "critical", sequence=2), "changed")]
    try:
        for database, feed_of in (
            (remembering, lambda: kept),
            (looking, lambda: NocFeed(feed_settings)),
        ):
            await write_batch(database, feed_of(), HISTORY)
            with pytest.raises(RuntimeError, match="failed"):
                await write_batch(database, feed_of(), rolled_back, fail=True)
            await write_batch(database, feed_of(), CHANGES)
        assert await outbox(remembering) == await outbox(looking)
        # Alarm 1's change rolled back: it is read from the outbox again, the others not.
        with statements(remembering) as seen:
            await write_batch(remembering, kept, [(alarm(3, "minor", sequence=3), "changed")])
        assert not [s for s in seen if s.startswith("SELECT outbox.id")]
        with statements(remembering) as seen:
            await write_batch(remembering, kept, [(alarm(6, sequence=2), "changed")])
        assert [s for s in seen if s.startswith("SELECT outbox.id")]  # not remembered
    finally:
        await remembering.close()
        await looking.close()


async def test_an_invalid_alarm_writes_nothing_of_the_batch(db: Database) -> None:
    bad = {"id": "9", "perceivedSeverity": "major", "alarmedObject": {"id": "r1"}}  # no sequence
    with pytest.raises(InvalidInput, match="sequence"):
        await write_batch(db, feed, [(alarm(1), "raised"), (bad, "raised")])
    assert await outbox(db) == []


async def test_a_later_call_in_the_transaction_sees_the_rows_of_an_earlier_one(
    db: Database,
) -> None:
    await write_one_by_one(
        db, feed, (alarm(1), "raised"), (alarm(1, "critical", sequence=2), "changed")
    )
    rows = await outbox(db)
    assert rows[2] == ("noc/alarms/major/r1/1", "", True)  # only the old severity emptied
    assert [t for t, _, _ in rows[3:]] == ["noc/alarms/critical/r1/1", "noc/events/changed/r1/1"]


async def test_an_empty_batch_writes_nothing(db: Database) -> None:
    with statements(db) as seen:
        await write_batch(db, feed, [])
    assert not any(s.startswith(("SELECT", "INSERT")) for s in seen)


async def test_a_round_publishes_only_the_newest_retained_state_of_a_topic(db: Database) -> None:
    for sequence in (1, 2, 3):
        kind = "raised" if sequence == 1 else "changed"
        await write_one_by_one(db, feed, (alarm(sequence=sequence), kind))
    broker = FakeBroker()
    publisher = NocPublisher(db, NocFeedSettings(prefix="noc"))
    assert await publisher.publish_pending(broker) == 6
    states = [json.loads(p or "")["sequence"] for t, p, r in broker.received if r]
    events = [t for t, _, r in broker.received if not r]
    assert states == [3]
    assert events == ["noc/events/raised/r1/7"] + ["noc/events/changed/r1/7"] * 2
    assert await publisher.pending() == 0 and publisher.published == 4


async def test_a_state_cleared_within_the_round_is_not_published(db: Database) -> None:
    await write_one_by_one(db, feed, (alarm(sequence=2), "changed"))  # an older alarm: its state
    await write_one_by_one(db, feed, (alarm(severity="cleared", sequence=3), "cleared"))
    broker = FakeBroker()
    assert await NocPublisher(db, NocFeedSettings(prefix="noc")).publish_pending(broker) > 0
    retained = [(t, p) for t, p, r in broker.received if r]
    # The major state was superseded by its delete; the delete goes out (an earlier round
    # may have retained it), and so do both events.
    assert ("noc/alarms/major/r1/7", None) in retained
    assert not [p for t, p in retained if p is not None]
    events = [t for t, _, r in broker.received if not r]
    assert events == ["noc/events/changed/r1/7", "noc/events/cleared/r1/7"]


async def test_a_superseded_state_is_done_even_when_the_newer_one_fails(db: Database) -> None:
    for sequence in (1, 2):
        kind = "raised" if sequence == 1 else "changed"
        await write_one_by_one(db, feed, (alarm(sequence=sequence), kind))
    failing = FakeBroker(fail_at=1)  # the first event goes, the newer state fails
    publisher = NocPublisher(db, NocFeedSettings(prefix="noc"))
    with pytest.raises(NocFeedError):
        await publisher.publish_pending(failing)
    assert await publisher.pending() == 2  # the newer state and its event
    retry = FakeBroker()
    assert await publisher.publish_pending(retry) == 2
    assert [(t, json.loads(p or "")["sequence"]) for t, p, _ in retry.received] == [
        ("noc/alarms/major/r1/7", 2),
        ("noc/events/changed/r1/7", 2),
    ]

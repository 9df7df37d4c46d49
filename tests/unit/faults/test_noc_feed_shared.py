"""Two instances' NOC feeds writing one outbox (cluster mode): a feed's memory of an alarm's
retained topic is stale once another instance changed the alarm. A shared feed notices rows it
did not write since its last ones and reads the outbox instead, so exactly one retained
message per open alarm remains; the single-instance feed, trusting its memory, would leave the
other instance's retained state behind."""

from __future__ import annotations

import pytest

from oss.faults.noc_feed import NocFeed
from oss.settings import NocFeedSettings
from oss.store.database import Database
from tests.noc_feed_writes import write_batch
from tests.unit.faults.test_noc_feed import alarm, outbox

SETTINGS = NocFeedSettings(prefix="noc")


async def live_retained(db: Database) -> set[str]:
    """Topics whose last retained message is a state (not a delete)."""
    last: dict[str, str] = {}
    for topic, payload, retain in await outbox(db):
        if retain:
            last[topic] = payload
    return {topic for topic, payload in last.items() if payload}


@pytest.mark.parametrize(("shared", "left"), [(True, 1), (False, 2)])
async def test_another_instances_change_is_not_undone_by_a_stale_memory(
    migrated_db: Database, shared: bool, left: int
) -> None:
    a = NocFeed(SETTINGS, shared=shared)
    b = NocFeed(SETTINGS, shared=shared)
    await write_batch(migrated_db, a, [(alarm(1, "major"), "raised")])  # a remembers "major"
    await write_batch(migrated_db, b, [(alarm(1, "critical", sequence=2), "changed")])
    await write_batch(migrated_db, a, [(alarm(1, "minor", sequence=3), "changed")])
    live = await live_retained(migrated_db)
    assert "noc/alarms/minor/r1/1" in live
    assert len(live) == left  # not shared: b's "critical" is still retained beside it


async def test_a_shared_feed_keeps_its_memory_while_it_alone_writes(
    migrated_db: Database,
) -> None:
    a = NocFeed(SETTINGS, shared=True)
    await write_batch(migrated_db, a, [(alarm(1, "major"), "raised")])
    await write_batch(migrated_db, a, [(alarm(1, "minor", sequence=2), "changed")])
    assert a._retained == {("r1", "1"): ("noc/alarms/minor/r1/1", False)}
    assert await live_retained(migrated_db) == {"noc/alarms/minor/r1/1"}

"""The NOC feed's outbox rows and the publisher's ordering and at-least-once rules, against a
real SQLite database (the broker side is tested with Mosquitto in tests/integration/faults)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from unittest.mock import ANY

import pytest
from gmqtt.mqtt.handler import MQTTConnectError
from pydantic import SecretStr, ValidationError
from sqlalchemy import select, update

from oss.errors import InvalidInput
from oss.faults import noc_feed
from oss.faults.noc_feed import NocFeed, alarm_device
from oss.outputs.mqtt_client import (
    _GMQTT_LOG,
    NocFeedAuthError,
    NocFeedError,
    Outgoing,
    refused,
)
from oss.outputs.mqtt_outbox import NocPublisher
from oss.outputs.mqtt_topics import topic_segment
from oss.settings import NocFeedSettings
from oss.store.database import Database
from oss.store.tables import OutboxRow
from tests.noc_feed_writes import write_batch, write_one_by_one


def alarm(
    alarm_id: int = 7, severity: str = "major", sequence: int = 1, state: str = "raised"
) -> dict[str, Any]:
    return {
        "id": str(alarm_id),
        "perceivedSeverity": severity,
        "alarmedObject": {"id": "r1:eth1", "@referredType": "interface"},
        "state": state,
        "sequence": sequence,
    }


async def outbox(db: Database) -> list[tuple[str, str, bool]]:
    async with db.sessions() as session:
        rows = (await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()
        return [(r.topic, r.payload, r.retain) for r in rows]


feed = NocFeed(NocFeedSettings(prefix="noc"))


@pytest.fixture(autouse=True)
def fresh_feed() -> None:
    """One feed per test: a feed remembers what it committed to its database (the retained
    topic of each open alarm), and each test has a database of its own."""
    global feed
    feed = NocFeed(NocFeedSettings(prefix="noc"))


async def test_raise_retains_state_and_publishes_event(db: Database) -> None:
    await write_one_by_one(db, feed, (alarm(), "raised"))
    rows = await outbox(db)
    assert [(t, r) for t, _, r in rows] == [
        ("noc/alarms/major/r1/7", True),
        ("noc/events/raised/r1/7", False),
    ]
    for _, payload, _ in rows:
        body = json.loads(payload)
        assert (body["id"], body["sequence"]) == ("7", 1)


async def test_severity_change_deletes_the_old_retained_message(db: Database) -> None:
    await write_one_by_one(db, feed, (alarm(), "raised"))
    await write_one_by_one(db, feed, (alarm(severity="critical", sequence=2), "changed"))
    rows = (await outbox(db))[2:]
    assert rows[0] == ("noc/alarms/major/r1/7", "", True)
    assert rows[1][0] == "noc/alarms/critical/r1/7" and rows[1][2] is True
    assert json.loads(rows[1][1])["sequence"] == 2
    assert rows[2][0] == "noc/events/changed/r1/7" and rows[2][2] is False
    assert len(rows) == 3


async def test_same_severity_change_replaces_in_place(db: Database) -> None:
    await write_one_by_one(db, feed, (alarm(), "raised"), (alarm(sequence=2), "changed"))
    topics = [t for t, _, _ in await outbox(db)]
    assert topics == [
        "noc/alarms/major/r1/7",
        "noc/events/raised/r1/7",
        "noc/alarms/major/r1/7",
        "noc/events/changed/r1/7",
    ]


async def test_clear_deletes_the_retained_message(db: Database) -> None:
    await write_one_by_one(db, feed, (alarm(), "raised"))
    await write_one_by_one(db, feed, (alarm(severity="minor", sequence=2), "changed"))
    cleared = alarm(severity="cleared", sequence=3, state="cleared")
    await write_one_by_one(db, feed, (cleared, "cleared"))
    rows = (await outbox(db))[5:]
    assert rows[0] == ("noc/alarms/minor/r1/7", "", True)
    assert rows[1][0] == "noc/events/cleared/r1/7"
    assert json.loads(rows[1][1])["sequence"] == 3
    assert len(rows) == 2


async def test_change_without_history_empties_every_other_severity(db: Database) -> None:
    # The earlier rows were pruned: every other severity topic may hold a stale message.
    await write_one_by_one(db, feed, (alarm(severity="minor", sequence=5), "changed"))
    rows = await outbox(db)
    deleted = {t for t, p, r in rows if r and p == ""}
    assert deleted == {
        f"noc/alarms/{s}/r1/7" for s in ("critical", "major", "warning", "indeterminate", "cleared")
    }
    assert ("noc/alarms/minor/r1/7", True) in [(t, r) for t, p, r in rows if p]


async def test_rolled_back_change_leaves_no_message(db: Database) -> None:
    with pytest.raises(RuntimeError):
        await write_batch(db, feed, [(alarm(), "raised")], fail=True)
    assert await outbox(db) == []


def test_device_from_key_or_alarmed_object() -> None:
    assert alarm_device({"alarmedObject": {"id": "r1:eth1"}}) == "r1"
    assert alarm_device({"alarmedObject": {"id": "r2"}}) == "r2"
    assert alarm_device({"device": "pe9", "alarmedObject": {"id": "link:4"}}) == "pe9"
    with pytest.raises(InvalidInput):
        alarm_device({"alarmedObject": {}})


async def test_unsafe_topic_characters_are_replaced(db: Database) -> None:
    assert topic_segment("a/b+c#") == "a_b_c_"
    data = alarm() | {"device": "dc/1+x"}
    await write_one_by_one(db, feed, (data, "raised"))
    assert (await outbox(db))[0][0] == "noc/alarms/major/dc_1_x/7"


async def test_alarm_without_sequence_is_refused(db: Database) -> None:
    data = alarm()
    del data["sequence"]
    with pytest.raises(InvalidInput, match="sequence"):
        await write_batch(db, feed, [(data, "raised")])


def test_settings_validate_prefix_and_hide_password() -> None:
    with pytest.raises(ValidationError):
        NocFeedSettings(prefix="noc/#")
    settings = NocFeedSettings(prefix="/noc/site1/", username="noc", password=SecretStr("pw-42"))
    assert settings.prefix == "noc/site1"
    assert "pw-42" not in repr(settings) and "pw-42" not in str(settings.model_dump())


class FakeBroker:
    """Acknowledges publishes until `fail_at` (counted over its life), then refuses them.
    A zero-length payload is recorded as None (what a subscriber receives: no payload)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.received: list[tuple[str, str | None, bool]] = []
        self.attempts = 0

    async def publish_round(
        self, messages: Sequence[Outgoing], *, wait_s: float
    ) -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for topic, payload, qos, retain in messages:
            self.attempts += 1
            assert qos == 1
            if self.fail_at is not None and self.attempts > self.fail_at:
                results.append(ConnectionError("connection lost"))
                continue
            self.received.append((topic, payload or None, retain))
            results.append(None)
        await asyncio.sleep(0)
        return results


async def make_alarms(db: Database, count: int) -> None:
    for i in range(count):
        await write_one_by_one(db, feed, (alarm(alarm_id=i), "raised"))


async def test_publisher_sends_in_id_order_and_marks_sent(db: Database) -> None:
    await make_alarms(db, 5)
    publisher = NocPublisher(db, NocFeedSettings(prefix="noc", batch_size=3))
    broker = FakeBroker()
    assert await publisher.publish_pending(broker) == 10
    assert [t for t, _, _ in broker.received] == [t for t, _, _ in await outbox(db)]
    assert broker.received[0][2] is True and broker.received[1][2] is False
    assert await publisher.pending() == 0
    assert await publisher.publish_pending(broker) == 0


async def test_zero_length_retained_publish_for_deletes(db: Database) -> None:
    await write_one_by_one(db, feed, (alarm(), "raised"))
    await write_one_by_one(db, feed, (alarm(severity="cleared", sequence=2), "cleared"))
    broker = FakeBroker()
    await NocPublisher(db, NocFeedSettings()).publish_pending(broker)
    # (Both in one round: the state itself is superseded by its delete, not published.)
    assert [m for m in broker.received if m[2]] == [("noc/alarms/major/r1/7", None, True)]


async def test_an_alarm_cleared_before_it_was_ever_sent_is_one_event(db: Database) -> None:
    # Raised and cleared within one batch: its first message is the "cleared" (sequence 1).
    # Nothing of it was ever retained, so no retained topic needs emptying.
    await write_one_by_one(db, feed, (alarm(severity="cleared", state="cleared"), "cleared"))
    assert await outbox(db) == [("noc/events/cleared/r1/7", ANY, False)]


async def test_failure_keeps_the_rest_unsent_and_resends_in_order(db: Database) -> None:
    await make_alarms(db, 4)
    publisher = NocPublisher(db, NocFeedSettings(batch_size=100))
    broker = FakeBroker(fail_at=3)
    with pytest.raises(NocFeedError, match=r"127\.0\.0\.1:1883"):
        await publisher.publish_pending(broker)
    assert await publisher.pending() == 5
    retry = FakeBroker()
    assert await NocPublisher(db, NocFeedSettings()).publish_pending(retry) == 5
    everything = [t for t, _, _ in await outbox(db)]
    assert [t for t, _, _ in broker.received] + [t for t, _, _ in retry.received] == everything


async def test_rows_not_marked_sent_go_again_after_restart(db: Database) -> None:
    await make_alarms(db, 2)
    first = FakeBroker()
    await NocPublisher(db, NocFeedSettings()).publish_pending(first)
    # A crash between the PUBACK and the commit of sent_at: the last row is unmarked.
    async with db.transaction() as session:
        last = await session.scalar(select(OutboxRow.id).order_by(OutboxRow.id.desc()))
        await session.execute(update(OutboxRow).where(OutboxRow.id == last).values(sent_at=None))
    again = FakeBroker()
    assert await NocPublisher(db, NocFeedSettings()).publish_pending(again) == 1
    assert again.received == [first.received[-1]]


async def test_run_reconnects_with_backoff_and_drains(db: Database) -> None:
    await make_alarms(db, 3)
    broker = FakeBroker()
    attempts = 0

    @asynccontextmanager
    async def flaky_connect() -> AsyncIterator[FakeBroker]:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise NocFeedError("cannot connect to MQTT broker 127.0.0.1:1883: refused")
        yield broker

    settings = NocFeedSettings(backoff_initial_s=0.01, backoff_max_s=0.02, poll_interval_s=0.05)
    publisher = NocPublisher(db, settings, connector=flaky_connect)
    task = asyncio.create_task(publisher.run())
    try:
        async with asyncio.timeout(10):
            while await publisher.pending():  # noqa: ASYNC110 - polls the database
                await asyncio.sleep(0.02)
            await make_alarms(db, 1)
            publisher.wake()
            while await publisher.pending():  # noqa: ASYNC110 - polls the database
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert attempts == 3
    assert len(broker.received) == 8


def test_auth_refusal_names_the_broker_not_the_password() -> None:
    settings = NocFeedSettings(
        host="127.0.0.9", port=18830, username="noc", password=SecretStr("pw-42")
    )
    error = refused(settings, MQTTConnectError(4))  # MQTT 3.1.1: bad user name or password
    assert isinstance(error, NocFeedAuthError)
    assert "127.0.0.9:18830" in str(error) and "'noc'" in str(error)
    assert "pw-42" not in str(error) and "pw-42" not in repr(error)


def test_the_payload_is_the_sorted_compact_json_it_always_was() -> None:
    # orjson writes what json.dumps(sort_keys, no blanks, default=str) wrote, datetimes and
    # other values JSON has no type for as their str(); non-ASCII travels as UTF-8.
    doc = {
        **alarm(),
        "count": 3,
        "alarmDetails": "ifName=é",
        "at": datetime(2026, 1, 2, tzinfo=UTC),
    }
    text = noc_feed.payload(doc)
    assert json.loads(text) == json.loads(json.dumps(doc, default=str))
    ascii_doc = {k: v for k, v in doc.items() if k != "alarmDetails"}
    assert noc_feed.payload(ascii_doc) == json.dumps(
        ascii_doc, sort_keys=True, separators=(",", ":"), default=str
    )


def test_gmqtt_narrates_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _GMQTT_LOG.warning("connection lost: %s", "reset")
    _GMQTT_LOG.debug("[MqttPackageHandler] PUBACK mid: %s", 5)
    assert caplog.records == []
    caplog.set_level(logging.DEBUG)
    _GMQTT_LOG.error("refused: %s", "bad credentials")
    _GMQTT_LOG.debug("[MqttPackageHandler] PUBACK mid: %s", 5)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "refused: bad credentials"),
        (logging.DEBUG, "[MqttPackageHandler] PUBACK mid: 5"),
    ]

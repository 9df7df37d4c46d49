"""The NOC feed against a real Mosquitto: a NOC consumer with a persistent session is offline
while alarms are raised, changed and cleared, the broker restarts in the middle (with
persistence), the daemon restarts with unconfirmed rows; the consumer then sees exactly the
retained state of the open alarms and every event (de-duplicated by id and sequence). Also:
a refused password, and mutual TLS."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from oss.faults.noc_feed import AlarmEvent, NocFeed
from oss.outputs.mqtt_client import NocFeedAuthError, NocFeedError
from oss.outputs.mqtt_outbox import NocPublisher
from oss.settings import MqttTlsSettings, NocFeedSettings
from oss.store.database import Database
from oss.store.tables import OutboxRow
from tests.integration.faults.conftest import NOC_PASSWORD, NOC_USER
from tests.noc_feed_writes import write_batch
from tests.peers.mosquitto import MosquittoServer, MosquittoTls, running_mosquitto
from tests.peers.tls_certs import make_pki

pytestmark = pytest.mark.integration

BOUND_S = 60  # every wait below is bounded by this


@dataclass
class Synthetic:
    """Stands in for the alarm manager: TMF642-shaped alarms with a sequence per change."""

    db: Database
    feed: NocFeed
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: set[tuple[str, str, int]] = field(default_factory=set)  # (event, id, sequence)

    async def change(self, alarm_id: str, event: AlarmEvent, severity: str = "major") -> None:
        previous = self.alarms.get(alarm_id)
        sequence = previous["sequence"] + 1 if previous else 1
        alarm = {
            "id": alarm_id,
            "perceivedSeverity": "cleared" if event == "cleared" else severity,
            "alarmedObject": {"id": f"r{int(alarm_id) % 3}:eth{alarm_id}"},
            "alarmType": "communicationsAlarm",
            "probableCause": "linkDown",
            "state": {"raised": "raised", "changed": "updated", "cleared": "cleared"}[event],
            "sequence": sequence,
        }
        await write_batch(self.db, self.feed, [(alarm, event)])
        self.alarms[alarm_id] = alarm
        self.events.add((event, alarm_id, sequence))

    def expected_retained(self, prefix: str) -> dict[str, int]:
        return {
            f"{prefix}/alarms/{a['perceivedSeverity']}/{a['alarmedObject']['id'].split(':')[0]}"
            f"/{a['id']}": a["sequence"]
            for a in self.alarms.values()
            if a["state"] != "cleared"
        }


async def drained(publisher: NocPublisher) -> None:
    publisher.wake()
    async with asyncio.timeout(BOUND_S):
        while await publisher.pending():  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running(publisher: NocPublisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def consumer(broker: MosquittoServer, client_id: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host, broker.port, identifier=client_id, clean_session=False, timeout=10
    )


async def test_offline_consumer_sees_state_and_every_event_across_restarts(
    mosquitto: MosquittoServer, db: Database
) -> None:
    prefix = f"noc-{uuid.uuid4().hex[:8]}"
    settings = NocFeedSettings(
        host=mosquitto.host,
        port=mosquitto.port,
        prefix=prefix,
        client_id=f"oss-{prefix}",
        publish_timeout_s=2,
        backoff_initial_s=0.1,
        backoff_max_s=1,
        poll_interval_s=0.2,
    )
    noc_id = f"noc-console-{prefix}"
    # The NOC console makes its persistent session once, then goes offline.
    async with consumer(mosquitto, noc_id) as noc:
        await noc.subscribe(f"{prefix}/events/#", qos=1)

    synth = Synthetic(db, NocFeed(settings))
    publisher = NocPublisher(db, settings)
    async with running(publisher):
        for i in range(1, 7):
            await synth.change(str(i), "raised", "major")
        await synth.change("1", "changed", "critical")
        await synth.change("2", "changed", "minor")
        await synth.change("3", "cleared")
        await synth.change("4", "changed", "major")
        await drained(publisher)

        # Broker down: changes pile up in the outbox; then it comes back on the same port.
        await asyncio.to_thread(mosquitto.stop)
        await synth.change("7", "raised", "warning")
        await synth.change("5", "changed", "critical")
        await synth.change("1", "cleared")
        await synth.change("6", "changed", "minor")
        await asyncio.to_thread(mosquitto.start)
        await drained(publisher)

        # A restart while a burst is being published.
        for i in range(10, 30):
            await synth.change(str(i), "raised", "minor")
            await synth.change(str(i), "changed", "major")
        publisher.wake()
        await asyncio.to_thread(mosquitto.restart)
        for i in range(10, 30, 3):
            await synth.change(str(i), "cleared")
        await drained(publisher)
    assert publisher.published >= 3 * 6 + 4 * 4  # rows, some events and state deletes

    # The daemon crashed after the last PUBACKs but before recording them: unmarked rows.
    async with db.transaction() as session:
        last_ids = (
            await session.scalars(select(OutboxRow.id).order_by(OutboxRow.id.desc()).limit(6))
        ).all()
        await session.execute(
            update(OutboxRow).where(OutboxRow.id.in_(last_ids)).values(sent_at=None)
        )
    synth.feed = NocFeed(settings)
    restarted = NocPublisher(db, settings)
    async with running(restarted):
        await synth.change("7", "changed", "critical")
        await synth.change("30", "raised", "major")
        await drained(restarted)
    assert restarted.published >= 6

    # The NOC console comes back: its queued events, then the retained state.
    events: dict[tuple[str, str, int], int] = {}
    retained: dict[str, dict[str, Any]] = {}
    sync_topic = f"{prefix}-sync/{uuid.uuid4().hex}"
    async with consumer(mosquitto, noc_id) as noc, asyncio.timeout(BOUND_S):
        await noc.subscribe([(f"{prefix}/alarms/#", 1), (sync_topic, 1)])
        # Mosquitto sends the retained messages while handling SUBSCRIBE, so they precede
        # this marker; the queued events may still be arriving after it.
        await noc.publish(sync_topic, b"sync", qos=1)
        synced = False
        async for message in noc.messages:
            topic = message.topic.value
            if topic == sync_topic:
                synced = True
            elif topic.startswith(f"{prefix}/alarms/"):
                assert message.retain, topic
                body = json.loads(message.payload)  # type: ignore[arg-type]
                assert topic not in retained, f"two retained messages on {topic}"
                retained[topic] = body
            else:
                _, _, event, _device, alarm_id = topic.split("/")
                body = json.loads(message.payload)  # type: ignore[arg-type]
                assert body["id"] == alarm_id
                key = (event, alarm_id, body["sequence"])
                events[key] = events.get(key, 0) + 1
            if synced and set(events) >= synth.events:
                break

    assert set(events) == synth.events  # every event, nothing invented (duplicates allowed)
    assert {t: b["sequence"] for t, b in retained.items()} == synth.expected_retained(prefix)
    open_ids = [b["id"] for b in retained.values()]
    assert len(open_ids) == len(set(open_ids))  # exactly one retained message per open alarm
    assert "1" not in open_ids and "3" not in open_ids and "10" not in open_ids


async def test_wrong_password_names_the_broker_not_the_password(
    mosquitto_auth: MosquittoServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    base = NocFeedSettings(
        host=mosquitto_auth.host,
        port=mosquitto_auth.port,
        prefix="auth",
        username=NOC_USER,
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
    )
    wrong = base.model_copy(update={"password": SecretStr("not-the-password")})
    publisher = NocPublisher(db, wrong)
    with pytest.raises(NocFeedAuthError) as refused:
        async with publisher.connect():
            pass
    message = str(refused.value)
    assert f"{mosquitto_auth.host}:{mosquitto_auth.port}" in message and NOC_USER in message
    assert "not-the-password" not in message and "not-the-password" not in repr(refused.value)

    # The run loop keeps retrying and says why once, without the password.
    caplog.set_level(logging.DEBUG)
    async with running(publisher):
        async with asyncio.timeout(BOUND_S):
            while "refused" not in caplog.text:  # noqa: ASYNC110 - polls the log
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # several retries happen in this time
    assert caplog.text.count("NOC feed interrupted") == 1
    assert "not-the-password" not in caplog.text

    # With the right password the same alarm goes through.
    right = base.model_copy(update={"password": SecretStr(NOC_PASSWORD)})
    minor = {"id": "1", "perceivedSeverity": "minor", "alarmedObject": {"id": "r1"}, "sequence": 1}
    await write_batch(db, NocFeed(right), [(minor, "raised")])
    good = NocPublisher(db, right)
    async with good.connect() as client:
        assert await good.publish_pending(client) == 2
    async with (
        aiomqtt.Client(
            mosquitto_auth.host,
            mosquitto_auth.port,
            username=NOC_USER,
            password=NOC_PASSWORD,
        ) as noc,
        asyncio.timeout(BOUND_S),
    ):
        await noc.subscribe("auth/alarms/#", qos=1)
        message = await anext(aiter(noc.messages))
        assert message.topic.value == "auth/alarms/minor/r1/1" and message.retain


async def test_tls_with_a_client_certificate(db: Database) -> None:
    """Mutual TLS to a real Mosquitto: the broker's certificate is checked against `ca_file`
    (another CA is refused unless `insecure`), and the client presents its certificate."""
    with (
        make_pki() as pki,
        running_mosquitto(
            tls=MosquittoTls(pki.ca, pki.server_cert, pki.server_key, require_client_cert=True)
        ) as broker,
    ):
        client_cert = {"cert_file": pki.client_cert, "key_file": pki.client_key}
        settings = NocFeedSettings(
            host=broker.host,
            port=broker.port,
            prefix="tls",
            publish_timeout_s=5,
            tls=MqttTlsSettings(ca_file=pki.ca, **client_cert),
        )
        minor = {
            "id": "1",
            "perceivedSeverity": "minor",
            "alarmedObject": {"id": "r1"},
            "sequence": 1,
        }
        await write_batch(db, NocFeed(settings), [(minor, "raised")])
        publisher = NocPublisher(db, settings)
        async with publisher.connect() as client:
            assert await publisher.publish_pending(client) == 2  # both acknowledged over TLS

        wrong_ca = MqttTlsSettings(ca_file=pki.other_ca, **client_cert)
        untrusted = NocPublisher(db, settings.model_copy(update={"tls": wrong_ca}))
        with pytest.raises(NocFeedError, match="certificate verify failed") as refused:
            async with untrusted.connect():
                pass
        assert f"{broker.host}:{broker.port}" in str(refused.value)

        insecure = wrong_ca.model_copy(update={"insecure": True})
        lab = NocPublisher(db, settings.model_copy(update={"tls": insecure}))
        async with lab.connect() as client:
            assert await lab.publish_pending(client) == 0  # connected; nothing left to send

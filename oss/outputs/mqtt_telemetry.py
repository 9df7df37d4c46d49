"""The MQTT telemetry output: collected events (KPIs, reachability; the names in
`mqtt.telemetry.events`) as JSON on `<prefix>/telemetry/<event>/<device>[/<interface>]`.

QoS 0, not retained: a sample is superseded by the next poll and the durable copy is InfluxDB's
(with its spool), so waiting for PUBACKs would spend CPU on acknowledgements nobody replays;
a retained sample would greet a new subscriber with a stale value. Alarms do not come this
way: they go through the outbox, at least once (`oss.faults.noc_feed`).

`offer` never waits: events queue in memory, up to `queue_size`, while the broker is slow or
away; past that the oldest are dropped and counted (`oss_output_mqtt_telemetry{counter}` on
/metrics). `run` keeps a session of its own (`client_id`) and reconnects with the `mqtt`
section's backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from oss.backoff import Backoff
from oss.components import Stage
from oss.events import Event
from oss.metrics import Metrics
from oss.outputs import mqtt_client
from oss.outputs.mqtt_client import GmqttLink, describe
from oss.outputs.mqtt_topics import telemetry_topic
from oss.outputs.registry import OutputContext, register_output
from oss.settings import NocFeedSettings

log = logging.getLogger(__name__)

Connector = Callable[[], AbstractAsyncContextManager[GmqttLink]]
YIELD_EVERY = 500  # messages handed over between two turns of the event loop


class MqttTelemetryOutput:
    name = "mqtt_telemetry"
    stage = Stage.WORKERS

    def __init__(self, settings: NocFeedSettings, *, connector: Connector | None = None) -> None:
        self.settings = settings
        self.broker = f"{settings.host}:{settings.port}"
        self._names = frozenset(settings.telemetry.events)
        self._queue: deque[tuple[str, str]] = deque()  # (topic, payload)
        self._limit = settings.telemetry.queue_size
        self._wake = asyncio.Event()
        self._connector = connector or self.connect
        self.published = 0  # messages handed to the connection
        self.dropped = 0  # oldest messages dropped from a full queue
        self.connected = False

    def stats(self) -> dict[str, int]:
        return {
            "published": self.published,
            "dropped": self.dropped,
            "queued": len(self._queue),
            "connected": int(self.connected),
        }

    async def offer(self, events: Sequence[Event]) -> None:
        prefix, names, queue = self.settings.prefix, self._names, self._queue
        for event in events:
            if event.name in names:
                queue.append((topic_of(prefix, event), payload_of(event)))
        excess = len(queue) - self._limit
        if excess > 0:
            for _ in range(excess):
                queue.popleft()
            self.dropped += excess
        if queue:
            self._wake.set()

    def connect(self) -> AbstractAsyncContextManager[GmqttLink]:
        return mqtt_client.connect(self.settings, self.settings.telemetry.client_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop`; reconnect with backoff after any broker failure."""
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                try:
                    async with self._connector() as link:
                        self.connected = True
                        backoff.succeeded()
                        await self._publish_until(link, stopping)
                        return
                except OSError as exc:  # NocFeedError included
                    if backoff.failed():  # once per outage
                        log.warning(
                            "MQTT telemetry interrupted, retrying with backoff: %s",
                            describe(exc),
                            extra={"broker": self.broker},
                        )
                finally:
                    self.connected = False
                await asyncio.wait({stopping}, timeout=backoff.pause())
        finally:
            stopping.cancel()

    async def _publish_until(self, link: GmqttLink, stopping: asyncio.Future[Any]) -> None:
        """Hand queued messages to the connection as they come, until `stopping` (what is
        queued then still goes out) or the connection is lost (ConnectionError)."""
        lost = asyncio.ensure_future(link.lost.wait())
        try:
            while True:
                queue = self._queue
                while queue:
                    topic, payload = queue[0]
                    link.publish(topic, payload)  # raises ConnectionError once lost
                    queue.popleft()
                    self.published += 1
                    if self.published % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # a long queue does not hold the loop
                if stopping.done():
                    return
                self._wake.clear()
                woken = asyncio.ensure_future(self._wake.wait())
                try:
                    waiters: set[asyncio.Future[Any]] = {woken, stopping, lost}
                    await asyncio.wait(waiters, return_when="FIRST_COMPLETED")
                finally:
                    woken.cancel()
                if lost.done():
                    raise ConnectionError(f"MQTT broker {self.broker}: connection lost")
        finally:
            lost.cancel()


def topic_of(prefix: str, event: Event) -> str:
    device = event.tags.get("device", "_")
    interface = event.tags.get("interface")
    if interface is None:
        return telemetry_topic(prefix, event.name, device)
    return telemetry_topic(prefix, event.name, device, interface)


def payload_of(event: Event) -> str:
    """The event as JSON: name, timestamp (ns since the epoch), tags and values."""
    document = {
        "name": event.name,
        "timestamp_ns": event.timestamp_ns,
        "tags": dict(event.tags),
        "values": dict(event.values),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def watch_mqtt_telemetry(metrics: Metrics, output: MqttTelemetryOutput) -> None:
    """The output's counts on /metrics (oss_output_mqtt_telemetry{counter})."""
    metrics.watch_counts(
        "oss_output_mqtt_telemetry",
        "MQTT telemetry output: published, dropped (queue full), queued, connected",
        "counter",
        output.stats,
    )


@register_output("mqtt_telemetry")
def _mqtt_telemetry(context: OutputContext) -> MqttTelemetryOutput | None:
    settings = context.settings.mqtt
    if not settings.telemetry.enabled:
        return None
    output = MqttTelemetryOutput(settings)
    watch_mqtt_telemetry(context.metrics, output)
    return output

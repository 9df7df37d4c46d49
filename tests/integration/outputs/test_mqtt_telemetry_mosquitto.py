"""The MQTT telemetry output against a real Mosquitto: events offered reach a subscriber as
JSON on `<prefix>/telemetry/<event>/<device>[/<interface>]`, QoS 0, not retained; events
offered while the broker is away wait in the bounded queue and go out once it is back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import pytest

from oss.events import KPI_INTERFACE, REACHABILITY, Event
from oss.outputs.mqtt_client import GmqttLink
from oss.outputs.mqtt_telemetry import MqttTelemetryOutput
from oss.settings import MqttTelemetrySettings, NocFeedSettings
from tests.peers.mosquitto import MosquittoServer, running_mosquitto

pytestmark = pytest.mark.integration

BOUND_S = 60  # every wait below is bounded by this


@pytest.fixture
def broker() -> Iterator[MosquittoServer]:
    with running_mosquitto() as server:
        yield server


def telemetry_settings(broker: MosquittoServer, prefix: str) -> NocFeedSettings:
    return NocFeedSettings(
        host=broker.host,
        port=broker.port,
        prefix=prefix,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        telemetry=MqttTelemetrySettings(enabled=True, client_id=f"oss-{prefix}"),
    )


@asynccontextmanager
async def running(output: MqttTelemetryOutput) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(output.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(BOUND_S):
            await task


async def receive(noc: aiomqtt.Client, count: int) -> list[tuple[str, int, bool, Any]]:
    got = []
    async with asyncio.timeout(BOUND_S):
        async for message in noc.messages:
            assert isinstance(message.payload, bytes)
            got.append(
                (str(message.topic), message.qos, message.retain, json.loads(message.payload))
            )
            if len(got) == count:
                return got
    raise AssertionError("the subscription ended")


async def until_connected(output: MqttTelemetryOutput) -> None:
    async with asyncio.timeout(BOUND_S):
        while not output.connected:  # noqa: ASYNC110 - the output has no event for it
            await asyncio.sleep(0.02)


async def test_offered_events_reach_a_subscriber_as_json(broker: MosquittoServer) -> None:
    prefix = f"tm-{uuid.uuid4().hex[:8]}"
    output = MqttTelemetryOutput(telemetry_settings(broker, prefix))
    async with (
        aiomqtt.Client(broker.host, broker.port, identifier=f"noc-{prefix}") as noc,
        running(output),
    ):
        await noc.subscribe(f"{prefix}/telemetry/#", qos=1)
        await until_connected(output)
        await output.offer(
            [
                Event(KPI_INTERFACE, 11, {"device": "r1", "interface": "eth1"}, {"in-bps": 8.0}),
                Event("snmp.trap", 12, {"device": "r1"}, {"oid": "1.3.6.1"}),  # not named
                Event(REACHABILITY, 13, {"device": "r2"}, {"reachable": False}),
            ]
        )
        got = await receive(noc, 2)
    assert got == [
        (
            f"{prefix}/telemetry/kpi.interface/r1/eth1",
            0,
            False,
            {
                "name": "kpi.interface",
                "timestamp_ns": 11,
                "tags": {"device": "r1", "interface": "eth1"},
                "values": {"in-bps": 8.0},
            },
        ),
        (
            f"{prefix}/telemetry/device.reachability/r2",
            0,
            False,
            {
                "name": "device.reachability",
                "timestamp_ns": 13,
                "tags": {"device": "r2"},
                "values": {"reachable": False},
            },
        ),
    ]
    assert output.stats()["published"] == 2 and output.stats()["dropped"] == 0


async def test_events_offered_while_the_broker_is_away_go_out_when_it_is_back(
    broker: MosquittoServer,
) -> None:
    prefix = f"tm-{uuid.uuid4().hex[:8]}"
    may_connect = asyncio.Event()
    may_connect.set()

    @asynccontextmanager
    async def held_back() -> AsyncIterator[GmqttLink]:
        """The output's own session, opened once the test lets it (the subscriber is then
        listening: QoS 0 messages are not kept for anyone)."""
        await may_connect.wait()
        async with output.connect() as link:
            yield link

    output = MqttTelemetryOutput(telemetry_settings(broker, prefix), connector=held_back)
    async with running(output):
        await until_connected(output)
        may_connect.clear()
        await asyncio.to_thread(broker.stop)
        async with asyncio.timeout(BOUND_S):
            while output.connected:  # noqa: ASYNC110 - the output has no event for it
                await asyncio.sleep(0.02)
        await output.offer(
            [Event(REACHABILITY, n, {"device": f"r{n}"}, {"reachable": True}) for n in range(5)]
        )
        assert output.stats()["queued"] == 5
        await asyncio.to_thread(broker.start)
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"noc-{prefix}") as noc:
            await noc.subscribe(f"{prefix}/telemetry/#", qos=1)
            may_connect.set()
            got = await receive(noc, 5)
    assert [topic for topic, *_ in got] == [
        f"{prefix}/telemetry/device.reachability/r{n}" for n in range(5)
    ]
    assert output.stats()["published"] == 5 and output.stats()["queued"] == 0

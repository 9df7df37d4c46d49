"""The MQTT telemetry output without a broker: which events it takes, their topics and JSON,
the bounded queue's drops, and its registration (a real Mosquitto is in
tests/integration/outputs/test_mqtt_telemetry_mosquitto.py)."""

from __future__ import annotations

import json
from pathlib import Path

from oss.events import KPI_INTERFACE, REACHABILITY, Event
from oss.metrics import Metrics
from oss.outputs import mqtt_telemetry
from oss.outputs.mqtt_telemetry import MqttTelemetryOutput
from oss.outputs.registry import OutputContext, build_outputs, output_names
from oss.settings import AssuranceSettings, MqttTelemetrySettings, NocFeedSettings, Settings
from oss.store.database import Database


def settings(queue_size: int = 100) -> NocFeedSettings:
    return NocFeedSettings(
        prefix="site1/oss",
        telemetry=MqttTelemetrySettings(enabled=True, queue_size=queue_size),
    )


def kpi(device: str, interface: str, n: int) -> Event:
    return Event(KPI_INTERFACE, n, {"device": device, "interface": interface}, {"in_bps": n})


async def test_kpis_and_reachability_queue_as_json_on_their_topics() -> None:
    output = MqttTelemetryOutput(settings())
    await output.offer(
        [
            kpi("r1", "eth1/0", 5),
            Event(REACHABILITY, 7, {"device": "r2"}, {"reachable": False}),
            Event("snmp.trap", 8, {"device": "r1"}, {"oid": "1.3.6"}),  # not named: left out
        ]
    )
    queued = list(output._queue)
    assert [topic for topic, _ in queued] == [
        "site1/oss/telemetry/kpi.interface/r1/eth1_0",
        "site1/oss/telemetry/device.reachability/r2",
    ]
    assert json.loads(queued[0][1]) == {
        "name": "kpi.interface",
        "timestamp_ns": 5,
        "tags": {"device": "r1", "interface": "eth1/0"},
        "values": {"in_bps": 5},
    }
    assert json.loads(queued[1][1])["values"] == {"reachable": False}
    assert output.stats() == {"published": 0, "dropped": 0, "queued": 2, "connected": 0}


async def test_a_full_queue_drops_the_oldest_and_counts_them() -> None:
    output = MqttTelemetryOutput(settings(queue_size=3))
    await output.offer([kpi("r1", "eth1", n) for n in range(5)])
    await output.offer([kpi("r1", "eth1", 5)])
    assert [json.loads(p)["timestamp_ns"] for _, p in output._queue] == [3, 4, 5]
    assert output.stats()["dropped"] == 3
    metrics = Metrics()
    mqtt_telemetry.watch_mqtt_telemetry(metrics, output)
    text = metrics.exposition().decode()
    assert 'oss_output_mqtt_telemetry{counter="dropped"} 3.0' in text


def test_registered_and_built_only_when_enabled(tmp_path: Path) -> None:
    assert "mqtt_telemetry" in output_names()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    # (assurance off: the outputs that need parts built above the registry stay unbuilt)
    quiet = AssuranceSettings(enabled=False)
    off = OutputContext(Settings(assurance=quiet), Metrics(), db)
    assert not any(isinstance(o, MqttTelemetryOutput) for o in build_outputs(off))
    on = OutputContext(Settings(assurance=quiet, mqtt=settings()), Metrics(), db)
    built = [o for o in build_outputs(on) if isinstance(o, MqttTelemetryOutput)]
    assert len(built) == 1 and built[0].settings.prefix == "site1/oss"

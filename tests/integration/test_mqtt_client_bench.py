"""The MQTT client bench (the measurement issue 15's client choice rests on) still runs every
contender end to end against a real Mosquitto, each message acknowledged and read back: a new
release of a client that changes what the bench relies on (gmqtt's `persistent_storage`
hooks, paho's socket callbacks) fails here, not on the day someone re-measures."""

from __future__ import annotations

import pytest

from bench import mqtt_client_bench

pytestmark = pytest.mark.integration


def test_every_contender_publishes_and_the_broker_holds_every_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mqtt_client_bench.main(["--count", "300", "--window", "40"])

    out = capsys.readouterr().out
    for contender in mqtt_client_bench.CONTENDERS:
        assert f"  {contender}: done, 300 retained messages read back" in out
    table = out.split("client ", 1)[1].splitlines()[1:]
    assert sorted(row.split("  ")[0] for row in table) == sorted(mqtt_client_bench.CONTENDERS)
    assert any(" 1.00x" in row for row in table)  # the cheapest, by CPU

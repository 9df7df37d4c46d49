"""#11: `oss serve` polls a device that does not answer ("device unreachable" raised); removing
the device from the inventory (DELETE /api/v1/devices/{name}) closes that alarm at once, with
the reason and who removed it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers.daemon import Daemon
from tests.peers.snmpd import free_udp_port

pytestmark = pytest.mark.integration

DEVICE = "gone1"
CREDENTIALS_ENV = "OSS_TEST_GONE1_CREDENTIALS"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    silent_port = free_udp_port()  # nothing listens there: the device never answers
    running = Daemon(
        tmp_path,
        env={
            "OSS_ASSURANCE__POLLING__INTERVAL_S": "0.5",
            "OSS_ASSURANCE__REFRESH_S": "0.5",
            "OSS_DRIVERS__PORTS": json.dumps({"snmp": silent_port}),
            "OSS_DRIVERS__TIMEOUT_S": "1",
            CREDENTIALS_ENV: json.dumps({"snmp": {"version": "2c", "community": "c0mm"}}),
        },
    ).start()
    running.token = running.create_token("operator")
    try:
        yield running
    finally:
        running.kill()


def call(daemon: Daemon, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    return httpx.request(method, daemon.url + path, json=body, headers=headers, timeout=10)


def unreachable_alarm(daemon: Daemon) -> dict[str, Any] | None:
    reply = call(daemon, "GET", f"/tmf-api/alarm/v4/alarm?alarmedObject.id={DEVICE}")
    assert reply.status_code == 200, reply.text
    return next((a for a in reply.json() if a["reductionKey"] == f"unreachable:{DEVICE}"), None)


def test_removing_a_device_closes_its_unreachable_alarm(daemon: Daemon) -> None:
    device = {
        "name": DEVICE,
        "platform": "linux",
        "mgmt_address": "127.0.0.1",
        "credentials_ref": f"env:{CREDENTIALS_ENV}",
    }
    assert call(daemon, "POST", "/api/v1/devices", device).status_code == 201
    deadline = time.monotonic() + 60
    while (alarm := unreachable_alarm(daemon)) is None:
        assert time.monotonic() < deadline, "the silent device never became unreachable"
        time.sleep(0.3)
    assert alarm["state"] != "cleared"

    assert call(daemon, "DELETE", f"/api/v1/devices/{DEVICE}").status_code == 204

    closed = call(daemon, "GET", f"/tmf-api/alarm/v4/alarm/{alarm['id']}").json()
    assert closed["state"] == "cleared", closed
    assert "clearReason=device removed from inventory" in closed["alarmDetails"]
    assert closed["clearUserId"].startswith("token:t-operator#")  # who removed the device

"""#11: `oss serve` polls a device that does not answer ("device unreachable" raised); removing
the device from the inventory (DELETE /api/v1/devices/{name}) closes that alarm at once, with
the reason and who removed it; added again, the device gets a new alarm (what was last seen of
it is forgotten)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.peers.daemon import Daemon
from tests.peers.snmpd import cli_env, free_udp_port

pytestmark = pytest.mark.integration

DEVICE = "gone1"
CREDENTIALS_ENV = "OSS_TEST_GONE1_CREDENTIALS"
COMMUNITY = "c0mm"
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
IF_INDEX, IF_ADMIN = "1.3.6.1.2.1.2.2.1.1.999", "1.3.6.1.2.1.2.2.1.7.999"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    silent_port = free_udp_port()  # nothing listens there: the device never answers
    running = Daemon(
        tmp_path,
        env={
            "OSS_ASSURANCE__TRAPS_PORT": str(free_udp_port()),
            "OSS_ASSURANCE__TRAP_COMMUNITIES": json.dumps([COMMUNITY]),
            "OSS_ASSURANCE__POLLING__INTERVAL_S": "0.5",
            "OSS_ASSURANCE__REFRESH_S": "0.5",
            "OSS_DRIVERS__PORTS": json.dumps({"snmp": silent_port}),
            "OSS_DRIVERS__TIMEOUT_S": "1",
            CREDENTIALS_ENV: json.dumps({"snmp": {"version": "2c", "community": COMMUNITY}}),
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


def wait_for(what: str, found: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := found()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.3)
    return result


def probe_traps(daemon: Daemon, tmp_path: Path) -> list[dict[str, Any]]:
    """A linkDown/linkUp pair from 127.0.0.1 for an interface no device has; the alarms of it,
    named after whichever device the receiver takes 127.0.0.1 for."""
    port = json.loads(daemon.env["OSS_ASSURANCE__TRAPS_PORT"])
    for oid, admin in ((LINK_DOWN, "1"), (LINK_UP, "1")):
        argv = ["snmptrap", "-v2c", "-c", COMMUNITY, f"127.0.0.1:{port}", "", oid]
        argv += [IF_INDEX, "i", "999", IF_ADMIN, "i", admin]
        subprocess.run(argv, check=True, timeout=10, env=cli_env(tmp_path))
    reply = call(daemon, "GET", "/tmf-api/alarm/v4/alarm?alarmedObjectType=interface")
    return [a for a in reply.json() if a["alarmedObject"]["id"].endswith(":ifIndex.999")]


DEVICE_BODY = {
    "name": DEVICE,
    "platform": "linux",
    "mgmt_address": "127.0.0.1",
    "credentials_ref": f"env:{CREDENTIALS_ENV}",
}


def test_removing_a_device_closes_its_unreachable_alarm(daemon: Daemon, tmp_path: Path) -> None:
    assert call(daemon, "POST", "/api/v1/devices", DEVICE_BODY).status_code == 201
    alarm = wait_for("the silent device becomes unreachable", lambda: unreachable_alarm(daemon))
    assert alarm["state"] != "cleared"

    assert call(daemon, "DELETE", f"/api/v1/devices/{DEVICE}").status_code == 204

    closed = call(daemon, "GET", f"/tmf-api/alarm/v4/alarm/{alarm['id']}").json()
    assert closed["state"] == "cleared", closed
    assert "clearReason=device removed from inventory" in closed["alarmDetails"]
    assert closed["clearUserId"].startswith("token:t-operator#")  # who removed the device

    # Once assurance has followed the removal (traps from 127.0.0.1 are no longer the
    # device's), the device is added again: it is still silent, and gets a new alarm.
    wait_for(
        "assurance follows the removal",
        lambda: any(
            a["alarmedObject"]["id"] == "127.0.0.1:ifIndex.999"
            for a in probe_traps(daemon, tmp_path)
        ),
    )
    assert call(daemon, "POST", "/api/v1/devices", DEVICE_BODY).status_code == 201
    again = wait_for(
        "the device added again becomes unreachable again",
        lambda: (a := unreachable_alarm(daemon)) is not None and a["id"] != alarm["id"] and a,
    )
    assert again["state"] != "cleared"

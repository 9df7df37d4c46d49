"""Issue 5's end-to-end flow on the metro lab, with real processes: `oss serve` polling the
lab, a slice across it, `oss lab fault link ... down`: one root-cause alarm for the link with
the far end and the slice correlated under it, visible in the TMF642 API; `... up` clears them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oss.faults import tmf_schema
from tests.e2e.test_slice_on_metro import METRO, daemon_env, lab_up
from tests.peers.daemon import OSS, Daemon
from tests.peers.mosquitto import MosquittoServer, running_mosquitto

pytestmark = pytest.mark.integration

ALARMS = "/tmf-api/alarm/v4/alarm"


def alarms(daemon: Daemon) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    r = httpx.get(daemon.url + ALARMS, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def wait_for(daemon: Daemon, check: Any, what: str, timeout: float = 40) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        current = alarms(daemon)
        if check(current):
            return current
        assert time.monotonic() < deadline, f"{what}: {json.dumps(current, indent=1)[:3000]}"
        time.sleep(0.5)


def retained(broker: MosquittoServer, seconds: float = 3) -> dict[str, dict[str, Any]]:
    """The NOC's view: every retained alarm message on the broker, by topic."""
    out = subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-t",
            "oss/alarms/#",
            "-v",
            "-W",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 10,
    ).stdout
    found = {}
    for line in out.splitlines():
        topic, _, payload = line.partition(" ")
        if payload:
            found[topic] = json.loads(payload)
    return found


@pytest.fixture
def broker() -> Iterator[MosquittoServer]:
    with running_mosquitto() as server:
        yield server


def test_link_down_raises_one_root_cause_and_up_clears(
    tmp_path: Path, lab_dir: Path, broker: MosquittoServer
) -> None:
    env = daemon_env(
        OSS_ASSURANCE__POLLING__INTERVAL_S="2",
        OSS_MQTT__ENABLED="true",
        OSS_MQTT__HOST=broker.host,
        OSS_MQTT__PORT=str(broker.port),
    )
    daemon = Daemon(state_dir=tmp_path / "daemon", extra_args=["--topology", str(METRO)], env=env)
    daemon.start()
    try:
        daemon.token = daemon.create_token("operator")
        lab_up(daemon, lab_dir)
        created = daemon.cli(
            "-o",
            "json",
            "slice",
            "create",
            "--from",
            "north",
            "--to",
            "south",
            "--bandwidth",
            "100M",
            "--customer",
            "acme",
        )
        assert created.returncode == 0, created.stderr + created.stdout
        service = json.loads(created.stdout)["service"]
        link = service["resources"]["links"][0]["id"]
        headers = {"Authorization": f"Bearer {daemon.token}"}
        shown = httpx.get(f"{daemon.url}/api/v1/links/{link}", headers=headers).json()
        a_end = f"{shown['a']['device']}:{shown['a']['interface']}"
        time.sleep(5)  # a first poll of every device: the baseline
        assert [a for a in alarms(daemon) if a.get("state") != "cleared"] == []

        # An engineer watching live (`oss alarm watch`) while the fault happens.
        watch = subprocess.Popen(
            [OSS, "--url", daemon.url, "--token", daemon.token or "", "alarm", "watch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "250"},
        )
        time.sleep(1.5)  # connected before the fault
        down = daemon.cli("lab", "fault", "link", a_end, "down", "--state-dir", str(lab_dir))
        assert down.returncode == 0, down.stderr

        def rooted(current: list[dict[str, Any]]) -> bool:
            roots = [a for a in current if a.get("isRootCause") and a.get("state") != "cleared"]
            return len(roots) == 1 and bool(roots[0].get("correlatedAlarm"))

        current = wait_for(daemon, rooted, "one root cause with correlated alarms")
        [root] = [a for a in current if a.get("isRootCause") and a.get("state") != "cleared"]
        for alarm in current:
            tmf_schema.validate(alarm)
        assert str(link) in json.dumps(root["alarmedObject"]), root
        assert root.get("serviceAffecting") is True, root
        assert service["name"] in json.dumps(root.get("affectedService", [])), root
        watch.terminate()
        watched, _ = watch.communicate(timeout=10)
        assert f"#{root['id']}" in watched and "[root cause]" in watched, watched
        # ... and on the NOC feed: the root cause's current state, retained
        deadline = time.monotonic() + 20
        while str(root["id"]) not in {str(m["id"]) for m in retained(broker).values()}:
            assert time.monotonic() < deadline, retained(broker)

        up = daemon.cli("lab", "fault", "link", a_end, "up", "--state-dir", str(lab_dir))
        assert up.returncode == 0, up.stderr
        wait_for(
            daemon,
            lambda cur: all(a.get("state") == "cleared" for a in cur),
            "every alarm cleared",
        )
        deadline = time.monotonic() + 20
        while retained(broker):  # cleared alarms leave no retained state behind
            assert time.monotonic() < deadline, retained(broker)
    finally:
        daemon.kill()

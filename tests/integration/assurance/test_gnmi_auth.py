"""#11: a device that refuses the collector's gNMI credentials (the simulated lab's gNMI server,
a wrong password) raises ONE authentication alarm however many times the collector retries,
and it clears once a subscription with the right credentials delivers data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from drivers.base import Target
from drivers.gnmi import GnmiDriver
from oss.assurance.gnmi_collector import GnmiCollector, GnmiCollectorSettings
from oss.events import Event
from oss.faults.rules import Rules, auth_failure_key
from tests.integration.assurance.conftest import LOOPBACK, CollectingSink, lab_target, wait_until
from tests.integration.lab.conftest import RunningLab
from topology.model import Device
from topology.targets import target_for

pytestmark = pytest.mark.integration


def wrong_password_target(lab: RunningLab, tmp_path: Path) -> Target:
    credentials = yaml.safe_load(lab.lab.credentials_file.read_text())
    credentials["password"] = "not-the-password"
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(credentials))
    path.chmod(0o600)
    device = Device(
        name="r1",
        platform="lab-sim",
        mgmt_address=lab.address("r1"),
        credentials_ref=f"file:{path}",
    )
    return target_for(device, "gnmi", port=lab.lab.ports.gnmi, allowed=LOOPBACK, timeout_s=5)


async def test_refused_credentials_raise_one_alarm_cleared_by_a_subscription(
    lab: RunningLab, tmp_path: Path
) -> None:
    sink = CollectingSink()
    settings = GnmiCollectorSettings(
        sample_interval_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.2
    )
    async with GnmiDriver() as driver:
        collector = GnmiCollector(driver, sink, settings=settings)
        collector.set_targets([wrong_password_target(lab, tmp_path)])
        await collector.start()
        try:
            await wait_until(lambda: collector.failures >= 4)  # refused, retried, refused...
            rules = Rules()
            refused = [s for e in sink.events for s in rules.signals(e)]
            key = auth_failure_key("r1", "gnmi")
            assert [(s.kind, s.reduction_key) for s in refused] == [
                ("clear", "unreachable:r1"),  # it answers: reachable
                ("raise", key),
            ]
            assert "bad username or password" in refused[1].details["reason"]
            assert "not-the-password" not in str(refused[1])

            seen = len(sink.events)
            collector.set_targets([lab_target(lab, "r1", "gnmi", timeout_s=5)])

            def accepted() -> list[Event]:
                return [e for e in sink.events[seen:] if e.name == "device.auth"]

            await wait_until(lambda: bool(accepted()))
            cleared = [s for e in accepted() for s in rules.signals(e)]
            assert [(s.kind, s.reduction_key) for s in cleared] == [("clear", key)]
        finally:
            await collector.stop()

"""Active latency probes: the platform's probe data (validated, file:line), the summary read
from a ping's output, which services a round measures or skips (and why), failures counted and
logged once, and the threshold alarm a service's latency raises and clears."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Target
from drivers.platforms import ProbeOptions, load_platform
from oss.app import assemble
from oss.assurance.collectors import Targets
from oss.assurance.pipeline import AssurancePipeline
from oss.assurance.probes import ProbeCollector, ProbeFailed, read_summary
from oss.errors import ConfigError, DeviceTimeout
from oss.events import KPI_SERVICE, Event
from oss.faults.rules import Rules
from oss.settings import AssuranceSettings, ProbeSettings, load_settings
from oss.store.service_queries import ServiceEnds
from topology.model import Device

IPUTILS = """PING 10.255.0.3 (10.255.0.3) 56(84) bytes of data.
64 bytes from 10.255.0.3: icmp_seq=1 ttl=63 time=20.4 ms
64 bytes from 10.255.0.3: icmp_seq=2 ttl=63 time=20.2 ms
^C
--- 10.255.0.3 ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 1001ms
rtt min/avg/max/mdev = 20.187/20.301/20.415/0.114 ms"""
ALL_LOST = """PING 10.255.0.3 (10.255.0.3) 56(84) bytes of data.

--- 10.255.0.3 ping statistics ---
3 packets transmitted, 0 received, 100% packet loss, time 2040ms"""
PROBE = ProbeOptions(command="ping -c {count} {address}", count=2, timeout_s=5)


# --- the platform's data ------------------------------------------------------------------------


def test_the_summary_is_read_by_the_platforms_patterns() -> None:
    summary = read_summary(IPUTILS, PROBE)
    assert (summary.loss_pct, summary.avg_ms, summary.mdev_ms) == (0.0, 20.301, 0.114)
    lost = read_summary(ALL_LOST, PROBE)
    assert (lost.loss_pct, lost.avg_ms) == (100.0, None)
    with pytest.raises(ProbeFailed, match="no packet loss in the ping's output: '% Unknown"):
        read_summary("% Unknown command: pong", PROBE)


@pytest.mark.parametrize(
    ("probe", "problem"),
    [
        ("command: ping", "probe.command: Value error, the command needs an {address}"),
        ("command: 'ping {address} {host}'", "unknown placeholders ['host']"),
        ("{command: 'ping {address}', rtt_pattern: 'rtt (\\d+)'}", "needs the named groups"),
        ("{command: 'ping {address}', loss_pattern: '('}", "not a regular expression"),
        ("{command: 'ping {address}', count: 0}", "probe.count: Input should be greater"),
    ],
)
def test_bad_probe_data_is_refused_with_file_and_line(
    tmp_path: Path, probe: str, problem: str
) -> None:
    (tmp_path / "p.yaml").write_text(f"name: p\nports: {{cli: 22}}\nprobe:\n  {probe}\n")
    with pytest.raises(ConfigError) as info:
        load_platform("p", tmp_path)
    assert f"{tmp_path / 'p.yaml'}:" in str(info.value)
    assert problem in str(info.value)


# --- rounds ---------------------------------------------------------------------------------


class _Session:
    def __init__(self, driver: _Driver, target: Target) -> None:
        self.driver, self.target = driver, target

    async def send_command(self, command: str) -> str:
        self.driver.commands.append((self.target.name, command))
        answer = self.driver.answers[self.target.name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def send_interrupted(self, command: str, *, after_s: float) -> str:
        self.driver.interrupted.append((command, after_s))
        return await self.send_command(command)


class _Driver:
    """A CLI driver that answers each device with a canned output (or error)."""

    def __init__(self, answers: dict[str, str | Exception]) -> None:
        self.answers = answers
        self.commands: list[tuple[str, str]] = []
        self.interrupted: list[tuple[str, float]] = []

    async def __aenter__(self) -> _Driver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    @asynccontextmanager
    async def connect(self, target: Target) -> AsyncIterator[_Session]:
        yield _Session(self, target)


def _target(name: str, platform: str = "lab-sim") -> Target:
    return Target(name=name, host="127.0.0.1", port=22, options={"platform": platform})


def _collector(
    services: list[ServiceEnds], answers: dict[str, str | Exception], sunk: list[Event]
) -> tuple[ProbeCollector, _Driver]:
    async def sink(events: list[Event]) -> None:
        sunk.extend(events)

    async def read() -> list[ServiceEnds]:
        return services

    driver = _Driver(answers)
    collector = ProbeCollector(ProbeSettings(), sink, read, driver=driver)  # type: ignore[arg-type]
    return collector, driver


def test_a_round_measures_what_it_can_and_says_why_not_the_rest() -> None:
    services = [
        ServiceEnds("svc-ok", "r1", "r3"),
        ServiceEnds("svc-one-box", "r1", None),
        ServiceEnds("svc-no-probe", "r2", "r3"),
        ServiceEnds("svc-gone", "r9", "r3"),
        ServiceEnds("svc-no-address", "r1", "r4"),
        ServiceEnds("svc-other-instance", "r5", "r3"),
    ]
    sunk: list[Event] = []
    collector, driver = _collector(services, {"r1": IPUTILS}, sunk)
    collector.follow(
        Targets(
            probers={"r1": _target("r1")},
            unprobed={"r2": "its platform linux has no probe data"},
            probe_addresses={"r1": "127.0.0.11", "r3": "10.255.0.3", "r5": "127.0.0.15"},
        )
    )
    events = asyncio.run(collector.round())
    assert driver.commands == [("r1", "ping -c 5 -i 0.2 -W 1 10.255.0.3")]  # lab-sim's data
    assert sunk == events
    [event] = events
    assert event.name == KPI_SERVICE
    assert event.tags == {"service": "svc-ok", "device": "r1", "target": "10.255.0.3"}
    assert event.values == {"loss-pct": 0.0, "latency-ms": 20.301, "jitter-ms": 0.114}
    assert collector.skipped == {
        "svc-one-box": "both its ends are on r1",
        "svc-no-probe": "its A-end r2: its platform linux has no probe data",
        "svc-gone": "its A-end r9 is not in the inventory",
        "svc-no-address": "its B-end r4 has no loopback or address",
    }
    assert collector.counts() == {"probes": 1, "probes_failed": 0, "probe_services_skipped": 4}


def test_all_lost_is_a_loss_figure_without_a_latency() -> None:
    sunk: list[Event] = []
    collector, _ = _collector([ServiceEnds("s", "r1", "r3")], {"r1": ALL_LOST}, sunk)
    collector.follow(Targets(probers={"r1": _target("r1")}, probe_addresses={"r3": "10.255.0.3"}))
    [event] = asyncio.run(collector.round())
    assert event.values == {"loss-pct": 100.0}


def test_failures_are_counted_and_logged_once_per_streak(caplog: pytest.LogCaptureFixture) -> None:
    sunk: list[Event] = []
    failure = DeviceTimeout("command 'ping': no answer within 5 s", device="r1", protocol="cli")
    answers: dict[str, Any] = {"r1": failure}
    collector, _ = _collector([ServiceEnds("s", "r1", "r3")], answers, sunk)
    collector.follow(Targets(probers={"r1": _target("r1")}, probe_addresses={"r3": "10.255.0.3"}))
    caplog.set_level(logging.INFO, "oss.assurance.probes")
    for _ in range(3):
        asyncio.run(collector.round())
    answers["r1"] = IPUTILS
    asyncio.run(collector.round())
    assert collector.counts()["probes_failed"] == 3
    assert collector.counts()["probes"] == 1
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if "failed" in m] == [
        "probes: service s from r1 to 10.255.0.3 failed: r1 (cli): command 'ping': no answer "
        "within 5 s (logged again when it works)"
    ]
    assert "probes: service s is measured again" in messages
    assert len(sunk) == 1


def test_a_ping_without_a_count_is_interrupted_after_the_platforms_time(tmp_path: Path) -> None:
    (tmp_path / "vty.yaml").write_text(
        "name: vty\nports: {cli: 22}\nprobe: {command: 'ping {address}', interrupt_after_s: 3}\n"
    )
    probe = load_platform("vty", tmp_path).probe
    assert probe is not None and probe.interrupt_after_s == 3


# --- thresholds -------------------------------------------------------------------------------


def test_a_latency_threshold_raises_and_clears_on_the_service() -> None:
    rules = Rules([{"metric": "latency-ms", "raise_above": 15, "clear_below": 10}])

    def kpi(latency: float, at_s: int) -> list[Any]:
        tags = {"service": "svc-a", "device": "r1", "target": "10.255.0.3"}
        values = {"latency-ms": latency, "jitter-ms": 0.1, "loss-pct": 0.0}
        return rules.signals(Event(KPI_SERVICE, at_s * 10**9, tags, values))

    assert kpi(2.0, 1) == []
    [raised] = kpi(22.0, 2)
    assert (raised.kind, raised.object_type, raised.object) == ("raise", "service", "svc-a")
    assert raised.reduction_key == "tca:latency-ms:svc-a"
    assert raised.specific_problem == "latency-ms above 15 on svc-a"
    assert kpi(12.0, 3) == []  # inside the hysteresis
    [cleared] = kpi(2.0, 4)
    assert cleared.kind == "clear" and cleared.reduction_key == raised.reduction_key


# --- what the pipeline hands the probes ---------------------------------------------------------


async def test_the_pipeline_hands_the_owned_probers_why_not_the_others_and_every_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("R_CREDS", '{"username": "oss", "password": "x"}')
    devices = [
        Device(
            name="r1", platform="lab-sim", mgmt_address="127.0.0.11", credentials_ref="env:R_CREDS"
        ),
        Device(
            name="r2", platform="linux", mgmt_address="127.0.0.12", credentials_ref="env:R_CREDS"
        ),
        Device(name="r3", platform="lab-sim", mgmt_address="127.0.0.13", loopback="10.255.0.3"),
        Device(
            name="r4", platform="lab-sim", mgmt_address="127.0.0.14", credentials_ref="env:R_CREDS"
        ),
    ]
    async with assemble(load_settings(None, state_dir=tmp_path)) as daemon:
        for device in devices:
            await daemon.inventory.add_device(device, actor="test")
        settings = AssuranceSettings(refresh_s=3600.0)
        owned = {"r1", "r2", "r3"}  # r4 is another cluster instance's
        pipeline = AssurancePipeline(
            settings, daemon.inventory, [], ports={"cli": 2222}, owns=owned.__contains__
        )
        probes = pipeline.collector("probes")
        assert isinstance(probes, ProbeCollector)
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop))
        try:
            async with asyncio.timeout(5):
                while True:
                    if probes.targets.probe_addresses:
                        break
                    await asyncio.sleep(0.01)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    targets = probes.targets
    assert set(targets.probers) == {"r1"}
    r1 = targets.probers["r1"]
    assert (r1.host, r1.port, r1.timeout_s) == ("127.0.0.11", 2222, 15.0)  # lab-sim's bound
    assert targets.unprobed == {
        "r2": "its platform linux has no probe data",
        "r3": "no management address or credentials reference",
    }
    assert targets.probe_addresses == {
        "r1": "127.0.0.11",
        "r2": "127.0.0.12",
        "r3": "10.255.0.3",  # its loopback
        "r4": "127.0.0.14",
    }

"""SNMP polling of the simulated lab: interface and KPI events with the lab's traffic rates, and
one reachability event each way when a node goes down and comes back (rebooted)."""

from __future__ import annotations

import pytest

from drivers.snmp import SnmpDriver
from oss.assurance.kpi import SKIP_RESTART
from oss.assurance.poller import SnmpPoller
from oss.events import KPI_INTERFACE, REACHABILITY
from oss.settings import PollerSettings
from tests.integration.assurance.conftest import CollectingSink, lab_target, wait_until
from tests.integration.lab.conftest import RunningLab

pytestmark = pytest.mark.integration

NODES = ("r1", "r2", "r3", "r4")


def with_rates(sink: CollectingSink, device: str) -> list[dict[str, object]]:
    return [
        {"interface": e.tags["interface"], **e.values}
        for e in sink.named(KPI_INTERFACE, device)
        if "in-bps" in e.values
    ]


async def test_polling_gives_rates_and_one_reachability_event_each_way(lab: RunningLab) -> None:
    sink = CollectingSink()
    # Rates are measured on the device's sysUpTime (test_poller_device_time.py checks them to
    # the tick); 25 % here only allows for the interfaces the lab's links change under way.
    settings = PollerSettings(interval_s=1.0, jitter_ratio=0.1, max_concurrency=2)
    async with SnmpDriver(retries=0) as driver:
        poller = SnmpPoller(driver, sink, settings=settings)
        poller.set_targets(lab_target(lab, n, "snmp") for n in NODES)
        await poller.start()
        try:
            await wait_until(lambda: all(len(with_rates(sink, n)) >= 4 for n in NODES))

            # Interface events carry what the driver read; KPI rates match the lab's traffic.
            r1_ifs = {e.tags["interface"]: e for e in sink.named("interface", "r1")}
            assert r1_ifs["eth1"].values["oper-status"] == "up"
            assert r1_ifs["eth1"].values["in-errors-bits"] == 32
            for node in NODES:
                sim = lab.lab.nodes[node].device
                for kpi in with_rates(sink, node):
                    iface = sim.interfaces[str(kpi["interface"])]
                    if not sim.oper_up(iface.name):
                        continue
                    expected = iface.rate_bps
                    assert kpi["in-bps"] == pytest.approx(expected, rel=0.25), kpi
                    assert kpi["out-bps"] == pytest.approx(expected, rel=0.25), kpi
                    assert kpi["in-utilisation"] == pytest.approx(
                        expected / iface.speed_bps, rel=0.25
                    )
                    assert kpi["availability"] == 1.0
                    assert kpi["error-ratio"] == 0.0
            initial = sink.named(REACHABILITY)
            assert sorted(e.device or "" for e in initial) == sorted(NODES)
            assert all(e.values["reachable"] is True for e in initial)

            # r2 goes down: exactly one unreachable event, however many polls fail.
            lab.set_node("r2", False)
            await wait_until(lambda: len(sink.named(REACHABILITY, "r2")) >= 2)
            failures = poller.failures
            await wait_until(lambda: poller.failures >= failures + 3)
            r2 = sink.named(REACHABILITY, "r2")
            assert [e.values["reachable"] for e in r2] == [True, False]
            assert poller.reachability["r2"] is False
            assert poller.reachability["r1"] is True

            # r2 comes back (rebooted: sysUpTime restarts): one reachable event, no spike.
            rates_before = len(with_rates(sink, "r2"))
            lab.set_node("r2", True)
            await wait_until(lambda: len(with_rates(sink, "r2")) >= rates_before + 3)
            r2 = sink.named(REACHABILITY, "r2")
            assert [e.values["reachable"] for e in r2] == [True, False, True]
            assert poller.kpi.skipped[SKIP_RESTART] == 1  # its baselines started over
            sim = lab.lab.nodes["r2"].device
            for kpi in with_rates(sink, "r2")[rates_before:]:
                expected = sim.interfaces[str(kpi["interface"])].rate_bps
                assert kpi["in-bps"] == pytest.approx(expected, rel=0.25), kpi
            assert len(sink.named(REACHABILITY)) == len(NODES) + 2
        finally:
            await poller.stop()

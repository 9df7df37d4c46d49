"""gNMI subscriptions to the simulated lab: interface events (counters sampled, oper-status on
change) with KPI rates, and a subscription that comes back after its node went down."""

from __future__ import annotations

import pytest

from drivers.gnmi import GnmiDriver
from oss.assurance.gnmi_collector import GnmiCollector, GnmiCollectorSettings
from oss.events import KPI_INTERFACE
from tests.integration.assurance.conftest import CollectingSink, lab_target, wait_until
from tests.integration.lab.conftest import RunningLab

pytestmark = pytest.mark.integration


async def test_subscription_streams_kpis_and_resubscribes_after_node_restart(
    lab: RunningLab,
) -> None:
    sink = CollectingSink()
    settings = GnmiCollectorSettings(
        sample_interval_s=0.5, backoff_initial_s=0.2, backoff_max_s=1.0
    )
    async with GnmiDriver() as driver:
        collector = GnmiCollector(driver, sink, settings=settings)
        collector.set_targets([lab_target(lab, "r1", "gnmi", timeout_s=5)])
        await collector.start()
        try:

            def rates() -> list[dict[str, object]]:
                return [
                    {"interface": e.tags["interface"], **e.values}
                    for e in sink.named(KPI_INTERFACE, "r1")
                    if "in-bps" in e.values
                ]

            await wait_until(lambda: len(rates()) >= 6)
            sim = lab.lab.nodes["r1"].device
            for kpi in rates():
                iface = sim.interfaces[str(kpi["interface"])]
                if sim.oper_up(iface.name):
                    assert kpi["in-bps"] == pytest.approx(iface.rate_bps, rel=0.25), kpi
            statuses = {
                e.tags["interface"]: e.values["oper-status"]
                for e in sink.named("interface", "r1")
                if "oper-status" in e.values
            }
            assert statuses["eth1"] == "up"
            assert collector.subscriptions("r1") == 1

            # A link fault arrives ON_CHANGE, lower-cased like SNMP's.
            seen = len(sink.events)
            lab.set_link("r1:eth1", False)
            await wait_until(
                lambda: any(
                    e.values.get("oper-status") == "down" and e.tags.get("interface") == "eth1"
                    for e in sink.events[seen:]
                )
            )

            # The node goes down and comes back: the collector subscribes again, and the
            # new session's counters give rates again.
            lab.set_node("r1", False)
            lab.set_node("r1", True)
            await wait_until(lambda: collector.subscriptions("r1") == 2)
            after = len(rates())
            await wait_until(lambda: len(rates()) >= after + 2)
            for kpi in rates()[after:]:
                iface = sim.interfaces[str(kpi["interface"])]
                if sim.oper_up(iface.name):
                    assert kpi["in-bps"] == pytest.approx(iface.rate_bps, rel=0.25), kpi
        finally:
            await collector.stop()

"""SNMP rates on the device's clock: the octet counters come with the sysUpTime of the same GET,
so rates over short intervals match the lab's traffic to the uptime's 1/100 s resolution,
however late the collector read the replies."""

from __future__ import annotations

import pytest

from drivers.snmp import SnmpDriver
from oss.assurance.kpi import SYS_UPTIME
from oss.assurance.poller import SnmpPoller
from oss.events import KPI_INTERFACE
from oss.settings import PollerSettings
from tests.integration.assurance.conftest import CollectingSink, lab_target, wait_until
from tests.integration.lab.conftest import RunningLab

pytestmark = pytest.mark.integration


async def test_short_interval_rates_are_exact_to_the_uptime_tick(lab: RunningLab) -> None:
    sink = CollectingSink()
    settings = PollerSettings(interval_s=0.5, jitter_ratio=0.2, max_concurrency=1)
    async with SnmpDriver(retries=0) as driver:
        poller = SnmpPoller(driver, sink, settings=settings)
        poller.set_targets([lab_target(lab, "r1", "snmp")])
        await poller.start()
        try:

            def rates() -> list[dict[str, object]]:
                return [
                    {"interface": e.tags["interface"], **e.values}
                    for e in sink.named(KPI_INTERFACE, "r1")
                    if "in-bps" in e.values
                ]

            await wait_until(lambda: len(rates()) >= 12)
        finally:
            await poller.stop()

    interfaces = sink.named("interface", "r1")
    assert interfaces and all(isinstance(e.values.get(SYS_UPTIME), int) for e in interfaces)
    sim = lab.lab.nodes["r1"].device
    checked = 0
    for kpi in rates():
        iface = sim.interfaces[str(kpi["interface"])]
        if not sim.oper_up(iface.name):
            continue
        interval = kpi["interval-s"]
        assert isinstance(interval, float)
        # Each end of the interval is exact to one tick (0.01 s): that is the whole error.
        tolerance = 0.011 / interval
        assert kpi["in-bps"] == pytest.approx(iface.rate_bps, rel=tolerance), kpi
        assert kpi["out-bps"] == pytest.approx(iface.rate_bps, rel=tolerance), kpi
        checked += 1
    assert checked >= 6

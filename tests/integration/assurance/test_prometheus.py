"""The lab polled into the KPI gauges, scraped by a real Prometheus, queried back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server

from drivers.snmp import SnmpDriver
from oss.assurance.poller import SnmpPoller
from oss.outputs.prometheus import KpiGauges
from oss.settings import PollerSettings
from tests.integration.assurance.conftest import lab_target
from tests.integration.lab.conftest import RunningLab
from tests.peers.ports import free_port
from tests.peers.prometheus import PrometheusServer, running_prometheus

pytestmark = pytest.mark.integration


@pytest.fixture
def exposed() -> Iterator[tuple[CollectorRegistry, str]]:
    """A registry served over HTTP on a free loopback port, as the daemon's /metrics is."""
    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield registry, f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def query_until(prometheus: PrometheusServer, promql: str) -> list[dict[str, Any]]:
    """The query's result once it has one (bounded wait)."""
    async with asyncio.timeout(30):
        while True:
            result = await asyncio.to_thread(prometheus.query, promql)
            if result:
                return result
            await asyncio.sleep(0.2)


async def test_prometheus_scrapes_interface_kpis(
    lab: RunningLab, exposed: tuple[CollectorRegistry, str]
) -> None:
    registry, address = exposed
    gauges = KpiGauges(registry)
    with running_prometheus([address], scrape_interval_s=0.5) as prometheus:
        settings = PollerSettings(interval_s=0.5, jitter_ratio=0.1)
        async with SnmpDriver(retries=0) as driver:
            poller = SnmpPoller(driver, gauges.offer, settings=settings)
            poller.set_targets([lab_target(lab, "r1", "snmp")])
            await poller.start()
            try:
                selector = '{device="r1",interface="eth1"}'
                result = await query_until(prometheus, f"oss_interface_in_bps{selector}")
                rate = lab.lab.nodes["r1"].device.interfaces["eth1"].rate_bps
                assert float(result[0]["value"][1]) == pytest.approx(rate, rel=0.25)
                assert result[0]["metric"]["job"] == "oss"

                up = await query_until(prometheus, f"oss_interface_oper_up{selector}")
                assert float(up[0]["value"][1]) == 1.0
                reachable = await query_until(prometheus, 'oss_device_reachable{device="r1"}')
                assert float(reachable[0]["value"][1]) == 1.0
            finally:
                await poller.stop()

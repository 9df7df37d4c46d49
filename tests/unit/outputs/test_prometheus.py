"""KPI events into Prometheus gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from oss.events import Event
from oss.outputs.prometheus import KpiGauges

LABELS = {"device": "r1", "interface": "eth1"}


def test_kpi_and_reachability_events_set_gauges() -> None:
    registry = CollectorRegistry()
    gauges = KpiGauges(registry)
    gauges.observe(
        [
            Event("kpi.interface", 1, LABELS, {"in-bps": 2e6, "availability": 1.0}),
            Event("device.reachability", 1, {"device": "r1"}, {"reachable": False}),
            Event("interface", 1, LABELS, {"in-octets": 5}),
        ]
    )
    assert registry.get_sample_value("oss_interface_in_bps", LABELS) == 2e6
    assert registry.get_sample_value("oss_interface_oper_up", LABELS) == 1.0
    assert registry.get_sample_value("oss_interface_out_bps", LABELS) is None
    assert registry.get_sample_value("oss_device_reachable", {"device": "r1"}) == 0.0

    # A first sample (availability only) leaves the rates as they were.
    gauges.observe([Event("kpi.interface", 2, LABELS, {"availability": 0.0})])
    assert registry.get_sample_value("oss_interface_in_bps", LABELS) == 2e6
    assert registry.get_sample_value("oss_interface_oper_up", LABELS) == 0.0


def test_forget_device_removes_its_series() -> None:
    registry = CollectorRegistry()
    gauges = KpiGauges(registry)
    other = {"device": "r2", "interface": "eth1"}
    gauges.observe(
        [
            Event("kpi.interface", 1, LABELS, {"in-bps": 1.0}),
            Event("kpi.interface", 1, other, {"in-bps": 3.0}),
            Event("device.reachability", 1, {"device": "r1"}, {"reachable": True}),
        ]
    )
    gauges.forget_device("r1")
    gauges.forget_device("r9")
    assert registry.get_sample_value("oss_interface_in_bps", LABELS) is None
    assert registry.get_sample_value("oss_device_reachable", {"device": "r1"}) is None
    assert registry.get_sample_value("oss_interface_in_bps", other) == 3.0

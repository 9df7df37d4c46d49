"""Interface KPIs and device reachability as Prometheus gauges, on a registry passed in (the
runtime's: `oss.metrics.Metrics.registry`), so `/metrics` exposes them with the daemon's own.

    gauges = KpiGauges(runtime.metrics.registry)
    await gauges.offer(events)      # or gauges.observe(events)

Gauges (labels device, interface): oss_interface_in_bps, oss_interface_out_bps,
oss_interface_in_utilisation, oss_interface_out_utilisation, oss_interface_error_ratio,
oss_interface_oper_up (1/0, from availability); oss_device_reachable{device} (1/0); and the
active probes' oss_service_latency_ms, oss_service_jitter_ms, oss_service_loss_pct{service}.
A KPI absent from an event leaves its gauge as it was (a first sample has no rates).

Registered as the "gauges" output, built when assurance is enabled (it has no settings of its
own): the names above are the daemon's, not a collector's, so it reads only the events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Gauge

from oss.events import KPI_INTERFACE, KPI_SERVICE, REACHABILITY, Event
from oss.outputs.registry import OutputContext, register_output

_INTERFACE_GAUGES = (  # (KPI value, metric name, help)
    ("in-bps", "oss_interface_in_bps", "Inbound traffic, bits per second"),
    ("out-bps", "oss_interface_out_bps", "Outbound traffic, bits per second"),
    ("in-utilisation", "oss_interface_in_utilisation", "Inbound traffic / speed (0..1)"),
    ("out-utilisation", "oss_interface_out_utilisation", "Outbound traffic / speed (0..1)"),
    ("error-ratio", "oss_interface_error_ratio", "Errored packets / packets (0..1)"),
    ("availability", "oss_interface_oper_up", "1 while the interface is operationally up"),
)
_SERVICE_GAUGES = (  # (KPI value, metric name, help): the active probes' (oss.assurance.probes)
    ("latency-ms", "oss_service_latency_ms", "Round trip between the service's ends, ms"),
    ("jitter-ms", "oss_service_jitter_ms", "Mean deviation of that round trip, ms"),
    ("loss-pct", "oss_service_loss_pct", "Probe packets lost between the service's ends, %"),
)


class KpiGauges:
    name = "gauges"

    def __init__(self, registry: CollectorRegistry) -> None:
        self._interface = {
            value: Gauge(metric, doc, ["device", "interface"], registry=registry)
            for value, metric, doc in _INTERFACE_GAUGES
        }
        self._service = {
            value: Gauge(metric, doc, ["service"], registry=registry)
            for value, metric, doc in _SERVICE_GAUGES
        }
        self.reachable = Gauge(
            "oss_device_reachable", "1 while the device answers", ["device"], registry=registry
        )
        self._labels: set[tuple[str, str]] = set()

    def observe(self, events: Iterable[Event]) -> None:
        for event in events:
            if event.name == KPI_INTERFACE:
                self._kpi(event)
            elif event.name == KPI_SERVICE:
                self._service_kpi(event)
            elif event.name == REACHABILITY:
                device = event.tags.get("device")
                if device:
                    self.reachable.labels(device).set(1 if event.values.get("reachable") else 0)

    async def offer(self, events: Sequence[Event]) -> None:
        self.observe(events)

    def _kpi(self, event: Event) -> None:
        device, interface = event.tags.get("device"), event.tags.get("interface")
        if not device or not interface:
            return
        for key, gauge in self._interface.items():
            value = event.values.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                gauge.labels(device, interface).set(value)
                self._labels.add((device, interface))

    def _service_kpi(self, event: Event) -> None:
        service = event.tags.get("service")
        if not service:
            return
        for key, gauge in self._service.items():
            value = event.values.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                gauge.labels(service).set(value)

    def forget_device(self, device: str) -> None:
        """Drop a device's series (it left the inventory): no stale values on /metrics."""
        for labels in [lab for lab in self._labels if lab[0] == device]:
            for gauge in self._interface.values():
                try:
                    gauge.remove(*labels)
                except KeyError:  # that KPI was never set for this interface
                    continue
            self._labels.discard(labels)
        try:
            self.reachable.remove(device)
        except KeyError:  # never reported
            return


@register_output("gauges")
def _gauges(context: OutputContext) -> KpiGauges | None:
    if not context.settings.assurance.enabled:
        return None
    return KpiGauges(context.metrics.registry)

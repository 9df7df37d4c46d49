"""The daemon's own Prometheus metrics, on a registry per runtime (never the global one, so
several runtimes — tests, for one — never collide)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from oss import __version__


class _CallbackGauges(Collector):
    """A gauge family read at scrape time, so it can never drift from its source."""

    def __init__(self, name: str, doc: str, label: str, read: Callable[[], Mapping[str, int]]):
        self._name, self._doc, self._label, self._read = name, doc, label, read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=[self._label])
        for key, value in sorted(self._read().items()):
            family.add_metric([key], value)
        yield family


class _CallbackCounters(Collector):
    """A counter family read at scrape time from counts its owner keeps (they only grow)."""

    def __init__(self, name: str, doc: str, label: str, read: Callable[[], Mapping[str, int]]):
        self._name, self._doc, self._label, self._read = name, doc, label, read

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._doc, labels=[self._label])
        for key, value in sorted(self._read().items()):
            family.add_metric([key], value)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        Info("oss_build", "Daemon build information", registry=self.registry).info(
            {"version": __version__}
        )
        self.http_requests = Counter(
            "oss_http_requests",
            "REST requests handled, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "oss_http_request_duration_seconds",
            "REST request handling time, by route template",
            ["method", "route"],
            registry=self.registry,
        )
        # Per runtime component; the series keeps its first name and label (dashboards, tests).
        self.component_up = Gauge(
            "oss_service_up",
            "1 while a daemon component runs (the label is the component's name)",
            ["service"],
            registry=self.registry,
        )
        self.ready = Gauge("oss_ready", "1 when the daemon serves requests", registry=self.registry)

    def watch_counts(
        self, name: str, doc: str, label: str, read: Callable[[], Mapping[str, int]]
    ) -> None:
        self.registry.register(_CallbackGauges(name, doc, label, read))

    def watch_counters(
        self, name: str, doc: str, label: str, read: Callable[[], Mapping[str, int]]
    ) -> None:
        """A Prometheus counter family (`<name>_total{label=key}`) read from `read()`."""
        self.registry.register(_CallbackCounters(name, doc, label, read))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

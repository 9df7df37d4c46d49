"""`build(settings) -> Runtime`: the one place where the daemon is wired together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from bss_bridge.usage_collector import UsageCollector
from oss.api import create_app
from oss.api.server import ApiService
from oss.assurance.service import AssuranceService
from oss.components import Stage
from oss.daemon import Daemon
from oss.events import Event
from oss.metrics import Metrics
from oss.outputs.influx import InfluxOutput
from oss.outputs.prometheus import KpiGauges
from oss.outputs.rollup import MinuteRollup
from oss.paths import use_configs_dir
from oss.runtime import Runtime
from oss.settings import Settings
from topology.targets import parse_networks


class _Background:
    """A coroutine that runs until it is cancelled, as a runtime service."""

    def __init__(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self.stage = Stage.WORKERS
        self._work = work

    async def run(self, stop: asyncio.Event) -> None:
        task = asyncio.create_task(self._work())
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()  # a crash shows; an early return is the runtime's to report
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _InfluxService:
    name = "influx"
    stage = Stage.WORKERS

    def __init__(self, output: InfluxOutput) -> None:
        self.output = output

    async def run(self, stop: asyncio.Event) -> None:
        await self.output.run(stop)

    async def offer(self, events: list[Event]) -> None:
        self.output.offer(events)


def _collection_counts(assurance: AssuranceService) -> dict[str, int]:
    poller, traps = assurance.poller, assurance.traps
    return {
        "polls": poller.polls if poller else 0,
        "poll_failures": poller.failures if poller else 0,
        "traps_received": traps.received if traps else 0,
        "traps_dropped": traps.dropped if traps else 0,
    }


def watch_assurance(metrics: Metrics, assurance: AssuranceService) -> None:
    """The assurance pipeline's counts on /metrics."""
    metrics.watch_counts(
        "oss_collection",
        "Collection: polls, failed polls, traps received and dropped",
        "counter",
        lambda: _collection_counts(assurance),
    )
    metrics.watch_counters(
        "oss_traps_rejected",
        "Trap datagrams dropped unread, by reason: decode (not a well-formed notification), "
        "community (an unknown v1/v2c community)",
        "reason",
        lambda: assurance.traps.rejected if assurance.traps else {},
    )
    metrics.watch_counters(
        "oss_event_sink_failed_events",
        "Collected events a sink failed on, by sink (logged; the other sinks got them)",
        "sink",
        lambda: assurance.sink_failed_events,
    )


def daemon_of(runtime: Runtime) -> Daemon:
    """The parts the API serves, from the runtime that still builds most of them."""
    return Daemon(
        settings=runtime.settings,
        metrics=runtime.metrics,
        db=runtime.db,
        inventory=runtime.inventory,
        tokens=runtime.tokens,
        services=runtime.services,
        alarms=runtime.alarms,
        bss=runtime.bss,
        readiness=runtime,
        noc_publisher=runtime.noc_publisher,
    )


def build(settings: Settings) -> tuple[Runtime, ApiService]:
    use_configs_dir(settings.configs_dir)  # first: every loader below reads the chosen folder
    runtime = Runtime(settings)
    api = ApiService(create_app(daemon_of(runtime)), settings.api)
    runtime.add_service(api)
    outputs = []
    metrics = runtime.metrics
    if settings.influx.enabled:
        influx = _InfluxService(InfluxOutput(settings.influx))
        runtime.add_service(influx)
        outputs.append(influx.offer)
        metrics.watch_counts(
            "oss_output_influx",
            "InfluxDB output: written, retried, spooled, dropped, queue",
            "counter",
            influx.output.stats,
        )
    publisher = runtime.noc_publisher
    if publisher is not None:
        runtime.add_service(_Background("noc-feed", publisher.run))
        metrics.watch_counts(
            "oss_output_mqtt",
            "NOC feed: messages the broker acknowledged, connected",
            "counter",
            lambda: {"published": publisher.published, "connected": int(publisher.connected)},
        )
    if settings.assurance.enabled:
        nets = settings.drivers.allowed_networks
        assurance = AssuranceService(
            settings.assurance,
            runtime.inventory,
            runtime.alarms,
            KpiGauges(runtime.metrics.registry),
            MinuteRollup(runtime.db),
            allowed=parse_networks(nets) if nets is not None else None,
            credentials_dirs=settings.drivers.credentials_dirs,
            snmp_port=settings.drivers.ports.get("snmp"),
            gnmi_port=settings.drivers.ports.get("gnmi"),
            outputs=outputs,
        )
        assurance.bind()  # a busy trap port stops start-up here, as a busy API port does
        runtime.add_service(assurance)
        watch_assurance(metrics, assurance)
    if settings.bss.enabled:
        runtime.add_service(UsageCollector(runtime.bss.usage, settings.bss.usage_interval_s))
    return runtime, api

"""Active latency probes: each active service's round trip, jitter and loss, measured from its
A-end device's own CLI to its B-end's loopback (else its management address), as "kpi.service"
events (object the service's name) with the values

    latency-ms   the average round trip (ping's avg)
    jitter-ms    its mean deviation (ping's mdev)
    loss-pct     echoes lost, percent (alone when none came back)

which the minute roll-ups keep for the SLA's latency term (bss_bridge.sla reads "latency-ms")
and the thresholds watch (a `latency-ms` threshold raises a quality-of-service alarm on the
service). How a device pings is its platform's data (`probe:` in configs/platforms/*.yaml:
the command, its count, an interrupt for a ping without a count such as FRR vtysh's, the
patterns of the summary); code knows no vendor.

A round runs every `probes.interval_s`, its probes `probes.max_concurrency` at a time, each
bounded by the platform's `timeout_s`, over SSH sessions of the collector's own (polling never
waits for a probe). A service is skipped, counted and logged once per reason, when both its
ends are one device, when its A-end's platform has no probe data or its B-end no address. In
a cluster only the A-end's owner probes (the pipeline hands this collector the CLI targets of
the devices this instance collects from). A probe that fails (no session, no summary in time)
is counted (`probes_failed`) and logged once per streak of the service; errors name the
device, never its credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from drivers.base import Target
from drivers.cli import CliDriver
from drivers.platforms import ProbeOptions, load_platform
from oss.assurance.collectors import (
    CollectorContext,
    ServiceReader,
    Sink,
    Targets,
    register_collector,
)
from oss.errors import OssError
from oss.events import KPI_SERVICE, Event, now_ns
from oss.settings import ProbeSettings
from oss.store.service_queries import ServiceEnds

log = logging.getLogger(__name__)

LATENCY = "latency-ms"
JITTER = "jitter-ms"
LOSS = "loss-pct"
_GRACE_S = 2.0  # past the platform's bound: the driver's own timeouts fire first


class ProbeFailed(OssError):
    """A probe's output said nothing it could read."""


@dataclass(frozen=True)
class PingSummary:
    loss_pct: float
    avg_ms: float | None  # None when no echo came back
    mdev_ms: float | None


def read_summary(output: str, probe: ProbeOptions) -> PingSummary:
    """The loss and round-trip figures of a ping's output, by the platform's patterns."""
    loss = re.search(probe.loss_pattern, output)
    if loss is None:
        raise ProbeFailed(f"no packet loss in the ping's output: {_gist(output)!r}")
    loss_pct = float(loss["loss"])
    rtt = re.search(probe.rtt_pattern, output)
    if rtt is None:
        if loss_pct < 100:
            raise ProbeFailed(f"no round trip in the ping's output: {_gist(output)!r}")
        return PingSummary(loss_pct, None, None)
    return PingSummary(loss_pct, float(rtt["avg"]), float(rtt["mdev"]))


def _gist(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return " | ".join(lines[-3:])[:200]


@dataclass(frozen=True)
class _Plan:
    service: str
    a: str
    address: str  # the B-end's probe address
    target: Target  # the A-end's CLI
    probe: ProbeOptions


class ProbeCollector:
    """The "probes" collector of the registry (oss.assurance.collectors)."""

    name = "probes"

    def __init__(
        self,
        settings: ProbeSettings,
        sink: Sink,
        services: ServiceReader | None,
        *,
        driver: CliDriver | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.services = services
        self.driver = driver or CliDriver(max_workers=settings.max_workers)
        self.targets = Targets()  # as the pipeline last handed them
        self.probes = 0  # probes that gave figures
        self.failed = 0  # probes that did not
        self.rounds = 0
        self.skipped: dict[str, str] = {}  # service -> why it is not probed, as of the last round
        self._failing: set[str] = set()  # services whose last probe failed (logged once)
        self._reader_failing = False

    # --- the collector contract ---------------------------------------------------------------

    def follow(self, targets: Targets) -> None:
        self.targets = targets

    def restarted(self, device: str) -> None:
        """Nothing kept per device: a restart changes no figure."""

    def counts(self) -> Mapping[str, int]:
        return {
            "probes": self.probes,
            "probes_failed": self.failed,
            "probe_services_skipped": len(self.skipped),
        }

    async def run(self, stop: asyncio.Event) -> None:
        if not self.settings.enabled or self.services is None:
            await stop.wait()
            return
        async with self.driver:
            while not stop.is_set():
                started = asyncio.get_running_loop().time()
                await self.round()
                pause = self.settings.interval_s - (asyncio.get_running_loop().time() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(pause, 0.0))

    # --- a round ------------------------------------------------------------------------------

    async def round(self) -> list[Event]:
        """Probe every service this instance measures once; their events go to the sink."""
        assert self.services is not None
        try:
            services = await self.services()
        except (OssError, OSError) as exc:
            if not self._reader_failing:
                log.warning("probes: cannot read the services (%s); trying each round", exc)
            self._reader_failing = True
            return []
        if self._reader_failing:
            log.info("probes: the services can be read again")
            self._reader_failing = False
        plans = self._plans(services)
        gate = asyncio.Semaphore(self.settings.max_concurrency)

        async def bounded(plan: _Plan) -> Event | None:
            async with gate:
                return await self._probe(plan)

        results = await asyncio.gather(*(bounded(plan) for plan in plans))
        events = [event for event in results if event is not None]
        self.rounds += 1
        if events:
            try:
                await self.sink(events)
            except asyncio.CancelledError:
                raise
            except Exception:  # a failing output must not end the probes
                log.exception("probes: the event sink failed on %d events", len(events))
        return events

    def _plans(self, services: Sequence[ServiceEnds]) -> list[_Plan]:
        targets = self.targets
        plans: list[_Plan] = []
        skipped: dict[str, str] = {}
        for service in services:
            if service.a not in targets.probers and service.a not in targets.unprobed:
                if service.a in targets.probe_addresses:
                    continue  # another cluster instance collects from the A-end: its probe
                skipped[service.name] = f"its A-end {service.a} is not in the inventory"
            elif service.b is None:
                skipped[service.name] = f"both its ends are on {service.a}"
            elif service.a in targets.unprobed:
                skipped[service.name] = f"its A-end {service.a}: {targets.unprobed[service.a]}"
            elif service.b not in targets.probe_addresses:
                skipped[service.name] = f"its B-end {service.b} has no loopback or address"
            else:
                target = targets.probers[service.a]
                probe = load_platform(str(target.options["platform"])).probe
                if probe is None:  # the pipeline hands only devices with probe data
                    skipped[service.name] = f"its A-end {service.a} has no probe data"
                    continue
                address = targets.probe_addresses[service.b]
                plans.append(_Plan(service.name, service.a, address, target, probe))
        for name, why in skipped.items():
            if self.skipped.get(name) != why:
                log.info("probes: not measuring service %s: %s", name, why)
        self.skipped = skipped
        return plans

    async def _probe(self, plan: _Plan) -> Event | None:
        probe = plan.probe
        command = probe.command.format(address=plan.address, count=probe.count)
        try:
            async with asyncio.timeout(probe.timeout_s + _GRACE_S):
                async with self.driver.connect(plan.target) as session:
                    if probe.interrupt_after_s is not None:
                        output = await session.send_interrupted(
                            command, after_s=probe.interrupt_after_s
                        )
                    else:
                        output = str(await session.send_command(command))
            summary = read_summary(output, probe)
        except (OssError, TimeoutError) as exc:
            self.failed += 1
            if plan.service not in self._failing:
                self._failing.add(plan.service)
                reason = str(exc) or f"no answer within {probe.timeout_s:g} s"
                log.warning(
                    "probes: service %s from %s to %s failed: %s (logged again when it works)",
                    plan.service,
                    plan.a,
                    plan.address,
                    reason,
                )
            return None
        self.probes += 1
        if plan.service in self._failing:
            self._failing.discard(plan.service)
            log.info("probes: service %s is measured again", plan.service)
        return _event(plan, summary)


def _event(plan: _Plan, summary: PingSummary) -> Event:
    values: dict[str, float] = {LOSS: summary.loss_pct}
    if summary.avg_ms is not None and summary.mdev_ms is not None:
        values[LATENCY] = summary.avg_ms
        values[JITTER] = summary.mdev_ms
    tags = {"service": plan.service, "device": plan.a, "target": plan.address}
    return Event(KPI_SERVICE, now_ns(), tags, values)


@register_collector("probes")
def _probes(context: CollectorContext) -> ProbeCollector:
    return ProbeCollector(context.settings.probes, context.sink, context.services)

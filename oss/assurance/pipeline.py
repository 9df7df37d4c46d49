"""The assurance pipeline: the registered collectors (SNMP poll, gNMI stream, traps) collect
from the inventory's devices, and every event list they make goes to every output, in order.

    collectors (oss/assurance/collectors.py) --events--> outputs (oss/outputs/registry.py:
        gauges (/metrics), minute roll-ups, InfluxDB, alarms (rules -> AlarmManager), ...)
        and the interface oper_state in the inventory (on change), last

Which per-device collector a device gets is its platform's `telemetry` (configs/platforms/
*.yaml: snmp, the default, or gnmi): the name a collector is registered under. All report the
same canonical events, reachability included. The device list follows the inventory (checked
every `refresh_s`, and within INVENTORY_CHECK_S of a change of its devices); a device whose
target cannot be built (unknown platform, no address, bad credentials reference) is logged
once and skipped. In a cluster (`owns`, oss.cluster) the per-device collectors take only the
devices this instance owns, followed at once when its shares change (`shares_changed`): a
device taken over from an instance that died is polled and subscribed to at once. Traps are
taken from every device: each instance processes what it receives.

An output that fails does not keep the list from the others. Its failure is counted by its
name (`sink_failed_events`, on /metrics as oss_event_sink_failed_events_total{sink}) and logged
with its traceback once per streak of failures, and once when it works again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

from drivers.base import Target
from drivers.platforms import load_platform
from oss.assurance import gnmi_collector, poller, probes, traps
from oss.assurance.collectors import (
    BindingCollector,
    Collector,
    CollectorContext,
    RejectingCollector,
    ServiceReader,
    Targets,
    build_collectors,
)
from oss.assurance.oper_state import OperStates
from oss.components import Stage
from oss.errors import Fenced, OssError
from oss.events import Event, InterfaceNames
from oss.inventory import Inventory
from oss.metrics import Metrics
from oss.outputs.registry import FlushingOutput, ForgettingOutput, Output
from oss.settings import AssuranceSettings
from topology.model import Device
from topology.targets import Network, target_for

log = logging.getLogger(__name__)

# The collectors' modules: each registers itself when imported (a new collector: its module).
COLLECTOR_MODULES: tuple[ModuleType, ...] = (poller, gnmi_collector, traps, probes)
RESTART_TRAPS = ("coldStart", "warmStart")
INVENTORY_CHECK_S = 1.0  # how soon a change of the inventory's devices is followed


class AssurancePipeline:
    name = "assurance"
    stage = Stage.WORKERS

    def __init__(
        self,
        settings: AssuranceSettings,
        inventory: Inventory,
        outputs: Sequence[Output],
        *,
        allowed: Sequence[Network] | None = None,
        credentials_dirs: Sequence[Path] | None = None,
        ports: Mapping[str, int] | None = None,
        options: Mapping[str, object] | None = None,
        owns: Callable[[str], bool] | None = None,
        services: ServiceReader | None = None,
    ) -> None:
        self.settings = settings
        self.owns = owns  # cluster mode: whether this instance collects from a device
        self.inventory = inventory
        self.outputs = list(outputs)
        self.allowed = allowed
        self.credentials_dirs = credentials_dirs
        self.ports = dict(ports or {})  # by protocol; absent: the platform's port
        self.collectors = build_collectors(
            CollectorContext(settings, self.sink, options or {}, services)
        )
        self._names = InterfaceNames()
        self.oper_states = OperStates(inventory, interface_name=self._names)
        self._skipped: set[str] = set()
        self._devices: set[str] = set()  # the devices collected from at the last refresh
        self._shares_moved = asyncio.Event()
        self.sink_failed_events: Counter[str] = Counter()  # by output name, since start
        self._failing_sinks: set[str] = set()

    def shares_changed(self) -> None:
        """This instance's device shares changed (oss.cluster): follow them now."""
        self._shares_moved.set()

    def collector(self, name: str) -> Collector:
        return self.collectors[name]

    def bind(self) -> None:
        """Take the listening collectors' ports now (the trap receiver's), at start-up: a busy
        one stops the daemon with a ConfigError naming the setting, as a busy API port does."""
        sources = Targets(sources=self._sources())
        for collector in self.collectors.values():
            if isinstance(collector, BindingCollector):
                collector.follow(sources)
                collector.bind()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._set_targets()
            async with asyncio.TaskGroup() as tasks:
                for collector in self.collectors.values():
                    tasks.create_task(collector.run(stop), name=f"collector-{collector.name}")
                tasks.create_task(self._refresh(stop))
        finally:
            for output in self.outputs:  # the collectors stopped: their last events are in
                if isinstance(output, FlushingOutput):
                    await _last_flush(output)

    # --- events ---------------------------------------------------------------------------

    async def sink(self, events: list[Event]) -> None:
        """Every collected event passes here once, in order."""
        self._names.learn(events)
        for event in events:
            if event.name == "snmp.trap" and event.tags.get("trap") in RESTART_TRAPS:
                device = event.device
                if device:
                    for collector in self.collectors.values():
                        collector.restarted(device)
        for output in self.outputs:
            await self._deliver(output.name, output.offer, events)
        await self._deliver("inventory", self.oper_states.sink, events)  # interface oper_state

    async def _deliver(
        self, sink: str, deliver: Callable[[list[Event]], Awaitable[object]], events: list[Event]
    ) -> None:
        """`deliver(events)`; a failure is counted and logged, never raised: the next outputs
        still get the list."""
        try:
            await deliver(events)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.sink_failed_events[sink] += len(events)
            if sink in self._failing_sinks:
                log.debug("assurance: the %s sink failed again", sink, exc_info=True)
                return
            self._failing_sinks.add(sink)
            log.exception(
                "assurance: the %s sink failed on %d events (counted in "
                "oss_event_sink_failed_events_total; logged again when it works)",
                sink,
                len(events),
            )
            return
        if sink in self._failing_sinks:
            self._failing_sinks.discard(sink)
            log.info("assurance: the %s sink works again", sink)

    # --- counts -----------------------------------------------------------------------------

    def collection_counts(self) -> dict[str, int]:
        """The collectors' counts (polls, failed polls, traps received and dropped)."""
        counts: dict[str, int] = {}
        for collector in self.collectors.values():
            counts.update(collector.counts())
        return counts

    def rejected(self) -> dict[str, int]:
        """Input the listening collectors dropped unread, by reason."""
        rejected: Counter[str] = Counter()
        for collector in self.collectors.values():
            if isinstance(collector, RejectingCollector):
                rejected.update(collector.rejected)
        return dict(rejected)

    def watch(self, metrics: Metrics) -> None:
        """The pipeline's counts on /metrics."""
        metrics.watch_counts(
            "oss_collection",
            "Collection: polls, failed polls, traps received and dropped",
            "counter",
            self.collection_counts,
        )
        metrics.watch_counters(
            "oss_traps_rejected",
            "Trap datagrams dropped unread, by reason: decode (not a well-formed notification), "
            "community (an unknown v1/v2c community)",
            "reason",
            self.rejected,
        )
        metrics.watch_counters(
            "oss_event_sink_failed_events",
            "Collected events a sink failed on, by sink (logged; the other sinks got them)",
            "sink",
            lambda: self.sink_failed_events,
        )

    # --- devices ----------------------------------------------------------------------------

    async def _targets(self) -> dict[str, list[Target]]:
        """The inventory's devices as targets, by telemetry protocol (a collector's name)."""
        targets: dict[str, list[Target]] = {name: [] for name in self.collectors}
        for device in self._collected():
            if device.mgmt_address is None or device.credentials_ref is None:
                continue
            try:
                protocol, target = await asyncio.to_thread(self._target, device)
            except OssError as exc:
                if device.name not in self._skipped:
                    log.warning("assurance: not collecting from %s: %s", device.name, exc)
                    self._skipped.add(device.name)
                continue
            self._skipped.discard(device.name)
            targets[protocol].append(target)
        return targets

    def _target(self, device: Device) -> tuple[str, Target]:
        """Blocking (reads the platform and credentials files): run in a thread."""
        protocol = load_platform(device.platform).telemetry
        target = target_for(
            device,
            protocol,
            port=self.ports.get(protocol),
            allowed=self.allowed,
            credentials_dirs=self.credentials_dirs,
        )
        return protocol, target

    def _collected(self) -> list[Device]:
        """The inventory's devices this instance collects from (in a cluster, its share)."""
        devices = self.inventory.graph.devices()
        if self.owns is None:
            return list(devices)
        return [device for device in devices if self.owns(device.name)]

    def _forget_removed(self) -> None:
        """The outputs forget a device that left the inventory (its alarms were closed with
        it, see the devices route), or this instance's share: added (or taken over) again, it
        gets its alarms afresh, not judged against what was last seen here."""
        present = {device.name for device in self._collected()}
        for name in self._devices - present:
            for output in self.outputs:
                if isinstance(output, ForgettingOutput):
                    output.device_removed(name)
        self._devices = present

    async def _set_targets(self) -> None:
        self._forget_removed()
        probers, unprobed = await asyncio.to_thread(self._probers, self._collected())
        targets = Targets(
            await self._targets(),
            self._sources(),
            probers=probers,
            unprobed=unprobed,
            probe_addresses=self._probe_addresses(),
        )
        for collector in self.collectors.values():
            collector.follow(targets)

    def _probers(self, devices: Sequence[Device]) -> tuple[dict[str, Target], dict[str, str]]:
        """The CLI targets the active probes run from (the devices whose platform has probe
        data), and why each other device has none. Blocking (reads platform and credentials
        files): run in a thread."""
        probers: dict[str, Target] = {}
        unprobed: dict[str, str] = {}
        if not self.settings.probes.enabled:
            return probers, unprobed
        for device in devices:
            try:
                probe = load_platform(device.platform).probe
                if probe is None:
                    unprobed[device.name] = f"its platform {device.platform} has no probe data"
                elif device.mgmt_address is None or device.credentials_ref is None:
                    unprobed[device.name] = "no management address or credentials reference"
                else:
                    probers[device.name] = target_for(
                        device,
                        "cli",
                        port=self.ports.get("cli"),
                        timeout_s=probe.timeout_s,
                        allowed=self.allowed,
                        credentials_dirs=self.credentials_dirs,
                    )
            except OssError as exc:
                unprobed[device.name] = str(exc)
        return probers, unprobed

    def _probe_addresses(self) -> dict[str, str]:
        """Where a probe to each device goes: its loopback, else its management address."""
        addresses = {}
        for device in self.inventory.graph.devices():
            address = device.loopback or device.mgmt_address
            if address:
                addresses[device.name] = address
        return addresses

    def _sources(self) -> dict[str, str]:
        return {d.mgmt_address: d.name for d in self.inventory.graph.devices() if d.mgmt_address}

    async def _refresh(self, stop: asyncio.Event) -> None:
        """Targets again every `refresh_s` (credential files change behind our back), and
        within INVENTORY_CHECK_S of a change of the inventory's devices: a device recorded
        with its credentials is polled, and its traps accepted, at once."""
        loop = asyncio.get_running_loop()
        devices = self.inventory.graph.devices()
        due = loop.time() + self.settings.refresh_s
        while not stop.is_set():
            wait = min(INVENTORY_CHECK_S, self.settings.refresh_s)
            await _first_of(stop, self._shares_moved, within_s=wait)
            if stop.is_set():
                return
            moved = self._shares_moved.is_set()
            self._shares_moved.clear()
            now = self.inventory.graph.devices()
            if moved or now != devices or loop.time() >= due:
                devices, due = now, loop.time() + self.settings.refresh_s
                await self._set_targets()


async def _first_of(*events: asyncio.Event, within_s: float) -> None:
    """Until one of `events` is set, or `within_s` seconds passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _last_flush(output: FlushingOutput) -> None:
    """An output's flush at stop. Refused by the database because this instance is no longer
    a member of its cluster (a pause past its lease, just before the stop): what it held is
    said and dropped, and the other outputs still flush; the devices are another instance's."""
    try:
        await output.flush()
    except Fenced as exc:
        log.warning("%s: its last flush was refused, its folded data is lost: %s", output.name, exc)

"""The daemon's assurance pipeline: telemetry from every inventory device that has a
management address and credentials, the trap receiver, and where their events go.

    SNMP poller / gNMI collector / traps --events--> gauges (/metrics), minute roll-ups,
        InfluxDB (if configured), interface oper_state in the inventory (on change),
        rules --signals--> alarms (reduced, correlated, to the NOC)

Which collector a device gets is its platform's `telemetry` (configs/platforms/*.yaml: snmp,
the default, or gnmi); both report the same canonical events, reachability included. The
device list follows the inventory (checked every `refresh_s`), each collector getting its own
share; a device whose target cannot be built (unknown platform, no address, bad credentials
reference) is logged once and skipped.

Each event batch goes to every sink in turn (gauges, roll-ups, outputs, alarms); a sink that
fails does not keep the batch from the others. Its failure is counted per sink
(`sink_failed_events`, on /metrics as oss_event_sink_failed_events_total{sink}) and logged
with its traceback once per streak of failures, and once when it works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from drivers.base import Target
from drivers.gnmi import GnmiDriver
from drivers.platforms import load_platform
from drivers.snmp import SnmpDriver
from drivers.snmp_traps import TrapReceiver
from oss.assurance.gnmi_collector import GnmiCollector, GnmiCollectorSettings
from oss.assurance.oper_state import OperStates
from oss.assurance.poller import SnmpPoller
from oss.components import Stage, cannot_listen
from oss.errors import OssError
from oss.events import Event
from oss.faults.alarms import AlarmManager
from oss.faults.rules import Rules
from oss.inventory import Inventory
from oss.outputs.prometheus import KpiGauges
from oss.outputs.rollup import MinuteRollup
from oss.settings import AssuranceSettings
from topology.model import Device
from topology.targets import Network, target_for

log = logging.getLogger(__name__)

Output = Callable[[list[Event]], Awaitable[None]]
RESTART_TRAPS = ("coldStart", "warmStart")
# Traps per sink() call at most. Under a storm a batch takes what is queued, so the fixed costs
# of one alarm transaction (a dozen statements: begin, look-ups, bulk writes, commit) are shared
# by up to this many traps, and repeats within it fold into one change per alarm. The bound keeps
# one transaction's hold on the database's write lock short (tens of ms: the NOC publisher marks
# rows sent meanwhile) and its memory small.
TRAP_BATCH = 1000
TRAP_LINGER_S = 0.004  # a batch short of TRAP_BATCH waits this long for more traps
INVENTORY_CHECK_S = 1.0  # how soon a change of the inventory's devices is followed


def sink_name(output: Output) -> str:
    """An output's name for logs and /metrics: its owner's `name` (the influx service's
    "influx"), else the owner's class name."""
    owner = getattr(output, "__self__", output)
    name = getattr(owner, "name", None)
    return name if isinstance(name, str) else type(owner).__name__


class AssuranceService:
    name = "assurance"
    stage = Stage.WORKERS

    def __init__(
        self,
        settings: AssuranceSettings,
        inventory: Inventory,
        alarms: AlarmManager,
        gauges: KpiGauges,
        rollup: MinuteRollup,
        *,
        allowed: Sequence[Network] | None = None,
        credentials_dirs: Sequence[Path] | None = None,
        snmp_port: int | None = None,
        gnmi_port: int | None = None,
        gnmi: GnmiCollectorSettings | None = None,
        outputs: Sequence[Output] = (),
    ) -> None:
        self.settings = settings
        self.inventory = inventory
        self.alarms = alarms
        self.gauges = gauges
        self.rollup = rollup
        self.allowed = allowed
        self.credentials_dirs = credentials_dirs
        self.snmp_port = snmp_port
        self.gnmi_port = gnmi_port
        self.gnmi_settings = gnmi or GnmiCollectorSettings()
        self.outputs = [(sink_name(output), output) for output in outputs]
        self.rules = Rules(settings.thresholds, interface_name=self._interface_name)
        self._ifnames: dict[tuple[str, str], str] = {}
        self.oper_states = OperStates(inventory, interface_name=self._interface_name)
        self._skipped: set[str] = set()
        self._devices: set[str] = set()  # the inventory's devices at the last refresh
        self.poller: SnmpPoller | None = None
        self.gnmi: GnmiCollector | None = None
        self.traps: TrapReceiver | None = None
        self.traps_handled = 0  # trap events through sink() (alarms committed), since start
        self.sink_failed_events: Counter[str] = Counter()  # by sink name, since start
        self._failing_sinks: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        async with SnmpDriver() as snmp, GnmiDriver() as gnmi:
            self.poller = SnmpPoller(snmp, self.sink, settings=self.settings.polling)
            self.gnmi = GnmiCollector(gnmi, self.sink, settings=self.gnmi_settings)
            await self._set_targets()
            await self.poller.start()
            await self.gnmi.start()
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._refresh(stop))
                    if self.settings.traps_port:
                        tasks.create_task(self._receive_traps(stop))
                    await stop.wait()
            finally:
                await self.gnmi.stop()
                await self.poller.stop()
                await self.rollup.flush()

    # --- events ---------------------------------------------------------------------------

    async def sink(self, events: list[Event]) -> None:
        """Every collected event passes here once, in order."""
        for event in events:
            tags = event.tags
            if event.name == "interface" and "ifindex" in tags:
                self._ifnames[(tags["device"], tags["ifindex"])] = tags["interface"]
            restarted = event.name == "snmp.trap" and tags.get("trap") in RESTART_TRAPS
            if restarted and event.device:
                for collector in (self.poller, self.gnmi):
                    if collector is not None:  # counters start again: no spike
                        collector.kpi.reset_device(event.device)
        await self._deliver("gauges", self.gauges.offer, events)
        await self._deliver("rollup", self.rollup.offer, events)
        for name, output in self.outputs:
            await self._deliver(name, output, events)
        signals = [signal for event in events for signal in self.rules.signals(event)]
        if signals:
            # One alarm transaction for the whole batch: a trap storm commits once per batch.
            await self._deliver("alarms", lambda _: self.alarms.signals(signals), events)
        await self._deliver("inventory", self.oper_states.sink, events)  # interface oper_state

    async def _deliver(
        self, sink: str, deliver: Callable[[list[Event]], Awaitable[object]], events: list[Event]
    ) -> None:
        """`deliver(events)`; a failure is counted and logged, never raised: the next sinks
        still get the batch."""
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

    def _interface_name(self, device: str, ifindex: str) -> str | None:
        return self._ifnames.get((device, ifindex))

    # --- devices and traps -----------------------------------------------------------------

    async def _targets(self) -> dict[str, list[Target]]:
        """The inventory's devices as targets, by telemetry protocol ("snmp", "gnmi")."""
        targets: dict[str, list[Target]] = {"snmp": [], "gnmi": []}
        for device in self.inventory.graph.devices():
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
        port = self.gnmi_port if protocol == "gnmi" else self.snmp_port
        target = target_for(
            device,
            protocol,
            port=port,
            allowed=self.allowed,
            credentials_dirs=self.credentials_dirs,
        )
        return protocol, target

    def _forget_removed(self) -> None:
        """The rules forget a device that left the inventory (its alarms were closed with it,
        see the devices route): added again, it gets its alarms afresh."""
        present = {device.name for device in self.inventory.graph.devices()}
        for name in self._devices - present:
            self.rules.forget_device(name)
        self._devices = present

    async def _set_targets(self) -> None:
        self._forget_removed()
        targets = await self._targets()
        if self.poller is not None:
            self.poller.set_targets(targets["snmp"])
        if self.gnmi is not None:
            self.gnmi.set_targets(targets["gnmi"])
        if self.traps is not None:
            # A device's traps carry its own community, whatever its telemetry protocol.
            communities = {
                t.host: t.credentials.snmp.community
                for ts in targets.values()
                for t in ts
                if t.credentials.snmp is not None and t.credentials.snmp.community
            }
            self.traps.update_sources(
                self._trap_sources(), communities.values(), expecting=communities
            )

    def _trap_sources(self) -> dict[str, str]:
        return {d.mgmt_address: d.name for d in self.inventory.graph.devices() if d.mgmt_address}

    async def _refresh(self, stop: asyncio.Event) -> None:
        """Targets again every `refresh_s` (credential files change behind our back), and
        within INVENTORY_CHECK_S of a change of the inventory's devices: a device recorded
        with its credentials is polled, and its traps accepted, at once."""
        loop = asyncio.get_running_loop()
        devices = self.inventory.graph.devices()
        due = loop.time() + self.settings.refresh_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                wait = min(INVENTORY_CHECK_S, self.settings.refresh_s)
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                return
            now = self.inventory.graph.devices()
            if now != devices or loop.time() >= due:
                devices, due = now, loop.time() + self.settings.refresh_s
                await self._set_targets()

    async def _sink_traps(self, receiver: TrapReceiver, batch: list[Event]) -> None:
        if len(batch) < TRAP_BATCH:
            # Let the batch fill for a moment: one alarm transaction and one MQTT round per
            # few traps rather than per trap (each costs ~1 ms of CPU), for TRAP_LINGER_S of
            # latency.
            await asyncio.sleep(TRAP_LINGER_S)
            if receiver.queue_depth:
                batch += await receiver.get_batch(TRAP_BATCH - len(batch))
        await self.sink(batch)
        self.traps_handled += len(batch)

    def bind(self) -> None:
        """Take the trap port now, at start-up (when traps are configured): a busy one stops
        the daemon with a ConfigError naming the setting and the address, not a crash later."""
        if not self.settings.traps_port or self.traps is not None:
            return
        receiver = self._new_receiver()
        try:
            receiver.bind()
        except OSError as exc:
            host, port = self.settings.traps_host, self.settings.traps_port
            raise cannot_listen("assurance.traps_port", host, port, "udp", exc) from None
        self.traps = receiver

    def _new_receiver(self) -> TrapReceiver:
        return TrapReceiver(
            self.settings.traps_host,
            self.settings.traps_port,
            communities=self.settings.trap_communities,
            devices=self._trap_sources(),
        )

    async def _receive_traps(self, stop: asyncio.Event) -> None:
        if self.traps is None:
            self.traps = self._new_receiver()  # not bound at start-up: start() binds
        receiver = self.traps
        await self._set_targets()  # the devices' own communities
        async with receiver:
            log.info("assurance: receiving traps on %s:%s", receiver.host, receiver.port)
            waiter = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    # The traps queued, up to TRAP_BATCH: under a storm the batches grow, so
                    # the per-batch costs (one alarm commit) are shared by many traps; when
                    # traffic is light a batch is a single trap and nothing waits.
                    if receiver.queue_depth:  # no wait: no task to race against `stop`
                        await self._sink_traps(receiver, await receiver.get_batch(TRAP_BATCH))
                        continue
                    getter = asyncio.ensure_future(receiver.get_batch(TRAP_BATCH))
                    done, _ = await asyncio.wait(
                        {getter, waiter}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter in done:
                        await self._sink_traps(receiver, getter.result())
                    else:
                        getter.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await getter
            finally:
                waiter.cancel()

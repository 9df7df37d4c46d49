"""SNMP polling: each device at its interval (with jitter), a bounded number at once.

One poll of a device reads ifTable + ifXTable (`SnmpSession.interfaces()`), then the octet
counters again in GETs that also ask for sysUpTime.0, and hands the sink, in one list: the
"interface" events, the "kpi.interface" events the KpiCalculator makes of them (sysUpTime
first, so a restart resets the baselines), and a "device.reachability" event when the device's
reachability changes.

Why the second read: a rate is octets over time, and the time must be the device's. The agent
answers a GET in one go, so sysUpTime and the octet counters in the same GET are read at the
same instant (to its 1/100 s); the interval between two polls is then the uptime difference,
whatever the collector's scheduling did to the replies (see kpi.py). An interface whose 64-bit
octet counters cannot be read that way keeps the walk's values and the collector's clock.

Reachability: the first poll's outcome is reported (so a daemon that restarts clears a stale
"unreachable" alarm), then only changes: a device that stops answering gives ONE
{reachable: False} event and one log line, however long it stays silent, and ONE
{reachable: True} and one log line when it answers again. A device that answers but refuses
the poll (credentials, agent errors) is reachable; its failure is logged once per streak.

    poller = SnmpPoller(SnmpDriver(), sink, settings=PollerSettings(interval_s=60))
    poller.set_targets(targets)          # Targets from topology.targets.target_for(..., "snmp")
    await poller.start()
    ...
    await poller.stop()
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

from drivers import snmp_mib
from drivers.base import Target
from drivers.snmp import SnmpDriver, SnmpSession
from drivers.snmp_mib import SYS_UPTIME_0
from oss.assurance.collectors import CollectorContext, Sink, register_collector
from oss.assurance.kpi import SYS_UPTIME, KpiCalculator
from oss.assurance.per_device import PerDevice
from oss.errors import ConnectError, DeviceTimeout, DriverError
from oss.events import REACHABILITY, Event, Value, now_ns
from oss.settings import PollerSettings

log = logging.getLogger(__name__)

# ifInErrors, ifOutErrors, ifInDiscards, ifOutDiscards are Counter32 in the IF-MIB: marked so
# the KPI calculator wraps them modulo 2**32.
_COUNTER32_COLUMNS = ("in-errors", "out-errors", "in-discards", "out-discards")
# Interfaces per timed GET: 2 counters each + sysUpTime.0 keeps a reply near 1 KB, well
# inside what any agent sends unfragmented (no tooBig).
TIMED_INTERFACES_PER_GET = 16
_TIMED_COLUMNS = (("in-octets", "ifHCInOctets"), ("out-octets", "ifHCOutOctets"))


def reachability_event(device: str, reachable: bool, timestamp_ns: int) -> Event:
    return Event(REACHABILITY, timestamp_ns, {"device": device}, {"reachable": reachable})


def mark_counter32(event: Event) -> Event:
    """The event with its Counter32 columns marked 32-bit (see counters.counter_bits)."""
    marks: dict[str, Value] = {f"{c}-bits": 32 for c in _COUNTER32_COLUMNS if c in event.values}
    if not marks:
        return event
    return Event(event.name, event.timestamp_ns, event.tags, {**event.values, **marks})


async def timed_octets(
    snmp: SnmpSession, interfaces: list[Event]
) -> tuple[int | None, list[Event]]:
    """Re-read the interfaces' 64-bit octet counters with sysUpTime.0 in the same GET (in
    chunks): the first chunk's sysUpTime (None if the agent gave none) and the events, each
    with its fresh octets and the `sys-uptime` they were read at. An interface without an
    ifindex or whose counters the GET does not return is left as the walk read it."""
    out = list(interfaces)
    indexed = [i for i, e in enumerate(interfaces) if e.tags.get("ifindex")]
    chunks = [
        indexed[i : i + TIMED_INTERFACES_PER_GET]
        for i in range(0, len(indexed), TIMED_INTERFACES_PER_GET)
    ] or [[]]
    first_uptime: int | None = None
    for number, chunk in enumerate(chunks):
        oids = {
            (i, key): f"{snmp_mib.OIDS[column]}.{interfaces[i].tags['ifindex']}"
            for i in chunk
            for key, column in _TIMED_COLUMNS
        }
        reply = await snmp.get(SYS_UPTIME_0, *oids.values())
        uptime = reply.get(SYS_UPTIME_0)
        if not isinstance(uptime, int):
            continue
        if number == 0:
            first_uptime = uptime
        for i in chunk:
            fresh: dict[str, Value] = {SYS_UPTIME: uptime}
            for key, _ in _TIMED_COLUMNS:
                value = reply.get(oids[(i, key)])
                if isinstance(value, int):
                    fresh[key] = value
            if len(fresh) == 1 + len(_TIMED_COLUMNS):  # both counters, or the walk's values
                event = interfaces[i]
                out[i] = Event(
                    event.name, event.timestamp_ns, event.tags, {**event.values, **fresh}
                )
    return first_uptime, out


@dataclass(slots=True)
class _DeviceState:
    target: Target
    reachable: bool | None = None  # None until the first poll's outcome
    failing: bool = False  # a reachable device whose polls fail (logged once per streak)


class SnmpPoller(PerDevice[_DeviceState]):
    """Polls its targets until stopped. Not thread-safe: one event loop."""

    name = "snmp"
    what = "snmp-poller"

    def __init__(
        self,
        driver: SnmpDriver,
        sink: Sink,
        *,
        settings: PollerSettings | None = None,
        kpi: KpiCalculator | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(kpi)
        self.driver = driver
        self.sink = sink
        self.settings = settings or PollerSettings()
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(self.settings.max_concurrency)
        self.polls = 0
        self.failures = 0

    # --- targets ------------------------------------------------------------------------------

    def _new_state(self, target: Target) -> _DeviceState:
        return _DeviceState(target)

    def _driver(self) -> SnmpDriver:
        return self.driver

    def counts(self) -> Mapping[str, int]:
        return {"polls": self.polls, "poll_failures": self.failures}

    @property
    def reachability(self) -> Mapping[str, bool | None]:
        return {name: state.reachable for name, state in self._devices.items()}

    # --- running ------------------------------------------------------------------------------

    async def _device_loop(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.interval_for(name)
        # Start at a random point of the first interval, so devices do not poll in step. A
        # device that comes while polling runs (added, or taken over from a cluster instance
        # that died) is polled at once, and its next poll spread over the interval after.
        at_once = self.joined_running(name)
        due = loop.time() + (0.0 if at_once else self._rng.uniform(0, interval))
        spread = self._rng.uniform(-interval / 2, interval / 2) if at_once else 0.0
        while self._running and name in self._devices:
            await asyncio.sleep(max(0.0, due - loop.time()))
            events = await self.poll_once(name)
            if events:
                await self._deliver(name, events)
            interval = self.settings.interval_for(name)
            jitter = self.settings.jitter_ratio * interval
            due += interval + self._rng.uniform(-jitter, jitter) + spread
            spread = 0.0
            if due < loop.time():  # fell behind (a slow device): no burst of catch-up polls
                due = loop.time()

    async def _deliver(self, name: str, events: list[Event]) -> None:
        try:
            await self.sink(events)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing output must not stop the collection
            log.exception("the event sink failed on %d events from %s", len(events), name)

    # --- one poll -----------------------------------------------------------------------------

    async def poll_once(self, name: str) -> list[Event]:
        """Poll one device now (within the concurrency bound); the events for the sink."""
        state = self._devices[name]
        async with self._slots:
            self.polls += 1
            try:
                async with self.driver.connect(state.target) as snmp:
                    walked = await snmp.interfaces()
                    uptime, interfaces = await timed_octets(snmp, walked)
                    uptime_ns = now_ns()
            except (DeviceTimeout, ConnectError) as exc:
                self.failures += 1
                return self._unreachable(state, exc)
            except DriverError as exc:
                self.failures += 1
                if not state.failing:
                    state.failing = True
                    log.warning("SNMP poll of %s fails: %s", name, exc)
                return self._reachable(state)
        if state.failing:
            state.failing = False
            log.info("SNMP poll of %s works again", name)
        events = self._reachable(state)
        if uptime is not None and self.kpi.observe_uptime(name, uptime, uptime_ns):
            log.info("%s restarted (sysUpTime went back): its rates start over", name)
        marked = [mark_counter32(e) for e in interfaces]
        return [*events, *marked, *self.kpi.process(marked)]

    def _unreachable(self, state: _DeviceState, exc: DriverError) -> list[Event]:
        if state.reachable is False:
            return []
        state.reachable = False
        log.warning("%s does not answer SNMP: %s", state.target.name, exc)
        return [reachability_event(state.target.name, False, now_ns())]

    def _reachable(self, state: _DeviceState) -> list[Event]:
        if state.reachable is True:
            return []
        if state.reachable is False:
            log.info("%s answers SNMP again", state.target.name)
        state.reachable = True
        return [reachability_event(state.target.name, True, now_ns())]


@register_collector("snmp")
def _snmp(context: CollectorContext) -> SnmpPoller:
    return SnmpPoller(SnmpDriver(), context.sink, settings=context.settings.polling)

"""gNMI streaming telemetry: one subscription per device, kept up.

Each device gets a STREAM subscription: SAMPLE of the interface counters every
`sample_interval_s`, ON_CHANGE of the interface state (oper-status). The driver's
"gnmi.update" events of those containers become canonical "interface" events (oper-status
lower-cased, as SNMP reports it), and the KpiCalculator turns the counters into
"kpi.interface" events; both go to the sink.

When a session drops (the device restarts, the network flaps, the stream ends) the collector
subscribes again after a backoff that doubles from `backoff_initial_s` up to
`backoff_max_s` (with jitter, so devices that dropped together do not return together), and
starts over at the initial backoff once data flows again. A failure streak is logged once,
and its end once.

Reachability, as the SNMP poller reports it ("device.reachability"): the first subscription's
outcome is reported, then only changes. A subscription attempt that cannot reach the device
(connection refused or lost, no answer in time) gives ONE {reachable: False} event however
long that lasts; so does a dropped session whose resubscription, after the backoff, fails the
same way (a session that comes straight back is no outage). The first data of a subscription
gives ONE {reachable: True}. A device that answers but refuses (credentials, a bad path) is
reachable, like an SNMP agent that refuses a poll.

Credentials ("device.auth", protocol gnmi): a device that refuses them (UNAUTHENTICATED,
PERMISSION_DENIED, a failed TLS handshake) gives ONE {ok: False} event per streak, however
many retries it refuses (the rules raise one authentication alarm of it); the first data of a
subscription gives ONE {ok: True} (the alarm clears). The log says "refuses the credentials"
once, not just "resubscribing".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from drivers.base import Target
from drivers.gnmi import GnmiDriver
from drivers.gnmi_events import EVENT_UPDATE
from oss.assurance.collectors import CollectorContext, Sink, register_collector
from oss.assurance.kpi import KpiCalculator
from oss.assurance.per_device import PerDevice
from oss.assurance.poller import reachability_event
from oss.backoff import Backoff
from oss.errors import AuthError, ConnectError, DeviceTimeout, DriverError
from oss.events import INTERFACE, Event, Value, now_ns
from oss.faults.rules import AUTH_EVENT

log = logging.getLogger(__name__)

_STATUS_LEAVES = ("oper-status", "admin-status")
PROTOCOL = "gnmi"


def auth_event(device: str, ok: bool, reason: str, timestamp_ns: int) -> Event:
    """Whether the device accepts the collector's gNMI credentials (see oss.faults.rules)."""
    tags = {"device": device, "protocol": PROTOCOL}
    return Event(AUTH_EVENT, timestamp_ns, tags, {"ok": ok, "reason": reason})


class GnmiCollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_interval_s: float = Field(10.0, gt=0)
    # `[name=*]` spelled out: a keyless list element means the same in gNMI, but some servers
    # (the lab's, for one) then drop the keys from the paths they send back.
    sample_paths: tuple[str, ...] = ("interfaces/interface[name=*]/state/counters",)
    on_change_paths: tuple[str, ...] = ("interfaces/interface[name=*]/state/oper-status",)
    backoff_initial_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(60.0, gt=0)


def interface_event(event: Event) -> Event | None:
    """A "gnmi.update" of an interface's state or counters container as an "interface"
    event; None for anything else (sub-interfaces included)."""
    if event.name != EVENT_UPDATE:
        return None
    ifname = event.tags.get("interface")
    if ifname is None:
        return None
    container = f"interfaces/interface[name={ifname}]/state"
    path = event.tags.get("path", "")
    if path == container + "/counters":
        values: Mapping[str, Value] = event.values
    elif path == container:
        values = {
            key: value.lower() if key in _STATUS_LEAVES and isinstance(value, str) else value
            for key, value in event.values.items()
        }
    else:
        return None
    tags = {"device": event.tags["device"], "interface": ifname}
    return Event(INTERFACE, event.timestamp_ns, tags, values)


@dataclass(slots=True)
class _Subscription:
    target: Target
    subscribed: int = 0  # subscriptions that delivered data (1 + resubscriptions)
    failing: bool = False
    reachable: bool | None = None  # None until the first subscription's outcome
    delivered: bool = False  # the current subscription delivered data
    credentials_ok: bool | None = None  # None until the device accepted or refused them


class GnmiCollector(PerDevice[_Subscription]):
    """Keeps one subscription per target until stopped. Not thread-safe: one event loop."""

    name = "gnmi"
    what = "gnmi-collector"

    def __init__(
        self,
        driver: GnmiDriver,
        sink: Sink,
        *,
        settings: GnmiCollectorSettings | None = None,
        kpi: KpiCalculator | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(kpi)
        self.driver = driver
        self.sink = sink
        self.settings = settings or GnmiCollectorSettings()
        self._rng = rng or random.Random()
        self.failures = 0  # subscription attempts that ended before any data

    def _new_state(self, target: Target) -> _Subscription:
        return _Subscription(target)

    def _driver(self) -> GnmiDriver:
        return self.driver

    def subscriptions(self, name: str) -> int:
        """How many times the device's subscription delivered data (1 + resubscriptions)."""
        return self._devices[name].subscribed

    @property
    def reachability(self) -> Mapping[str, bool | None]:
        return {name: state.reachable for name, state in self._devices.items()}

    async def _device_loop(self, name: str) -> None:
        settings = self.settings
        backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, rng=self._rng)
        while self._running and name in self._devices:
            state = self._devices[name]
            state.delivered = False
            try:
                await self._subscribe(state)
                reason = "the device ended the subscription"
            except (ConnectError, DeviceTimeout) as exc:
                reason = str(exc)
                if not state.delivered:  # not even one update: the device is not there
                    await self._unreachable(state, reason)
            except AuthError as exc:
                reason = f"the device refuses the credentials: {exc}"
                await self._reachable(state)  # it answered, and refused
                await self._credentials(state, False, str(exc))
            except DriverError as exc:
                reason = str(exc)
                if not state.delivered:  # it answered, and refused
                    await self._reachable(state)
            if state.delivered:
                backoff.reset()  # it worked for a while
            else:
                self.failures += 1
            if not state.failing:
                state.failing = True
                log.warning("gNMI subscription to %s lost: %s; resubscribing", name, reason)
            await asyncio.sleep(backoff.pause())

    async def _subscribe(self, state: _Subscription) -> None:
        """Run one subscription until it ends (`state.delivered` says whether it gave data)."""
        settings = self.settings
        async with (
            self.driver.connect(state.target) as session,
            contextlib.aclosing(
                session.subscribe(
                    list(settings.sample_paths),
                    mode="stream",
                    sample_interval_s=settings.sample_interval_s,
                    on_change_paths=list(settings.on_change_paths),
                )
            ) as stream,
        ):
            async for update in stream:
                if not state.delivered:
                    state.delivered = True
                    state.subscribed += 1
                    if state.failing:
                        state.failing = False
                        log.info("gNMI subscription to %s is back", state.target.name)
                    await self._reachable(state)
                    await self._credentials(state, True, "subscribed")
                event = interface_event(update)
                if event is None:
                    continue
                kpis = self.kpi.process([event])
                await self._deliver(state.target.name, [event, *kpis])

    async def _unreachable(self, state: _Subscription, reason: str) -> None:
        if state.reachable is False:
            return
        state.reachable = False
        log.warning("%s does not answer gNMI: %s", state.target.name, reason)
        name = state.target.name
        await self._deliver(name, [reachability_event(name, False, now_ns())])

    async def _reachable(self, state: _Subscription) -> None:
        if state.reachable is True:
            return
        if state.reachable is False:
            log.info("%s answers gNMI again", state.target.name)
        state.reachable = True
        name = state.target.name
        await self._deliver(name, [reachability_event(name, True, now_ns())])

    async def _credentials(self, state: _Subscription, ok: bool, reason: str) -> None:
        if state.credentials_ok is ok:
            return
        state.credentials_ok = ok
        name = state.target.name
        await self._deliver(name, [auth_event(name, ok, reason, now_ns())])

    async def _deliver(self, name: str, events: list[Event]) -> None:
        try:
            await self.sink(events)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing output must not end the subscription
            log.exception("the event sink failed on %d events from %s", len(events), name)


@register_collector("gnmi")
def _gnmi(context: CollectorContext) -> GnmiCollector:
    options = context.options.get("gnmi")  # tests shorten the timings
    settings = options if isinstance(options, GnmiCollectorSettings) else None
    return GnmiCollector(GnmiDriver(), context.sink, settings=settings)

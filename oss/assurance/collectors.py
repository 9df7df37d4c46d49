"""The telemetry collectors: one contract and one registry (after nornir's `PluginRegister`).

A collector turns what devices send or answer into canonical events and hands every list of
them to the pipeline's sink. Each collector module registers a factory under the collector's
name; for a per-device collector that name is the platform `telemetry` value that selects it
(configs/platforms/*.yaml: "snmp", "gnmi"), so the protocol list is the registry's.

    @register_collector("snmp")
    def _snmp(context: CollectorContext) -> SnmpPollCollector:
        return SnmpPollCollector(context.sink, context.settings.polling)

The pipeline builds every registered collector (oss.assurance.pipeline.COLLECTOR_MODULES
imports their modules so that they register) and, whenever the inventory changes, gives each
the same `Targets`: a per-device collector takes its share (`targets.of(self.name)`), the trap
receiver the devices' addresses and communities (`follow`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from drivers.base import Target
from oss.events import Event
from oss.plugins import Registry
from oss.settings import AssuranceSettings
from oss.store.service_queries import ServiceEnds

Sink = Callable[[list[Event]], Awaitable[None]]
ServiceReader = Callable[[], Awaitable[Sequence[ServiceEnds]]]


@dataclass(frozen=True)
class Targets:
    """The inventory as the collectors see it."""

    by_protocol: Mapping[str, Sequence[Target]] = field(default_factory=dict)
    # every device's management address -> its name (who sent a trap), credentials or not
    sources: Mapping[str, str] = field(default_factory=dict)
    # Active probes (oss.assurance.probes): the CLI targets of the devices this instance
    # collects from whose platform has `probe` data, why the others it collects from have
    # none, and every device's probe address (its loopback, else its management address).
    probers: Mapping[str, Target] = field(default_factory=dict)
    unprobed: Mapping[str, str] = field(default_factory=dict)
    probe_addresses: Mapping[str, str] = field(default_factory=dict)

    def of(self, protocol: str) -> Sequence[Target]:
        return self.by_protocol.get(protocol, ())

    def all(self) -> list[Target]:
        return [target for targets in self.by_protocol.values() for target in targets]


class Collector(Protocol):
    """A source of events. `run` returns once `stop` is set, after its last sink call."""

    name: str

    def follow(self, targets: Targets) -> None: ...

    def restarted(self, device: str) -> None:
        """The device restarted (a coldStart/warmStart trap): its counters start again."""

    def counts(self) -> Mapping[str, int]:
        """Its counts for /metrics (oss_collection_total{counter})."""

    async def run(self, stop: asyncio.Event) -> None: ...


@runtime_checkable
class BindingCollector(Collector, Protocol):
    """A collector that listens (the trap receiver): `bind` takes its port at start-up, so a
    busy one stops the daemon with a ConfigError, not a crash later."""

    def bind(self) -> None: ...


@runtime_checkable
class RejectingCollector(Collector, Protocol):
    """A collector that drops input it cannot read (the trap receiver: undecodable datagrams,
    unknown communities), counted by reason (oss_traps_rejected_total{reason})."""

    @property
    def rejected(self) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class CollectorContext:
    """What a collector factory builds from: the assurance settings, the sink every event list
    goes to, options by collector name (tests tune the gNMI collector's timings), and the
    reader of the services the probes measure."""

    settings: AssuranceSettings
    sink: Sink
    options: Mapping[str, object] = field(default_factory=dict)
    # The active services' ends, read when a round of probes starts (None: no services).
    services: ServiceReader | None = None


CollectorFactory = Callable[[CollectorContext], Collector]
F = TypeVar("F", bound=CollectorFactory)

COLLECTORS: Registry[CollectorFactory] = Registry("collector")


def register_collector(name: str) -> Callable[[F], F]:
    """Register `factory` under `name`; a name taken by another factory is a programming
    error."""

    def register(factory: F) -> F:
        COLLECTORS.add(name, factory)
        return factory

    return register


def collector_names() -> tuple[str, ...]:
    """The registered collectors, in registration order."""
    return COLLECTORS.names()


def build_collectors(context: CollectorContext) -> dict[str, Collector]:
    return {name: factory(context) for name, factory in COLLECTORS.items()}

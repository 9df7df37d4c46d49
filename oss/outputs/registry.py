"""The outputs of the collected events: one contract and one registry (after gnmic's
`outputs.Register`). An output takes every event list the assurance pipeline collects, in
order; each output module registers a factory under its name (its settings section's name
where it has one), and the composition root asks the registry for the outputs the settings
enable.

    @register_output("influx")
    def _influx(context: OutputContext) -> InfluxOutput | None:
        settings = context.settings.influx
        return InfluxOutput(settings) if settings.enabled else None   # None: not enabled

A new output is one module that registers itself this way (plus its settings section, if it
has one), imported by the composition root (`oss.app.OUTPUT_MODULES`) so that its
registration runs. An output that needs a part built above this layer (the alarm manager for
the "alarms" output) asks the context for it by type: `context.need(AlarmManager)`.

`offer` is async: the roll-ups and the alarms write to the database and the pipeline waits
for them, so a trap storm is paced by the alarm transactions (one per batch) instead of piling
up unbounded tasks, and a failure is the output's own, counted against its name
(oss_event_sink_failed_events_total{sink}) while the other outputs still get the batch. An
output with its own pace (InfluxDB) queues in `offer` and returns at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from oss.components import Stage
from oss.events import Event
from oss.metrics import Metrics
from oss.plugins import Registry
from oss.settings import Settings
from oss.store.database import Database

T = TypeVar("T")


@runtime_checkable
class Output(Protocol):
    """Consumes the collected events. `name` labels its logs and failure counts."""

    name: str

    async def offer(self, events: Sequence[Event]) -> None: ...


@runtime_checkable
class RunningOutput(Output, Protocol):
    """An output that is also a component (it writes at its own pace): the composition root
    hands it to the runtime, which runs it in its stage."""

    stage: Stage

    async def run(self, stop: asyncio.Event) -> None: ...


@runtime_checkable
class FlushingOutput(Output, Protocol):
    """An output that holds events back (the minute roll-ups): the pipeline flushes it once
    its collectors have stopped, so the last events are written."""

    async def flush(self) -> None: ...


@runtime_checkable
class ForgettingOutput(Output, Protocol):
    """An output with state per device (the fault rules): told when a device leaves the
    inventory, so the device, added again, starts afresh."""

    def device_removed(self, device: str) -> None: ...


@dataclass(frozen=True)
class OutputContext:
    """What an output factory may build from: the settings, the daemon's metrics registry,
    the database, and the parts built above this layer (`need`)."""

    settings: Settings
    metrics: Metrics
    db: Database
    parts: tuple[object, ...] = ()

    def need(self, kind: type[T]) -> T:
        """The part of type `kind` the composition root handed over."""
        for part in self.parts:
            if isinstance(part, kind):
                return part
        raise LookupError(f"an output needs a {kind.__name__}; the composition root has none")


OutputFactory = Callable[[OutputContext], Output | None]
F = TypeVar("F", bound=OutputFactory)

OUTPUTS: Registry[OutputFactory] = Registry("output")


def register_output(name: str) -> Callable[[F], F]:
    """Register `factory` under `name`; it returns the output, or None when the settings do
    not enable it. A name taken by another factory is a programming error."""

    def register(factory: F) -> F:
        OUTPUTS.add(name, factory)
        return factory

    return register


def output_names() -> tuple[str, ...]:
    """The registered outputs, in registration order."""
    return OUTPUTS.names()


def build_outputs(context: OutputContext) -> list[Output]:
    """The outputs the settings enable, in registration order (the order they get a batch)."""
    built = (factory(context) for factory in OUTPUTS.values())
    return [output for output in built if output is not None]

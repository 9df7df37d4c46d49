"""The outputs registry: each output module registers itself, the settings say which are
built, an output that runs on its own is a component, a name is registered once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from oss.app import OUTPUT_MODULES, assemble
from oss.daemon import Daemon
from oss.events import Event
from oss.faults.alarm_output import AlarmOutput
from oss.metrics import Metrics
from oss.outputs import registry
from oss.outputs.influx import InfluxOutput
from oss.outputs.prometheus import KpiGauges
from oss.outputs.registry import (
    FlushingOutput,
    ForgettingOutput,
    Output,
    OutputContext,
    RunningOutput,
    build_outputs,
    output_names,
    register_output,
)
from oss.outputs.rollup import MinuteRollup
from oss.settings import AssuranceSettings, InfluxSettings, Settings, load_settings


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with assemble(load_settings(None, state_dir=tmp_path)) as running:
        yield running


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    """Registrations made by a test are gone after it."""
    with registry.OUTPUTS.restoring():
        yield


def context(daemon: Daemon, settings: Settings, metrics: Metrics | None = None) -> OutputContext:
    """A fresh metrics registry unless given: each build registers the gauges anew."""
    return OutputContext(settings, metrics or Metrics(), daemon.db, parts=(daemon.alarms,))


def by_name(outputs: Sequence[Output]) -> dict[str, Output]:
    return {output.name: output for output in outputs}


def test_the_shipped_outputs_register_themselves() -> None:
    assert {module.__name__ for module in OUTPUT_MODULES} >= {
        "oss.outputs.prometheus",
        "oss.outputs.rollup",
        "oss.outputs.influx",
        "oss.faults.alarm_output",
    }
    assert {"gauges", "rollup", "influx", "alarms"} <= set(output_names())


async def test_the_settings_choose_the_outputs(daemon: Daemon, tmp_path: Path) -> None:
    default = by_name(build_outputs(context(daemon, daemon.settings)))
    assert isinstance(default["gauges"], KpiGauges)
    assert isinstance(default["rollup"], MinuteRollup)
    assert isinstance(default["alarms"], AlarmOutput)
    assert "influx" not in default  # not enabled by default

    influx = load_settings(None, state_dir=tmp_path, influx=InfluxSettings(enabled=True))
    with_influx = by_name(build_outputs(context(daemon, influx)))
    assert isinstance(with_influx["influx"], InfluxOutput)

    quiet = load_settings(None, state_dir=tmp_path, assurance=AssuranceSettings(enabled=False))
    # no events to take without assurance: no gauges, roll-ups or alarms, and so no alarm
    # manager needed
    assert not {"gauges", "rollup", "alarms"} & set(
        by_name(build_outputs(OutputContext(quiet, Metrics(), daemon.db)))
    )


async def test_optional_parts_of_the_contract(daemon: Daemon, tmp_path: Path) -> None:
    settings = load_settings(None, state_dir=tmp_path, influx=InfluxSettings(enabled=True))
    outputs = by_name(build_outputs(context(daemon, settings)))
    assert [name for name, o in outputs.items() if isinstance(o, RunningOutput)] == ["influx"]
    assert isinstance(outputs["rollup"], FlushingOutput)
    assert isinstance(outputs["alarms"], ForgettingOutput)
    assert not isinstance(outputs["gauges"], RunningOutput | FlushingOutput | ForgettingOutput)


async def test_the_influx_output_counts_on_metrics(daemon: Daemon, tmp_path: Path) -> None:
    settings = load_settings(None, state_dir=tmp_path, influx=InfluxSettings(enabled=True))
    metrics = Metrics()
    build_outputs(context(daemon, settings, metrics))
    assert 'oss_output_influx{counter="written"} 0.0' in metrics.exposition().decode()


async def test_an_output_needing_a_part_says_which(tmp_path: Path, daemon: Daemon) -> None:
    settings = load_settings(None, state_dir=tmp_path)
    with pytest.raises(LookupError, match="an output needs a AlarmManager"):
        build_outputs(OutputContext(settings, Metrics(), daemon.db))


class Kept:
    name = "kept"

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def offer(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


@pytest.mark.usefixtures("scratch_registry")
async def test_a_new_output_is_one_registration(daemon: Daemon) -> None:
    @register_output("kept")
    def _kept(context: OutputContext) -> Kept | None:
        return Kept()

    assert output_names()[-1] == "kept"
    [kept] = [o for o in build_outputs(context(daemon, daemon.settings)) if o.name == "kept"]
    assert isinstance(kept, Output)
    await kept.offer([Event("x", 1)])
    assert isinstance(kept, Kept) and len(kept.events) == 1


@pytest.mark.usefixtures("scratch_registry")
def test_a_name_is_registered_once() -> None:
    def first(context: OutputContext) -> Kept | None:
        return None

    def second(context: OutputContext) -> Kept | None:
        return None

    register_output("twice")(first)
    register_output("twice")(first)  # the same factory again (a module loaded twice): fine
    with pytest.raises(ValueError, match="output 'twice' is registered twice"):
        register_output("twice")(second)

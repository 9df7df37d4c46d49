"""Telemetry per device is platform data: `telemetry: snmp | gnmi` in configs/platforms/*.yaml,
SNMP by default, inherited through `extends`, and anything else refused naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.platforms import load_platform, platform_names
from oss.errors import ConfigError


def test_shipped_platforms() -> None:
    assert load_platform("lab-sim").telemetry == "snmp"
    assert load_platform("lab-sim-cli").telemetry == "snmp"  # extends lab-sim
    assert load_platform("lab-sim-gnmi").telemetry == "gnmi"
    assert load_platform("linux").telemetry == "snmp"  # not set: the default
    for name in platform_names():
        assert load_platform(name).telemetry in ("snmp", "gnmi")


def write(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body}", encoding="utf-8")
    return path


def test_a_variant_inherits_and_may_override(tmp_path: Path) -> None:
    write(tmp_path, "base", "telemetry: gnmi\n")
    write(tmp_path, "same", "extends: base\n")
    write(tmp_path, "polled", "extends: base\ntelemetry: snmp\n")
    assert load_platform("same", tmp_path).telemetry == "gnmi"
    assert load_platform("polled", tmp_path).telemetry == "snmp"


def test_an_unknown_telemetry_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "odd", "telemetry: netflow\n")
    with pytest.raises(ConfigError) as caught:
        load_platform("odd", tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert "telemetry" in message and "'snmp' or 'gnmi'" in message

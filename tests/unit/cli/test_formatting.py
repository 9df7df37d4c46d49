"""Tables format values for people (10G, 1.3 ms, yes/no, comma-joined lists); JSON stays raw."""

from __future__ import annotations

from typing import Any

import pytest

from oss.cli.output import Format, cell, format_duration_us, show
from topology.units import format_rate


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("capacity_bps", 10_000_000_000, "10G"),
        ("speed_bps", 1_500_000_000, "1.5G"),
        ("capacity_bps", 200_000_000, "200M"),
        ("capacity_bps", 999, "999"),
        ("latency_us", 500, "500 µs"),
        ("latency_us", 1300, "1.3 ms"),
        ("latency_us", 2_500_000, "2.5 s"),
        ("up", True, "yes"),
        ("partitioned", False, "no"),
        ("devices", ["r1", "r2"], "r1, r2"),
        ("devices", [], "-"),
        ("ports", {"netconf": 830, "snmp": 161}, "netconf=830, snmp=161"),
        ("a", {"device": "r1", "interface": "eth1"}, "r1:eth1"),
        ("site", None, "-"),
        ("count", 3, "3"),
    ],
)
def test_cells_are_formatted_for_people(column: str, value: Any, shown: str) -> None:
    assert cell(column, value) == shown


def test_rates_are_cut_not_rounded() -> None:
    assert format_rate(73_025_702_547) == "73.025G"  # never reads as more than there is
    assert format_duration_us(12_345) == "12.345 ms"


def test_json_output_stays_raw(capsys: pytest.CaptureFixture[str]) -> None:
    show([{"capacity_bps": 10_000_000_000, "up": True}], Format.JSON)
    assert '"capacity_bps": 10000000000' in capsys.readouterr().out

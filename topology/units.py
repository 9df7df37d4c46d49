"""Quantities as people write them: rates (`10G`, `2.5Gbps`) and latencies (`2ms`, `500us`).

Plain functions without pydantic, so the CLI can parse its options without loading the model.
"""

from __future__ import annotations

import re

_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_RATE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_TIME_UNITS_US = {"": 1, "us": 1, "µs": 1, "ms": 1000, "s": 1_000_000}


def parse_rate(value: int | float | str) -> int:
    """`10G`, `100M`, `2.5Gbps`, 400000000 -> bit/s."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    match = _UNIT.match(str(value))
    unit = match.group(2).lower().removesuffix("bps").removesuffix("bit/s") if match else None
    if not match or unit not in _RATE_UNITS:
        raise ValueError(f"{value!r} is not a rate (examples: 10G, 100M, 400000000)")
    return int(float(match.group(1)) * _RATE_UNITS[unit])


def format_rate(bps: int) -> str:
    """150000000 -> 150M, 1500000000 -> 1.5G, 73025702547 -> 73.025G, 999 -> 999 (bit/s).

    At most three decimals, cut (not rounded) so that a shortfall never reads as enough (the
    placement's refusals carry the exact figures in bit/s too).
    """
    sign = "-" if bps < 0 else ""
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(bps) >= size:
            whole, thousandths = divmod(abs(bps) * 1000 // size, 1000)
            return f"{sign}{whole}.{thousandths:03d}".rstrip("0").rstrip(".") + unit
    return str(bps)


def parse_latency_us(value: int | float | str) -> int:
    """`500us`, `2ms`, `1.5ms`, 200 -> microseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    match = _UNIT.match(str(value))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _TIME_UNITS_US:
        raise ValueError(f"{value!r} is not a latency (examples: 500us, 2ms, 200)")
    return int(float(match.group(1)) * _TIME_UNITS_US[unit])

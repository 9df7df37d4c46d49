"""Counter arithmetic: deltas across wraps, and telling a device restart from a wrap.

Pure functions, no state: `oss.assurance.kpi` keeps the previous samples and decides what a
delta means (a rate, a gap to skip, a baseline to start over).
"""

from __future__ import annotations

from collections.abc import Mapping

from oss.events import Value

COUNTER_BITS_DEFAULT = 64
TICKS_PER_SECOND = 100  # sysUpTime is in hundredths of a second
UPTIME_MODULUS = 1 << 32  # sysUpTime is TimeTicks: it wraps after about 497 days


def counter_delta(previous: int, current: int, *, bits: int = COUNTER_BITS_DEFAULT) -> int:
    """How far a counter of `bits` bits advanced from `previous` to `current`, assuming it
    wrapped at most once: a value that went back is taken as a wrap (modulo 2**bits).

    Whether that wrap is plausible (and not a counter reset) is for the caller to judge
    against the interface speed."""
    if bits not in (32, 64):
        raise ValueError(f"counters are 32 or 64 bits, not {bits}")
    return (current - previous) % (1 << bits)


def counter_bits(values: Mapping[str, Value], counter: str) -> int:
    """The width of `counter` in an event: `<counter>-bits` if the producer marked it, else
    `counter-bits` for the whole event, else 64 (ifHC*, OpenConfig counters)."""
    for key in (f"{counter}-bits", "counter-bits"):
        marked = values.get(key)
        if isinstance(marked, int) and not isinstance(marked, bool) and marked in (32, 64):
            return marked
    return COUNTER_BITS_DEFAULT


def restarted(
    previous_ticks: int,
    current_ticks: int,
    elapsed_s: float,
    *,
    tolerance_s: float = 5.0,
    tolerance_ratio: float = 0.1,
) -> bool:
    """Whether a device restarted between two sysUpTime readings `elapsed_s` apart (by our
    clock).

    Uptime must have advanced by about the time that passed. Going back, or advancing much
    less than the time that passed, is a restart (one that happened early in a long gap does
    not go back, it just advances too little). The one legitimate step back, TimeTicks
    wrapping at 2**32, advances by the right amount modulo 2**32, so it is not a restart."""
    advanced_s = ((current_ticks - previous_ticks) % UPTIME_MODULUS) / TICKS_PER_SECOND
    tolerance = max(tolerance_s, tolerance_ratio * max(elapsed_s, 0.0))
    return abs(advanced_s - elapsed_s) > tolerance

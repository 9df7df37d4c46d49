"""Interface KPIs, computed in this one place from successive "interface" events.

For each (device, interface) the calculator keeps the previous counter sample (the baseline)
and turns the next one into a "kpi.interface" event:

    in-bps, out-bps               octets * 8 / seconds between the samples
    in-octets, out-octets         the octets counted between the samples (their minute sums in
                                  the roll-ups are what usage charging reads)
    in-utilisation, out-utilisation   bps / speed-bps, 0..1 (only when the speed is known)
    error-ratio                   (in + out errors) / (in + out packets, errored ones included)
    availability                  1.0 while oper-status is up, 0.0 while down
    interval-s                    the seconds the rates are measured over

The interval is measured on the device's clock wherever the device gives one, so that the
collector's scheduling noise (when a reply happened to be read) is not rate error:
- an SNMP "interface" event may carry `sys-uptime`, the device's sysUpTime (TimeTicks,
  1/100 s) read in the same request as its octet counters (see `poller.py`); between two
  samples that both have it, the interval is the uptime difference, modulo 2**32 (TimeTicks
  wrap after about 497 days; a restart is caught by `observe_uptime` first);
- gNMI events carry the device's own notification timestamp in `timestamp_ns`;
- otherwise the event's timestamp (the collector's clock) is the fallback.

What is not a real rate is never reported as one:
- a device restart (sysUpTime through `observe_uptime`, or `reset_device` on a coldStart)
  drops the device's baselines: the next sample starts over, no spike;
- a counter that went back is a wrap, computed modulo 2**64 (2**32 for a counter marked as
  32-bit, see `counters.counter_bits`), if the rate that gives is plausible;
- a gap longer than `max_gap_s`, a sample older than the baseline, or a rate above what the
  interface can carry (a counter reset, say) is skipped and counted in `skipped`; the
  sample becomes the new baseline.

The first sample of an interface (and the first after a restart or a skip) has no rates: its
KPI event carries availability only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from oss.assurance.counters import (
    TICKS_PER_SECOND,
    UPTIME_MODULUS,
    counter_bits,
    counter_delta,
    restarted,
)
from oss.events import INTERFACE, KPI_INTERFACE, Event, Value

OCTETS = ("in-octets", "out-octets")
PACKETS = (
    "in-unicast-pkts",
    "in-multicast-pkts",
    "in-broadcast-pkts",
    "out-unicast-pkts",
    "out-multicast-pkts",
    "out-broadcast-pkts",
)
ERRORS = ("in-errors", "out-errors")
COUNTERS = OCTETS + PACKETS + ERRORS
# The device's sysUpTime (TimeTicks) when the event's octet counters were read.
SYS_UPTIME = "sys-uptime"

# Skip reasons, the keys of KpiCalculator.skipped.
SKIP_GAP = "gap"
SKIP_STALE = "stale"
SKIP_IMPLAUSIBLE = "implausible"
SKIP_RESTART = "restart"

Key = tuple[str, str]  # (device, interface)


@dataclass(frozen=True, slots=True)
class KpiLimits:
    """When a delta is not believed. `max_gap_s` should be a few polling intervals."""

    max_gap_s: float = 900.0
    # A rate above speed * this is a reset or a bad wrap, not traffic (some headroom for
    # timestamps taken a little after the device read its counters).
    plausible_speed_factor: float = 1.5
    # The limit when the speed is unknown: faster than any single port today.
    max_rate_bps: float = 4e12
    # Packets per second above (byte limit / this) are implausible: no frame is smaller.
    min_frame_bytes: int = 64


@dataclass(slots=True)
class _Sample:
    timestamp_ns: int
    counters: dict[str, tuple[int, int]]  # counter -> (value, bits)
    uptime_ticks: int | None = None  # the device's clock, when it gave one


def elapsed_s(previous: _Sample, current: _Sample) -> float:
    """Seconds between two samples: by the device's sysUpTime when both have it, else by
    their timestamps."""
    if previous.uptime_ticks is not None and current.uptime_ticks is not None:
        ticks = (current.uptime_ticks - previous.uptime_ticks) % UPTIME_MODULUS
        return ticks / TICKS_PER_SECOND
    return (current.timestamp_ns - previous.timestamp_ns) / 1e9


def _int_value(value: Value | None) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _speed(values: Mapping[str, Value]) -> int | None:
    # The contract's "speed-bps"; drivers/snmp.py writes "speed_bps".
    for key in ("speed-bps", "speed_bps"):
        speed = _int_value(values.get(key))
        if speed:
            return speed
    return None


def _oper_up(values: Mapping[str, Value]) -> bool | None:
    status = values.get("oper-status")
    if not isinstance(status, str):
        return None
    return status.strip().lower() == "up"


class KpiCalculator:
    """Stateful per (device, interface); not thread-safe (one event loop)."""

    def __init__(self, limits: KpiLimits | None = None) -> None:
        self.limits = limits or KpiLimits()
        self._baselines: dict[Key, _Sample] = {}
        self._oper: dict[Key, bool] = {}
        self._speeds: dict[Key, int] = {}
        self._uptimes: dict[str, tuple[int, int]] = {}  # device -> (ticks, timestamp_ns)
        self.skipped: Counter[str] = Counter()

    # --- restarts -----------------------------------------------------------------------------

    def observe_uptime(self, device: str, ticks: int, timestamp_ns: int) -> bool:
        """Record a sysUpTime reading; True (and the device's baselines dropped) if the device
        restarted since the previous one. Call it before the device's interface events."""
        previous = self._uptimes.get(device)
        self._uptimes[device] = (ticks, timestamp_ns)
        if previous is None:
            return False
        elapsed_s = (timestamp_ns - previous[1]) / 1e9
        if not restarted(previous[0], ticks, elapsed_s):
            return False
        self.reset_device(device)
        return True

    def reset_device(self, device: str) -> None:
        """The device restarted (or its counters were cleared): start its rates over."""
        dropped = [key for key in self._baselines if key[0] == device]
        for key in dropped:
            del self._baselines[key]
        if dropped:
            self.skipped[SKIP_RESTART] += 1

    def forget_device(self, device: str) -> None:
        """Everything known about a device that left the inventory."""
        for table in (self._baselines, self._oper, self._speeds):
            for key in [k for k in table if k[0] == device]:
                del table[key]
        self._uptimes.pop(device, None)

    # --- events -------------------------------------------------------------------------------

    def process(self, events: Iterable[Event]) -> list[Event]:
        """The KPI events for the "interface" events among `events` (others are ignored)."""
        out = []
        for event in events:
            if event.name == INTERFACE:
                kpi = self.interface(event)
                if kpi is not None:
                    out.append(kpi)
        return out

    def interface(self, event: Event) -> Event | None:
        device, ifname = event.tags.get("device"), event.tags.get("interface")
        if not device or not ifname:
            return None
        key = (device, ifname)
        values = event.values
        speed = _speed(values)
        if speed is not None:
            self._speeds[key] = speed
        up = _oper_up(values)
        if up is not None:
            self._oper[key] = up

        kpis: dict[str, Value] = {}
        if key in self._oper:
            kpis["availability"] = 1.0 if self._oper[key] else 0.0
        sample = _Sample(
            event.timestamp_ns, self._counters(values), _int_value(values.get(SYS_UPTIME))
        )
        if sample.counters:
            kpis.update(self._rates(key, sample))
        if not kpis:
            return None
        return Event(
            KPI_INTERFACE, event.timestamp_ns, {"device": device, "interface": ifname}, kpis
        )

    @staticmethod
    def _counters(values: Mapping[str, Value]) -> dict[str, tuple[int, int]]:
        counters = {}
        for name in COUNTERS:
            value = _int_value(values.get(name))
            if value is not None:
                counters[name] = (value, counter_bits(values, name))
        return counters

    def _rates(self, key: Key, sample: _Sample) -> dict[str, Value]:
        previous = self._baselines.get(key)
        if previous is None:
            self._baselines[key] = sample
            return {}
        elapsed = elapsed_s(previous, sample)
        if elapsed <= 0:
            self.skipped[SKIP_STALE] += 1  # keep the newer baseline
            return {}
        self._baselines[key] = sample
        if elapsed > self.limits.max_gap_s:
            self.skipped[SKIP_GAP] += 1
            return {}
        deltas = {}
        for name, (value, bits) in sample.counters.items():
            before = previous.counters.get(name)
            if before is not None:
                # A width change (a 32-bit fallback, say) means the two are not comparable.
                if before[1] != bits:
                    continue
                deltas[name] = counter_delta(before[0], value, bits=bits)
        if not self._plausible(key, deltas, elapsed):
            self.skipped[SKIP_IMPLAUSIBLE] += 1
            return {}
        return self._kpis(key, deltas, elapsed)

    def _limit_bps(self, key: Key) -> float:
        speed = self._speeds.get(key)
        if speed is None:
            return self.limits.max_rate_bps
        return speed * self.limits.plausible_speed_factor

    def _plausible(self, key: Key, deltas: Mapping[str, int], elapsed_s: float) -> bool:
        max_octets = self._limit_bps(key) / 8 * elapsed_s
        max_packets = max_octets / self.limits.min_frame_bytes
        for name, delta in deltas.items():
            if delta > (max_octets if name in OCTETS else max_packets):
                return False
        return True

    def _kpis(self, key: Key, deltas: Mapping[str, int], elapsed_s: float) -> dict[str, Value]:
        kpis: dict[str, Value] = {"interval-s": elapsed_s}
        speed = self._speeds.get(key)
        for direction in ("in", "out"):
            octets = deltas.get(f"{direction}-octets")
            if octets is None:
                continue
            bps = octets * 8 / elapsed_s
            kpis[f"{direction}-octets"] = octets
            kpis[f"{direction}-bps"] = bps
            if speed:
                # Timestamp jitter can put a saturated link a hair over its speed.
                kpis[f"{direction}-utilisation"] = min(1.0, bps / speed)
        packets = sum(deltas.get(name, 0) for name in PACKETS)
        errors = sum(deltas.get(name, 0) for name in ERRORS)
        if any(name in deltas for name in PACKETS + ERRORS):
            # ifInErrors packets are not in the delivered (unicast...) counts: count them in
            # the total, so the ratio stays within 0..1.
            total = packets + errors
            kpis["error-ratio"] = errors / total if total else 0.0
        return kpis

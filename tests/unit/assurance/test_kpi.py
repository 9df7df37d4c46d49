"""KPIs from successive interface samples: rates, wraps, restarts, gaps and resets."""

from __future__ import annotations

import pytest

from oss.assurance.counters import counter_bits, counter_delta, restarted
from oss.assurance.kpi import (
    SKIP_GAP,
    SKIP_IMPLAUSIBLE,
    SKIP_RESTART,
    SKIP_STALE,
    KpiCalculator,
    KpiLimits,
)
from oss.events import KPI_INTERFACE, Event, Value

S = 1_000_000_000  # ns per second
GBPS = 1_000_000_000
T0 = 1_700_000_000 * S


def sample(
    t_s: float,
    in_octets: int,
    out_octets: int = 0,
    *,
    device: str = "r1",
    interface: str = "eth1",
    **extra: Value,
) -> Event:
    values: dict[str, Value] = {
        "in-octets": in_octets,
        "out-octets": out_octets,
        "oper-status": "up",
        "speed_bps": GBPS,
    }
    values.update({k.replace("_", "-"): v for k, v in extra.items()})
    return Event("interface", T0 + int(t_s * S), {"device": device, "interface": interface}, values)


# --- counters ----------------------------------------------------------------------------------


def test_counter_delta_forward_and_wraps() -> None:
    assert counter_delta(100, 350) == 250
    assert counter_delta(2**64 - 10, 5) == 15
    assert counter_delta(2**32 - 10, 5, bits=32) == 15
    # The same step back read as 64-bit is a huge delta (for the caller to reject).
    assert counter_delta(2**32 - 10, 5) == 2**64 - 2**32 + 15
    with pytest.raises(ValueError):
        counter_delta(1, 2, bits=16)


def test_counter_bits_marks() -> None:
    assert counter_bits({}, "in-octets") == 64
    assert counter_bits({"counter-bits": 32}, "in-octets") == 32
    assert counter_bits({"counter-bits": 64, "in-errors-bits": 32}, "in-errors") == 32
    assert counter_bits({"in-errors-bits": 32}, "in-octets") == 64
    assert counter_bits({"counter-bits": 17}, "in-octets") == 64


def test_restarted_by_uptime() -> None:
    assert not restarted(100_000, 106_000, 60.0)  # advanced 60 s in 60 s
    assert restarted(100_000, 500, 60.0)  # went back
    assert restarted(100, 6_100, 300.0)  # restarted early in a long gap: advanced too little
    assert not restarted(2**32 - 1000, 5000, 60.0)  # TimeTicks wrap
    assert not restarted(100_000, 106_300, 60.0)  # 3 s of jitter is within tolerance


# --- rates -------------------------------------------------------------------------------------


def test_first_sample_has_availability_only_then_rates() -> None:
    calc = KpiCalculator()
    first = calc.interface(sample(0, 1_000, 2_000))
    assert first is not None
    assert first.name == KPI_INTERFACE
    assert dict(first.tags) == {"device": "r1", "interface": "eth1"}
    assert dict(first.values) == {"availability": 1.0}

    second = calc.interface(sample(10, 1_000 + 125_000_000, 2_000 + 12_500_000))
    assert second is not None
    v = second.values
    assert v["in-bps"] == pytest.approx(100_000_000)  # 125 MB in 10 s
    assert v["out-bps"] == pytest.approx(10_000_000)
    assert v["in-utilisation"] == pytest.approx(0.1)
    assert v["out-utilisation"] == pytest.approx(0.01)
    assert v["interval-s"] == pytest.approx(10.0)
    assert v["availability"] == 1.0
    assert second.timestamp_ns == T0 + 10 * S


def test_interfaces_are_independent() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 0, interface="eth1"))
    calc.interface(sample(0, 5_000_000, interface="eth2"))
    a = calc.interface(sample(10, 1_250_000, interface="eth1"))
    b = calc.interface(sample(10, 5_000_000, interface="eth2"))
    assert a is not None and b is not None
    assert a.values["in-bps"] == pytest.approx(1_000_000)
    assert b.values["in-bps"] == 0.0


def test_no_utilisation_without_speed_and_contract_key_accepted() -> None:
    calc = KpiCalculator()
    base = {"in-octets": 0, "out-octets": 0}
    calc.interface(Event("interface", T0, {"device": "r", "interface": "i"}, base))
    moved = {"in-octets": 1000, "out-octets": 0}
    kpi = calc.interface(Event("interface", T0 + S, {"device": "r", "interface": "i"}, moved))
    assert kpi is not None
    assert "in-utilisation" not in kpi.values and "availability" not in kpi.values
    assert kpi.values["in-bps"] == pytest.approx(8000)

    calc2 = KpiCalculator()
    tags = {"device": "r", "interface": "i"}
    calc2.interface(Event("interface", T0, tags, {"in-octets": 0, "speed-bps": 8000}))
    kpi2 = calc2.interface(Event("interface", T0 + S, tags, {"in-octets": 500}))
    assert kpi2 is not None
    assert kpi2.values["in-utilisation"] == pytest.approx(0.5)  # speed remembered


def test_utilisation_clamped_for_jitter() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 0))
    kpi = calc.interface(sample(1, int(GBPS / 8 * 1.05)))  # 5 % over: timestamp jitter
    assert kpi is not None
    assert kpi.values["in-utilisation"] == 1.0


def test_error_ratio() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 0, in_unicast_pkts=0, out_unicast_pkts=0, in_errors=0, out_errors=0))
    kpi = calc.interface(
        sample(10, 10_000, in_unicast_pkts=700, out_unicast_pkts=290, in_errors=6, out_errors=4)
    )
    assert kpi is not None
    assert kpi.values["error-ratio"] == pytest.approx(10 / 1000)

    idle = calc.interface(
        sample(20, 10_000, in_unicast_pkts=700, out_unicast_pkts=290, in_errors=6, out_errors=4)
    )
    assert idle is not None
    assert idle.values["error-ratio"] == 0.0


def test_availability_follows_oper_status() -> None:
    calc = KpiCalculator()
    down = sample(0, 0)
    down = Event(down.name, down.timestamp_ns, down.tags, {**down.values, "oper-status": "DOWN"})
    kpi = calc.interface(down)
    assert kpi is not None and kpi.values["availability"] == 0.0
    # An event without oper-status (a gNMI counters sample) keeps the last known state.
    tags = {"device": "r1", "interface": "eth1"}
    later = calc.interface(Event("interface", T0 + 10 * S, tags, {"in-octets": 0}))
    assert later is not None and later.values["availability"] == 0.0


# --- wraps, restarts, gaps ---------------------------------------------------------------------


def test_64bit_wrap_is_a_rate_not_a_spike() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 2**64 - 62_500_000))
    kpi = calc.interface(sample(10, 62_500_000))
    assert kpi is not None
    assert kpi.values["in-bps"] == pytest.approx(100_000_000)  # 125 MB across the wrap
    assert not calc.skipped


def test_32bit_marked_counter_wraps_modulo_2_32() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 2**32 - 1_000_000, counter_bits=32))
    kpi = calc.interface(sample(10, 250_000, counter_bits=32))
    assert kpi is not None
    assert kpi.values["in-bps"] == pytest.approx(1_250_000 * 8 / 10)


def test_32bit_error_counter_marked_per_counter() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 0, in_unicast_pkts=0, in_errors=2**32 - 2, in_errors_bits=32))
    kpi = calc.interface(sample(10, 100_000, in_unicast_pkts=98, in_errors=0, in_errors_bits=32))
    assert kpi is not None
    assert kpi.values["error-ratio"] == pytest.approx(2 / 100)


def test_restart_by_uptime_resets_baseline_without_spike() -> None:
    calc = KpiCalculator()
    assert not calc.observe_uptime("r1", 1_000_000, T0)
    calc.interface(sample(0, 900_000_000_000))
    # It restarted: uptime back to 5 s, counters back near zero.
    assert calc.observe_uptime("r1", 500, T0 + 60 * S)
    after = calc.interface(sample(60, 1_000))
    assert after is not None
    assert set(after.values) == {"availability"}  # a new baseline, no rate
    assert calc.skipped[SKIP_RESTART] == 1
    nxt = calc.interface(sample(70, 1_000 + 1_250_000))
    assert nxt is not None
    assert nxt.values["in-bps"] == pytest.approx(1_000_000)
    assert not calc.observe_uptime("r1", 1_500, T0 + 70 * S)


def test_restart_signal_resets_only_that_device() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 5_000_000))
    calc.interface(sample(0, 5_000_000, device="r2"))
    calc.reset_device("r1")  # a coldStart trap, say
    r1 = calc.interface(sample(10, 100))
    r2 = calc.interface(sample(10, 5_000_000 + 1_250_000, device="r2"))
    assert r1 is not None and "in-bps" not in r1.values
    assert r2 is not None and r2.values["in-bps"] == pytest.approx(1_000_000)


def test_counter_reset_without_restart_is_skipped_not_reported() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 10_000_000_000))
    # Went back without a restart signal: modulo 2**64 that is exabytes in 10 s.
    kpi = calc.interface(sample(10, 1_000))
    assert kpi is not None and "in-bps" not in kpi.values
    assert calc.skipped[SKIP_IMPLAUSIBLE] == 1
    # The reset value is the new baseline.
    nxt = calc.interface(sample(20, 1_000 + 1_250_000))
    assert nxt is not None and nxt.values["in-bps"] == pytest.approx(1_000_000)


def test_rate_above_speed_is_skipped() -> None:
    calc = KpiCalculator()
    calc.interface(sample(0, 0))
    kpi = calc.interface(sample(1, GBPS))  # 8 Gb/s on a 1 Gb/s port
    assert kpi is not None and "in-bps" not in kpi.values
    assert calc.skipped[SKIP_IMPLAUSIBLE] == 1


def test_gap_is_skipped_and_rebaselined() -> None:
    calc = KpiCalculator(KpiLimits(max_gap_s=300))
    calc.interface(sample(0, 0))
    kpi = calc.interface(sample(400, 1_000))
    assert kpi is not None and "in-bps" not in kpi.values
    assert calc.skipped[SKIP_GAP] == 1
    nxt = calc.interface(sample(410, 1_000 + 1_250))
    assert nxt is not None and nxt.values["in-bps"] == pytest.approx(1_000)


def test_out_of_order_sample_is_skipped_and_keeps_newer_baseline() -> None:
    calc = KpiCalculator()
    calc.interface(sample(10, 10_000))
    old = calc.interface(sample(5, 5_000))
    assert old is not None and "in-bps" not in old.values
    assert calc.skipped[SKIP_STALE] == 1
    nxt = calc.interface(sample(20, 10_000 + 1_250))
    assert nxt is not None and nxt.values["in-bps"] == pytest.approx(1_000)


def test_process_ignores_other_events_and_untagged() -> None:
    calc = KpiCalculator()
    events = [
        Event("snmp.trap", T0, {"device": "r1"}, {}),
        Event("interface", T0, {"device": "r1"}, {"in-octets": 1}),
        sample(0, 0),
    ]
    out = calc.process(events)
    assert [e.tags["interface"] for e in out] == ["eth1"]


def test_forget_device() -> None:
    calc = KpiCalculator()
    calc.observe_uptime("r1", 100, T0)
    calc.interface(sample(0, 0))
    calc.forget_device("r1")
    tags = {"device": "r1", "interface": "eth1"}
    kpi = calc.interface(Event("interface", T0 + S, tags, {"in-octets": 10}))
    assert kpi is None  # no baseline, no oper-status known: nothing to say

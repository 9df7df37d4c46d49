"""Rates are measured on the device's clock: SNMP sysUpTime read with the counters, gNMI
notification timestamps. The collector's clock (when a reply arrived) is only the fallback."""

from __future__ import annotations

from pygnmi.spec.v080 import gnmi_pb2 as pb

from drivers.gnmi_events import EventMaker, ResponseView
from oss.assurance.counters import UPTIME_MODULUS
from oss.assurance.gnmi_collector import interface_event
from oss.assurance.kpi import SKIP_GAP, SKIP_RESTART, SYS_UPTIME, KpiCalculator
from oss.events import KPI_INTERFACE, Event, Value

S = 1_000_000_000
T0 = 1_700_000_000 * S
GBPS = 1_000_000_000


def snmp_sample(arrival_s: float, in_octets: int, uptime: int | None) -> Event:
    values: dict[str, Value] = {
        "in-octets": in_octets,
        "out-octets": in_octets // 2,
        "oper-status": "up",
        "speed_bps": GBPS,
    }
    if uptime is not None:
        values[SYS_UPTIME] = uptime
    tags = {"device": "r1", "interface": "eth1", "ifindex": "1"}
    return Event("interface", T0 + int(arrival_s * S), tags, values)


def poll(kpi: KpiCalculator, event: Event) -> dict[str, Value]:
    """What the poller does per poll: the uptime first, then the interface events."""
    uptime = event.values.get(SYS_UPTIME)
    if isinstance(uptime, int):
        kpi.observe_uptime("r1", uptime, event.timestamp_ns)
    [out] = kpi.process([event])
    assert out.name == KPI_INTERFACE
    return dict(out.values)


def test_jittery_arrivals_exact_uptime_steps_give_the_exact_rate() -> None:
    kpi = KpiCalculator()
    # Polls every 10.00 s by the device's clock; the replies were read 0.3 s late, then on
    # time, then 0.45 s late: by arrival time the intervals are 9.7, 10.45 and 9.55 s.
    arrivals = (0.0, 10.3, 20.0, 30.45, 40.0)
    uptimes = (5_000, 6_000, 7_000, 8_000, 9_000)
    octets = 12_500_000  # per 10 s: 10 Mbit/s in, 5 Mbit/s out
    results = [
        poll(kpi, snmp_sample(a, n * octets, u))
        for n, (a, u) in enumerate(zip(arrivals, uptimes, strict=True))
    ]
    assert "in-bps" not in results[0]  # the first sample is a baseline
    for values in results[1:]:
        assert values["interval-s"] == 10.0
        assert values["in-bps"] == 10_000_000.0
        assert values["out-bps"] == 5_000_000.0
        assert values["in-utilisation"] == 0.01


def test_uptime_wrap_is_a_normal_interval() -> None:
    kpi = KpiCalculator()
    before_wrap = UPTIME_MODULUS - 400  # 4 s before TimeTicks wrap
    poll(kpi, snmp_sample(0.0, 0, before_wrap))
    values = poll(kpi, snmp_sample(10.2, 12_500_000, 600))  # 10.00 s later, wrapped
    assert values["interval-s"] == 10.0
    assert values["in-bps"] == 10_000_000.0
    assert kpi.skipped[SKIP_RESTART] == 0


def test_uptime_going_back_is_a_restart_not_a_rate() -> None:
    kpi = KpiCalculator()
    poll(kpi, snmp_sample(0.0, 10**12, 900_000))
    poll(kpi, snmp_sample(10.0, 10**12 + 12_500_000, 901_000))
    # The device rebooted 3 s ago: counters restarted near zero.
    values = poll(kpi, snmp_sample(20.0, 3_000, 300))
    assert "in-bps" not in values
    assert kpi.skipped[SKIP_RESTART] == 1
    values = poll(kpi, snmp_sample(30.4, 3_000 + 12_500_000, 1_300))
    assert values["in-bps"] == 10_000_000.0


def test_collector_clock_is_the_fallback_without_uptime() -> None:
    kpi = KpiCalculator()
    poll(kpi, snmp_sample(0.0, 0, None))
    values = poll(kpi, snmp_sample(12.5, 12_500_000, None))
    assert values["interval-s"] == 12.5
    assert values["in-bps"] == 8_000_000.0
    # One side without the device's clock: the pair is measured on the collector's.
    values = poll(kpi, snmp_sample(22.5, 25_000_000, 7_000))
    assert values["interval-s"] == 10.0
    assert values["in-bps"] == 10_000_000.0
    values = poll(kpi, snmp_sample(32.8, 37_500_000, 8_000))
    assert values["interval-s"] == 10.0


def test_uptime_that_did_not_move_is_stale_and_a_huge_step_is_a_gap() -> None:
    kpi = KpiCalculator()
    kpi.process([snmp_sample(0.0, 0, 1_000)])
    assert kpi.process([snmp_sample(1.0, 100, 1_000)])[0].values.get("in-bps") is None
    # A step back the calculator was not told about (observe_uptime not called) reads as
    # almost 2**32 ticks forward: a gap, never a rate.
    assert kpi.process([snmp_sample(2.0, 200, 900)])[0].values.get("in-bps") is None
    assert kpi.skipped[SKIP_GAP] == 1


def counters_notification(timestamp_ns: int, in_octets: int, out_octets: int) -> object:
    prefix = pb.Path(
        elem=[
            pb.PathElem(name="interfaces"),
            pb.PathElem(name="interface", key={"name": "eth1"}),
            pb.PathElem(name="state"),
            pb.PathElem(name="counters"),
        ]
    )
    notification = pb.Notification(timestamp=timestamp_ns, prefix=prefix)
    for leaf, value in (("in-octets", in_octets), ("out-octets", out_octets)):
        update = notification.update.add(path=pb.Path(elem=[pb.PathElem(name=leaf)]))
        update.val.uint_val = value
    wire = pb.SubscribeResponse(update=notification).SerializeToString()
    return ResponseView.FromString(wire).update


def test_gnmi_rates_use_the_notification_timestamps() -> None:
    maker = EventMaker("r1")
    kpi = KpiCalculator()
    rates = []
    # Sampled by the device every 2.000 s; when the collector read them does not matter.
    for n in range(4):
        [update] = maker.events(counters_notification(T0 + n * 2 * S, n * 2_500_000, n * 1_000))
        event = interface_event(update)
        assert event is not None
        assert event.timestamp_ns == T0 + n * 2 * S
        rates.extend(e.values for e in kpi.process([event]) if "in-bps" in e.values)
    assert (
        rates
        == [
            {
                "interval-s": 2.0,
                "in-octets": 2_500_000,
                "in-bps": 10_000_000.0,
                "out-octets": 1_000,
                "out-bps": 4_000.0,
            }
        ]
        * 3
    )

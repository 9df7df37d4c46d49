"""Events to InfluxDB line protocol: escaping, field types, timestamps."""

from __future__ import annotations

from oss.events import Event
from oss.outputs.influx import to_line


def test_types_tags_sorted_and_timestamp() -> None:
    e = Event(
        "interface",
        1_700_000_000_123_456_789,
        {"interface": "eth1", "device": "pe1"},
        {"in-octets": 5, "oper-status": "up", "ratio": 0.5, "up": True},
    )
    assert to_line(e) == (
        'interface,device=pe1,interface=eth1 in-octets=5i,oper-status="up",ratio=0.5,up=true'
        " 1700000000123456789"
    )


def test_escaping() -> None:
    e = Event("a b,c", 1, {"k ey": "v=1,2", "empty": ""}, {'f"x': 'say "hi"\\ \n', "g=h": 1.0})
    assert to_line(e) == r'a\ b\,c,k\ ey=v\=1\,2 f"x="say \"hi\"\\ \n",g\=h=1.0 1'


def test_unsigned_64_bit_counter_and_non_finite() -> None:
    e = Event("c", 2, {}, {"big": 2**64 - 1, "nan": float("nan"), "inf": float("inf"), "n": -3})
    assert to_line(e) == "c big=18446744073709551615u,n=-3i 2"


def test_nothing_writable() -> None:
    assert to_line(Event("c", 1, {"d": "x"}, {})) is None
    assert to_line(Event("c", 1, {}, {"nan": float("nan")})) is None

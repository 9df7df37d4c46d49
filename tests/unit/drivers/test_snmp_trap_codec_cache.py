"""The codec remembers varbinds and OIDs it has decoded (a storm repeats them): what it returns
from memory must be what decoding the same bytes afresh returns, whatever came before."""

from __future__ import annotations

import random

import pytest
from pysnmp.proto.api import v2c

from drivers.snmp_trap_codec import Malformed, Notification, TrapCodec
from tests.unit.drivers.test_snmp_trap_codec import COMMUNITY, v1_message, v2c_message


def outcome(codec: TrapCodec, packet: bytes) -> object:
    try:
        note = codec.decode(packet)
    except Malformed as exc:
        return (type(exc).__name__, str(exc))
    return (note, note.version, note.inform, note.request_id, note.trap_oid, note.varbinds)


def link_trap(ifindex: int, status: int, uptime: int, counter: int) -> bytes:
    return v2c_message(
        varbinds=[
            ("1.3.6.1.2.1.1.3.0", v2c.TimeTicks(uptime)),
            ("1.3.6.1.6.3.1.1.4.1.0", v2c.ObjectIdentifier("1.3.6.1.6.3.1.1.5.3")),
            (f"1.3.6.1.2.1.2.2.1.1.{ifindex}", v2c.Integer(ifindex)),
            (f"1.3.6.1.2.1.2.2.1.8.{ifindex}", v2c.Integer(status)),
            (f"1.3.6.1.2.1.2.2.1.10.{ifindex}", v2c.Counter32(counter)),
            ("1.3.6.1.2.1.1.5.0", v2c.OctetString(f"r{ifindex % 3}".encode())),
        ]
    )


def test_a_warm_codec_decodes_as_a_fresh_one() -> None:
    rng = random.Random(3416)
    seeds = [
        link_trap(rng.randrange(1, 40), rng.choice((1, 2)), n, rng.randrange(2**32))
        for n in range(300)
    ]
    seeds += [v2c_message(), v2c_message(v2c.InformRequestPDU), v1_message(2), v1_message(6, 9)]
    warm = TrapCodec([COMMUNITY])
    for packet in seeds:
        assert outcome(warm, packet) == outcome(TrapCodec([COMMUNITY]), packet)
    # Damaged copies of packets the warm codec knows: damage inside a remembered varbind must
    # not be answered from memory, and what decodes must decode as it does afresh.
    decoded = 0
    for _ in range(3000):
        packet = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            packet[rng.randrange(len(packet))] = rng.randrange(256)
        fresh = outcome(TrapCodec([COMMUNITY]), bytes(packet))
        assert outcome(warm, bytes(packet)) == fresh
        decoded += isinstance(fresh[0], Notification)
    assert decoded > 0


def test_same_name_different_value_is_not_confused() -> None:
    codec = TrapCodec([COMMUNITY])
    down = codec.decode(link_trap(3, 2, 1, 10))
    up = codec.decode(link_trap(3, 1, 2, 11))
    again = codec.decode(link_trap(3, 2, 3, 12))
    assert [dict(n.varbinds)["1.3.6.1.2.1.2.2.1.8.3"] for n in (down, up, again)] == [2, 1, 2]
    assert [dict(n.varbinds)["1.3.6.1.2.1.2.2.1.10.3"] for n in (down, up, again)] == [10, 11, 12]


def test_a_notification_is_an_immutable_record_that_hides_the_community() -> None:
    note = TrapCodec([COMMUNITY]).decode(v2c_message(v2c.InformRequestPDU, request_id=7))
    with pytest.raises(AttributeError):
        note.request_id = 8  # type: ignore[misc]
    assert note.request_id == 7 and note.inform and note.version == 1
    same = Notification(
        version=note.version,
        inform=note.inform,
        request_id=note.request_id,
        trap_oid=note.trap_oid,
        varbinds=note.varbinds,
        _community=COMMUNITY,
        _request_id_tlv=b"\x02\x01\x07",
        _varbinds_tlv=note._varbinds_tlv,
    )
    assert same == note and hash(same) == hash(note)
    assert same.response() == note.response()
    assert COMMUNITY.decode() not in repr(note) and COMMUNITY.decode() not in str(note)

"""The lean v1/v2c notification codec, checked against packets pysnmp encodes (and decodes)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v1, v2c

from drivers.snmp import pysnmp_value
from drivers.snmp_trap_codec import (
    SNMP_TRAP_ADDRESS_0,
    SNMP_TRAP_ENTERPRISE_0,
    SNMP_TRAP_OID_0,
    SYS_UPTIME_0,
    BadCommunity,
    Malformed,
    Notification,
    TrapCodec,
    peek_version,
)

COMMUNITY = b"s3cret-community"
TRAP_OID = "1.3.6.1.4.1.99999.0.7"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"

V2_VALUES: list[tuple[str, Any]] = [
    ("1.3.6.1.2.1.1.3.0", v2c.TimeTicks(4242)),
    ("1.3.6.1.6.3.1.1.4.1.0", v2c.ObjectIdentifier(TRAP_OID)),
    ("1.3.6.1.2.1.2.2.1.1.3", v2c.Integer(3)),
    ("1.3.6.1.4.1.99999.1.1", v2c.Integer(-2_000_000_000)),
    ("1.3.6.1.4.1.99999.1.2", v2c.OctetString(b"\x00\xffbinary")),
    ("1.3.6.1.4.1.99999.1.3", v2c.OctetString(b"x" * 300)),  # long-form length
    ("1.3.6.1.4.1.99999.1.4", v2c.Null()),
    ("1.3.6.1.4.1.99999.1.5", v2c.ObjectIdentifier("1.3.6.1.4.1.2636.1.1.1.2.21")),
    ("1.3.6.1.4.1.99999.1.6", v2c.IpAddress("10.20.30.40")),
    ("1.3.6.1.4.1.99999.1.7", v2c.Counter32(4_294_967_295)),
    ("1.3.6.1.4.1.99999.1.8", v2c.Gauge32(128)),
    ("1.3.6.1.4.1.99999.1.9", v2c.Opaque(b"\x9f\x78\x04")),
    ("1.3.6.1.4.1.99999.1.10", v2c.Counter64(18_446_744_073_709_551_615)),
    ("1.3.6.1.4.1.99999.1.11", v2c.NoSuchObject()),
    ("1.3.6.1.4.1.99999.1.12", v2c.NoSuchInstance()),
    ("1.3.6.1.4.1.99999.1.13", v2c.EndOfMibView()),
    ("2.999.1", v2c.Integer(0)),  # a first arc of 2 with a second one above 39
]


def v2c_message(
    pdu_type: Any = v2c.SNMPv2TrapPDU,
    varbinds: list[tuple[str, Any]] = V2_VALUES,
    community: bytes = COMMUNITY,
    request_id: int = 12345,
) -> bytes:
    pdu = pdu_type()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    v2c.apiPDU.set_varbinds(pdu, [(v2c.ObjectIdentifier(oid), value) for oid, value in varbinds])
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, community)
    v2c.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def v1_message(generic: int, specific: int = 0, community: bytes = COMMUNITY) -> bytes:
    pdu = v1.TrapPDU()
    v1.apiTrapPDU.set_defaults(pdu)
    v1.apiTrapPDU.set_enterprise(pdu, (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10))
    v1.apiTrapPDU.set_agent_address(pdu, "192.0.2.7")
    v1.apiTrapPDU.set_generic_trap(pdu, generic)
    v1.apiTrapPDU.set_specific_trap(pdu, specific)
    v1.apiTrapPDU.set_timestamp(pdu, 777)
    v1.apiTrapPDU.set_varbinds(
        pdu,
        [
            (v1.ObjectIdentifier("1.3.6.1.2.1.2.2.1.1.3"), v1.Integer(3)),
            (v1.ObjectIdentifier("1.3.6.1.2.1.1.5.0"), v1.OctetString(b"r1")),
        ],
    )
    message = v1.Message()
    v1.apiMessage.set_defaults(message)
    v1.apiMessage.set_community(message, community)
    v1.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


@pytest.fixture
def codec() -> TrapCodec:
    return TrapCodec([b"other", COMMUNITY])


def test_v2c_trap_values_match_pysnmp(codec: TrapCodec) -> None:
    note = codec.decode(v2c_message())
    assert (note.version, note.inform, note.request_id) == (1, False, 12345)
    assert note.trap_oid == TRAP_OID
    expected = [(oid, pysnmp_value(value)) for oid, value in V2_VALUES if oid != SNMP_TRAP_OID_0]
    assert list(note.varbinds) == expected
    # Spot checks that pysnmp_value itself renders as the event expects.
    values = dict(note.varbinds)
    assert values["1.3.6.1.4.1.99999.1.6"] == "10.20.30.40"
    assert values["1.3.6.1.4.1.99999.1.10"] == 18_446_744_073_709_551_615
    assert values["1.3.6.1.4.1.99999.1.11"] is None
    assert values["2.999.1"] == 0


def test_inform_response_is_what_pysnmp_expects(codec: TrapCodec) -> None:
    request = v2c_message(v2c.InformRequestPDU, request_id=0x7FFFFFFF)
    note = codec.decode(request)
    assert note.inform
    message, rest = decoder.decode(note.response(), asn1Spec=v2c.Message())
    assert rest == b""
    assert int(v2c.apiMessage.get_version(message)) == 1
    assert bytes(v2c.apiMessage.get_community(message)) == COMMUNITY
    pdu = v2c.apiMessage.get_pdu(message)
    assert pdu.tagSet == v2c.ResponsePDU.tagSet
    assert int(v2c.apiPDU.get_request_id(pdu)) == 0x7FFFFFFF
    assert int(v2c.apiPDU.get_error_status(pdu)) == 0
    assert int(v2c.apiPDU.get_error_index(pdu)) == 0
    echoed = [(str(oid), pysnmp_value(value)) for oid, value in v2c.apiPDU.get_varbinds(pdu)]
    assert echoed == [(oid, pysnmp_value(value)) for oid, value in V2_VALUES]


def test_a_trap_has_no_response(codec: TrapCodec) -> None:
    with pytest.raises(ValueError, match="only an inform"):
        codec.decode(v2c_message()).response()


@pytest.mark.parametrize(
    ("generic", "specific", "trap_oid"),
    [(2, 0, LINK_DOWN), (0, 0, "1.3.6.1.6.3.1.1.5.1"), (6, 17, "1.3.6.1.4.1.8072.3.2.10.0.17")],
)
def test_v1_trap_is_translated_as_rfc3584_says(
    codec: TrapCodec, generic: int, specific: int, trap_oid: str
) -> None:
    note = codec.decode(v1_message(generic, specific))
    assert (note.version, note.inform, note.trap_oid) == (0, False, trap_oid)
    assert list(note.varbinds) == [
        (SYS_UPTIME_0, 777),
        (SNMP_TRAP_ADDRESS_0, "192.0.2.7"),
        (SNMP_TRAP_ENTERPRISE_0, "1.3.6.1.4.1.8072.3.2.10"),
        ("1.3.6.1.2.1.2.2.1.1.3", 3),
        ("1.3.6.1.2.1.1.5.0", b"r1"),
    ]


def test_v1_generic_trap_out_of_range_is_malformed(codec: TrapCodec) -> None:
    with pytest.raises(Malformed, match="generic-trap 7"):
        codec.decode(v1_message(7))


def test_the_community_never_shows(codec: TrapCodec) -> None:
    for packet in (v1_message(2), v2c_message(v2c.InformRequestPDU)):
        note = codec.decode(packet)
        assert COMMUNITY.decode() not in repr(note)
        assert all(COMMUNITY not in str(value).encode() for _, value in note.varbinds)


def test_an_unknown_community_is_refused(codec: TrapCodec) -> None:
    for packet in (v2c_message(community=b"s3cret-communitz"), v1_message(2, community=b"")):
        with pytest.raises(BadCommunity):
            codec.decode(packet)
    with pytest.raises(BadCommunity):
        TrapCodec([]).decode(v2c_message())


@pytest.mark.parametrize(
    ("pdu_type", "reason"),
    [
        (v2c.GetRequestPDU, "GetRequest PDU"),
        (v2c.ResponsePDU, "Response PDU"),
        (v2c.ReportPDU, "Report PDU"),
    ],
)
def test_other_pdus_are_refused(codec: TrapCodec, pdu_type: Any, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        codec.decode(v2c_message(pdu_type))


def test_a_v1_trap_pdu_in_a_v2c_message_is_refused(codec: TrapCodec) -> None:
    packet = bytearray(v1_message(2))
    assert packet[2:5] == b"\x02\x01\x00"
    packet[4] = 1  # claims v2c
    with pytest.raises(Malformed, match="not a notification"):
        codec.decode(bytes(packet))


def test_snmpv3_is_recognised_but_not_decoded(codec: TrapCodec) -> None:
    packet = bytearray(v2c_message())
    packet[packet.index(b"\x02\x01\x01") + 2] = 3  # the version field
    assert peek_version(bytes(packet)) == 3
    with pytest.raises(Malformed, match="version 3"):
        codec.decode(bytes(packet))
    assert peek_version(v2c_message()) == 1
    assert peek_version(v1_message(2)) == 0
    assert peek_version(b"") is None
    assert peek_version(b"\x04\x00") is None


def test_every_truncation_is_malformed_never_a_crash(codec: TrapCodec) -> None:
    for packet in (v2c_message(), v2c_message(v2c.InformRequestPDU), v1_message(6, 1)):
        for cut in range(len(packet)):
            with pytest.raises(Malformed):
                codec.decode(packet[:cut])


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"\x30\x80\x02\x01\x01", "indefinite length"),
        (b"\x30\x85\x00\x00\x00\x00\x01", "length too long"),
        (b"\x1f\x01\x00", "multi-octet tag"),
        (b"\x04\x01\x00", "not a BER SEQUENCE"),
        (b"\x30\x03\x02\x02\x00", "truncated"),
        (b"\x30\x04\x02\x02\x00\x01", "bad version"),
    ],
)
def test_broken_encodings_say_what_is_wrong(codec: TrapCodec, packet: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        codec.decode(packet)


def test_broken_values_are_malformed(codec: TrapCodec) -> None:
    good = v2c_message(varbinds=[("1.3.6.1.2.1.1.3.0", v2c.TimeTicks(5))])
    position = good.index(b"\x43\x01\x05")
    for replacement, reason in [
        (b"\x45\x01\x05", "unknown value type 0x45"),  # NsapAddress: not SMIv2
        (b"\x40\x01\x05", "IpAddress is not 4 octets"),
        (b"\x05\x01\x05", "NULL with contents"),
        (b"\x06\x01\x85", "truncated OID"),
    ]:
        packet = good[:position] + replacement + good[position + 3 :]
        with pytest.raises(Malformed, match=reason):
            codec.decode(packet)


def test_random_damage_is_malformed_or_decoded_never_a_crash(codec: TrapCodec) -> None:
    rng = random.Random(642)
    samples = [v2c_message(), v2c_message(v2c.InformRequestPDU), v1_message(6, 3)]
    decoded = 0
    for _ in range(3000):
        packet = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            packet[rng.randrange(len(packet))] = rng.randrange(256)
        try:
            result = codec.decode(bytes(packet))
        except Malformed:
            continue
        assert isinstance(result, Notification)
        decoded += 1
    assert decoded > 0  # some damage lands in values and leaves the packet decodable
    for _ in range(1000):
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        with pytest.raises(Malformed):
            codec.decode(b"\x30" + bytes([len(noise)]) + noise if len(noise) < 128 else noise)

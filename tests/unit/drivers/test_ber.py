"""drivers.ber against pyasn1: the same bytes for the same values, the same values read back."""

from __future__ import annotations

import random

import pytest
from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import univ
from pysnmp.proto.api import v2c

from drivers import ber
from drivers.ber import Malformed

OIDS = [
    (1, 3),
    (0, 0),
    (0, 39),
    (1, 39, 5),
    (2, 0),
    (2, 47, 1),  # first octet 127
    (2, 48, 1),  # first arc group needs two octets
    (2, 999, 3),
    (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 48),
    (1, 3, 6, 1, 4, 1, 127, 128, 16383, 16384, 2**32 - 1, 2**32, 2**63 + 5),
]


@pytest.mark.parametrize("oid", OIDS)
def test_oid_encoding_is_pyasn1s(oid: tuple[int, ...]) -> None:
    expected = encoder.encode(univ.ObjectIdentifier(oid))
    assert ber.oid_tlv(oid) == expected
    tag, start, end = ber.header(expected, 0, len(expected))
    assert tag == ber.OBJECT_IDENTIFIER
    assert ber.decode_oid(expected[start:end]) == oid
    assert ber.dotted(oid) == str(univ.ObjectIdentifier(oid))


def test_random_oids_round_trip() -> None:
    rng = random.Random(3)
    for _ in range(500):
        tail = [rng.choice([rng.randint(0, 127), rng.randint(0, 2**40)]) for _ in range(20)]
        oid = (rng.randint(0, 1), rng.randint(0, 39), *tail[: rng.randint(0, 20)])
        encoded = ber.encode_oid(oid)
        assert ber.oid_tlv(oid) == encoder.encode(univ.ObjectIdentifier(oid))
        assert ber.decode_oid(encoded) == oid


@pytest.mark.parametrize("oid", [(1,), (3, 1), (1, 40), (0, 40, 1), (1, 3, -1)])
def test_unencodable_oids_are_refused(oid: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        ber.encode_oid(oid)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\x2b\x86", "truncated"),
        (b"\x2b\x80\x01", "leading 0x80"),  # 1.3.1 spelled with a zero group
        (b"\x80\x2b", "leading 0x80"),
    ],
)
def test_bad_oid_contents(raw: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        ber.decode_oid(raw)


INTEGERS = [0, 1, -1, 127, 128, -128, -129, 255, 256, 2**31 - 1, -(2**31), 2**40, -(2**63)]


@pytest.mark.parametrize("value", INTEGERS)
def test_integer_encoding_is_pyasn1s(value: int) -> None:
    expected = encoder.encode(univ.Integer(value))
    assert ber.integer_tlv(value) == expected
    _, start, end = ber.header(expected, 0, len(expected))
    assert ber.decode_integer(expected, start, end) == value


@pytest.mark.parametrize(
    ("kind", "tag", "value"),
    [
        (v2c.Counter32, ber.COUNTER32, 0),
        (v2c.Counter32, ber.COUNTER32, 127),
        (v2c.Counter32, ber.COUNTER32, 128),
        (v2c.Counter32, ber.COUNTER32, 2**32 - 1),  # five octets: a zero first
        (v2c.Gauge32, ber.GAUGE32, 2**31),
        (v2c.TimeTicks, ber.TIMETICKS, 123456),
        (v2c.Counter64, ber.COUNTER64, 2**63),
        (v2c.Counter64, ber.COUNTER64, 2**64 - 1),  # nine octets
    ],
)
def test_unsigned_encoding_is_pysnmps(kind: type, tag: int, value: int) -> None:
    expected = encoder.encode(kind(value))
    assert ber.unsigned_tlv(tag, value) == expected
    _, start, end = ber.header(expected, 0, len(expected))
    assert ber.decode_integer(expected, start, end, unsigned=True) == value
    assert end - start <= ber.UNSIGNED_MAX_OCTETS[tag]


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65535, 70000])
def test_lengths_short_and_long_form(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    expected = encoder.encode(univ.OctetString(body))
    assert ber.octets_tlv(body) == expected
    assert ber.header(expected, 0, len(expected)) == (
        ber.OCTET_STRING,
        len(expected) - size,
        len(expected),
    )


def test_exceptions_and_null() -> None:
    assert ber.empty_tlv(ber.NULL) == encoder.encode(univ.Null(""))
    assert ber.empty_tlv(ber.END_OF_MIB_VIEW) == encoder.encode(v2c.EndOfMibView(""))
    assert ber.empty_tlv(ber.NO_SUCH_OBJECT) == encoder.encode(v2c.NoSuchObject(""))
    assert ber.empty_tlv(ber.NO_SUCH_INSTANCE) == encoder.encode(v2c.NoSuchInstance(""))


def test_nested_sequences_read_back() -> None:
    varbind = ber.tlv(ber.SEQUENCE, ber.oid_tlv((1, 3, 6)) + ber.octets_tlv(b"x" * 200))
    message = ber.tlv(ber.SEQUENCE, varbind * 3)
    value, rest = decoder.decode(message)
    assert rest == b""
    assert len(value) == 3
    tag, pos, end = ber.header(message, 0, len(message))
    assert (tag, end) == (ber.SEQUENCE, len(message))
    seen = 0
    while pos < end:
        tag, start, pos = ber.header(message, pos, end)
        assert tag == ber.SEQUENCE
        assert message[start:pos] == varbind[3:]  # 200+ octets: a two-octet long-form length
        seen += 1
    assert seen == 3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x30", "truncated"),
        (b"\x30\x05\x02\x01", "truncated"),
        (b"\x1f\x01\x00", "multi-octet tag"),
        (b"\x30\x80\x00\x00", "indefinite length"),
        (b"\x04\x85\x01\x00\x00\x00\x00", "length too long"),
        (b"\x04\x82\x01", "truncated"),
    ],
)
def test_bad_headers(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        ber.header(data, 0, len(data))


def test_header_respects_the_enclosing_end() -> None:
    data = b"\x30\x03\x02\x01\x05\x02\x01\x07"
    _, start, end = ber.header(data, 0, len(data))
    assert (start, end) == (2, 5)
    with pytest.raises(Malformed):
        ber.header(data, 5, 6)  # the INTEGER at 5 runs past a bound of 6


@pytest.mark.parametrize(("data", "reason"), [(b"", "empty"), (b"\x01" * 10, "too long")])
def test_bad_integers(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        ber.decode_integer(data, 0, len(data))


def test_random_bytes_raise_only_malformed() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
        try:
            tag, start, end = ber.header(data, 0, len(data))
            if tag == ber.OBJECT_IDENTIFIER:
                ber.decode_oid(data[start:end])
            else:
                ber.decode_integer(data, start, end)
        except Malformed:
            pass

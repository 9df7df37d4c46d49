"""The few BER (X.690) pieces SNMPv1/v2c messages need, read and written straight from bytes.

Shared by the trap receiver's lean codec (drivers.snmp_trap_codec) and the simulated lab's
SNMP agent (lab.sim.snmp_agent): pyasn1 builds an object per field and costs about a
millisecond per message, these functions tens of microseconds.

SNMP uses a small, fixed subset of BER: single-octet tags, definite lengths, primitive
INTEGER / OCTET STRING / NULL / OBJECT IDENTIFIER and the SMIv2 application types, and
SEQUENCEs (messages, PDUs, varbind lists). Anything outside it raises `Malformed`.

Reading works on (data, start, end) positions so nothing is copied until a value is taken.
Writing returns bytes; `tlv(tag, body)` wraps a body, the `*_tlv` helpers encode one value.
"""

from __future__ import annotations

Oid = tuple[int, ...]

# Tags (class, constructed bit and number in one octet; SNMP uses only single-octet tags).
INTEGER, OCTET_STRING, NULL, OBJECT_IDENTIFIER, SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
IP_ADDRESS, COUNTER32, GAUGE32, TIMETICKS, OPAQUE, COUNTER64 = 0x40, 0x41, 0x42, 0x43, 0x44, 0x46
NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW = 0x80, 0x81, 0x82
# PDU tags (context class, constructed), RFC 1157 and RFC 3416.
GET_REQUEST, GET_NEXT_REQUEST, RESPONSE, SET_REQUEST = 0xA0, 0xA1, 0xA2, 0xA3
V1_TRAP, GET_BULK_REQUEST, INFORM_REQUEST, V2_TRAP, REPORT = 0xA4, 0xA5, 0xA6, 0xA7, 0xA8

# The unsigned application types and the most octets their encoding may take (a leading zero
# octet keeps the top bit clear: 2^32-1 needs 5 octets, 2^64-1 needs 9).
UNSIGNED_MAX_OCTETS = {COUNTER32: 5, GAUGE32: 5, TIMETICKS: 5, COUNTER64: 9}
# NULL and the SNMPv2 exceptions: no contents.
EMPTY_VALUES = (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW)

MAX_LENGTH_OCTETS = 4  # a length beyond 2^32 octets is no UDP datagram
MAX_INTEGER_OCTETS = 9  # Counter64 with its leading zero octet: SNMP's largest integer


class Malformed(ValueError):
    """The bytes are not the BER (or the SNMP message) expected; the message says why."""


# --- reading ---------------------------------------------------------------------------------


def header(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of the contents, end of the contents) of the TLV at `pos`, within `end`."""
    if pos + 2 > end:
        raise Malformed("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise Malformed("multi-octet tag")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        octets = length & 0x7F
        if octets == 0:
            raise Malformed("indefinite length")
        if octets > MAX_LENGTH_OCTETS:
            raise Malformed("length too long")
        if pos + octets > end:
            raise Malformed("truncated")
        length = int.from_bytes(data[pos : pos + octets], "big")
        pos += octets
    if pos + length > end:
        raise Malformed("truncated")
    return tag, pos, pos + length


def decode_integer(data: bytes, start: int, end: int, *, unsigned: bool = False) -> int:
    """The INTEGER (two's complement) or unsigned application value in data[start:end]."""
    if end == start:
        raise Malformed("empty integer")
    if end - start > MAX_INTEGER_OCTETS:
        raise Malformed("integer too long")
    return int.from_bytes(data[start:end], "big", signed=not unsigned)


def decode_oid(raw: bytes) -> Oid:
    """The arcs of an OBJECT IDENTIFIER's contents octets."""
    if not raw:
        raise Malformed("empty OID")
    if raw[-1] & 0x80:
        raise Malformed("truncated OID sub-identifier")
    arcs: list[int] = []
    value = 0
    fresh = True  # at the first octet of a sub-identifier
    for octet in raw:
        if fresh and octet == 0x80:
            # A leading zero group: the same arc could be spelled many ways, which lets one
            # OID pass for another (X.690 8.19.2 forbids it; pyasn1 refuses it too).
            raise Malformed("OID sub-identifier with a leading 0x80")
        fresh = not octet & 0x80
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    if first < 40:
        return (0, first, *arcs[1:])
    if first < 80:
        return (1, first - 40, *arcs[1:])
    return (2, first - 80, *arcs[1:])


def dotted(oid: Oid) -> str:
    return ".".join(map(str, oid))


# --- writing ---------------------------------------------------------------------------------


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:  # the common case, without a call
        return bytes((tag, n)) + body
    return bytes((tag,)) + encode_length(n) + body


def integer_tlv(value: int, tag: int = INTEGER) -> bytes:
    """A signed INTEGER in the fewest octets (as pyasn1 and net-snmp write it)."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    return bytes((tag, len(body))) + body


def unsigned_tlv(tag: int, value: int) -> bytes:
    """Counter32, Gauge32, TimeTicks, Counter64: non-negative, a zero octet first when the top
    bit would be set."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return bytes((tag, len(body))) + body


def octets_tlv(value: bytes, tag: int = OCTET_STRING) -> bytes:
    return tlv(tag, value)


def encode_oid(oid: Oid) -> bytes:
    """The contents octets of an OBJECT IDENTIFIER (at least two arcs, the first 0..2)."""
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise ValueError(f"not an encodable OID: {dotted(oid)}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0:
            raise ValueError("negative OID arc")
        if arc < 0x80:
            out.append(arc)
            continue
        groups = []
        while arc:
            groups.append(arc & 0x7F)
            arc >>= 7
        out.extend(g | 0x80 for g in reversed(groups[1:]))
        out.append(groups[0])
    return bytes(out)


def oid_tlv(oid: Oid) -> bytes:
    return tlv(OBJECT_IDENTIFIER, encode_oid(oid))


def empty_tlv(tag: int) -> bytes:
    """NULL, noSuchObject, noSuchInstance, endOfMibView."""
    return bytes((tag, 0))

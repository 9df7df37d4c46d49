"""A lean BER codec for SNMPv1 and SNMPv2c notifications: the trap receiver's fast path.

pysnmp decodes a trap through pyasn1 objects and its whole message-processing stack (about 1 ms
of CPU per trap); this decoder reads the few BER shapes a notification can take straight from
the datagram's bytes, in tens of microseconds:

    codec = TrapCodec([b"public"])
    note = codec.decode(datagram)          # Notification, or raises Malformed / BadCommunity
    if note.inform:
        sock.sendto(note.response(), addr)  # acknowledge the InformRequest

Handled: SNMPv1 Trap-PDU (RFC 1157), SNMPv2c SNMPv2-Trap-PDU and InformRequest-PDU (RFC 3416).
Varbind values become plain Python, as drivers.snmp.pysnmp_value renders pysnmp's: INTEGER,
Counter32, Gauge32, TimeTicks, Counter64 -> int; OCTET STRING, Opaque -> bytes; OBJECT
IDENTIFIER -> "1.3.6..."; IpAddress -> "127.0.0.1"; NULL, noSuchObject, noSuchInstance,
endOfMibView -> None.

A v1 trap is translated into the v2 form (RFC 3584 section 3.1) as pysnmp does: its trap OID
from generic/specific-trap, then sysUpTime.0, snmpTrapAddress.0, snmpTrapEnterprise.0 and its
own varbinds. snmpTrapCommunity.0 is left out on purpose: it would carry the community (a
secret) into events and alarm details.

Anything else (SNMPv3, other PDUs, broken encodings) raises `Malformed` with a short reason;
nothing else is ever raised for any input bytes.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from drivers import ber
from drivers.ber import (
    COUNTER32,
    COUNTER64,
    EMPTY_VALUES,
    GAUGE32,
    INFORM_REQUEST,
    INTEGER,
    IP_ADDRESS,
    MAX_INTEGER_OCTETS,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    OPAQUE,
    RESPONSE,
    SEQUENCE,
    TIMETICKS,
    UNSIGNED_MAX_OCTETS,
    V1_TRAP,
    V2_TRAP,
    decode_integer,
    header,
    tlv,
)
from drivers.ber import Malformed as Malformed  # part of this module's API

SnmpPlain = int | str | bytes | None

SYS_UPTIME_0 = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID_0 = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS_0 = "1.3.6.1.6.3.18.1.3.0"
SNMP_TRAP_ENTERPRISE_0 = "1.3.6.1.6.3.1.1.4.3.0"
_GENERIC_TRAPS = "1.3.6.1.6.3.1.1.5."  # + generic-trap + 1 (coldStart .. egpNeighborLoss)

_PDU_NAMES = {
    ber.GET_REQUEST: "GetRequest",
    ber.GET_NEXT_REQUEST: "GetNextRequest",
    RESPONSE: "Response",
    ber.SET_REQUEST: "SetRequest",
    ber.GET_BULK_REQUEST: "GetBulkRequest",
    ber.REPORT: "Report",
}
_new_record = tuple.__new__  # builds a Notification without the call of its __new__
_OID_CACHE_SIZE = 4096  # OIDs repeat from trap to trap: decode each encoding once
_VARBIND_CACHE_SIZE = 4096  # varbinds remembered, each of at most _VARBIND_CACHE_OCTETS:
_VARBIND_CACHE_OCTETS = 128  # a few hundred kB at most, whatever the senders send
# Values that differ from trap to trap (uptimes, counters): their varbinds are not remembered.
_CHANGING = frozenset((TIMETICKS, COUNTER32, GAUGE32, COUNTER64))
_NO_ERROR = b"\x02\x01\x00\x02\x01\x00"  # error-status 0, error-index 0, as encoded


class BadCommunity(Malformed):
    """A well-formed message whose community is not one of the configured ones."""


Varbinds = tuple[tuple[str, SnmpPlain], ...]


class Notification(tuple[int, bool, int, SnmpPlain, Varbinds, bytes, bytes, bytes]):
    """One decoded trap or inform, in the SNMPv2 form: an immutable record, read by its
    attributes. (A tuple underneath: of Python's immutable records the cheapest to build, and
    a trap storm builds one per trap.)"""

    __slots__ = ()

    def __new__(
        cls,
        version: int,
        inform: bool,
        request_id: int,
        trap_oid: SnmpPlain,
        varbinds: Varbinds,
        _community: bytes,
        _request_id_tlv: bytes,
        _varbinds_tlv: bytes,
    ) -> Notification:
        return _new_record(
            cls,
            (
                version,
                inform,
                request_id,
                trap_oid,
                varbinds,
                _community,
                _request_id_tlv,
                _varbinds_tlv,
            ),
        )

    @property
    def version(self) -> int:
        """0: SNMPv1, 1: SNMPv2c (the message's version field)."""
        return self[0]

    @property
    def inform(self) -> bool:
        return self[1]

    @property
    def request_id(self) -> int:
        """0 for a v1 trap (it has none)."""
        return self[2]

    @property
    def trap_oid(self) -> SnmpPlain:
        """The value of snmpTrapOID.0; None when the trap carries none."""
        return self[3]

    @property
    def varbinds(self) -> Varbinds:
        """Every varbind but snmpTrapOID.0."""
        return self[4]

    # The encoded parts an inform's response repeats; never printed (the community).

    @property
    def _community(self) -> bytes:
        return self[5]

    @property
    def _request_id_tlv(self) -> bytes:
        return self[6]

    @property
    def _varbinds_tlv(self) -> bytes:
        return self[7]

    def __repr__(self) -> str:
        kind = "inform" if self.inform else "trap"
        return (
            f"Notification(v{self.version} {kind} {self.trap_oid!r}, {len(self.varbinds)} varbinds)"
        )

    def response(self) -> bytes:
        """The Response-PDU that acknowledges this InformRequest (RFC 3416 4.2.7): same
        request-id, no error, the varbinds echoed."""
        if not self.inform:
            raise ValueError("only an inform is acknowledged")
        pdu = tlv(RESPONSE, self._request_id_tlv + b"\x02\x01\x00\x02\x01\x00" + self._varbinds_tlv)
        return tlv(
            SEQUENCE,
            tlv(INTEGER, bytes([self.version])) + tlv(OCTET_STRING, self._community) + pdu,
        )


class TrapCodec:
    """Decodes notifications addressed with one of `communities` (compared in constant time).
    It remembers (bounded) the OIDs and the varbinds it decoded: a storm repeats them, and the
    same bytes decode to the same values."""

    def __init__(self, communities: Iterable[bytes]) -> None:
        self._communities = tuple(communities)
        self._oids: dict[bytes, str] = {}
        self._known: dict[bytes, tuple[str, SnmpPlain]] = {}  # encoded varbind -> decoded

    def decode(self, data: bytes) -> Notification:
        try:
            return self._decode(data)
        except Malformed:
            raise
        except (IndexError, ValueError, OverflowError) as exc:  # a bound this code missed
            raise Malformed(f"undecodable ({type(exc).__name__})") from None

    def _decode(self, data: bytes) -> Notification:
        end = len(data)
        tag, pos, end = header(data, 0, end)
        if tag != SEQUENCE:
            raise Malformed("not a BER SEQUENCE: not an SNMP message")
        tag, start, pos = header(data, pos, end)
        if tag != INTEGER or pos - start != 1:
            raise Malformed("bad version field")
        version = data[start]
        if version not in (0, 1):
            raise Malformed(f"message version {version} is not SNMPv1/v2c")
        tag, start, pos = header(data, pos, end)
        if tag != OCTET_STRING:
            raise Malformed("bad community field")
        community = data[start:pos]
        if not self._community_ok(community):
            raise BadCommunity("unknown community")
        tag, pos, pdu_end = header(data, pos, end)
        if pdu_end != end:
            raise Malformed("trailing bytes after the PDU")
        if tag == V1_TRAP and version == 0:
            return self._v1_trap(data, pos, end, community)
        if tag in (V2_TRAP, INFORM_REQUEST) and version == 1:
            return self._v2_notification(data, pos, end, community, inform=tag == INFORM_REQUEST)
        name = _PDU_NAMES.get(tag, {V1_TRAP: "v1 Trap", V2_TRAP: "SNMPv2-Trap"}.get(tag))
        what = name or f"tag 0x{tag:02x}"
        raise Malformed(
            f"{what} PDU is not a notification of SNMP v{'1' if version == 0 else '2c'}"
        )

    def _community_ok(self, community: bytes) -> bool:
        # Every configured community is compared, each in constant time, so the time taken
        # says nothing about which one (or how much of one) matched.
        ok = False
        for known in self._communities:
            ok |= hmac.compare_digest(community, known)
        return ok

    def _v2_notification(
        self, data: bytes, pos: int, end: int, community: bytes, *, inform: bool
    ) -> Notification:
        tlv_start = pos
        tag, start, pos = header(data, pos, end)
        if tag != INTEGER:
            raise Malformed("bad request-id")
        request_id_tlv = data[tlv_start:pos]
        if 0 < pos - start <= MAX_INTEGER_OCTETS:
            request_id = int.from_bytes(data[start:pos], "big", signed=True)
        else:
            request_id = decode_integer(data, start, pos)  # raises the Malformed
        if data.startswith(_NO_ERROR, pos, end):  # what every sender puts there
            pos += len(_NO_ERROR)
        else:
            for field_name in ("error-status", "error-index"):
                tag, start, pos = header(data, pos, end)
                if tag != INTEGER:
                    raise Malformed(f"bad {field_name}")
        varbinds = self._varbinds(data, pos, end)
        trap_oid: SnmpPlain = None
        for i, (oid, value) in enumerate(varbinds):
            if oid == SNMP_TRAP_OID_0:  # the first one; any later one stays a varbind
                trap_oid = value
                del varbinds[i]
                break
        return _new_record(
            Notification,
            (
                1,
                inform,
                request_id,
                trap_oid,
                tuple(varbinds),
                community,
                request_id_tlv,
                data[pos:end],
            ),
        )

    def _v1_trap(self, data: bytes, pos: int, end: int, community: bytes) -> Notification:
        tag, start, pos = header(data, pos, end)
        if tag != OBJECT_IDENTIFIER:
            raise Malformed("bad enterprise")
        enterprise = self._oid(data, start, pos)
        tag, start, pos = header(data, pos, end)
        if tag != IP_ADDRESS or pos - start != 4:
            raise Malformed("bad agent-addr")
        agent = ".".join(str(octet) for octet in data[start:pos])
        fields = []
        for field_name, want in (
            ("generic-trap", INTEGER),
            ("specific-trap", INTEGER),
            ("time-stamp", TIMETICKS),
        ):
            tag, start, pos = header(data, pos, end)
            if tag != want:
                raise Malformed(f"bad {field_name}")
            fields.append(decode_integer(data, start, pos, unsigned=tag == TIMETICKS))
        generic, specific, timestamp = fields
        if generic == 6:
            trap_oid = f"{enterprise}.0.{specific}"
        elif 0 <= generic <= 5:
            trap_oid = f"{_GENERIC_TRAPS}{generic + 1}"
        else:
            raise Malformed(f"generic-trap {generic} out of range")
        varbinds: list[tuple[str, SnmpPlain]] = [
            (SYS_UPTIME_0, timestamp),
            (SNMP_TRAP_ADDRESS_0, agent),
            (SNMP_TRAP_ENTERPRISE_0, enterprise),
        ]
        varbinds.extend(self._varbinds(data, pos, end))
        return _new_record(
            Notification, (0, False, 0, trap_oid, tuple(varbinds), community, b"", b"")
        )

    def _varbinds(self, data: bytes, pos: int, end: int) -> list[tuple[str, SnmpPlain]]:
        tag, pos, list_end = header(data, pos, end)
        if tag != SEQUENCE or list_end != end:
            raise Malformed("bad varbind list")
        out: list[tuple[str, SnmpPlain]] = []
        oids, known = self._oids, self._known
        # The hot loop of a trap storm. Each TLV is read inline when it has a one-octet length
        # (nearly always in a trap); anything else goes through ber.header, which raises the
        # same Malformed for the same bytes. A varbind seen before (the same bytes: ifIndex.3
        # = 3, ifOperStatus.3 = down) is not decoded again.
        while pos < list_end:
            vb_start = pos
            if pos + 2 <= list_end and data[pos] == SEQUENCE and data[pos + 1] < 0x80:
                pos, vb_end = pos + 2, pos + 2 + data[pos + 1]
                if vb_end > list_end:
                    raise Malformed("truncated")
            else:
                tag, pos, vb_end = header(data, pos, list_end)
                if tag != SEQUENCE:
                    raise Malformed("bad varbind")
            encoded = data[vb_start:vb_end]
            varbind = known.get(encoded)
            if varbind is not None:
                out.append(varbind)
                pos = vb_end
                continue
            if pos + 2 <= vb_end and data[pos] == OBJECT_IDENTIFIER and data[pos + 1] < 0x80:
                start, pos = pos + 2, pos + 2 + data[pos + 1]
                if pos > vb_end:
                    raise Malformed("truncated")
            else:
                tag, start, pos = header(data, pos, vb_end)
                if tag != OBJECT_IDENTIFIER:
                    raise Malformed("varbind name is not an OID")
            raw = data[start:pos]
            name = oids.get(raw)
            if name is None:
                name = self._new_oid(raw)
            if pos + 2 <= vb_end and data[pos + 1] < 0x80 and data[pos] & 0x1F != 0x1F:
                tag, start, pos = data[pos], pos + 2, pos + 2 + data[pos + 1]
                if pos > vb_end:
                    raise Malformed("truncated")
            else:
                tag, start, pos = header(data, pos, vb_end)
            if pos != vb_end:
                raise Malformed("trailing bytes in a varbind")
            # The common values inline; the rest (and every error) through _value.
            length = pos - start
            value: SnmpPlain
            if tag == INTEGER and 0 < length <= MAX_INTEGER_OCTETS:
                value = int.from_bytes(data[start:pos], "big", signed=True)
            elif tag == OCTET_STRING:
                value = data[start:pos]
            elif 0 < length <= UNSIGNED_MAX_OCTETS.get(tag, 0):
                value = int.from_bytes(data[start:pos], "big")
            else:
                value = self._value(tag, data, start, pos)
            varbind = (name, value)
            out.append(varbind)
            if tag not in _CHANGING and vb_end - vb_start <= _VARBIND_CACHE_OCTETS:
                if len(known) >= _VARBIND_CACHE_SIZE:
                    known.clear()  # crude, as for the OIDs
                known[encoded] = varbind
        return out

    def _value(self, tag: int, data: bytes, start: int, end: int) -> SnmpPlain:
        if tag == INTEGER:
            return decode_integer(data, start, end)
        if tag in (OCTET_STRING, OPAQUE):
            return data[start:end]
        if tag in UNSIGNED_MAX_OCTETS:
            if end - start > UNSIGNED_MAX_OCTETS[tag]:
                raise Malformed(f"application value 0x{tag:02x} too long")
            return decode_integer(data, start, end, unsigned=True)
        if tag == OBJECT_IDENTIFIER:
            return self._oid(data, start, end)
        if tag == IP_ADDRESS:
            if end - start != 4:
                raise Malformed("IpAddress is not 4 octets")
            return ".".join(str(octet) for octet in data[start:end])
        if tag in EMPTY_VALUES:
            if end != start:
                raise Malformed("NULL with contents")
            return None
        raise Malformed(f"unknown value type 0x{tag:02x}")

    def _oid(self, data: bytes, start: int, end: int) -> str:
        raw = data[start:end]
        known = self._oids.get(raw)
        return known if known is not None else self._new_oid(raw)

    def _new_oid(self, raw: bytes) -> str:
        dotted = _decode_oid(raw)
        if len(self._oids) >= _OID_CACHE_SIZE:
            self._oids.clear()  # a crude bound: a storm of ever-new OIDs cannot grow it
        self._oids[raw] = dotted
        return dotted


def _decode_oid(raw: bytes) -> str:
    return ber.dotted(ber.decode_oid(raw))


def peek_version(data: bytes) -> int | None:
    """The message's version field (0 v1, 1 v2c, 3 v3) without decoding the rest; None when the
    datagram does not even start like an SNMP message."""
    try:
        tag, pos, end = header(data, 0, len(data))
        if tag != SEQUENCE:
            return None
        tag, start, pos = header(data, pos, end)
    except Malformed:
        return None
    if tag != INTEGER or pos - start != 1:
        return None
    return data[start]

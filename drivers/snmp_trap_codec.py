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
from dataclasses import dataclass

from drivers import ber
from drivers.ber import (
    EMPTY_VALUES,
    INFORM_REQUEST,
    INTEGER,
    IP_ADDRESS,
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
_OID_CACHE_SIZE = 4096  # OIDs repeat from trap to trap: decode each encoding once


class BadCommunity(Malformed):
    """A well-formed message whose community is not one of the configured ones."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One decoded trap or inform, in the SNMPv2 form."""

    version: int  # 0: SNMPv1, 1: SNMPv2c (the message's version field)
    inform: bool
    request_id: int  # 0 for a v1 trap (it has none)
    trap_oid: SnmpPlain  # the value of snmpTrapOID.0; None when the trap carries none
    varbinds: tuple[tuple[str, SnmpPlain], ...]  # every varbind but snmpTrapOID.0
    # The encoded parts an inform's response repeats; never printed (the community).
    _community: bytes
    _request_id_tlv: bytes
    _varbinds_tlv: bytes

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
    """Decodes notifications addressed with one of `communities` (compared in constant time)."""

    def __init__(self, communities: Iterable[bytes]) -> None:
        self._communities = tuple(communities)
        self._oids: dict[bytes, str] = {}

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
        request_id = decode_integer(data, start, pos)
        for field_name in ("error-status", "error-index"):
            tag, start, pos = header(data, pos, end)
            if tag != INTEGER:
                raise Malformed(f"bad {field_name}")
        varbinds_start = pos
        trap_oid: SnmpPlain = None
        found = False
        varbinds = []
        for oid, value in self._varbinds(data, pos, end):
            if oid == SNMP_TRAP_OID_0 and not found:
                trap_oid, found = value, True
            else:
                varbinds.append((oid, value))
        return Notification(
            version=1,
            inform=inform,
            request_id=request_id,
            trap_oid=trap_oid,
            varbinds=tuple(varbinds),
            _community=community,
            _request_id_tlv=request_id_tlv,
            _varbinds_tlv=data[varbinds_start:end],
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
        return Notification(
            version=0,
            inform=False,
            request_id=0,
            trap_oid=trap_oid,
            varbinds=tuple(varbinds),
            _community=community,
            _request_id_tlv=b"",
            _varbinds_tlv=b"",
        )

    def _varbinds(self, data: bytes, pos: int, end: int) -> list[tuple[str, SnmpPlain]]:
        tag, pos, list_end = header(data, pos, end)
        if tag != SEQUENCE or list_end != end:
            raise Malformed("bad varbind list")
        out = []
        while pos < list_end:
            tag, pos, vb_end = header(data, pos, list_end)
            if tag != SEQUENCE:
                raise Malformed("bad varbind")
            tag, start, pos = header(data, pos, vb_end)
            if tag != OBJECT_IDENTIFIER:
                raise Malformed("varbind name is not an OID")
            name = self._oid(data, start, pos)
            tag, start, pos = header(data, pos, vb_end)
            if pos != vb_end:
                raise Malformed("trailing bytes in a varbind")
            out.append((name, self._value(tag, data, start, pos)))
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
        if known is not None:
            return known
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

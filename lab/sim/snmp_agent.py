"""The simulated device's SNMP agent: SNMPv2c over one asyncio UDP endpoint per device.

Messages are read and written with the small BER codec in drivers.ber, straight from and to
bytes: no SnmpEngine (an engine per device would cost far more than the device itself when
hundreds run in one process) and no pyasn1 objects (3 to 5 ms per 25-row GETBULK; a lab of
1000 devices polled every minute would need several CPUs for that alone). The MIB view is a
sorted list of OIDs, each with its encoded name (OID TLV) and a getter that returns the value
already encoded, shared by every device with the same interfaces; values are computed when asked
for, so counters cost nothing until polled, and a response is mostly byte concatenation.

Served: the system group, ifNumber, ifTable (32-bit counters wrap), ifXTable (64-bit
counters). GET, GETNEXT, GETBULK, and SET of ifAdminStatus and ifAlias (they become the
interface's `config/enabled` and `config/description` leaves, through the datastores, so a
NETCONF lock on running refuses them). One community, read-write, compared in constant time; a
request with another community is dropped, as real agents do, and so is anything that is not a
well-formed SNMPv2c request (SNMPv1 and SNMPv3 are not served by the simulated device: the
driver tests use snmpd for v3). Requests are held to the ranges pysnmp's ASN.1 types allow
(request-id an Integer32, non-repeaters and max-repetitions 0..2^31-1, typed values in range):
what pysnmp would refuse to decode is dropped here too. Strings are UTF-8 both ways (an ifAlias
set over SNMP reads back as set).

Notifications: coldStart when the agent starts, linkDown/linkUp (with ifIndex, ifAdminStatus,
ifOperStatus) on every oper-status change, as SNMPv2c traps sent from the agent's own address
and port to each configured receiver.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import hmac
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pysnmp.proto import api

from drivers import ber
from drivers.ber import (
    COUNTER32,
    COUNTER64,
    END_OF_MIB_VIEW,
    GAUGE32,
    GET_BULK_REQUEST,
    GET_NEXT_REQUEST,
    GET_REQUEST,
    INTEGER,
    IP_ADDRESS,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    RESPONSE,
    SEQUENCE,
    SET_REQUEST,
    TIMETICKS,
    V2_TRAP,
    Malformed,
    header,
    integer_tlv,
    octets_tlv,
    oid_tlv,
    tlv,
    unsigned_tlv,
)
from lab.sim.datastore import Datastores, RpcFailure
from lab.sim.model import Change, SimDevice, iface_path

log = logging.getLogger(__name__)

# pysnmp's SNMPv2c protocol module: no longer used here, kept as a name for lab.sim.lab's probe.
v2c: Any = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

Oid = tuple[int, ...]
Getter = Callable[[SimDevice, str], bytes]  # (device, ifname) -> the value's encoded TLV

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
SYS_UPTIME = (*SYSTEM, 3, 0)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
COLD_START = (1, 3, 6, 1, 6, 3, 1, 1, 5, 1)
LINK_DOWN = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
LINK_UP = (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)
IF_INDEX, IF_ADMIN_STATUS, IF_OPER_STATUS = 1, 7, 8
IF_ALIAS = 18  # in ifXTable
IF_ALIAS_MAX = 64  # IF-MIB: DisplayString (SIZE(0..64))

MAX_BULK_VARBINDS = 1000
MAX_MESSAGE = 65000  # stay under the UDP payload limit

# SNMPv2 error-status values (RFC 3416)
NO_ERROR, TOO_BIG, GEN_ERR, NO_ACCESS, WRONG_TYPE, WRONG_LENGTH = 0, 1, 5, 6, 7, 8
WRONG_VALUE, NO_CREATION, RESOURCE_UNAVAILABLE, NOT_WRITABLE = 10, 11, 13, 17

_U32 = 0xFFFFFFFF
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_SNMP_V2C = 1  # the message's version field
_MAX_OCTET_STRING = 65535  # SMIv2 OCTET STRING (SIZE (0..65535))
# The most an unsigned application value may hold (pysnmp refuses more when decoding).
_UNSIGNED_MAX = {COUNTER32: _U32, GAUGE32: _U32, TIMETICKS: _U32, COUNTER64: (1 << 64) - 1}
_NO_SUCH_OBJECT = ber.empty_tlv(NO_SUCH_OBJECT)
_NO_SUCH_INSTANCE = ber.empty_tlv(NO_SUCH_INSTANCE)
_END_OF_MIB_VIEW = ber.empty_tlv(END_OF_MIB_VIEW)


def _status(up: bool) -> int:
    return 1 if up else 2  # up(1), down(2)


def _mac(device: SimDevice, ifname: str) -> bytes:
    # Stable and locally administered (02:...): the same device and interface, the same MAC.
    digest = hashlib.blake2s(f"{device.name}/{ifname}".encode(), digest_size=5).digest()
    return b"\x02" + digest


def _last_change(device: SimDevice, ifname: str) -> int:
    ago = (time.time_ns() - device.interfaces[ifname].last_change_ns) // 10_000_000
    return max(0, device.uptime_ticks() - ago) & _U32


def _text(value: str) -> bytes:
    return octets_tlv(value.encode())


def _counter(name: str, bits: int) -> Getter:
    if bits == 32:
        return lambda d, i: unsigned_tlv(COUNTER32, d.counters(i)[name] & _U32)
    return lambda d, i: unsigned_tlv(COUNTER64, d.counters(i)[name])


def _leaf(ifname: str, leaf: str, device: SimDevice, default: Any) -> Any:
    return device.running.get(iface_path(ifname, f"config/{leaf}"), default)


SYSTEM_SCALARS: dict[int, Callable[[SimDevice], bytes]] = {
    1: lambda d: _text(d.sys_descr),
    2: lambda d: oid_tlv(tuple(int(arc) for arc in d.sys_object_id.split("."))),
    3: lambda d: unsigned_tlv(TIMETICKS, d.uptime_ticks() & _U32),
    4: lambda d: _text("oss lab <lab@localhost>"),
    5: lambda d: _text(d.name),
    6: lambda d: _text("oss simulated lab"),
    7: lambda d: integer_tlv(6),  # sysServices: layers 2 and 3
}

IF_COLUMNS: dict[int, Getter] = {
    1: lambda d, i: integer_tlv(d.interfaces[i].index),
    2: lambda d, i: _text(i),
    3: lambda d, i: integer_tlv(6),  # ethernetCsmacd
    4: lambda d, i: integer_tlv(int(_leaf(i, "mtu", d, 1500))),
    5: lambda d, i: unsigned_tlv(GAUGE32, min(d.interfaces[i].speed_bps, _U32)),
    6: lambda d, i: octets_tlv(_mac(d, i)),
    7: lambda d, i: integer_tlv(_status(d.admin_up(i))),
    8: lambda d, i: integer_tlv(_status(d.oper_up(i))),
    9: lambda d, i: unsigned_tlv(TIMETICKS, _last_change(d, i)),
    10: _counter("in-octets", 32),
    11: _counter("in-unicast-pkts", 32),
    13: _counter("in-discards", 32),
    14: _counter("in-errors", 32),
    16: _counter("out-octets", 32),
    17: _counter("out-unicast-pkts", 32),
    19: _counter("out-discards", 32),
    20: _counter("out-errors", 32),
}

IFX_COLUMNS: dict[int, Getter] = {
    1: lambda d, i: _text(i),
    6: _counter("in-octets", 64),
    7: _counter("in-unicast-pkts", 64),
    10: _counter("out-octets", 64),
    11: _counter("out-unicast-pkts", 64),
    15: lambda d, i: unsigned_tlv(GAUGE32, d.interfaces[i].speed_bps // 1_000_000),
    18: lambda d, i: _text(str(_leaf(i, "description", d, ""))),
}


@dataclass(frozen=True)
class _MibView:
    """The sorted OIDs of one interface layout, each with its encoded name and how to read it."""

    oids: list[Oid]
    names: list[bytes]  # each OID's TLV, encoded once
    positions: dict[bytes, int]  # an OID's contents octets -> its place in `oids`
    readers: list[tuple[Getter, str]]  # (getter, ifname or "")
    objects: frozenset[Oid]  # scalar and column OIDs, to tell noSuchInstance from noSuchObject
    by_index: dict[int, str]


def _scalar_getter(read: Callable[[SimDevice], bytes]) -> Getter:
    return lambda device, _ifname: read(device)


@lru_cache(maxsize=64)
def _mib_view(layout: tuple[tuple[str, int], ...]) -> _MibView:
    rows: list[tuple[Oid, Getter, str]] = []
    objects: set[Oid] = set()
    for sub, scalar in SYSTEM_SCALARS.items():
        rows.append(((*SYSTEM, sub, 0), _scalar_getter(scalar), ""))
        objects.add((*SYSTEM, sub))
    count_tlv = integer_tlv(len(layout))
    rows.append((IF_NUMBER, lambda _d, _i: count_tlv, ""))
    objects.add(IF_NUMBER[:-1])
    for entry, columns in ((IF_ENTRY, IF_COLUMNS), (IFX_ENTRY, IFX_COLUMNS)):
        for column, getter in columns.items():
            objects.add((*entry, column))
            rows.extend(((*entry, column, index), getter, name) for name, index in layout)
    rows.sort(key=lambda row: row[0])
    names = [oid_tlv(r[0]) for r in rows]
    return _MibView(
        oids=[r[0] for r in rows],
        names=names,
        positions={ber.encode_oid(row[0]): at for at, row in enumerate(rows)},
        readers=[(r[1], r[2]) for r in rows],
        objects=frozenset(objects),
        by_index={index: name for name, index in layout},
    )


@dataclass(frozen=True, slots=True)
class _VarBind:
    """One varbind of a request, as positions in the datagram."""

    raw: bytes  # the whole varbind TLV, echoed by a SET's response
    name: bytes  # the OID's contents octets
    tag: int  # the value's tag
    value: bytes  # the value's contents octets

    @property
    def oid(self) -> Oid:
        return ber.decode_oid(self.name)

    def name_tlv(self) -> bytes:
        return tlv(OBJECT_IDENTIFIER, self.name)


@dataclass(frozen=True, slots=True)
class _Request:
    pdu: int  # the PDU's tag
    request_id: int
    non_repeaters: int  # GETBULK only (error-status in the other PDUs: ignored)
    max_repetitions: int  # GETBULK only (error-index in the other PDUs)
    varbinds: list[_VarBind]


def _parse(data: bytes, community: bytes) -> _Request | None:
    """The request in an SNMPv2c message with `community`; None for another version, another
    community or a PDU an agent does not answer; raises Malformed for broken encodings."""
    tag, pos, end = header(data, 0, len(data))  # bytes after the message are ignored, as pysnmp
    if tag != SEQUENCE:
        raise Malformed("not an SNMP message")
    tag, start, pos = header(data, pos, end)
    if tag != INTEGER:
        raise Malformed("bad version field")
    if ber.decode_integer(data, start, pos) != _SNMP_V2C:
        return None
    tag, start, pos = header(data, pos, end)
    if tag != OCTET_STRING:
        raise Malformed("bad community field")
    if not hmac.compare_digest(data[start:pos], community):
        return None
    pdu, pos, pdu_end = header(data, pos, end)
    if pdu_end != end:
        raise Malformed("trailing bytes after the PDU")
    if pdu not in (GET_REQUEST, GET_NEXT_REQUEST, GET_BULK_REQUEST, SET_REQUEST):
        return None  # responses, traps, reports: not for an agent
    fields = []
    for _ in range(3):  # request-id, then error-status and error-index or the GETBULK pair
        tag, start, pos = header(data, pos, end)
        if tag != INTEGER:
            raise Malformed("bad PDU header")
        fields.append(ber.decode_integer(data, start, pos))
    request_id, first, second = fields
    if not _I32_MIN <= request_id <= _I32_MAX or not 0 <= second <= _I32_MAX:
        raise Malformed("PDU field out of range")
    if pdu == GET_BULK_REQUEST and not 0 <= first <= _I32_MAX:
        raise Malformed("non-repeaters out of range")
    return _Request(pdu, request_id, first, second, _varbinds(data, pos, end))


def _varbinds(data: bytes, pos: int, end: int) -> list[_VarBind]:
    tag, pos, list_end = header(data, pos, end)
    if tag != SEQUENCE or list_end != end:
        raise Malformed("bad varbind list")
    out = []
    while pos < list_end:
        vb_start = pos
        tag, pos, vb_end = header(data, pos, list_end)
        if tag != SEQUENCE:
            raise Malformed("bad varbind")
        tag, start, pos = header(data, pos, vb_end)
        if tag != OBJECT_IDENTIFIER:
            raise Malformed("varbind name is not an OID")
        name = data[start:pos]
        ber.decode_oid(name)  # well-formed, or Malformed
        value_tag, start, pos = header(data, pos, vb_end)
        if pos != vb_end:
            raise Malformed("trailing bytes in a varbind")
        value = data[start:pos]
        _check_value(value_tag, value)
        out.append(_VarBind(data[vb_start:vb_end], name, value_tag, value))
        pos = vb_end
    return out


def _check_value(tag: int, value: bytes) -> None:
    """Raise Malformed for a value pysnmp would not decode (unknown type, out of range)."""
    if tag == INTEGER:
        number = ber.decode_integer(value, 0, len(value))
        if not _I32_MIN <= number <= _I32_MAX:
            raise Malformed("INTEGER out of range")
    elif tag in _UNSIGNED_MAX:
        if len(value) > ber.UNSIGNED_MAX_OCTETS[tag]:
            raise Malformed("unsigned value too long")
        if ber.decode_integer(value, 0, len(value), unsigned=True) > _UNSIGNED_MAX[tag]:
            raise Malformed("unsigned value out of range")
    elif tag in (OCTET_STRING, ber.OPAQUE):
        if len(value) > _MAX_OCTET_STRING:
            raise Malformed("OCTET STRING too long")
    elif tag == IP_ADDRESS:
        if len(value) != 4:
            raise Malformed("IpAddress is not 4 octets")
    elif tag == OBJECT_IDENTIFIER:
        ber.decode_oid(value)
    elif tag in ber.EMPTY_VALUES:
        if value:
            raise Malformed("NULL with contents")
    else:
        raise Malformed(f"unknown value type 0x{tag:02x}")


def _varbind(name: bytes, value: bytes) -> bytes:
    n = len(name) + len(value)
    if n < 0x80:
        return bytes((SEQUENCE, n)) + name + value
    return tlv(SEQUENCE, name + value)


SOURCES_KEPT = 64  # requesters a node remembers (`requests_by_source`)

# A row of a GETBULK or a GETNEXT answer: (position in the view, or -1 past its end; varbind)
_Next = tuple[int, bytes]


class SnmpAgent(asyncio.DatagramProtocol):
    """One device's SNMPv2c agent."""

    def __init__(
        self,
        device: SimDevice,
        datastores: Datastores,
        *,
        community: str,
        trap_receivers: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.device = device
        self.datastores = datastores
        self._community = community.encode()
        self._community_tlv = octets_tlv(self._community)
        self.trap_receivers = list(trap_receivers)
        self._transport: asyncio.DatagramTransport | None = None
        self._unlisten: Callable[[], None] | None = None
        self._view_key: list[int] = []
        self._view_cached: _MibView | None = None
        self._trap_ids = itertools.count(random.randrange(1, 1 << 30))
        self.port = 0
        self.traps_sent = 0
        # Requests answered per source address ("host:port"), the most recent SOURCES_KEPT in
        # order of their last request: who polls this device (tests tell instances apart).
        self.requests_by_source: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"SnmpAgent({self.device.name!r}, port={self.port})"  # never the community

    @property
    def running(self) -> bool:
        return self._transport is not None

    def _view(self) -> _MibView:
        # The layout is rebuilt (and looked up) only when the interfaces changed: sorting 48
        # of them per request would cost as much as answering it.
        key = list(map(id, self.device.interfaces.values()))
        if self._view_cached is None or key != self._view_key:
            layout = sorted(
                ((n, i.index) for n, i in self.device.interfaces.items()), key=_by_index
            )
            self._view_cached = _mib_view(tuple(layout))
            self._view_key = key
        return self._view_cached

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        self._unlisten = self.device.listen(self._on_change)
        self._send_trap(COLD_START, [])

    async def stop(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for a trap receiver that is not listening: nothing to do but note it.
        log.debug("%s: SNMP socket error: %s", self.device.name, exc)

    # --- requests ----------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        response = self.handle(data, addr)
        if response is not None and self._transport is not None:
            self._transport.sendto(response, addr)

    def handle(self, data: bytes, addr: object = None) -> bytes | None:
        """The encoded response to one request, or None to stay silent (another version or
        community, a PDU that is no request, or bytes that are no well-formed message)."""
        try:
            request = _parse(data, self._community)
        except Malformed as exc:
            log.debug("%s: undecodable SNMP message from %s: %s", self.device.name, addr, exc)
            return None
        if request is None:
            return None
        if isinstance(addr, tuple):
            self._count_source(f"{addr[0]}:{addr[1]}")
        view = self._view()
        status = index = NO_ERROR
        if request.pdu == GET_REQUEST:
            result = [_varbind(vb.name_tlv(), self._get(view, vb)) for vb in request.varbinds]
        elif request.pdu == GET_NEXT_REQUEST:
            result = [self._next(view, vb)[1] for vb in request.varbinds]
        elif request.pdu == GET_BULK_REQUEST:
            result = self._bulk(view, request)
        else:
            status, index = self._set(view, request.varbinds)
            result = [vb.raw for vb in request.varbinds]
        head = integer_tlv(request.request_id) + integer_tlv(status) + integer_tlv(index)
        encoded = self._response(head, result)
        while len(encoded) > MAX_MESSAGE and len(result) > 1:  # too big: send what fits
            result = result[: len(result) // 2]
            encoded = self._response(head, result)
        return encoded

    def _count_source(self, source: str) -> None:
        counts = self.requests_by_source
        counts[source] = counts.pop(source, 0) + 1  # re-inserted: the dict's order is recency
        if len(counts) > SOURCES_KEPT:
            del counts[next(iter(counts))]

    def _response(self, head: bytes, varbinds: list[bytes]) -> bytes:
        pdu = tlv(RESPONSE, head + tlv(SEQUENCE, b"".join(varbinds)))
        return tlv(SEQUENCE, b"\x02\x01\x01" + self._community_tlv + pdu)

    def _get(self, view: _MibView, vb: _VarBind) -> bytes:
        at = view.positions.get(vb.name)
        if at is not None:
            getter, ifname = view.readers[at]
            return getter(self.device, ifname)
        oid = vb.oid
        if any(oid[:n] in view.objects for n in range(len(oid))):
            return _NO_SUCH_INSTANCE
        return _NO_SUCH_OBJECT

    def _next(self, view: _MibView, vb: _VarBind) -> _Next:
        at = view.positions.get(vb.name)
        after = at + 1 if at is not None else bisect.bisect_right(view.oids, vb.oid)
        if after >= len(view.oids):
            return -1, _varbind(vb.name_tlv(), _END_OF_MIB_VIEW)
        return after, self._read(view, after)

    def _read(self, view: _MibView, at: int) -> bytes:
        getter, ifname = view.readers[at]
        return _varbind(view.names[at], getter(self.device, ifname))

    def _bulk(self, view: _MibView, request: _Request) -> list[bytes]:
        varbinds = request.varbinds
        non_repeaters = max(0, min(request.non_repeaters, len(varbinds)))
        repetitions = request.max_repetitions
        result = [self._next(view, vb)[1] for vb in varbinds[:non_repeaters]]
        repeaters = varbinds[non_repeaters:]
        if not repeaters:
            return result
        repetitions = min(repetitions, max(1, MAX_BULK_VARBINDS // len(repeaters)))
        if repetitions == 0:
            return result
        # The first row from the requested OIDs; later rows from the positions reached. A
        # cursor past the view's end stays there, answering endOfMibView for its OID.
        row = [self._next(view, vb) for vb in repeaters]
        result.extend(varbind for _, varbind in row)
        cursors = [at for at, _ in row]
        ends = [varbind for _, varbind in row]
        size = len(view.oids)
        live = sum(at >= 0 for at in cursors)
        for _ in range(repetitions - 1):
            if not live:
                break
            for column, at in enumerate(cursors):
                if at < 0:
                    result.append(ends[column])
                    continue
                at += 1
                if at >= size:
                    cursors[column] = -1
                    live -= 1
                    ends[column] = _varbind(view.names[at - 1], _END_OF_MIB_VIEW)
                    result.append(ends[column])
                else:
                    cursors[column] = at
                    result.append(self._read(view, at))
        return result

    def _set(self, view: _MibView, varbinds: list[_VarBind]) -> tuple[int, int]:
        """Check every varbind, then apply them all at once: (error-status, error-index)."""
        leaves = self.datastores.get("running")
        for position, vb in enumerate(varbinds, start=1):
            status = self._stage(view, vb, leaves)
            if status != NO_ERROR:
                return status, position
        try:
            self.datastores.write_running(leaves, who="SNMP")
        except RpcFailure as failure:
            log.info("%s: SNMP set refused: %s", self.device.name, failure.message)
            status = RESOURCE_UNAVAILABLE if failure.tag == "in-use" else WRONG_VALUE
            return status, 1
        return NO_ERROR, 0

    def _stage(self, view: _MibView, vb: _VarBind, leaves: dict[str, Any]) -> int:
        at = view.positions.get(vb.name)
        oid = vb.oid
        if at is None:
            known = any(oid[:n] in view.objects for n in range(len(oid)))
            return NOT_WRITABLE if known else NO_CREATION
        ifname = view.readers[at][1]
        column = oid[:-1]
        if column == (*IF_ENTRY, IF_ADMIN_STATUS):
            if vb.tag != INTEGER:
                return WRONG_TYPE
            status = ber.decode_integer(vb.value, 0, len(vb.value))
            if status not in (1, 2):
                return WRONG_VALUE  # testing(3) is not simulated
            leaves[iface_path(ifname, "config/enabled")] = status == 1
            return NO_ERROR
        if column == (*IFX_ENTRY, IF_ALIAS):
            if vb.tag not in (OCTET_STRING, IP_ADDRESS):  # pysnmp's OctetString and subtypes
                return WRONG_TYPE
            if len(vb.value) > IF_ALIAS_MAX:
                return WRONG_LENGTH
            try:
                leaves[iface_path(ifname, "config/description")] = vb.value.decode("utf-8")
            except UnicodeDecodeError:
                return WRONG_VALUE
            return NO_ERROR
        return NOT_WRITABLE

    # --- notifications -----------------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.kind != "oper-status" or change.interface is None:
            return
        if not self.device.node_up:
            return  # a powered-off device sends nothing
        index = self.device.interfaces[change.interface].index
        admin = _status(self.device.admin_up(change.interface))
        self._send_trap(
            LINK_UP if change.up else LINK_DOWN,
            [
                ((*IF_ENTRY, IF_INDEX, index), integer_tlv(index)),
                ((*IF_ENTRY, IF_ADMIN_STATUS, index), integer_tlv(admin)),
                ((*IF_ENTRY, IF_OPER_STATUS, index), integer_tlv(_status(bool(change.up)))),
            ],
        )

    def trap_message(self, trap_oid: Oid, varbinds: list[tuple[Oid, bytes]]) -> bytes:
        """An SNMPv2-Trap message: sysUpTime.0, snmpTrapOID.0, then `varbinds` (values
        encoded)."""
        bound = [
            (SYS_UPTIME, unsigned_tlv(TIMETICKS, self.device.uptime_ticks() & _U32)),
            (SNMP_TRAP_OID, oid_tlv(trap_oid)),
            *varbinds,
        ]
        listed = b"".join(_varbind(oid_tlv(oid), value) for oid, value in bound)
        request_id = next(self._trap_ids) & _I32_MAX
        pdu = tlv(
            V2_TRAP, integer_tlv(request_id) + b"\x02\x01\x00\x02\x01\x00" + tlv(SEQUENCE, listed)
        )
        return tlv(SEQUENCE, b"\x02\x01\x01" + self._community_tlv + pdu)

    def _send_trap(self, trap_oid: Oid, varbinds: list[tuple[Oid, bytes]]) -> None:
        if self._transport is None or not self.trap_receivers:
            return
        encoded = self.trap_message(trap_oid, varbinds)
        for receiver in self.trap_receivers:
            self._transport.sendto(encoded, receiver)
            self.traps_sent += 1


def _by_index(item: tuple[str, int]) -> int:
    return item[1]

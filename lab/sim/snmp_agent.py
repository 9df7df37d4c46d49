"""The simulated device's SNMP agent: SNMPv2c over one asyncio UDP endpoint per device.

Messages are decoded and encoded with pysnmp's protocol API (`pysnmp.proto.api.v2c`) and
pyasn1, without an SnmpEngine: an engine per device would cost far more than the device itself
when hundreds run in one process. The MIB view is a sorted list of OIDs with a getter each,
shared by every device with the same interfaces; values are computed when asked for, so
counters cost nothing until polled.

Served: the system group, ifNumber, ifTable (32-bit counters wrap), ifXTable (64-bit
counters). GET, GETNEXT, GETBULK, and SET of ifAdminStatus and ifAlias (they become the
interface's `config/enabled` and `config/description` leaves, through the datastores, so a
NETCONF lock on running refuses them). One community, read-write; a request with another
community is dropped, as real agents do. SNMPv1 and SNMPv3 are not served by the simulated
device (the driver tests use snmpd for v3).

Notifications: coldStart when the agent starts, linkDown/linkUp (with ifIndex, ifAdminStatus,
ifOperStatus) on every oper-status change, as SNMPv2c traps sent from the agent's own address
and port to each configured receiver.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]
from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]
from pysnmp.proto import api

from lab.sim.datastore import Datastores, RpcFailure
from lab.sim.model import Change, SimDevice, iface_path

log = logging.getLogger(__name__)

v2c: Any = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

Oid = tuple[int, ...]
Getter = Callable[[SimDevice, str], Any]

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


def _status(up: bool) -> int:
    return 1 if up else 2  # up(1), down(2)


def _mac(device: SimDevice, ifname: str) -> bytes:
    # Stable and locally administered (02:...): the same device and interface, the same MAC.
    digest = hashlib.blake2s(f"{device.name}/{ifname}".encode(), digest_size=5).digest()
    return b"\x02" + digest


def _last_change(device: SimDevice, ifname: str) -> int:
    ago = (time.time_ns() - device.interfaces[ifname].last_change_ns) // 10_000_000
    return max(0, device.uptime_ticks() - ago) & _U32


def _counter(name: str, bits: int) -> Getter:
    if bits == 32:
        return lambda d, i: v2c.Counter32(d.counters(i)[name] & _U32)
    return lambda d, i: v2c.Counter64(d.counters(i)[name])


def _leaf(ifname: str, leaf: str, device: SimDevice, default: Any) -> Any:
    return device.running.get(iface_path(ifname, f"config/{leaf}"), default)


SYSTEM_SCALARS: dict[int, Callable[[SimDevice], Any]] = {
    1: lambda d: v2c.OctetString(d.sys_descr),
    2: lambda d: v2c.ObjectIdentifier(d.sys_object_id),
    3: lambda d: v2c.TimeTicks(d.uptime_ticks() & _U32),
    4: lambda d: v2c.OctetString("oss lab <lab@localhost>"),
    5: lambda d: v2c.OctetString(d.name),
    6: lambda d: v2c.OctetString("oss simulated lab"),
    7: lambda d: v2c.Integer(6),  # sysServices: layers 2 and 3
}

IF_COLUMNS: dict[int, Getter] = {
    1: lambda d, i: v2c.Integer(d.interfaces[i].index),
    2: lambda d, i: v2c.OctetString(i),
    3: lambda d, i: v2c.Integer(6),  # ethernetCsmacd
    4: lambda d, i: v2c.Integer(int(_leaf(i, "mtu", d, 1500))),
    5: lambda d, i: v2c.Gauge32(min(d.interfaces[i].speed_bps, _U32)),
    6: lambda d, i: v2c.OctetString(_mac(d, i)),
    7: lambda d, i: v2c.Integer(_status(d.admin_up(i))),
    8: lambda d, i: v2c.Integer(_status(d.oper_up(i))),
    9: lambda d, i: v2c.TimeTicks(_last_change(d, i)),
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
    1: lambda d, i: v2c.OctetString(i),
    6: _counter("in-octets", 64),
    7: _counter("in-unicast-pkts", 64),
    10: _counter("out-octets", 64),
    11: _counter("out-unicast-pkts", 64),
    15: lambda d, i: v2c.Gauge32(d.interfaces[i].speed_bps // 1_000_000),
    18: lambda d, i: v2c.OctetString(str(_leaf(i, "description", d, ""))),
}


@dataclass(frozen=True)
class _MibView:
    """The sorted OIDs of one interface layout, each with how to read it."""

    oids: list[Oid]
    readers: list[tuple[Getter, str]]  # (getter, ifname or "")
    objects: frozenset[Oid]  # scalar and column OIDs, to tell noSuchInstance from noSuchObject
    by_index: dict[int, str]


def _scalar_getter(read: Callable[[SimDevice], Any]) -> Getter:
    return lambda device, _ifname: read(device)


@lru_cache(maxsize=64)
def _mib_view(layout: tuple[tuple[str, int], ...]) -> _MibView:
    rows: list[tuple[Oid, Getter, str]] = []
    objects: set[Oid] = set()
    for sub, scalar in SYSTEM_SCALARS.items():
        rows.append(((*SYSTEM, sub, 0), _scalar_getter(scalar), ""))
        objects.add((*SYSTEM, sub))
    count = len(layout)
    rows.append((IF_NUMBER, lambda d, _i: v2c.Integer(count), ""))
    objects.add(IF_NUMBER[:-1])
    for entry, columns in ((IF_ENTRY, IF_COLUMNS), (IFX_ENTRY, IFX_COLUMNS)):
        for column, getter in columns.items():
            objects.add((*entry, column))
            rows.extend(((*entry, column, index), getter, name) for name, index in layout)
    rows.sort(key=lambda row: row[0])
    return _MibView(
        oids=[r[0] for r in rows],
        readers=[(r[1], r[2]) for r in rows],
        objects=frozenset(objects),
        by_index={index: name for name, index in layout},
    )


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
        self.trap_receivers = list(trap_receivers)
        self._transport: asyncio.DatagramTransport | None = None
        self._unlisten: Callable[[], None] | None = None
        self.port = 0
        self.traps_sent = 0

    @property
    def running(self) -> bool:
        return self._transport is not None

    def _view(self) -> _MibView:
        layout = tuple((name, i.index) for name, i in self.device.interfaces.items())
        return _mib_view(tuple(sorted(layout, key=lambda item: item[1])))

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
        try:
            response = self.handle(data)
        except (PyAsn1Error, ValueError, TypeError, IndexError) as exc:
            log.debug("%s: undecodable SNMP message from %s: %s", self.device.name, addr, exc)
            return
        if response is not None and self._transport is not None:
            self._transport.sendto(response, addr)

    def handle(self, data: bytes) -> bytes | None:
        """The encoded response to one request, or None to stay silent."""
        if int(api.decodeMessageVersion(data)) != api.SNMP_VERSION_2C:
            return None
        message, _ = decoder.decode(data, asn1Spec=v2c.Message())
        community = bytes(v2c.apiMessage.get_community(message))
        if not hmac.compare_digest(community, self._community):
            return None
        request = v2c.apiMessage.get_pdu(message)
        response = v2c.apiMessage.get_response(message)
        pdu = v2c.apiMessage.get_pdu(response)
        varbinds = [(tuple(oid), value) for oid, value in v2c.apiPDU.get_varbinds(request)]
        tag = request.tagSet
        view = self._view()
        if tag == v2c.GetRequestPDU.tagSet:
            result = [(oid, self._get(view, oid)) for oid, _ in varbinds]
        elif tag == v2c.GetNextRequestPDU.tagSet:
            result = [self._next(view, oid) for oid, _ in varbinds]
        elif tag == v2c.GetBulkRequestPDU.tagSet:
            result = self._bulk(view, request, [oid for oid, _ in varbinds])
        elif tag == v2c.SetRequestPDU.tagSet:
            status, index = self._set(view, varbinds)
            v2c.apiPDU.set_error_status(pdu, status)
            v2c.apiPDU.set_error_index(pdu, index)
            result = varbinds
        else:
            return None  # responses, traps, reports: not for an agent
        v2c.apiPDU.set_varbinds(pdu, result)
        encoded: bytes = encoder.encode(response)
        while len(encoded) > MAX_MESSAGE and len(result) > 1:
            result = result[: len(result) // 2]
            v2c.apiPDU.set_varbinds(pdu, result)
            encoded = encoder.encode(response)
        return encoded

    def _get(self, view: _MibView, oid: Oid) -> Any:
        at = bisect.bisect_left(view.oids, oid)
        if at < len(view.oids) and view.oids[at] == oid:
            getter, ifname = view.readers[at]
            return getter(self.device, ifname)
        if any(oid[:n] in view.objects for n in range(len(oid))):
            return v2c.NoSuchInstance("")
        return v2c.NoSuchObject("")

    def _next(self, view: _MibView, oid: Oid) -> tuple[Oid, Any]:
        at = bisect.bisect_right(view.oids, oid)
        if at >= len(view.oids):
            return oid, v2c.EndOfMibView("")
        getter, ifname = view.readers[at]
        return view.oids[at], getter(self.device, ifname)

    def _bulk(self, view: _MibView, request: Any, oids: list[Oid]) -> list[tuple[Oid, Any]]:
        non_repeaters = max(0, min(int(v2c.apiBulkPDU.get_non_repeaters(request)), len(oids)))
        repetitions = max(0, int(v2c.apiBulkPDU.get_max_repetitions(request)))
        result = [self._next(view, oid) for oid in oids[:non_repeaters]]
        cursors = oids[non_repeaters:]
        if cursors:
            repetitions = min(repetitions, max(1, MAX_BULK_VARBINDS // len(cursors)))
        for _ in range(repetitions if cursors else 0):
            row = [self._next(view, oid) for oid in cursors]
            result.extend(row)
            cursors = [oid for oid, _ in row]
            if all(isinstance(value, v2c.EndOfMibView) for _, value in row):
                break
        return result

    def _set(self, view: _MibView, varbinds: list[tuple[Oid, Any]]) -> tuple[int, int]:
        """Check every varbind, then apply them all at once: (error-status, error-index)."""
        leaves = self.datastores.get("running")
        for position, (oid, value) in enumerate(varbinds, start=1):
            status = self._stage(view, oid, value, leaves)
            if status != NO_ERROR:
                return status, position
        try:
            self.datastores.write_running(leaves, who="SNMP")
        except RpcFailure as failure:
            log.info("%s: SNMP set refused: %s", self.device.name, failure.message)
            status = RESOURCE_UNAVAILABLE if failure.tag == "in-use" else WRONG_VALUE
            return status, 1
        return NO_ERROR, 0

    def _stage(self, view: _MibView, oid: Oid, value: Any, leaves: dict[str, Any]) -> int:
        at = bisect.bisect_left(view.oids, oid)
        if at >= len(view.oids) or view.oids[at] != oid:
            known = any(oid[:n] in view.objects for n in range(len(oid)))
            return NOT_WRITABLE if known else NO_CREATION
        ifname = view.readers[at][1]
        column = oid[:-1]
        if column == (*IF_ENTRY, IF_ADMIN_STATUS):
            if not isinstance(value, v2c.Integer):
                return WRONG_TYPE
            if int(value) not in (1, 2):
                return WRONG_VALUE  # testing(3) is not simulated
            leaves[iface_path(ifname, "config/enabled")] = int(value) == 1
            return NO_ERROR
        if column == (*IFX_ENTRY, IF_ALIAS):
            if not isinstance(value, v2c.OctetString):
                return WRONG_TYPE
            raw = bytes(value)
            if len(raw) > IF_ALIAS_MAX:
                return WRONG_LENGTH
            try:
                leaves[iface_path(ifname, "config/description")] = raw.decode("utf-8")
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
        self._send_trap(
            LINK_UP if change.up else LINK_DOWN,
            [
                ((*IF_ENTRY, IF_INDEX, index), v2c.Integer(index)),
                (
                    (*IF_ENTRY, IF_ADMIN_STATUS, index),
                    v2c.Integer(_status(self.device.admin_up(change.interface))),
                ),
                ((*IF_ENTRY, IF_OPER_STATUS, index), v2c.Integer(_status(bool(change.up)))),
            ],
        )

    def _send_trap(self, trap_oid: Oid, varbinds: list[tuple[Oid, Any]]) -> None:
        if self._transport is None or not self.trap_receivers:
            return
        pdu = v2c.TrapPDU()
        v2c.apiTrapPDU.set_defaults(pdu)
        v2c.apiTrapPDU.set_varbinds(
            pdu,
            [
                (SYS_UPTIME, v2c.TimeTicks(self.device.uptime_ticks() & _U32)),
                (SNMP_TRAP_OID, v2c.ObjectIdentifier(trap_oid)),
                *varbinds,
            ],
        )
        message = v2c.Message()
        v2c.apiMessage.set_defaults(message)
        v2c.apiMessage.set_community(message, self._community)
        v2c.apiMessage.set_pdu(message, pdu)
        encoded = encoder.encode(message)
        for receiver in self.trap_receivers:
            self._transport.sendto(encoded, receiver)
            self.traps_sent += 1

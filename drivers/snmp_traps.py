"""SNMP trap and inform receiver (v1, v2c and v3) on a plain asyncio datagram endpoint, producing
canonical events:

    async with TrapReceiver("127.0.0.1", 1162, communities=[secret]) as traps:
        async for event in traps:   # Event(name="snmp.trap", tags={device, trap, trap_oid, ...})
            ...

Each notification becomes one Event named "snmp.trap": tags `device` (the source address
mapped through `devices`, else the address itself), `source` (address:port), `trap` (the
notification's name from drivers.snmp_mib, e.g. "linkDown", or its numeric OID when unknown),
`trap_oid`, `version`, and `ifindex` when an ifIndex varbind is present; values are the other
varbinds, named with snmp_mib ("ifOperStatus.2": 2, "sysUpTime.0": 1234).

v1 and v2c are decoded by the lean codec (drivers.snmp_trap_codec: tens of microseconds per trap
where pysnmp takes a millisecond); v3 messages are handed to a pysnmp engine on the same socket
(USM, decryption). A v1 trap carries, as pysnmp translates it (RFC 3584), sysUpTime.0,
snmpTrapAddress.0 and snmpTrapEnterprise.0, but never snmpTrapCommunity.0 (a secret).

Informs are acknowledged before the event is queued. The queue is bounded: when it is full the
newest event is dropped and counted (`dropped`), so a trap storm cannot exhaust memory. A
datagram that is not a well-formed notification (`malformed`) or carries an unknown community
(`bad_community`) is counted and dropped, logged at most once a minute per source address.
v3: a user is accepted for informs (this receiver's engine is authoritative) and, for traps, for
each sender engine id listed in `TrapUser.sender_engine_ids` (USM requires the receiver to know a
trap sender's engine id in advance).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import rfc1902
from pysnmp.proto.rfc1905 import InformRequestPDU

from drivers import snmp_mib
from drivers.snmp import pysnmp_value
from drivers.snmp_trap_codec import BadCommunity, Malformed, SnmpPlain, TrapCodec, peek_version
from oss.events import Event, Value, now_ns

log = logging.getLogger(__name__)

AuthProtocol = Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["DES", "AES", "AES192", "AES256"]

_AUTH = {
    None: config.USM_AUTH_NONE,
    "MD5": config.USM_AUTH_HMAC96_MD5,
    "SHA": config.USM_AUTH_HMAC96_SHA,
    "SHA224": config.USM_AUTH_HMAC128_SHA224,
    "SHA256": config.USM_AUTH_HMAC192_SHA256,
    "SHA384": config.USM_AUTH_HMAC256_SHA384,
    "SHA512": config.USM_AUTH_HMAC384_SHA512,
}
# Net-SNMP's AES192/AES256 expand short keys after Blumenthal's draft.
_PRIV = {
    None: config.USM_PRIV_NONE,
    "DES": config.USM_PRIV_CBC56_DES,
    "AES": config.USM_PRIV_CFB128_AES,
    "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
}
_VERSIONS = {0: "1", 1: "2c", 3: "3"}
RECEIVE_BUFFER_BYTES = 4 << 20  # room for a burst while the loop is busy (capped by the kernel)
COMPLAINT_INTERVAL_S = 60.0  # a source's broken datagrams are logged at most this often
_COMPLAINT_SOURCES = 1024  # sources remembered for that; a spoofed flood cannot grow it


@dataclass(frozen=True)
class TrapUser:
    """An SNMPv3 user notifications may come from."""

    name: str
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretStr | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretStr | None = None
    sender_engine_ids: tuple[bytes, ...] = ()  # for v3 traps; informs need none


def _event_value(value: Any) -> Value:
    return _plain_value(pysnmp_value(value))


def _plain_value(plain: SnmpPlain | float) -> Value:
    if plain is None:
        return ""
    if isinstance(plain, bytes):
        try:
            text = plain.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + plain.hex()
        return text if text.isprintable() else "0x" + plain.hex()
    return plain


class _Complaints:
    """Rate-limited warnings about what a source sent wrong: the first at once, then at most
    one per interval per source host (a sender's port changes from trap to trap), saying how
    many were suppressed meanwhile."""

    def __init__(self, interval_s: float = COMPLAINT_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}  # host -> (logged at, suppressed)

    def __call__(self, addr: tuple[Any, int], what: str) -> None:
        host, now = str(addr[0]), time.monotonic()
        last = self._last.get(host)
        if last is not None and now - last[0] < self._interval_s:
            self._last[host] = (last[0], last[1] + 1)
            return
        if last is None and len(self._last) >= _COMPLAINT_SOURCES:
            self._last.clear()
        suppressed = f" ({last[1]} more from it since the last warning)" if last and last[1] else ""
        log.warning(
            "trap receiver: dropped a datagram from %s:%s: %s%s", host, addr[1], what, suppressed
        )
        self._last[host] = (now, 0)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receiver: TrapReceiver) -> None:
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._receiver._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for datagrams sent (inform responses): nothing to do but note them.
        log.debug("trap receiver: socket error: %s", exc)


class TrapReceiver:
    """Listens on host:port (port 0 picks a free one; see `port` after start)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 162,
        *,
        communities: Iterable[SecretStr | str] = (),
        v3_users: Iterable[TrapUser] = (),
        devices: Mapping[str, str] | None = None,
        on_event: Callable[[Event], None] | None = None,
        queue_size: int = 10_000,
        engine_id: bytes | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._communities = [c if isinstance(c, SecretStr) else SecretStr(c) for c in communities]
        self._users = list(v3_users)
        self._devices = dict(devices or {})
        self._on_event = on_event
        self._queue_size = queue_size
        self._engine_id = engine_id
        # Unbounded underneath; the bound is enforced on put so that stop() can always
        # enqueue the end-of-stream marker.
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._codec = TrapCodec(c.get_secret_value().encode() for c in self._communities)
        self._complain = _Complaints()
        self._transport: asyncio.DatagramTransport | None = None
        self._engine: engine.SnmpEngine | None = None
        self._v3: udp.UdpAsyncioTransport | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self.received = 0
        self.dropped = 0
        self.malformed = 0  # datagrams that were no well-formed v1/v2c/v3 notification
        self.bad_community = 0  # v1/v2c notifications with an unknown community

    def __repr__(self) -> str:
        return f"TrapReceiver({self.host}:{self.port}, received={self.received})"

    def update_sources(
        self, devices: Mapping[str, str], communities: Iterable[SecretStr | str] = ()
    ) -> None:
        """Follow the inventory: device names by source address, and v1/v2c communities (the
        configured ones plus `communities`, e.g. the devices' own)."""
        self._devices = dict(devices)
        extra = [c if isinstance(c, SecretStr) else SecretStr(c) for c in communities]
        secrets = {c.get_secret_value() for c in (*self._communities, *extra)}
        self._codec = TrapCodec(s.encode() for s in sorted(secrets))

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def engine_id(self) -> bytes:
        """This receiver's SNMP engine id (the authoritative one for v3 informs)."""
        if self._engine is None:
            raise RuntimeError("the receiver is not started")
        return bytes(self._engine.snmpEngineID.asOctets())

    async def start(self) -> None:
        if self._engine is not None:
            return
        # Bind here, synchronously, so that an address in use fails start() at once.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        except OSError as exc:  # the kernel's default then; a burst may overflow it sooner
            log.debug("trap receiver: cannot enlarge the receive buffer: %s", exc)
        self.port = int(sock.getsockname()[1])
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=sock)
        self._transport = transport
        # SNMPv3 (USM, keys, decryption) stays with pysnmp: its engine gets a transport object
        # that sends on this socket and is fed the v3 datagrams (see _datagram).
        snmp_engine = engine.SnmpEngine(
            snmpEngineID=rfc1902.OctetString(self._engine_id) if self._engine_id else None
        )
        v3 = udp.UdpAsyncioTransport()
        config.add_transport(snmp_engine, udp.DOMAIN_NAME, v3)
        v3.connection_made(transport)
        for user in self._users:
            self._add_user(snmp_engine, user)
        self._receiver = ntfrcv.NotificationReceiver(snmp_engine, self._received)
        self._v3 = v3
        self._engine = snmp_engine

    @staticmethod
    def _add_user(snmp_engine: engine.SnmpEngine, user: TrapUser) -> None:
        def add(engine_id: bytes | None) -> None:
            config.add_v3_user(
                snmp_engine,
                user.name,
                _AUTH[user.auth_protocol],
                user.auth_key.get_secret_value() if user.auth_key else None,
                _PRIV[user.priv_protocol],
                user.priv_key.get_secret_value() if user.priv_key else None,
                securityEngineId=rfc1902.OctetString(engine_id) if engine_id else None,
            )

        add(None)  # this engine: informs
        for engine_id in user.sender_engine_ids:
            add(engine_id)

    async def stop(self) -> None:
        snmp_engine, self._engine = self._engine, None
        if snmp_engine is None:
            return
        if self._receiver is not None:
            self._receiver.close(snmp_engine)
            self._receiver = None
        self._v3 = None
        snmp_engine.close_dispatcher()  # closes the shared transport too
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._queue.put_nowait(None)  # ends every iterator

    async def __aenter__(self) -> TrapReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self) -> AsyncIterator[Event]:
        """Events as they arrive, until stop()."""
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)  # for any other iterator
                return
            yield event

    async def get(self, timeout_s: float | None = None) -> Event:
        """The next event; TimeoutError after `timeout_s`, LookupError once stopped."""
        async with asyncio.timeout(timeout_s):
            event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)
            raise LookupError("the trap receiver is stopped")
        return event

    # --- datagrams ---------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: tuple[Any, int]) -> None:
        """One datagram off the socket. Never raises: whatever arrives is counted, at worst."""
        version = peek_version(data)
        if version == 3:
            v3 = self._v3
            if v3 is not None:
                v3.datagram_received(data, addr)  # pysnmp: USM, then _received()
            return
        try:
            note = self._codec.decode(data)
        except BadCommunity:
            self.bad_community += 1
            self._complain(addr, "unknown community")
            return
        except Malformed as exc:
            self.malformed += 1
            self._complain(addr, str(exc))
            return
        if note.inform and self._transport is not None:
            self._transport.sendto(note.response(), addr)
        trap_oid = "" if note.trap_oid is None else _oid_text(note.trap_oid)
        event = self._build(
            host=str(addr[0]),
            port=int(addr[1]),
            version=_VERSIONS[note.version],
            inform=note.inform,
            trap_oid=trap_oid,
            varbinds=((oid, _plain_value(value)) for oid, value in note.varbinds),
        )
        self._accept(event)

    def _accept(self, event: Event) -> None:
        self.received += 1
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("the on_event callback of the trap receiver failed")
        if self._queue.qsize() >= self._queue_size:
            self.dropped += 1
            return
        self._queue.put_nowait(event)

    def _build(
        self,
        *,
        host: str,
        port: int,
        version: str,
        inform: bool,
        trap_oid: str,
        varbinds: Iterable[tuple[str, Value]],
        user: str | None = None,
    ) -> Event:
        values: dict[str, Value] = {}
        ifindex: str | None = None
        for oid, value in varbinds:
            key = _name_of(oid)
            values[key] = value
            if key.startswith("ifIndex."):
                ifindex = key[len("ifIndex.") :]
        tags = {
            "device": self._devices.get(host, host),
            "source": f"{host}:{port}",
            "trap": _name_of(trap_oid) if trap_oid else "unknown",
            "trap_oid": trap_oid,
            "version": version,
            "pdu": "inform" if inform else "trap",
        }
        if user is not None:
            tags["user"] = user
        if ifindex is not None:
            tags["ifindex"] = ifindex
        return Event(name="snmp.trap", timestamp_ns=now_ns(), tags=tags, values=values)

    # --- pysnmp callbacks (SNMPv3) -------------------------------------------------------

    def _received(
        self,
        snmp_engine: engine.SnmpEngine,
        state_reference: int,
        context_engine_id: Any,
        context_name: Any,
        varbinds: Iterable[tuple[Any, Any]],
        ctx: Any,
    ) -> None:
        # pysnmp calls this from within the dispatch of the message, whose context it keeps.
        message = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        self._accept(self._event(message, varbinds))

    def _event(self, message: Mapping[str, Any], varbinds: Iterable[tuple[Any, Any]]) -> Event:
        trap_oid = ""
        plain: list[tuple[str, Value]] = []
        for name, value in varbinds:
            oid = ".".join(str(arc) for arc in name.asTuple())
            if oid == snmp_mib.SNMP_TRAP_OID_0:
                trap_oid = str(pysnmp_value(value))
                continue
            plain.append((oid, _event_value(value)))
        address = message.get("transportAddress") or ("unknown", 0)
        model = int(message.get("messageProcessingModel", -1))
        pdu = message.get("pdu")
        user = message.get("securityName") if model == 3 else None
        return self._build(
            host=str(address[0]),
            port=int(address[1]),
            version=_VERSIONS.get(model, str(model)),
            inform=pdu is not None and pdu.tagSet == InformRequestPDU.tagSet,
            trap_oid=trap_oid,
            varbinds=plain,
            user=None if user is None else str(user),
        )


def _oid_text(value: SnmpPlain) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


_NAMES: dict[str, str] = {}
_NAMES_SIZE = 8192


def _name_of(oid: str) -> str:
    """snmp_mib.name_of, remembered: a storm names the same few OIDs over and over."""
    name = _NAMES.get(oid)
    if name is None:
        if len(_NAMES) >= _NAMES_SIZE:
            _NAMES.clear()
        name = _NAMES[oid] = snmp_mib.name_of(oid)
    return name

"""SNMP trap and inform receiver (v1, v2c and v3) on a non-blocking UDP socket, producing
canonical events:

    async with TrapReceiver("127.0.0.1", 1162, communities=[secret]) as traps:
        async for event in traps:   # Event(name="snmp.trap", tags={device, trap, trap_oid, ...})
            ...
        batch = await traps.get_batch(1000)  # or what is queued, up to a limit (at least one)

Each notification becomes one Event named "snmp.trap": tags `device` (the source address
mapped through `devices`, else the address itself), `source` (address:port), `trap` (the
notification's name from drivers.snmp_mib, e.g. "linkDown", or its numeric OID when unknown),
`trap_oid`, `version`, and `ifindex` when an ifIndex varbind is present; values are the other
varbinds, named with snmp_mib ("ifOperStatus.2": 2, "sysUpTime.0": 1234).

v1 and v2c are decoded by the lean codec (drivers.snmp_trap_codec: tens of microseconds per trap
where pysnmp takes a millisecond); v3 messages are handed to a pysnmp engine on the same socket
(USM, decryption). A v1 trap carries, as pysnmp translates it (RFC 3584), sysUpTime.0,
snmpTrapAddress.0 and snmpTrapEnterprise.0, but never snmpTrapCommunity.0 (a secret).

The socket is drained in one event-loop callback (up to DRAIN_DATAGRAMS datagrams per wake-up,
so other tasks still run during a storm) rather than one loop iteration per datagram, and events
queue in a deque that consumers take in batches: under a storm the per-trap cost is the decoding.

Informs are acknowledged before the event is queued (a response that the socket's send buffer
cannot take at once is dropped, logged at debug: the sender retries an unacknowledged inform).
The queue is bounded: when it is full the newest event is dropped and counted (`dropped`), so a
trap storm cannot exhaust memory. Before the queue, the socket's receive buffer holds a burst
while the loop is busy (`receive_buffer_bytes` asked, `receive_buffer` granted, logged at bind);
what the kernel drops when it is full is read from /proc (`kernel_dropped`, and the host's
`host_rcvbuf_errors()`; see drivers.udp_stats). A datagram that is not a well-formed notification
(`malformed`) or carries an unknown community (`bad_community`) is counted and dropped, logged at
most once a minute per source address; an unknown community from a device whose community
the receiver is not told yet (`update_sources(..., expecting=...)`: a device that booted
before it had SNMP credentials in the inventory, say) is logged at debug only.
v3: a user is accepted for informs (this receiver's engine is authoritative) and, for traps, for
each sender engine id listed in `TrapUser.sender_engine_ids` (USM requires the receiver to know a
trap sender's engine id in advance).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
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
from drivers.snmp_trap_codec import (
    BadCommunity,
    Malformed,
    Notification,
    SnmpPlain,
    TrapCodec,
    peek_version,
)
from drivers.udp_stats import host_rcvbuf_errors, rmem_max, size_receive_buffer, socket_drops
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
# Room for a burst while the loop is busy elsewhere (the daemon asks for its setting,
# assurance.traps_receive_buffer_bytes); the kernel charges each datagram its buffer's overhead,
# ~830 bytes for a 110-byte trap here (measured), so 4 MiB granted hold ~5k traps.
RECEIVE_BUFFER_BYTES = 4 << 20
COMPLAINT_INTERVAL_S = 60.0  # a source's broken datagrams are logged at most this often
_COMPLAINT_SOURCES = 1024  # sources remembered for that; a spoofed flood cannot grow it
READ_PAUSE_S = 0.002  # after the socket ran dry: let a few arrive before reading again
DRAIN_DATAGRAMS = 256  # read per wake-up of the socket at most: the loop's other tasks still run
MAX_DATAGRAM_BYTES = 65_535
# Senders whose (device, source) tags are remembered; a spoofed flood cannot grow it.
_ORIGINS_SIZE = 4096


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


class _SocketSender(asyncio.DatagramTransport):
    """What pysnmp's UdpAsyncioTransport uses of its asyncio transport (`sendto`, and `close`
    when the engine's dispatcher closes), sending on the receiver's own socket: the v3
    responses (Reports, inform Responses) leave from the port the requests came to."""

    def __init__(self, send: Callable[[bytes, tuple[Any, int]], None]) -> None:
        super().__init__()
        self._send: Callable[[bytes, tuple[Any, int]], None] | None = send

    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._send is not None and addr is not None:
            self._send(bytes(data), addr)

    def close(self) -> None:
        self._send = None  # the socket itself is the receiver's: stop() closes it

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._send is None


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
        receive_buffer_bytes: int = RECEIVE_BUFFER_BYTES,
    ) -> None:
        self.host = host
        self.port = port
        self._communities = [c if isinstance(c, SecretStr) else SecretStr(c) for c in communities]
        self._users = list(v3_users)
        self._devices = dict(devices or {})
        # Device addresses whose community is known (see update_sources): all, until told.
        self._expecting = frozenset(self._devices)
        self._on_event = on_event
        self._queue_size = queue_size
        self._engine_id = engine_id
        self._receive_buffer_asked = receive_buffer_bytes
        self.receive_buffer = 0  # bytes the kernel granted (getsockopt), once bound
        # Events wait in a deque (bounded by `queue_size` in _accept); `_ready` is set when
        # there is something to take or the receiver stopped.
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._stopped = False
        self._codec = TrapCodec(c.get_secret_value().encode() for c in self._communities)
        self._complain = _Complaints()
        # (address, port) -> (device tag, source tag): the same few senders, trap after trap.
        self._origins: dict[tuple[Any, int], tuple[str, str]] = {}
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused: asyncio.TimerHandle | None = None  # reading resumes when it fires
        self._engine: engine.SnmpEngine | None = None
        self._v3: udp.UdpAsyncioTransport | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self.received = 0
        self.dropped = 0
        self.malformed = 0  # datagrams that were no well-formed v1/v2c/v3 notification
        self.bad_community = 0  # v1/v2c notifications with an unknown community
        self._v3_malformed = 0  # see v3_malformed
        self._kernel_dropped = 0  # see kernel_dropped: the last count read, kept once closed

    def __repr__(self) -> str:
        return f"TrapReceiver({self.host}:{self.port}, received={self.received})"

    def update_sources(
        self,
        devices: Mapping[str, str],
        communities: Iterable[SecretStr | str] = (),
        *,
        expecting: Iterable[str] | None = None,
    ) -> None:
        """Follow the inventory: device names by source address, and v1/v2c communities (the
        configured ones plus `communities`, e.g. the devices' own). `expecting`: the device
        addresses whose community is among them (an unknown community from another device is
        no surprise: logged at debug only); None: every device's."""
        self._devices = dict(devices)
        self._expecting = frozenset(self._devices if expecting is None else expecting)
        self._origins = {}
        extra = [c if isinstance(c, SecretStr) else SecretStr(c) for c in communities]
        secrets = {c.get_secret_value() for c in (*self._communities, *extra)}
        self._codec = TrapCodec(s.encode() for s in sorted(secrets))

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def engine_id(self) -> bytes:
        """This receiver's SNMP engine id (the authoritative one for v3 informs)."""
        if self._engine is None:
            raise RuntimeError("the receiver is not started")
        return bytes(self._engine.snmpEngineID.asOctets())

    @property
    def rejected(self) -> dict[str, int]:
        """Datagrams dropped unread, by reason: "decode" (no well-formed notification, v3
        ones that pysnmp could not parse included) and "community" (a v1/v2c community this
        receiver does not know)."""
        return {"decode": self.malformed + self.v3_malformed, "community": self.bad_community}

    @property
    def v3_malformed(self) -> int:
        """v3 datagrams pysnmp could not parse (its snmpInASNParseErrs and snmpInvalidMsgs),
        kept once the engine is gone."""
        if self._engine is not None:
            builder = self._engine.get_mib_builder()
            parse_errors, invalid = (
                int(symbol.syntax)
                for symbol in (
                    *builder.import_symbols("__SNMPv2-MIB", "snmpInASNParseErrs"),
                    *builder.import_symbols("__SNMP-MPD-MIB", "snmpInvalidMsgs"),
                )
            )
            self._v3_malformed = parse_errors + invalid
        return self._v3_malformed

    def bind(self) -> None:
        """Take the port now (OSError if it is busy): a daemon binds at start-up, before it
        runs anything, so a busy port stops it with a clear message. `start()` binds if this
        was not called."""
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.receive_buffer = size_receive_buffer(sock, self._receive_buffer_asked)
        self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._report_receive_buffer()

    def _report_receive_buffer(self) -> None:
        asked, granted = self._receive_buffer_asked, self.receive_buffer
        if granted >= asked:  # Linux reports twice what it accepted
            log.info(
                "trap receiver: %s:%s, receive buffer %d bytes (asked %d)",
                self.host,
                self.port,
                granted,
                asked,
            )
            return
        cap = rmem_max()
        log.warning(
            "trap receiver: %s:%s, receive buffer %d bytes, asked %d: the kernel caps it at "
            "net.core.rmem_max (%s); a burst may overflow it (counted in "
            'oss_collection{counter="traps_kernel_dropped"}). Raise it with '
            "`sysctl -w net.core.rmem_max=%d` (or run with CAP_NET_ADMIN)",
            self.host,
            self.port,
            granted,
            asked,
            "unknown" if cap is None else cap,
            asked,
        )

    @property
    def kernel_dropped(self) -> int:
        """Datagrams the kernel dropped for this receiver's socket (its receive buffer full),
        read now; 0 when unknown (not Linux, not bound)."""
        sock = self._sock
        drops = socket_drops(sock) if sock is not None else None
        if drops is not None:
            self._kernel_dropped = drops
        return self._kernel_dropped

    @staticmethod
    def host_rcvbuf_errors() -> int:
        """UDP datagrams the host dropped for a full receive buffer, every socket together
        (`Udp: RcvbufErrors`); 0 when unknown."""
        return host_rcvbuf_errors() or 0

    async def start(self) -> None:
        if self._engine is not None:
            return
        self.bind()  # synchronously, so that an address in use fails start() at once
        sock = self._sock
        assert sock is not None
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._drain)
        self._loop = loop
        self._stopped = False
        # SNMPv3 (USM, keys, decryption) stays with pysnmp: its engine gets a transport object
        # that sends on this socket and is fed the v3 datagrams (see _datagram).
        snmp_engine = engine.SnmpEngine(
            snmpEngineID=rfc1902.OctetString(self._engine_id) if self._engine_id else None
        )
        v3 = udp.UdpAsyncioTransport()
        config.add_transport(snmp_engine, udp.DOMAIN_NAME, v3)
        v3.connection_made(_SocketSender(self._send))
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
        self._v3_malformed = self.v3_malformed  # the engine's counts, kept
        snmp_engine, self._engine = self._engine, None
        if snmp_engine is None:
            self.unbind()  # bound, never started
            return
        if self._receiver is not None:
            self._receiver.close(snmp_engine)
            self._receiver = None
        self._v3 = None
        snmp_engine.close_dispatcher()  # closes its _SocketSender, not the socket
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self.unbind()
        self._stopped = True  # the consumers take what is queued, then LookupError
        self._ready.set()

    def unbind(self) -> None:
        """Close the socket (`stop()` does; for a receiver bound but never started)."""
        if self._sock is not None:
            _ = self.kernel_dropped  # the socket's last count, kept
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

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
            try:
                event = await self.get()
            except LookupError:
                return
            yield event

    async def get(self, timeout_s: float | None = None) -> Event:
        """The next event; TimeoutError after `timeout_s`, LookupError once stopped."""
        if not self._queue:
            await self._wait(timeout_s)
        return self._queue.popleft()

    async def get_batch(self, limit: int, timeout_s: float | None = None) -> list[Event]:
        """The events queued, oldest first, up to `limit`: waits for the first one (TimeoutError
        after `timeout_s`), never for more; LookupError once stopped and nothing is left."""
        if limit < 1:
            raise ValueError("a batch holds at least one event")
        queue = self._queue
        if not queue:
            await self._wait(timeout_s)
        if len(queue) <= limit:
            batch = list(queue)
            queue.clear()
            return batch
        popleft = queue.popleft
        return [popleft() for _ in range(limit)]

    async def _wait(self, timeout_s: float | None) -> None:
        """Until something is queued; LookupError when stopped with nothing left."""
        if timeout_s is None:  # the daemon's case, once per batch: no timer to set up
            await self._until_queued()
            return
        async with asyncio.timeout(timeout_s):
            await self._until_queued()

    async def _until_queued(self) -> None:
        while not self._queue:
            if self._stopped:
                raise LookupError("the trap receiver is stopped")
            self._ready.clear()
            await self._ready.wait()

    # --- datagrams ---------------------------------------------------------------------

    def _drain(self) -> None:
        """The socket is readable: read what is there (at most DRAIN_DATAGRAMS at a time)."""
        sock = self._sock
        if sock is None:
            return
        recvfrom, datagram = sock.recvfrom, self._datagram
        for n in range(DRAIN_DATAGRAMS):
            try:
                data, addr = recvfrom(MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                if n and self._loop is not None:
                    # Read again in a moment rather than at every datagram: under load the
                    # socket then holds a few, read in one wake-up (each costs ~100 us of CPU
                    # here), for at most READ_PAUSE_S more latency.
                    self._loop.remove_reader(sock.fileno())
                    self._paused = self._loop.call_later(READ_PAUSE_S, self._resume)
                return
            except OSError as exc:
                # ICMP errors for datagrams sent (inform responses to a closed port) surface
                # here; they concern that one peer, not the socket.
                log.debug("trap receiver: socket error: %s", exc)
                continue
            datagram(data, addr)

    def _resume(self) -> None:
        self._paused = None
        if self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._drain)

    def _send(self, data: bytes, addr: tuple[Any, int]) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.sendto(data, addr)
        except OSError as exc:  # a full send buffer, an unreachable peer: its retry will do
            log.debug("trap receiver: cannot send a response to %s:%s: %s", addr[0], addr[1], exc)

    def _datagram(self, data: bytes, addr: tuple[Any, int]) -> None:
        """One datagram off the socket. Never raises: whatever arrives is counted, at worst."""
        try:
            note = self._codec.decode(data)
        except BadCommunity:
            self.bad_community += 1
            self._unknown_community(addr)
            return
        except Malformed as exc:
            if peek_version(data) == 3:  # not for the codec: pysnmp does USM, then _received()
                v3 = self._v3
                if v3 is not None:
                    v3.datagram_received(data, addr)
                return
            self.malformed += 1
            self._complain(addr, str(exc))
            return
        if note.inform:
            self._send(note.response(), addr)
        self._accept(self._note_event(note, addr))

    def _unknown_community(self, addr: tuple[Any, int]) -> None:
        host = str(addr[0])
        if host in self._devices and host not in self._expecting:
            # An inventory device whose SNMP credentials are not known (yet): counted only.
            log.debug("trap receiver: a trap from %s before its community is known", host)
            return
        self._complain(addr, "unknown community")

    def _accept(self, event: Event) -> None:
        self.received += 1
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("the on_event callback of the trap receiver failed")
        if len(self._queue) >= self._queue_size:
            self.dropped += 1
            return
        self._queue.append(event)
        self._ready.set()

    def _origin(self, addr: tuple[Any, int]) -> tuple[str, str]:
        """The device and source tags of a sender not seen (lately)."""
        host = str(addr[0])
        origin = (self._devices.get(host, host), f"{host}:{int(addr[1])}")
        if len(self._origins) >= _ORIGINS_SIZE:
            self._origins.clear()
        self._origins[addr] = origin
        return origin

    def _note_event(self, note: Notification, addr: tuple[Any, int]) -> Event:
        """_build for what the codec decoded, with the per-trap work cut to dictionary look-ups
        (the same tags and values, in the same order)."""
        origin = self._origins.get(addr)
        device, source = origin if origin is not None else self._origin(addr)
        values: dict[str, Value] = {}
        ifindex: str | None = None
        for oid, plain in note.varbinds:
            named = _KEYS.get(oid)
            if named is None:
                named = _key_of(oid)
            key, index = named
            if index is not None:
                ifindex = index
            values[key] = (
                _plain_value(plain) if plain is None or isinstance(plain, bytes) else plain
            )
        named_trap = _TRAPS.get(note.trap_oid)
        trap_oid, trap = named_trap if named_trap is not None else _trap_names(note.trap_oid)
        tags = {
            "device": device,
            "source": source,
            "trap": trap,
            "trap_oid": trap_oid,
            "version": _VERSIONS[note.version],
            "pdu": "inform" if note.inform else "trap",
        }
        if ifindex is not None:
            tags["ifindex"] = ifindex
        return Event("snmp.trap", now_ns(), tags, values)

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
            key, index = _key_of(oid)
            values[key] = value
            if index is not None:
                ifindex = index
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


# Remembered look-ups: a storm names the same few OIDs over and over. Each is bounded crudely
# (cleared when full), so a flood of ever-new OIDs cannot grow them.
_NAMES_SIZE = 8192
_NAMES: dict[str, str] = {}
_KEYS: dict[str, tuple[str, str | None]] = {}  # varbind OID -> (value key, ifIndex or None)
_TRAPS: dict[SnmpPlain, tuple[str, str]] = {}  # snmpTrapOID.0 value -> (trap_oid, trap) tags


def _name_of(oid: str) -> str:
    """snmp_mib.name_of, remembered."""
    name = _NAMES.get(oid)
    if name is None:
        if len(_NAMES) >= _NAMES_SIZE:
            _NAMES.clear()
        name = _NAMES[oid] = snmp_mib.name_of(oid)
    return name


def _key_of(oid: str) -> tuple[str, str | None]:
    """A varbind's key in the event's values, and the ifIndex it names (the `ifindex` tag)."""
    named = _KEYS.get(oid)
    if named is None:
        key = _name_of(oid)
        named = (key, key[len("ifIndex.") :] if key.startswith("ifIndex.") else None)
        if len(_KEYS) >= _NAMES_SIZE:
            _KEYS.clear()
        _KEYS[oid] = named
    return named


def _trap_names(value: SnmpPlain) -> tuple[str, str]:
    """The `trap_oid` and `trap` tags for the value of snmpTrapOID.0 (None: none sent)."""
    named = _TRAPS.get(value)
    if named is None:
        trap_oid = "" if value is None else _oid_text(value)
        named = (trap_oid, _name_of(trap_oid) if trap_oid else "unknown")
        if len(_TRAPS) >= _NAMES_SIZE:
            _TRAPS.clear()
        _TRAPS[value] = named
    return named

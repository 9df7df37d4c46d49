"""SNMP trap and inform receiver (v1, v2c and v3) on pysnmp's asyncio transport, producing
canonical events:

    async with TrapReceiver("127.0.0.1", 1162, communities=[secret]) as traps:
        async for event in traps:   # Event(name="snmp.trap", tags={device, trap, trap_oid, ...})
            ...

Each notification becomes one Event named "snmp.trap": tags `device` (the source address
mapped through `devices`, else the address itself), `source` (address:port), `trap` (the
notification's name from drivers.snmp_mib, e.g. "linkDown", or its numeric OID when unknown),
`trap_oid`, `version`, and `ifindex` when an ifIndex varbind is present; values are the other
varbinds, named with snmp_mib ("ifOperStatus.2": 2, "sysUpTime.0": 1234).

Informs are acknowledged by pysnmp before the event is queued. The queue is bounded: when it
is full the newest event is dropped and counted (`dropped`), so a trap storm cannot exhaust
memory. v3: a user is accepted for informs (this receiver's engine is authoritative) and, for
traps, for each sender engine id listed in `TrapUser.sender_engine_ids` (USM requires the
receiver to know a trap sender's engine id in advance).
"""

from __future__ import annotations

import asyncio
import logging
import socket
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
    plain = pysnmp_value(value)
    if plain is None:
        return ""
    if isinstance(plain, bytes):
        try:
            text = plain.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + plain.hex()
        return text if text.isprintable() else "0x" + plain.hex()
    return plain


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
        self._engine: engine.SnmpEngine | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self.received = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"TrapReceiver({self.host}:{self.port}, received={self.received})"

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
        snmp_engine = engine.SnmpEngine(
            snmpEngineID=rfc1902.OctetString(self._engine_id) if self._engine_id else None
        )
        # Bind here, synchronously, so that an address in use fails start() at once.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        config.add_transport(
            snmp_engine, udp.DOMAIN_NAME, udp.UdpAsyncioTransport().open_server_mode(sock=sock)
        )
        for number, community in enumerate(self._communities):
            config.add_v1_system(
                snmp_engine, f"trap-community-{number}", community.get_secret_value()
            )
        for user in self._users:
            self._add_user(snmp_engine, user)
        self._receiver = ntfrcv.NotificationReceiver(snmp_engine, self._received)
        self._engine = snmp_engine
        # Let the event loop finish setting up the datagram endpoint before returning.
        await asyncio.sleep(0)

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
        snmp_engine.close_dispatcher()
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

    # --- pysnmp callbacks ---------------------------------------------------------------

    def _received(
        self,
        snmp_engine: engine.SnmpEngine,
        state_reference: int,
        context_engine_id: Any,
        context_name: Any,
        varbinds: Iterable[tuple[Any, Any]],
        ctx: Any,
    ) -> None:
        self.received += 1
        # pysnmp calls this from within the dispatch of the message, whose context it keeps.
        message = snmp_engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        event = self._event(message, varbinds)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("the on_event callback of the trap receiver failed")
        if self._queue.qsize() >= self._queue_size:
            self.dropped += 1
            return
        self._queue.put_nowait(event)

    def _event(self, message: Mapping[str, Any], varbinds: Iterable[tuple[Any, Any]]) -> Event:
        trap_oid = ""
        values: dict[str, Value] = {}
        ifindex: str | None = None
        for name, value in varbinds:
            oid = ".".join(str(arc) for arc in name.asTuple())
            if oid == snmp_mib.SNMP_TRAP_OID_0:
                trap_oid = str(pysnmp_value(value))
                continue
            key = snmp_mib.name_of(oid)
            values[key] = _event_value(value)
            column = snmp_mib.split_column(oid)
            if column is not None and column[0] == "ifIndex":
                ifindex = column[1]
        address = message.get("transportAddress") or ("unknown", 0)
        host, port = str(address[0]), int(address[1])
        model = int(message.get("messageProcessingModel", -1))
        pdu = message.get("pdu")
        inform = pdu is not None and pdu.tagSet == InformRequestPDU.tagSet
        tags = {
            "device": self._devices.get(host, host),
            "source": f"{host}:{port}",
            "trap": snmp_mib.name_of(trap_oid) if trap_oid else "unknown",
            "trap_oid": trap_oid,
            "version": _VERSIONS.get(model, str(model)),
            "pdu": "inform" if inform else "trap",
        }
        if model == 3 and message.get("securityName") is not None:
            tags["user"] = str(message["securityName"])
        if ifindex is not None:
            tags["ifindex"] = ifindex
        return Event(name="snmp.trap", timestamp_ns=now_ns(), tags=tags, values=values)

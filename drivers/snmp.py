"""SNMP polling and sets: `SnmpDriver(...).connect(target)` yields an `SnmpSession`.

    async with driver.connect(target) as snmp:
        await snmp.get("sysDescr.0", "sysUpTime.0")  # {"1.3.6.1.2.1.1.1.0": b"Linux ..", ..}
        await snmp.walk("ifXTable")  # [("1.3.6.1.2.1.31.1.1.1.1.1", b"lo"), ...]
        await snmp.set("sysLocation.0", "OctetString", "rack 4")
        await snmp.interfaces()  # one canonical Event per interface

Two backends serve reads behind one contract:
- "gufo" (default): gufo-snmp, whose BER codec and socket loop are native code; it walks
  several times faster than snmpbulkwalk, where pysnmp walks at a third of its rate (pyasn1
  decoding dominates; see bench/snmp_bench.py).
- "pysnmp": pysnmp 7 (`pysnmp.hlapi.v3arch.asyncio`), the reference, and always the one that
  performs sets (gufo-snmp has no SET).

Values come back as plain Python: integers, counters, gauges and time ticks as `int`, octet
strings as `bytes` (DisplayString and MAC addresses cannot be told apart without MIBs), object
identifiers and IP addresses as dotted `str`, and `None` where the agent has no such object.
OIDs may be given numerically or by a name from `drivers.snmp_mib` ("ifHCInOctets.3").

Errors: no answer within the call's time -> DeviceTimeout; a refused or failed socket ->
ConnectError; a v3 user/password/digest rejected -> AuthError; an error status from the agent
(noSuchName, notWritable, genErr, ...) -> RpcError carrying the agent's status text. Messages
name the device, never the community or keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol, TypeVar

from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC96_MD5,
    USM_AUTH_HMAC96_SHA,
    USM_AUTH_HMAC128_SHA224,
    USM_AUTH_HMAC192_SHA256,
    USM_AUTH_HMAC256_SHA384,
    USM_AUTH_HMAC384_SHA512,
    USM_AUTH_NONE,
    USM_PRIV_CBC56_DES,
    USM_PRIV_CFB128_AES,
    USM_PRIV_CFB192_AES,
    USM_PRIV_CFB192_AES_BLUMENTHAL,
    USM_PRIV_CFB256_AES,
    USM_PRIV_CFB256_AES_BLUMENTHAL,
    USM_PRIV_NONE,
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
    set_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905

from drivers import snmp_mib
from drivers.base import SessionPool, Target
from drivers.credentials import SnmpCredentials
from drivers.snmp_fast import GufoBackend
from drivers.snmp_target import PROTOCOL, KeyExpansion, PollSettings, SnmpValue, Varbind
from oss.errors import (
    AuthError,
    ConnectError,
    DeviceTimeout,
    DriverError,
    RpcError,
)
from oss.events import Event, Value, now_ns

Backend = Literal["gufo", "pysnmp"]
SetType = Literal[
    "Integer32",
    "Unsigned32",
    "Gauge32",
    "Counter32",
    "Counter64",
    "TimeTicks",
    "OctetString",
    "IpAddress",
    "ObjectIdentifier",
]
T = TypeVar("T")

# Reports that mean "the agent does not accept these v3 credentials" (RFC 3414 usmStats*).
_AUTH_INDICATIONS = (
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.DecryptionError,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol,
)

_SET_TYPES: dict[str, Callable[[Any], Any]] = {
    "Integer32": rfc1902.Integer32,
    "Unsigned32": rfc1902.Unsigned32,
    "Gauge32": rfc1902.Gauge32,
    "Counter32": rfc1902.Counter32,
    "Counter64": rfc1902.Counter64,
    "TimeTicks": rfc1902.TimeTicks,
    "OctetString": rfc1902.OctetString,
    "IpAddress": rfc1902.IpAddress,
    "ObjectIdentifier": rfc1902.ObjectIdentifier,
}


# --- the backends --------------------------------------------------------------------------


class ReadBackend(Protocol):
    """What a polling backend does for one target; errors are already the project's."""

    name: str

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]: ...

    async def walk(self, root: str, *, bulk: bool, max_repetitions: int) -> list[Varbind]: ...

    async def close(self) -> None: ...


def pysnmp_value(value: Any) -> SnmpValue:
    """A pyasn1/pysnmp value as plain Python (see the module docstring)."""
    if isinstance(value, univ.Null):  # also noSuchObject, noSuchInstance, endOfMibView
        return None
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(octet) for octet in value.asNumbers())
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(str(arc) for arc in value.asTuple())
    if isinstance(value, univ.Real):
        return float(value)
    return str(value)


def _oid_tuple(oid: str) -> tuple[int, ...]:
    return tuple(int(arc) for arc in oid.split("."))


class PysnmpBackend:
    """pysnmp 7 on a shared SnmpEngine: reads, walks and sets for one target."""

    name = "pysnmp"

    def __init__(
        self, engine: SnmpEngine, auth: CommunityData | UsmUserData, settings: PollSettings
    ) -> None:
        self._engine, self._auth, self._settings = engine, auth, settings
        self._context = ContextData()
        self._transport: UdpTransportTarget | None = None

    async def _target(self) -> UdpTransportTarget:
        if self._transport is None:
            s = self._settings
            try:
                self._transport = await UdpTransportTarget.create(
                    (s.host, s.port), timeout=s.request_timeout_s, retries=s.retries
                )
            except PySnmpError as exc:  # pysnmp wraps resolver errors
                raise ConnectError(
                    f"cannot resolve {s.host}:{s.port}", device=s.device, protocol=PROTOCOL
                ) from exc
        return self._transport

    def _check(self, what: str, indication: Any, status: Any, index: Any, varbinds: Any) -> None:
        device = self._settings.device
        if indication:
            if isinstance(indication, errind.RequestTimedOut):
                raise DeviceTimeout(
                    f"{what}: no answer from the agent", device=device, protocol=PROTOCOL
                )
            if isinstance(indication, _AUTH_INDICATIONS):
                raise AuthError(
                    f"{what}: the agent refused the SNMPv3 credentials ({indication})",
                    device=device,
                    protocol=PROTOCOL,
                )
            raise ConnectError(f"{what}: {indication}", device=device, protocol=PROTOCOL)
        if status and int(status) != 0:
            text = status.prettyPrint() if hasattr(status, "prettyPrint") else str(status)
            position = int(index) if index else 0
            if 0 < position <= len(varbinds):
                name = snmp_mib.name_of(str(varbinds[position - 1][0]))
                text = f"{text} at {name}"
            raise RpcError(f"{what} failed", device=device, protocol=PROTOCOL, device_error=text)

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        target = await self._target()
        result = await get_cmd(
            self._engine,
            self._auth,
            target,
            self._context,
            *(ObjectType(ObjectIdentity(o)) for o in oids),
            lookupMib=False,
        )
        self._check("get", *result)
        values = {str(name): pysnmp_value(value) for name, value in result[3]}
        return {o: values.get(o) for o in oids}

    async def walk(self, root: str, *, bulk: bool, max_repetitions: int) -> list[Varbind]:
        """GETBULK (or GETNEXT) from `root` until the answer leaves its subtree."""
        target = await self._target()
        rows: list[Varbind] = []
        root_key = _oid_tuple(root)
        current, current_key = root, root_key
        while True:
            start = ObjectType(ObjectIdentity(current))
            if bulk:
                result = await bulk_cmd(
                    self._engine,
                    self._auth,
                    target,
                    self._context,
                    0,
                    max_repetitions,
                    start,
                    lookupMib=False,
                )
            else:
                result = await next_cmd(
                    self._engine, self._auth, target, self._context, start, lookupMib=False
                )
            self._check("walk", *result)
            varbinds = result[3]
            if not varbinds:
                return rows
            for name, value in varbinds:
                key = tuple(name.asTuple())
                if isinstance(value, rfc1905.EndOfMibView) or key[: len(root_key)] != root_key:
                    return rows
                if key <= current_key:
                    raise RpcError(
                        "walk failed",
                        device=self._settings.device,
                        protocol=PROTOCOL,
                        device_error=f"OID not increasing after {current}",
                    )
                oid = ".".join(str(arc) for arc in key)
                rows.append((oid, pysnmp_value(value)))
                current, current_key = oid, key

    async def set(self, oid: str, value_type: SetType, value: Any) -> SnmpValue:
        try:
            cast = _SET_TYPES[value_type]
        except KeyError:
            raise ValueError(f"unknown SNMP type {value_type!r}") from None
        target = await self._target()
        result = await set_cmd(
            self._engine,
            self._auth,
            target,
            self._context,
            ObjectType(ObjectIdentity(oid), cast(value)),
            lookupMib=False,
        )
        self._check("set", *result)
        echoed = result[3]
        return pysnmp_value(echoed[0][1]) if echoed else None

    async def close(self) -> None:
        """The engine and its socket belong to the driver; nothing is held per target."""


_AUTH_PROTOCOLS = {
    None: USM_AUTH_NONE,
    "MD5": USM_AUTH_HMAC96_MD5,
    "SHA": USM_AUTH_HMAC96_SHA,
    "SHA224": USM_AUTH_HMAC128_SHA224,
    "SHA256": USM_AUTH_HMAC192_SHA256,
    "SHA384": USM_AUTH_HMAC256_SHA384,
    "SHA512": USM_AUTH_HMAC384_SHA512,
}

# AES-192/256 keys longer than the auth digest are expanded: Net-SNMP's "AES256" uses
# Blumenthal's draft, Cisco's uses Reeder's; pysnmp's plain AES192/256 constants are Reeder.
_PRIV_PROTOCOLS: dict[tuple[str | None, KeyExpansion], Any] = {
    (None, "blumenthal"): USM_PRIV_NONE,
    (None, "reeder"): USM_PRIV_NONE,
    ("DES", "blumenthal"): USM_PRIV_CBC56_DES,
    ("DES", "reeder"): USM_PRIV_CBC56_DES,
    ("AES", "blumenthal"): USM_PRIV_CFB128_AES,
    ("AES", "reeder"): USM_PRIV_CFB128_AES,
    ("AES192", "blumenthal"): USM_PRIV_CFB192_AES_BLUMENTHAL,
    ("AES192", "reeder"): USM_PRIV_CFB192_AES,
    ("AES256", "blumenthal"): USM_PRIV_CFB256_AES_BLUMENTHAL,
    ("AES256", "reeder"): USM_PRIV_CFB256_AES,
}


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())


class _Engines:
    """pysnmp engines, reused across sessions. v2c targets share one engine; each distinct
    SNMPv3 identity (user and keys) gets its own, because pysnmp keeps one USM row per user
    name and engine: two devices with the same user name and different keys would otherwise
    overwrite each other's keys."""

    def __init__(self) -> None:
        self._engines: dict[object, SnmpEngine] = {}

    def engine_for(self, snmp: SnmpCredentials) -> SnmpEngine:
        key: object = "v2c" if snmp.version == "2c" else snmp
        engine = self._engines.get(key)
        if engine is None:
            engine = self._engines[key] = SnmpEngine()
        return engine

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close_dispatcher()
        self._engines.clear()


def pysnmp_auth(settings: PollSettings) -> CommunityData | UsmUserData:
    snmp = settings.snmp
    if snmp.version == "2c":
        return CommunityData(_secret(snmp.community), mpModel=1)
    return UsmUserData(
        snmp.user,
        authKey=_secret(snmp.auth_key),
        privKey=_secret(snmp.priv_key),
        authProtocol=_AUTH_PROTOCOLS[snmp.auth_protocol],
        privProtocol=_PRIV_PROTOCOLS[(snmp.priv_protocol, settings.key_expansion)],
    )


# --- the session -----------------------------------------------------------------------------


class SnmpSession:
    """SNMP with one device. Every call is bounded by the target's `timeout_s`."""

    def __init__(
        self,
        settings: PollSettings,
        reader: ReadBackend,
        writer: Callable[[], Awaitable[PysnmpBackend]],
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._open_writer = writer
        self._writer: PysnmpBackend | None = None

    @property
    def device(self) -> str:
        return self._settings.device

    @property
    def backend(self) -> str:
        return self._reader.name

    def __repr__(self) -> str:
        s = self._settings
        return f"SnmpSession({s.device} {s.host}:{s.port} v{s.snmp.version} via {self.backend})"

    async def _bounded(self, what: str, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._settings.call_timeout_s):
                return await call
        except DriverError:
            raise
        except TimeoutError as exc:
            raise DeviceTimeout(
                f"{what}: no answer within {self._settings.call_timeout_s:g}s",
                device=self.device,
                protocol=PROTOCOL,
            ) from exc

    async def get(self, *oids: str) -> dict[str, SnmpValue]:
        """GET of the given OIDs (names or numeric); keys are the numeric OIDs, and the value
        is None where the agent has no such object or instance."""
        numeric = [snmp_mib.oid(o) for o in oids]
        if not numeric:
            return {}
        return await self._bounded("get", self._reader.get(numeric))

    async def walk(
        self, oid: str, *, bulk: bool = True, max_repetitions: int | None = None
    ) -> list[Varbind]:
        """Every instance under `oid`, in order: GETBULK by default, GETNEXT with bulk=False."""
        root = snmp_mib.oid(oid)
        repetitions = max_repetitions or self._settings.max_repetitions
        return await self._bounded(
            "walk", self._reader.walk(root, bulk=bulk, max_repetitions=repetitions)
        )

    async def set(self, oid: str, value_type: SetType, value: Any) -> SnmpValue:
        """SET one object; returns the value the agent echoed. Always through pysnmp."""
        numeric = snmp_mib.oid(oid)

        async def run() -> SnmpValue:
            if self._writer is None:
                self._writer = await self._open_writer()
            return await self._writer.set(numeric, value_type, value)

        return await self._bounded("set", run())

    async def interfaces(self) -> list[Event]:
        """One canonical "interface" event per row of ifTable joined with ifXTable (both walks
        within the one call's time limit)."""
        repetitions = self._settings.max_repetitions

        async def both_tables() -> list[Varbind]:
            rows: list[Varbind] = []
            for table in (snmp_mib.IF_TABLE, snmp_mib.IF_X_TABLE):
                rows += await self._reader.walk(table, bulk=True, max_repetitions=repetitions)
            return rows

        varbinds = await self._bounded("interfaces", both_tables())
        return interface_events(self.device, varbinds, now_ns())

    async def close(self) -> None:
        await self._reader.close()
        if self._writer is not None:
            await self._writer.close()


# --- interface events ------------------------------------------------------------------------

_COUNTERS = (  # event value: (64-bit column, 32-bit fallback)
    ("in-octets", "ifHCInOctets", "ifInOctets"),
    ("out-octets", "ifHCOutOctets", "ifOutOctets"),
    ("in-unicast-pkts", "ifHCInUcastPkts", "ifInUcastPkts"),
    ("out-unicast-pkts", "ifHCOutUcastPkts", "ifOutUcastPkts"),
    ("in-multicast-pkts", "ifHCInMulticastPkts", "ifInMulticastPkts"),
    ("out-multicast-pkts", "ifHCOutMulticastPkts", "ifOutMulticastPkts"),
    ("in-broadcast-pkts", "ifHCInBroadcastPkts", "ifInBroadcastPkts"),
    ("out-broadcast-pkts", "ifHCOutBroadcastPkts", "ifOutBroadcastPkts"),
)
_PLAIN = (
    ("in-errors", "ifInErrors"),
    ("out-errors", "ifOutErrors"),
    ("in-discards", "ifInDiscards"),
    ("out-discards", "ifOutDiscards"),
    ("mtu", "ifMtu"),
    ("type", "ifType"),
    ("last-change", "ifLastChange"),
)
_SPEED_SATURATED = 4_294_967_295  # ifSpeed's maximum: the real speed is in ifHighSpeed


def _text(value: SnmpValue) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def interface_events(device: str, varbinds: Sequence[Varbind], timestamp_ns: int) -> list[Event]:
    rows: dict[str, dict[str, SnmpValue]] = {}
    for oid, value in varbinds:
        column = snmp_mib.split_column(oid)
        if column is not None:
            rows.setdefault(column[1], {})[column[0]] = value
    events = []
    for index in sorted(rows, key=_oid_tuple):
        events.append(_interface_event(device, index, rows[index], timestamp_ns))
    return events


def _interface_event(
    device: str, index: str, row: dict[str, SnmpValue], timestamp_ns: int
) -> Event:
    values: dict[str, Value] = {}
    for key, high, low in _COUNTERS:
        raw = row.get(high, row.get(low))
        if isinstance(raw, int):
            values[key] = raw
    for key, column in _PLAIN:
        raw = row.get(column)
        if isinstance(raw, int):
            values[key] = raw
    for key, column in (("oper-status", "ifOperStatus"), ("admin-status", "ifAdminStatus")):
        raw = row.get(column)
        if isinstance(raw, int):
            values[key] = snmp_mib.IF_STATUS.get(raw, str(raw))
    speed, high_speed = row.get("ifSpeed"), row.get("ifHighSpeed")
    if isinstance(high_speed, int) and (not isinstance(speed, int) or speed >= _SPEED_SATURATED):
        values["speed_bps"] = high_speed * 1_000_000
    elif isinstance(speed, int):
        values["speed_bps"] = speed
    for key, column in (("description", "ifDescr"), ("alias", "ifAlias")):
        if row.get(column) is not None:
            values[key] = _text(row[column])
    mac = row.get("ifPhysAddress")
    if isinstance(mac, bytes) and mac:
        values["phys-address"] = ":".join(f"{octet:02x}" for octet in mac)
    name = _text(row.get("ifName")) or _text(row.get("ifDescr")) or index
    tags = {"device": device, "interface": name, "ifindex": index}
    return Event(name="interface", timestamp_ns=timestamp_ns, tags=tags, values=values)


# --- the driver ------------------------------------------------------------------------------


class SnmpDriver:
    """Opens SNMP sessions, reused per device with at most `per_device` calls in flight.

    backend="gufo" (default) polls with gufo-snmp; backend="pysnmp" polls with pysnmp. Sets
    always use pysnmp. Target.options may override `max_repetitions`, `retries`,
    `request_timeout_s` and `aes_key_expansion` ("blumenthal", Net-SNMP's; or "reeder")."""

    def __init__(
        self,
        *,
        backend: Backend = "gufo",
        per_device: int = 2,
        max_repetitions: int = 25,
        retries: int = 1,
    ) -> None:
        if backend not in ("gufo", "pysnmp"):
            raise ValueError(f"unknown SNMP backend {backend!r}")
        self.backend: Backend = backend
        self._max_repetitions = max_repetitions
        self._retries = retries
        self._engines = _Engines()
        self._pool: SessionPool[SnmpSession] = SessionPool(
            self._open,
            self._close,
            per_device=per_device,
            # A timeout can leave a late answer in a socket; reopen rather than guess.
            is_broken=lambda exc: isinstance(exc, DeviceTimeout | ConnectError | AuthError),
        )

    def connect(self, target: Target) -> AbstractAsyncContextManager[SnmpSession]:
        return self._pool.borrow(target)

    async def _open(self, target: Target) -> SnmpSession:
        settings = PollSettings(
            target, max_repetitions=self._max_repetitions, retries=self._retries
        )

        async def writer() -> PysnmpBackend:
            return self._pysnmp(settings)

        reader: ReadBackend
        if self.backend == "gufo":
            reader = await GufoBackend.open(settings)
        else:
            reader = self._pysnmp(settings)
        return SnmpSession(settings, reader, writer)

    def _pysnmp(self, settings: PollSettings) -> PysnmpBackend:
        engine = self._engines.engine_for(settings.snmp)
        return PysnmpBackend(engine, pysnmp_auth(settings), settings)

    @staticmethod
    async def _close(session: SnmpSession) -> None:
        await session.close()

    async def close(self) -> None:
        await self._pool.close_all()
        self._engines.close()

    async def __aenter__(self) -> SnmpDriver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

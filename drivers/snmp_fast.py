"""The accelerated polling backend: gufo-snmp (native BER codec and socket loop).

It serves the read half of `SnmpSession` (GET, GETNEXT and GETBULK walks, v1/v2c and v3 USM
with MD5/SHA-1/SHA-2 and DES/AES) several times faster than pysnmp. One gufo session is one
UDP socket with no request multiplexing, so requests on it are serialised by a lock; the
per-device limit of the driver bounds how many such sessions a device sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from gufo.snmp import (
    Aes128Key,
    Aes192Key,
    Aes256Key,
    BaseAuthKey,
    BasePrivKey,
    DesKey,
    KeyExpansion,
    Md5Key,
    Sha1Key,
    Sha224Key,
    Sha256Key,
    Sha384Key,
    Sha512Key,
    SnmpAuthError,
    SnmpDecodeError,
    SnmpError,
    SnmpVersion,
    User,
)
from gufo.snmp.aio import SnmpSession as GufoSession

from drivers.snmp_target import PROTOCOL, PollSettings, SnmpValue, Varbind
from oss.errors import AuthError, ConnectError, DeviceTimeout, RpcError

T = TypeVar("T")

_AUTH_KEYS: dict[str, type[BaseAuthKey]] = {
    "MD5": Md5Key,
    "SHA": Sha1Key,
    "SHA224": Sha224Key,
    "SHA256": Sha256Key,
    "SHA384": Sha384Key,
    "SHA512": Sha512Key,
}
_PRIV_KEYS: dict[str, type[BasePrivKey]] = {
    "DES": DesKey,
    "AES": Aes128Key,
    "AES192": Aes192Key,
    "AES256": Aes256Key,
}
# USM accepts a request only within 150 s of the agent's engine time as last learned:
# re-synchronise well before that on a session that sat idle in the pool.
_V3_RESYNC_S = 100.0


def gufo_user(settings: PollSettings) -> User:
    snmp = settings.snmp
    auth = priv = None
    if snmp.auth_protocol is not None and snmp.auth_key is not None:
        auth = _AUTH_KEYS[snmp.auth_protocol](snmp.auth_key.get_secret_value().encode())
    if snmp.priv_protocol is not None and snmp.priv_key is not None:
        priv = _PRIV_KEYS[snmp.priv_protocol](snmp.priv_key.get_secret_value().encode())
    expansion = (
        KeyExpansion.Cisco if settings.key_expansion == "reeder" else KeyExpansion.Blumenthal
    )
    return User(str(snmp.user), auth_key=auth, priv_key=priv, key_expansion=expansion)


class GufoBackend:
    """gufo-snmp for one target. Errors leave as the project's DriverErrors."""

    name = "gufo"

    def __init__(self, settings: PollSettings) -> None:
        self._settings = settings
        self._session: GufoSession | None = None
        self._lock = asyncio.Lock()
        self._last_answer = 0.0

    @classmethod
    async def open(cls, settings: PollSettings) -> GufoBackend:
        backend = cls(settings)
        async with backend._lock:
            await backend._connect()
        return backend

    def _new_session(self) -> GufoSession:
        s = self._settings
        if s.snmp.version == "3":
            return GufoSession(
                s.host,
                s.port,
                user=gufo_user(s),
                version=SnmpVersion.v3,
                timeout=s.request_timeout_s,
                max_repetitions=s.max_repetitions,
            )
        community = s.snmp.community.get_secret_value() if s.snmp.community else ""
        return GufoSession(
            s.host,
            s.port,
            community=community,
            version=SnmpVersion.v2c,
            timeout=s.request_timeout_s,
            max_repetitions=s.max_repetitions,
        )

    async def _connect(self) -> None:
        """A fresh socket; for v3, engine discovery and time synchronisation (USM)."""
        await self._call("connect", lambda session: session.refresh(), fresh=True)

    async def _ready(self) -> None:
        if self._session is None:
            await self._connect()
            return
        idle = time.monotonic() - self._last_answer
        if self._settings.snmp.version == "3" and idle > _V3_RESYNC_S:
            await self._call("connect", lambda session: session.refresh())

    async def _call(
        self,
        what: str,
        request: Callable[[GufoSession], Awaitable[T]],
        *,
        fresh: bool = False,
    ) -> T:
        """One request-answer exchange. A lost answer is retried on a new socket, so that a
        late answer to the lost request cannot be taken for the answer to a later one."""
        attempts = self._settings.retries + 1
        for attempt in range(attempts):
            try:
                if fresh or attempt > 0 or self._session is None:
                    self._session = self._new_session()
                    if attempt > 0 and self._settings.snmp.version == "3":
                        await self._session.refresh()
                result = await request(self._session)
            except TimeoutError as exc:
                if _refused(exc) or attempt + 1 == attempts:
                    raise self._error(what, exc) from exc
                continue
            except (SnmpError, OSError) as exc:
                raise self._error(what, exc) from exc
            self._last_answer = time.monotonic()
            return result
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _error(self, what: str, exc: BaseException) -> Exception:
        device = self._settings.device
        if isinstance(exc, TimeoutError):
            if _refused(exc):
                return ConnectError(
                    f"{what}: the port is closed (ICMP port unreachable)",
                    device=device,
                    protocol=PROTOCOL,
                )
            return DeviceTimeout(
                f"{what}: no answer from the agent", device=device, protocol=PROTOCOL
            )
        if isinstance(exc, SnmpAuthError):
            return AuthError(
                f"{what}: the agent refused the SNMPv3 credentials",
                device=device,
                protocol=PROTOCOL,
            )
        if isinstance(exc, SnmpDecodeError):
            return RpcError(
                f"{what} failed",
                device=device,
                protocol=PROTOCOL,
                device_error="undecodable answer",
            )
        if isinstance(exc, SnmpError):
            return RpcError(
                f"{what} failed", device=device, protocol=PROTOCOL, device_error=str(exc)
            )
        return ConnectError(f"{what}: {exc.__class__.__name__}", device=device, protocol=PROTOCOL)

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        wanted = list(oids)
        async with self._lock:
            await self._ready()
            values = await self._call("get", lambda session: session.get_many(wanted))
        # gufo leaves out what the agent has not (noSuchObject, noSuchInstance)
        return {o: values.get(o) for o in wanted}

    async def walk(self, root: str, *, bulk: bool, max_repetitions: int) -> list[Varbind]:
        async def collect(session: GufoSession) -> list[Varbind]:
            if bulk:
                return [row async for row in session.getbulk(root, max_repetitions)]
            return [row async for row in session.getnext(root)]

        async with self._lock:
            await self._ready()
            return await self._call("walk", collect)

    async def close(self) -> None:
        # The socket closes with the session object; gufo has no explicit close.
        self._session = None


def _refused(exc: BaseException) -> bool:
    """gufo reports ECONNREFUSED (ICMP port unreachable) as TimeoutError('connection refused')."""
    cause = exc.__cause__ or exc
    return "refused" in str(cause)

"""The daemon's one MQTT client: a session with the broker over gmqtt, publishing in rounds.

gmqtt was chosen by measurement (`bench/mqtt_client_bench.py`, README): the least CPU per QoS 1
message of the clients tried, asyncio-native. Only its public API is used: `Client`, its
`persistent_storage` argument (gmqtt keeps each QoS 1 PUBLISH there until its PUBACK: the one
place an acknowledgement shows, gmqtt has no publish callback) and `on_disconnect`.

A session (`connect`) is one connection with a clean session; the caller reconnects (with its
own backoff) after any failure: gmqtt's automatic reconnection, which would resume an unclean
session and re-send its in-flight messages beside the caller's own retries, is switched off.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import gmqtt
from gmqtt.mqtt.constants import MQTTv311
from gmqtt.mqtt.handler import MQTTConnectError
from gmqtt.storage import PersistentStorage

from oss.errors import OssError
from oss.settings import MqttTlsSettings, NocFeedSettings

# CONNACK reasons meaning "your credentials": MQTT 3.1.1 codes 4/5, MQTT 5 codes 134/135.
_AUTH_REFUSALS = {4, 5, 134, 135}
# (topic, payload, qos, retain); an empty payload with retain deletes the retained message.
Outgoing = tuple[str, str, int, bool]


class NocFeedError(OssError, ConnectionError):
    """The broker could not be reached or dropped the session. Names the broker, never the
    password."""

    status = 502
    slug = "mqtt-broker-unavailable"
    title = "MQTT broker unavailable"


class NocFeedAuthError(NocFeedError, PermissionError):
    slug = "mqtt-broker-auth-failed"
    title = "MQTT broker refused the credentials"


class _Narration(logging.LoggerAdapter):  # type: ignore[type-arg]
    """gmqtt's own log lines, at DEBUG: it narrates each refused or lost connection at
    WARNING/ERROR, every attempt, while the session's owner logs each outage once with its
    reason. It narrates three lines per QoS 1 message too (the packet, its PUBACK, the removal):
    checked at once, not through the adapter's generic path (~2 us a line, ~0.5 checked)."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.log(logging.DEBUG, msg, *args, **kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug(msg, *args, **kwargs)


_GMQTT_LOG = _Narration(logging.getLogger(f"{__name__}.gmqtt"))


class MqttLink(Protocol):
    """What publishers need of a connected session."""

    async def publish_round(
        self, messages: Sequence[Outgoing], *, wait_s: float
    ) -> list[BaseException | None]:
        """Send `messages` in order and wait (up to `wait_s`) for the QoS 1 ones' PUBACKs
        together; per message None (done) or why not."""
        ...


class _Acknowledgements(PersistentStorage):  # type: ignore[misc]  # gmqtt has no type hints
    """gmqtt's store of unacknowledged QoS 1 messages, which tells the round waiting for
    them: `push_message` runs inside `Client.publish` (so `last_mid` is the id of the message
    just published), `remove_message_by_mid` at its PUBACK."""

    def __init__(self) -> None:
        super().__init__()
        self.last_mid = 0
        self.waiting: dict[int, int] = {}  # message id -> index in the round
        self.all_acked: asyncio.Future[None] | None = None

    def push_message(self, mid: int, raw_package: bytes) -> None:
        super().push_message(mid, raw_package)
        self.last_mid = mid

    def remove_message_by_mid(self, mid: int) -> None:
        super().remove_message_by_mid(mid)
        if self.waiting.pop(mid, None) is not None and not self.waiting:
            done = self.all_acked
            if done is not None and not done.done():
                done.set_result(None)


class _Client(gmqtt.Client):  # type: ignore[misc]  # gmqtt has no type hints
    async def reconnect(self, delay: bool = False) -> None:
        """Never: the session's owner reconnects, with a clean session and its backoff."""


class GmqttLink:
    """One connected gmqtt client."""

    def __init__(self, client: _Client, acks: _Acknowledgements, lost: asyncio.Event) -> None:
        self.client = client
        self._acks = acks
        self.lost = lost  # set when the broker dropped the connection

    def publish(self, topic: str, payload: str, *, qos: int = 0, retain: bool = False) -> None:
        """Hand one message to the connection (QoS 0: nothing to wait for)."""
        if self.lost.is_set():
            raise ConnectionError("connection lost")
        self.client.publish(topic, payload, qos=qos, retain=retain)

    async def publish_round(
        self, messages: Sequence[Outgoing], *, wait_s: float
    ) -> list[BaseException | None]:
        results: list[BaseException | None] = [None] * len(messages)
        acks = self._acks
        acks.waiting = waiting = {}
        acks.all_acked = done = asyncio.get_running_loop().create_future()
        try:
            for index, (topic, payload, qos, retain) in enumerate(messages):
                try:
                    self.publish(topic, payload, qos=qos, retain=retain)
                except (OSError, OverflowError) as exc:  # OverflowError: no message id left
                    results[index:] = [exc] * (len(messages) - index)
                    break
                if qos:
                    waiting[acks.last_mid] = index
            if waiting:
                lost = asyncio.ensure_future(self.lost.wait())
                try:
                    await asyncio.wait({done, lost}, timeout=wait_s, return_when="FIRST_COMPLETED")
                finally:
                    lost.cancel()
                if waiting:
                    why = "connection lost" if self.lost.is_set() else "no PUBACK in time"
                    missing = ConnectionError(why)
                    for index in waiting.values():
                        results[index] = missing
        finally:
            acks.waiting, acks.all_acked = {}, None
        return results


@asynccontextmanager
async def connect(settings: NocFeedSettings, client_id: str) -> AsyncIterator[GmqttLink]:
    """One session with the broker of `settings`: NocFeedAuthError when it refuses the
    credentials, NocFeedError when it cannot be reached (within `publish_timeout_s`)."""
    broker = f"{settings.host}:{settings.port}"
    acks = _Acknowledgements()
    lost = asyncio.Event()
    client = _Client(client_id, clean_session=True, persistent_storage=acks, logger=_GMQTT_LOG)
    client.on_disconnect = lambda _client, _packet, _exc=None: lost.set()
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.set_auth_credentials(settings.username, password)
    try:
        try:
            async with asyncio.timeout(settings.publish_timeout_s):
                await client.connect(
                    settings.host,
                    settings.port,
                    ssl=tls_context(settings.tls) or False,
                    keepalive=settings.keepalive,
                    version=MQTTv311,
                )
        except MQTTConnectError as exc:
            raise refused(settings, exc) from None
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else describe(exc)
            raise NocFeedError(
                f"cannot connect to MQTT broker {broker}: {reason}", broker=broker
            ) from None
        yield GmqttLink(client, acks, lost)
    finally:
        await _close(client, lost)


async def _close(client: _Client, lost: asyncio.Event) -> None:
    if lost.is_set():
        return  # the broker closed the connection: nothing to say goodbye on
    with suppress(OSError, TimeoutError):
        async with asyncio.timeout(1.0):
            await client.disconnect()


def refused(settings: NocFeedSettings, exc: MQTTConnectError) -> NocFeedError:
    """The error for a CONNACK refusal: NocFeedAuthError for the credentials."""
    broker = f"{settings.host}:{settings.port}"
    code = exc.args[0] if exc.args else None  # the CONNACK return code
    if code in _AUTH_REFUSALS:
        user = settings.username
        who = f"user {user!r}" if user else "anonymous clients"
        return NocFeedAuthError(f"MQTT broker {broker} refused {who}: {exc}", broker=broker)
    return NocFeedError(f"cannot connect to MQTT broker {broker}: {exc}", broker=broker)


def tls_context(tls: MqttTlsSettings | None) -> ssl.SSLContext | None:
    """The broker's certificate and name are checked against `ca_file` (None: the system's
    CAs) unless `insecure`; a client certificate when `cert_file` is set."""
    if tls is None:
        return None
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None:
        context.load_cert_chain(
            str(tls.cert_file), str(tls.key_file) if tls.key_file is not None else None
        )
    if tls.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__

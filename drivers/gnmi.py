"""gNMI driver: pygnmi for Capabilities, Get and Set; grpc.aio for subscriptions.

    async with GnmiDriver() as driver:
        async with driver.connect(target) as session:
            await session.get(["/interfaces/interface[name=eth1]/state/oper-status"])
            await session.set(update=[(path, value)], delete=[path])  # one atomic SetRequest
            async for event in session.subscribe(paths, sample_interval_s=1.0): ...

pygnmi is blocking, so its calls run in a bounded pool of worker threads (`BlockingCalls`); a
call that times out or is cancelled closes the session's channel and the session is dropped from
the pool. pygnmi's subscriptions each start a thread and only hand out parsed dictionaries, so a
subscription here is a grpc.aio stream on the session's event loop instead: one task reads it
into a bounded queue (updates that do not fit are dropped and counted in `session.dropped`), and
the iterator turns notifications into canonical `Event`s (drivers/gnmi_events.py, which also
explains how it decodes them cheaply). pygnmi still builds every request path.

Security: TLS with `credentials.tls.ca_file` (and a client certificate and key for mTLS);
`tls.server_name` overrides the name checked in the certificate. Plaintext gRPC only when
`credentials.tls.insecure` is true. pygnmi would fetch the server's certificate unverified when
no CA is given; this driver refuses instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import grpc
from pygnmi.client import gNMIclient, gNMIException
from pygnmi.create_gnmi_path import gnmi_path_generator
from pygnmi.spec.v080 import gnmi_pb2 as pb

from drivers.base import BlockingCalls, PooledDriver, SessionPool, Target
from drivers.gnmi_events import EventMaker, ResponseView
from oss.errors import (
    AuthError,
    ConnectError,
    DeviceTimeout,
    DriverError,
    RpcError,
    Unsupported,
)
from oss.events import Event

log = logging.getLogger(__name__)

PROTOCOL = "gnmi"

# pygnmi attaches a stdout handler to its logger on import, which would bypass the daemon's
# logging (and its JSON format); and it logs every gRPC error it raises at CRITICAL. This driver
# translates those errors and raises them with the device's words, so pygnmi's own lines would
# be duplicates with the wrong severity: its logger is detached and muted.
_pygnmi_log = logging.getLogger("pygnmi.client")
for _handler in list(_pygnmi_log.handlers):
    _pygnmi_log.removeHandler(_handler)
_pygnmi_log.setLevel(logging.CRITICAL + 1)

Mode = Literal["stream", "once", "poll"]
DataType = Literal["all", "config", "state", "operational"]
_CLOSE_TIME_LIMIT_S = 5.0
_SYNC = object()  # a sync_response went by
_END = object()  # the stream ended


@dataclass(frozen=True)
class _TlsMaterial:
    """What the grpc.aio channel needs, read once in a worker thread at connect time."""

    insecure: bool
    root: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None


def _client_kwargs(target: Target) -> dict[str, Any]:
    creds = target.credentials
    tls = creds.tls
    kwargs: dict[str, Any] = {
        "target": (target.host, target.port),
        "username": creds.username or "",
        "password": creds.password.get_secret_value() if creds.password else "",
        "gnmi_timeout": target.timeout_s,
    }
    if tls is not None and tls.insecure:
        log.warning("gnmi %s: plaintext gRPC, as its credentials ask (tls.insecure)", target)
        kwargs["insecure"] = True  # ok-insecure: explicit tls.insecure in the credentials
        return kwargs
    if tls is None or tls.ca_file is None:
        raise ConnectError(
            "TLS needs credentials.tls.ca_file (or tls.insecure: true for plaintext gRPC)",
            device=target.name,
            protocol=PROTOCOL,
        )
    if (tls.cert_file is None) != (tls.key_file is None):
        raise ConnectError(
            "mTLS needs both tls.cert_file and tls.key_file", device=target.name, protocol=PROTOCOL
        )
    if tls.cert_file is not None:
        kwargs.update(path_cert=str(tls.cert_file), path_key=str(tls.key_file))
        kwargs["path_root"] = str(tls.ca_file)
    else:
        # pygnmi takes a lone `path_cert` as the trusted root certificate.
        kwargs["path_cert"] = str(tls.ca_file)
    if tls.server_name:
        kwargs["override"] = tls.server_name
    return kwargs


def _read_tls(target: Target) -> _TlsMaterial:
    tls = target.credentials.tls
    if tls is None or tls.insecure:
        return _TlsMaterial(insecure=True)  # ok-insecure: _client_kwargs allowed only explicit
    assert tls.ca_file is not None  # _client_kwargs refused the rest
    return _TlsMaterial(
        insecure=False,
        root=tls.ca_file.read_bytes(),
        cert=tls.cert_file.read_bytes() if tls.cert_file else None,
        key=tls.key_file.read_bytes() if tls.key_file else None,
        server_name=tls.server_name,
    )


def _close_quietly(client: Any) -> None:
    """Close pygnmi's channel, if it has one yet (closing cancels the calls in flight)."""
    with contextlib.suppress(AttributeError):  # connect() had not created the channel yet
        client.close()


# --- errors -------------------------------------------------------------------------------------

# How grpc's UNAVAILABLE details name a TLS failure (wrong CA, wrong name, not TLS at all).
_TLS_FAILURES = ("handshake failed", "verification check failed", "certificate_verify_failed")


def translate(exc: BaseException, target: Target, what: str) -> DriverError:
    """A pygnmi or grpc exception as the project's driver error."""
    cause: Any = exc
    if isinstance(exc, gNMIException) and exc.orig_exc is not None:
        cause = exc.orig_exc
    where = {"device": target.name, "protocol": PROTOCOL}
    code = cause.code() if isinstance(cause, grpc.RpcError) and hasattr(cause, "code") else None
    if code is None:
        if isinstance(cause, ValueError | TypeError | LookupError):
            # pygnmi could not build the request (a path or an encoding it cannot express)
            return Unsupported(f"{what}: {exc}", **where)
        return ConnectError(f"{what}: {exc}", **where)
    details = str(cause.details() or "")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return AuthError(f"{what}: {details}", **where)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeviceTimeout(f"{what}: {details}", **where)
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(words in details.lower() for words in _TLS_FAILURES):
            return AuthError(f"{what}: TLS handshake failed: {details}", **where)
        return ConnectError(f"{what}: {details}", **where)
    if code == grpc.StatusCode.CANCELLED:
        return ConnectError(f"{what}: the call was cancelled: {details}", **where)
    return RpcError(what, device_error=f"{code.name}: {details}", **where)


def _is_broken(exc: BaseException) -> bool:
    return isinstance(exc, ConnectError | DeviceTimeout)


# --- subscriptions ------------------------------------------------------------------------------


def _subscription_request(
    paths: Sequence[str],
    *,
    mode: Mode,
    sample_interval_s: float,
    on_change_paths: Sequence[str],
    encoding: str,
    updates_only: bool,
) -> Any:
    request = pb.SubscriptionList(
        mode=pb.SubscriptionList.Mode.Value(mode.upper()),
        encoding=pb.Encoding.Value(encoding.upper()),
        updates_only=updates_only,
    )
    interval_ns = int(sample_interval_s * 1e9)
    for path in paths:
        request.subscription.add(
            path=gnmi_path_generator(path), mode=pb.SAMPLE, sample_interval=interval_ns
        )
    for path in on_change_paths:
        request.subscription.add(path=gnmi_path_generator(path), mode=pb.ON_CHANGE)
    return pb.SubscribeRequest(subscribe=request)


class _Stream:
    """One Subscribe call: a reader task moves responses into a bounded queue, dropping (and
    counting) what does not fit, so a slow consumer never stalls the device's stream. Requests
    are written on the call itself (no request generator), so a poll is a plain write."""

    def __init__(self, session: GnmiSession) -> None:
        self._session = session
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=session.queue_size)
        self._call = session._subscribe_method()(metadata=session._metadata or None)
        self._reader: asyncio.Task[None] | None = None

    async def start(self, request: Any) -> None:
        await self._write(request)
        self._reader = asyncio.create_task(self._read(), name=f"gnmi-subscribe-{self._session}")

    async def poll(self) -> None:
        await self._write(pb.SubscribeRequest(poll=pb.Poll()))

    async def _write(self, request: Any) -> None:
        try:
            await self._call.write(request)
        except grpc.RpcError as exc:
            raise translate(exc, self._session.target, "subscribe") from exc
        except asyncio.InvalidStateError as exc:  # the call had already ended
            raise ConnectError(
                f"subscribe: the stream has ended ({exc})",
                device=self._session.target.name,
                protocol=PROTOCOL,
            ) from exc

    async def _read(self) -> None:
        queue, session, call = self._queue, self._session, self._call
        try:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    break
                if response.sync_response:
                    await queue.put(_SYNC)  # never dropped: it ends a ONCE or a POLL answer
                    continue
                notification = response.update
                try:
                    queue.put_nowait(notification)
                except asyncio.QueueFull:
                    session.dropped += len(notification.update)
            await queue.put(_END)
        except grpc.RpcError as exc:
            await queue.put(exc)

    async def next(self) -> Any:
        """The next notification, `_SYNC`, or `_END`; raises the stream's error."""
        item = await self._queue.get()
        if isinstance(item, grpc.RpcError):
            raise translate(item, self._session.target, "subscribe")
        return item

    async def close(self) -> None:
        self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


# --- the session --------------------------------------------------------------------------------


class GnmiSession:
    """One device over gNMI. Unary calls go through pygnmi in worker threads; subscriptions
    through a grpc.aio channel opened on first use."""

    def __init__(
        self,
        target: Target,
        client: Any,
        material: _TlsMaterial,
        calls: BlockingCalls,
        *,
        queue_size: int,
    ) -> None:
        self.target = target
        self.queue_size = queue_size
        self.dropped = 0  # subscription updates dropped because the consumer fell behind
        self._client = client
        self._material = material
        self._calls = calls
        self._encoding = str(target.options.get("encoding", "json_ietf"))
        self._events = EventMaker(target.name)
        self._channel: grpc.aio.Channel | None = None
        self._polls: dict[tuple[str, ...], _Stream] = {}
        self._poll_lock = asyncio.Lock()
        # Set when a timeout or cancellation closed pygnmi's channel: the pool replaces the
        # session at the next borrow, even when the caller caught the error.
        self.broken = False
        creds = target.credentials
        self._metadata: tuple[tuple[str, str], ...] = ()
        if creds.username or creds.password:
            password = creds.password.get_secret_value() if creds.password else ""
            self._metadata = (("username", creds.username or ""), ("password", password))

    def __repr__(self) -> str:
        return f"GnmiSession({self.target})"

    async def _blocking(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await self._calls.run(
                fn,
                *args,
                time_limit=self.target.timeout_s,
                abort=lambda: _close_quietly(self._client),
                **kwargs,
            )
        except TimeoutError as exc:
            self.broken = True
            raise DeviceTimeout(
                f"{what}: no answer within {self.target.timeout_s:g} s",
                device=self.target.name,
                protocol=PROTOCOL,
            ) from exc
        except asyncio.CancelledError:
            self.broken = True
            raise
        except (gNMIException, grpc.RpcError, ValueError) as exc:
            # ValueError: pygnmi refuses an encoding the device did not announce
            raise translate(exc, self.target, what) from exc

    async def capabilities(self) -> dict[str, Any]:
        """Supported models, encodings and gNMI version, as pygnmi reports them."""
        result = await self._blocking("capabilities", self._client.capabilities)
        return dict(result or {})

    async def get(
        self,
        paths: Sequence[str],
        *,
        datatype: DataType = "all",
        encoding: str | None = None,
    ) -> dict[str, Any]:
        """{path: value} for each update (paths without the leading '/'); containers come back
        as the decoded JSON tree."""
        response = await self._blocking(
            "get",
            self._client.get,
            path=list(paths),
            datatype=datatype,
            encoding=encoding or self._encoding,
        )
        values: dict[str, Any] = {}
        for notification in (response or {}).get("notification", []):
            prefix = notification.get("prefix")
            for update in notification.get("update", []):
                path = update.get("path") or ""
                values[f"{prefix}/{path}" if prefix else path] = update.get("val")
        return values

    async def set(
        self,
        *,
        update: Sequence[tuple[str, Any]] = (),
        replace: Sequence[tuple[str, Any]] = (),
        delete: Sequence[str] = (),
        encoding: str | None = None,
    ) -> int:
        """Deletes, replaces and updates in ONE SetRequest: the device applies all or none.
        Returns the device's timestamp of the change."""
        response = await self._blocking(
            "set",
            self._client.set,
            # JSON-encode every value here: pygnmi would send a bare str unquoted.
            update=[(path, json.dumps(value)) for path, value in update] or None,
            replace=[(path, json.dumps(value)) for path, value in replace] or None,
            delete=list(delete) or None,
            encoding=encoding or self._encoding,
        )
        return int((response or {}).get("timestamp", 0))

    # --- telemetry ----------------------------------------------------------------------------

    def _subscribe_method(self) -> Any:
        """gNMI's Subscribe on the session's grpc.aio channel, answers decoded as
        `ResponseView` (see drivers/gnmi_events.py)."""
        return self._aio_channel().stream_stream(
            "/gnmi.gNMI/Subscribe",
            request_serializer=pb.SubscribeRequest.SerializeToString,
            response_deserializer=ResponseView.FromString,
        )

    def _aio_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            address = f"{self.target.host}:{self.target.port}"
            material = self._material
            if material.insecure:
                self._channel = grpc.aio.insecure_channel(address)  # ok-insecure: explicit only
            else:
                options = []
                if material.server_name:
                    options.append(("grpc.ssl_target_name_override", material.server_name))
                credentials = grpc.ssl_channel_credentials(
                    root_certificates=material.root,
                    private_key=material.key,
                    certificate_chain=material.cert,
                )
                self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        return self._channel

    async def subscribe(
        self,
        paths: Sequence[str],
        *,
        mode: Mode = "stream",
        sample_interval_s: float = 10.0,
        on_change_paths: Sequence[str] = (),
        encoding: str | None = None,
        updates_only: bool = False,
        **unknown: Any,  # callers may pass options generically; refuse the unknown ones
    ) -> AsyncGenerator[Event, None]:
        """Canonical events from a subscription. STREAM samples `paths` every
        `sample_interval_s` and reports `on_change_paths` when they change; ONCE ends after the
        device's sync_response; POLL polls `paths` every `sample_interval_s`.

        Cancelling the consuming task cancels the stream at once; a loop left with `break`
        does so when the generator is closed, so prefer
        `async with contextlib.aclosing(session.subscribe(...)) as events:`."""
        if unknown:
            raise TypeError(f"subscribe() got unknown options: {', '.join(sorted(unknown))}")
        request = _subscription_request(
            paths,
            mode=mode,
            sample_interval_s=sample_interval_s,
            on_change_paths=on_change_paths,
            encoding=encoding or self._encoding,
            updates_only=updates_only,
        )
        stream = _Stream(self)
        events = self._events
        try:
            await stream.start(request)
            while True:
                item = await stream.next()
                if item is _END:
                    return
                if item is _SYNC:
                    if mode == "once":
                        return
                    if mode == "poll":
                        await asyncio.sleep(sample_interval_s)
                        await stream.poll()
                    continue
                for event in events.events(item):
                    yield event
        finally:
            await stream.close()

    async def poll(self, paths: list[str], *, encoding: str | None = None) -> list[Event]:
        """One POLL of `paths`: the first call opens a POLL subscription (whose initial data is
        the first answer), later calls send a Poll on it. Each answer ends at sync_response."""
        key = tuple(paths)
        async with self._poll_lock:
            stream = self._polls.get(key)
            fresh = stream is None
            if stream is None:
                stream = self._polls[key] = _Stream(self)
            try:
                async with asyncio.timeout(self.target.timeout_s):
                    if fresh:
                        await stream.start(
                            _subscription_request(
                                paths,
                                mode="poll",
                                sample_interval_s=0,
                                on_change_paths=(),
                                encoding=encoding or self._encoding,
                                updates_only=False,
                            )
                        )
                    else:
                        await stream.poll()
                    return await self._until_sync(stream)
            except BaseException as exc:
                del self._polls[key]
                await stream.close()
                if isinstance(exc, TimeoutError):
                    raise DeviceTimeout(
                        f"poll: no sync_response within {self.target.timeout_s:g} s",
                        device=self.target.name,
                        protocol=PROTOCOL,
                    ) from exc
                raise

    async def _until_sync(self, stream: _Stream) -> list[Event]:
        out: list[Event] = []
        while True:
            item = await stream.next()
            if item is _SYNC:
                return out
            if item is _END:
                raise ConnectError(
                    "poll: the device ended the subscription",
                    device=self.target.name,
                    protocol=PROTOCOL,
                )
            out += self._events.events(item)

    async def close(self) -> None:
        for stream in self._polls.values():
            await stream.close()
        self._polls.clear()
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        await self._calls.run(self._client.close, time_limit=_CLOSE_TIME_LIMIT_S)


# --- the driver ---------------------------------------------------------------------------------


class GnmiDriver(PooledDriver[GnmiSession]):
    """gNMI sessions to many devices: `async with driver.connect(target) as session`.

    Sessions are pooled per device; gRPC multiplexes calls, so `per_device` borrowers may share
    one device's session at once. `queue_size` bounds each subscription's buffer of
    notifications.
    """

    protocol = PROTOCOL

    def __init__(
        self, *, max_workers: int = 16, per_device: int = 8, queue_size: int = 1024
    ) -> None:
        self._calls = BlockingCalls("gnmi", max_workers=max_workers)
        self._queue_size = queue_size
        self._pool: SessionPool[GnmiSession] = SessionPool(
            self._open,
            self._close,
            per_device=per_device,
            is_broken=_is_broken,
            is_alive=lambda session: not session.broken,
        )

    async def _open(self, target: Target) -> GnmiSession:
        client = gNMIclient(**_client_kwargs(target))  # no I/O yet; refuses unsafe settings
        try:
            material = await self._calls.run(_read_tls, target, time_limit=target.timeout_s)
            # timeout=0: pygnmi's own wait for the channel retries a failed TLS handshake after
            # changing the process-wide GRPC_SSL_CIPHER_SUITES; without it, the Capabilities
            # call that connect() makes fails fast with the handshake's error instead.
            await self._calls.run(
                client.connect,
                timeout=0,
                time_limit=target.timeout_s,
                abort=lambda: _close_quietly(client),
            )
        except TimeoutError as exc:
            raise DeviceTimeout(
                f"connect: no answer within {target.timeout_s:g} s",
                device=target.name,
                protocol=PROTOCOL,
            ) from exc
        except (gNMIException, grpc.RpcError) as exc:
            _close_quietly(client)
            raise translate(exc, target, "connect") from exc
        except (OSError, TypeError, ValueError) as exc:
            # TypeError: pygnmi's connect trips over a Capabilities answer it could not parse.
            _close_quietly(client)
            raise ConnectError(f"connect: {exc}", device=target.name, protocol=PROTOCOL) from exc
        log.info("gnmi session opened to %s", target)
        return GnmiSession(target, client, material, self._calls, queue_size=self._queue_size)

    async def _close(self, session: GnmiSession) -> None:
        await session.close()

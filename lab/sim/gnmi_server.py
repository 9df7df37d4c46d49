"""The simulated device's gNMI server (grpc.aio, with the gNMI stubs pygnmi ships).

One server serves one `SimDevice`: Capabilities (the lab's OpenConfig interfaces,
network-instance and qos subset; JSON, JSON_IETF, PROTO), Get on config and state paths (a path
that selects nothing is NOT_FOUND), Set (deletes, replaces and updates of one request checked
and applied at once, or not at all: INVALID_ARGUMENT), and Subscribe in STREAM (SAMPLE,
ON_CHANGE, TARGET_DEFINED), ONCE and POLL modes with sync_response.

Node faults: every RPC checks `device.node_up` and answers UNAVAILABLE while the node is down,
and open subscriptions end with UNAVAILABLE when it goes down, so the lab needs no restart to
make a node fault visible. `stop()` closes the port for real, when a refused connection is wanted.
The device's `reply_delay_s` holds back the answer of every unary RPC (Capabilities, Get, Set;
a Set is applied at once, only its answer waits).

Scale: hundreds of servers share one process and its event loop; a server costs a grpc.aio
server object and a listening socket, and a subscription one coroutine and one device listener,
with no thread of its own.

Notifications carry a prefix and relative update paths; a sampled subscription keeps a template
response (paths already built) and only writes the values into a copy on each tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from pygnmi.spec.v080 import gnmi_pb2 as pb
from pygnmi.spec.v080 import gnmi_pb2_grpc

from lab.sim import gnmi_data as data
from lab.sim import schema
from lab.sim.datastore import RpcFailure, validate
from lab.sim.model import Change, LeafValue, Leaves, SimDevice

Commit = Callable[[Leaves], None]

GNMI_VERSION = "0.8.0"
SUPPORTED_ENCODINGS = (pb.JSON, pb.JSON_IETF, pb.PROTO)
MODELS = tuple(
    (ns.module, "OpenConfig working group", ns.version) for ns in schema.NAMESPACES.values()
)
MIN_SAMPLE_INTERVAL_NS = 1_000_000  # 1 ms: anything faster is clamped
DEFAULT_SAMPLE_INTERVAL_NS = 10_000_000_000  # sample_interval 0 and TARGET_DEFINED counters

TlsFiles = tuple[bytes, bytes, bytes | None]  # (server cert PEM, key PEM, client CA PEM or None)

_EOF = object()  # the client half-closed its side of a subscription
_POLL = object()


@dataclass
class _Sub:
    """One subscription entry, resolved."""

    path: data.ParsedPath
    on_change: bool
    interval_ns: int = 0  # sampled when > 0
    # Sampling template (paths built once) and the reader of its values, rebuilt when the set
    # of matching leaves changes.
    template: Any = None
    reader: data.LeafReader | None = None


def rejection_text(failure: RpcFailure) -> str:
    """A validation failure as a Set's INVALID_ARGUMENT details: tag, message and path."""
    where = f" (at {failure.path})" if failure.path else ""
    return f"{failure.tag}: {failure.message}{where}"


class GnmiServicer(gnmi_pb2_grpc.gNMIServicer):  # type: ignore[misc]
    def __init__(
        self,
        device: SimDevice,
        *,
        auth: tuple[str, str] | None = None,
        commit: Commit | None = None,
    ) -> None:
        self.device = device
        self._auth = auth
        # Where a Set's result goes: validated straight to the device, or through the lab's
        # datastores so NETCONF locks hold for gNMI writes too.
        self._commit: Commit = commit if commit is not None else self._validate_and_apply

    def _validate_and_apply(self, leaves: Leaves) -> None:
        try:
            validate(self.device, leaves)
        except RpcFailure as exc:
            raise data.SetRejected(rejection_text(exc)) from None
        self.device.apply(leaves)

    # --- admission ----------------------------------------------------------------------------

    async def _admit(self, context: grpc.aio.ServicerContext) -> None:
        if self._auth is not None:
            metadata = dict(context.invocation_metadata() or ())
            user = str(metadata.get("username", "")).encode()
            password = str(metadata.get("password", "")).encode()
            user_ok = hmac.compare_digest(user, self._auth[0].encode())
            password_ok = hmac.compare_digest(password, self._auth[1].encode())
            if not (user_ok and password_ok):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad username or password")
        if not self.device.node_up:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.device.name} is down")

    # --- unary RPCs ---------------------------------------------------------------------------

    async def Capabilities(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._admit(context)
        await self.device.delay_reply()
        return pb.CapabilityResponse(
            supported_models=[
                pb.ModelData(name=n, organization=o, version=v) for n, o, v in MODELS
            ],
            supported_encodings=SUPPORTED_ENCODINGS,
            gNMI_version=GNMI_VERSION,
        )

    async def Get(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._admit(context)
        encoding = request.encoding
        if encoding not in SUPPORTED_ENCODINGS:
            await self.device.delay_reply()
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"encoding {encoding} unsupported")
        kind = request.type
        leaves = data.device_leaves(
            self.device,
            config=kind in (pb.GetRequest.ALL, pb.GetRequest.CONFIG),
            state=kind != pb.GetRequest.CONFIG,
        )
        now = time.time_ns()
        notifications = []
        for path in request.path or [pb.Path()]:
            wanted = data.from_proto(request.prefix, path)
            found = data.select(leaves, wanted)
            if not found:
                await self.device.delay_reply()
                await context.abort(grpc.StatusCode.NOT_FOUND, f"/{data.to_str(wanted)}: no data")
            notifications.append(
                pb.Notification(timestamp=now, update=_get_updates(found, len(wanted), encoding))
            )
        await self.device.delay_reply()
        return pb.GetResponse(notification=notifications)

    async def Set(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await self._admit(context)
        prefix = request.prefix
        results = []
        try:
            deletes = [data.from_proto(prefix, p) for p in request.delete]
            replaces = [
                (data.from_proto(prefix, u.path), data.decode_typed(u.val)) for u in request.replace
            ]
            updates = [
                (data.from_proto(prefix, u.path), data.decode_typed(u.val)) for u in request.update
            ]
            new = data.apply_edits(self.device, deletes=deletes, replaces=replaces, updates=updates)
            self._commit(new)
        except data.SetRejected as exc:
            await self.device.delay_reply()
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        for op, paths in (
            (pb.UpdateResult.DELETE, deletes),
            (pb.UpdateResult.REPLACE, [p for p, _ in replaces]),
            (pb.UpdateResult.UPDATE, [p for p, _ in updates]),
        ):
            results += [pb.UpdateResult(path=data.to_proto(p), op=op) for p in paths]
        await self.device.delay_reply()
        return pb.SetResponse(timestamp=time.time_ns(), response=results)

    # --- Subscribe ----------------------------------------------------------------------------

    async def Subscribe(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await self._admit(context)
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        if not first.HasField("subscribe"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must subscribe")
        stream = _Stream(self.device, first.subscribe, context)
        await stream.run()


def _get_updates(found: dict[data.ParsedPath, LeafValue], depth: int, encoding: int) -> list[Any]:
    """Get's updates for one requested path: one per concrete node at the requested depth (a
    wildcard may select several), each a JSON tree of what lies below; PROTO lists leaves."""
    if encoding == pb.PROTO:
        updates = []
        for path, value in found.items():
            update = pb.Update(path=data.to_proto(path))
            data.set_typed(update.val, value, encoding)
            updates.append(update)
        return updates
    nodes: dict[data.ParsedPath, dict[data.ParsedPath, LeafValue]] = {}
    for path, value in found.items():
        nodes.setdefault(path[:depth], {})[path] = value
    updates = []
    for node, below in nodes.items():
        update = pb.Update(path=data.to_proto(node))
        tree = data.json_tree(below, depth)
        update.val.CopyFrom(_json_value(tree, encoding))
        updates.append(update)
    return updates


def _json_value(value: Any, encoding: int) -> Any:
    text = json.dumps(value).encode()
    return (
        pb.TypedValue(json_val=text) if encoding == pb.JSON else pb.TypedValue(json_ietf_val=text)
    )


class _Stream:
    """One Subscribe call: its subscriptions, the device listener and the request reader."""

    def __init__(self, device: SimDevice, request: Any, context: grpc.aio.ServicerContext) -> None:
        self.device = device
        self.request = request
        self.context = context
        self.encoding = request.encoding
        self.target = request.prefix.target
        self.inbox: asyncio.Queue[object] = asyncio.Queue()
        self.subs = [self._resolve(s) for s in request.subscription]
        # What each on-change subscription last reported, to send only differences.
        self.reported: dict[int, dict[data.ParsedPath, LeafValue]] = {}

    def _resolve(self, sub: Any) -> _Sub:
        path = data.from_proto(self.request.prefix, sub.path)
        if self.request.mode != pb.SubscriptionList.STREAM:
            return _Sub(path=path, on_change=False)
        interval = sub.sample_interval or DEFAULT_SAMPLE_INTERVAL_NS
        interval = max(interval, MIN_SAMPLE_INTERVAL_NS)
        if sub.mode == pb.SAMPLE:
            return _Sub(path=path, on_change=False, interval_ns=interval)
        if sub.mode == pb.ON_CHANGE:
            return _Sub(path=path, on_change=True)
        # TARGET_DEFINED: counters are sampled, everything else is reported on change.
        return _Sub(path=path, on_change=True, interval_ns=DEFAULT_SAMPLE_INTERVAL_NS)

    async def run(self) -> None:
        if self.encoding not in SUPPORTED_ENCODINGS:
            await self.context.abort(
                grpc.StatusCode.UNIMPLEMENTED, f"encoding {self.encoding} unsupported"
            )
        stop_listening = self.device.listen(self.inbox.put_nowait)
        reader = asyncio.create_task(self._read_requests(), name="gnmi-sim-subscribe-reader")
        try:
            await self._serve()
        finally:
            stop_listening()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read_requests(self) -> None:
        while True:
            message = await self.context.read()
            if message is grpc.aio.EOF:
                self.inbox.put_nowait(_EOF)
                return
            if message.HasField("poll"):
                self.inbox.put_nowait(_POLL)

    async def _serve(self) -> None:
        mode = self.request.mode
        if mode == pb.SubscriptionList.ONCE or not self.request.updates_only:
            await self._send_snapshot()
        await self.context.write(pb.SubscribeResponse(sync_response=True))
        if mode == pb.SubscriptionList.ONCE:
            return
        due = {
            i: time.monotonic_ns() + s.interval_ns for i, s in enumerate(self.subs) if s.interval_ns
        }
        while True:
            item: object = None
            if due:
                wait_s = max(0.0, (min(due.values()) - time.monotonic_ns()) / 1e9)
                with contextlib.suppress(TimeoutError):
                    item = await asyncio.wait_for(self.inbox.get(), wait_s)
            else:
                item = await self.inbox.get()
            if item is _EOF:
                return  # the client closed its side: the subscription ends
            if item is _POLL and mode == pb.SubscriptionList.POLL:
                await self._send_snapshot()
                await self.context.write(pb.SubscribeResponse(sync_response=True))
            elif isinstance(item, Change):
                await self._on_change(item)
            now = time.monotonic_ns()
            for i, when in due.items():
                if when <= now:
                    await self._send_sample(self.subs[i])
                    # A tick that fell far behind is skipped, not replayed in a burst.
                    due[i] = max(when + self.subs[i].interval_ns, now)

    async def _on_change(self, change: Change) -> None:
        if change.kind == "node" and not change.up:
            await self.context.abort(grpc.StatusCode.UNAVAILABLE, f"{self.device.name} went down")
        if change.kind == "config":
            for sub in self.subs:
                sub.reader = None  # the set of leaves may have changed
        if self.request.mode != pb.SubscriptionList.STREAM:
            return
        leaves: dict[str, LeafValue] | None = None
        for i, sub in enumerate(self.subs):
            if not sub.on_change:
                continue
            if leaves is None:
                leaves = data.device_leaves(self.device)
            now = _changing(data.select(leaves, sub.path))
            before = self.reported.get(i, {})
            changed = {p: v for p, v in now.items() if before.get(p) != v}
            gone = [p for p in before if p not in now]
            self.reported[i] = now
            if changed or gone:
                await self._send(sub.path, changed, change.timestamp_ns, deletes=gone)

    async def _send_snapshot(self) -> None:
        leaves = data.device_leaves(self.device)
        now = time.time_ns()
        for i, sub in enumerate(self.subs):
            found = data.select(leaves, sub.path)
            if sub.on_change:
                self.reported[i] = _changing(found)
            if found:
                await self._send(sub.path, found, now)

    async def _send(
        self,
        request: data.ParsedPath,
        found: dict[data.ParsedPath, LeafValue],
        timestamp_ns: int,
        *,
        deletes: Iterable[data.ParsedPath] = (),
    ) -> None:
        deletes = list(deletes)
        prefix = data.fixed_prefix(request, [*found, *deletes])
        notification = pb.Notification(
            timestamp=timestamp_ns, prefix=data.to_proto(prefix, self.target)
        )
        for path, value in found.items():
            update = notification.update.add(path=data.to_proto(path[len(prefix) :]))
            data.set_typed(update.val, value, self.encoding)
        for path in deletes:
            notification.delete.append(data.to_proto(path[len(prefix) :]))
        await self.context.write(pb.SubscribeResponse(update=notification))

    async def _send_sample(self, sub: _Sub) -> None:
        values = sub.reader.read() if sub.reader is not None else None
        if values is None:  # first tick, after a config change, or a leaf vanished
            self._build_template(sub)
            assert sub.reader is not None
            values = sub.reader.read()
            if values is None:
                return
        if not values:
            return
        response = pb.SubscribeResponse()
        response.CopyFrom(sub.template)
        notification = response.update
        notification.timestamp = time.time_ns()
        encoding = self.encoding
        proto = encoding == pb.PROTO
        for update, value in zip(notification.update, values, strict=True):
            if proto and type(value) is int and value >= 0:
                update.val.uint_val = value  # the common case (counters), without a call
            else:
                data.set_typed(update.val, value, encoding)
        await self.context.write(response)

    def _build_template(self, sub: _Sub) -> None:
        leaves = data.device_leaves(self.device)
        if sub.on_change:  # TARGET_DEFINED: only the counters are sampled
            leaves = {p: v for p, v in leaves.items() if data.is_counter(p)}
        found = data.select(leaves, sub.path)
        prefix = data.fixed_prefix(sub.path, list(found))
        template = pb.SubscribeResponse()
        template.update.prefix.CopyFrom(data.to_proto(prefix, self.target))
        for path in found:
            template.update.update.add(path=data.to_proto(path[len(prefix) :]))
        sub.template = template
        sub.reader = data.LeafReader(self.device, [data.to_str(p) for p in found])


def _changing(found: dict[data.ParsedPath, LeafValue]) -> dict[data.ParsedPath, LeafValue]:
    """The leaves an on-change subscription reports: all but the counters, which change always."""
    return {p: v for p, v in found.items() if not data.is_counter(data.to_str(p))}


@dataclass
class GnmiServerHandle:
    server: grpc.aio.Server
    host: str
    port: int

    async def stop(self, grace_s: float | None = 0.5) -> None:
        await self.server.stop(grace_s)


async def start_gnmi_server(
    device: SimDevice,
    host: str,
    port: int,
    *,
    tls: TlsFiles | None,
    auth: tuple[str, str] | None = None,
    commit: Commit | None = None,
) -> GnmiServerHandle:
    """Serve `device` on host:port (0 picks a free port). `tls` is (cert, key, client CA): with
    a client CA, clients must present a certificate it signed (mTLS); without `tls` the server
    speaks plaintext gRPC. `auth` (username, password) makes every RPC check that metadata.
    `commit` receives the configuration leaves a Set produces (default: `datastore.validate`,
    then `device.apply`); it raises `SetRejected` to refuse the whole Set."""
    # SO_REUSEPORT (grpc's default) would let two servers share a port silently.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    gnmi_pb2_grpc.add_gNMIServicer_to_server(GnmiServicer(device, auth=auth, commit=commit), server)
    address = f"{host}:{port}"
    try:
        if tls is None:
            bound = server.add_insecure_port(address)  # ok-insecure: the caller chose tls=None
        else:
            cert, key, client_ca = tls
            credentials = grpc.ssl_server_credentials(
                [(key, cert)],
                root_certificates=client_ca,
                require_client_auth=client_ca is not None,
            )
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # grpc's way of saying the bind failed
        raise OSError(f"gNMI server for {device.name}: cannot bind {address}: {exc}") from exc
    if bound == 0:
        raise OSError(f"gNMI server for {device.name}: cannot bind {address}")
    await server.start()
    return GnmiServerHandle(server=server, host=host, port=bound)

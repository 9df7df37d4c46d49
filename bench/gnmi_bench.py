"""gNMI telemetry throughput: updates/s the driver receives and turns into canonical events, vs a
bare protobuf decode loop over the same messages, in the same run (goal: >= 50%).

The simulated device's gNMI server runs in a child process (a core of its own), sampling the
counters of every interface (`interfaces/interface[name=*]/state/counters`, PROTO encoding)
every millisecond: 64 interfaces x 8 counters = 512 updates per message.

- wire: updates/s the simulated device puts on a raw grpc.aio stream (no decoding at all);
- driver, live: updates/s in the `Event`s `GnmiSession.subscribe` yields from that device. The
  simulator builds its messages in Python, so this is capped near the wire rate;
- driver, replay: the same, from a replay peer (another child) that streams the device's own
  captured messages as fast as gRPC carries them: the driver's own ceiling. The goal is judged
  on this figure, since the bare loop has no producer to wait for either;
- bare decode: a loop over the same captured serialized messages doing `ParseFromString` and
  reading each update's value (its oneof) and nothing else: no path, no events, no transport.
  A second bare loop also reads each leaf name (the last path element).

Contenders alternate in rounds (median reported) so a noisy neighbour hits them alike.
Plaintext gRPC on 127.0.0.1 (explicitly insecure: the bench measures decoding, not TLS).

    .venv/bin/python -m bench.gnmi_bench [--seconds 6] [--rounds 3] [--interfaces 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from pygnmi.create_gnmi_path import gnmi_path_generator
from pygnmi.spec.v080 import gnmi_pb2 as pb

from drivers.base import Target
from drivers.credentials import Credentials, TlsSettings
from drivers.gnmi import GnmiDriver
from lab.sim.gnmi_server import start_gnmi_server
from lab.sim.model import SimDevice

HOST = "127.0.0.1"
PATH = "/interfaces/interface[name=*]/state/counters"
INTERVAL_S = 0.001
PEER_LIFETIME_S = 120.0  # a child stops by itself even if the parent dies
KEEP_MESSAGES = 500
LIVE = "driver, live (the simulated device)"
REPLAY = "driver, replay (its recorded messages)"


@dataclass(frozen=True)
class Rate:
    name: str
    updates: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.updates / self.seconds


# --- the peers (child processes) ---------------------------------------------------------------


async def _serve_device(port: int, interfaces: int) -> None:
    device = SimDevice("bench", interfaces=[f"eth{i}" for i in range(interfaces)])
    for name in device.interfaces:
        device.set_link_up(name, True)
        device.set_traffic(name, 10_000_000_000)
    server = await start_gnmi_server(device, HOST, port, tls=None)
    try:
        await asyncio.sleep(PEER_LIFETIME_S)
    finally:
        await server.stop(0)


async def _serve_replay(port: int, recording: Path) -> None:
    """A gNMI Subscribe that answers any subscription with the recorded messages, in a loop."""
    messages = _load(recording)

    async def subscribe(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await context.read()  # the SubscribeRequest: whatever it asks, the recording answers
        await context.write(pb.SubscribeResponse(sync_response=True).SerializeToString())
        while True:
            for message in messages:
                await context.write(message)

    handler = grpc.stream_stream_rpc_method_handler(
        subscribe,
        request_deserializer=pb.SubscribeRequest.FromString,
        response_serializer=lambda raw: raw,  # already serialized
    )

    async def capabilities(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pb.CapabilityResponse(supported_encodings=[pb.PROTO], gNMI_version="0.8.0")

    capabilities_handler = grpc.unary_unary_rpc_method_handler(
        capabilities,
        request_deserializer=pb.CapabilityRequest.FromString,
        response_serializer=pb.CapabilityResponse.SerializeToString,
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    methods = {"Subscribe": handler, "Capabilities": capabilities_handler}
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("gnmi.gNMI", methods)])
    server.add_insecure_port(f"{HOST}:{port}")  # ok-insecure: loopback bench
    await server.start()
    try:
        await asyncio.sleep(PEER_LIFETIME_S)
    finally:
        await server.stop(0)


def _save(messages: list[bytes], path: Path) -> None:
    path.write_bytes(b"".join(struct.pack("!I", len(m)) + m for m in messages))


def _load(path: Path) -> list[bytes]:
    data, messages, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (size,) = struct.unpack_from("!I", data, offset)
        messages.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return messages


def _start_peer(*role: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = int(sock.getsockname()[1])
    child = subprocess.Popen([sys.executable, "-m", "bench.gnmi_bench", "--port", str(port), *role])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return child, port
        if child.poll() is not None:
            raise RuntimeError(f"the gNMI peer exited with {child.returncode}")
        time.sleep(0.05)
    child.terminate()
    raise RuntimeError("the gNMI peer did not start listening in 20 s")


def _stop_peer(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=10)


# --- contenders ---------------------------------------------------------------------------------


def _request() -> Any:
    subscriptions = pb.SubscriptionList(mode=pb.SubscriptionList.STREAM, encoding=pb.PROTO)
    subscriptions.subscription.add(
        path=gnmi_path_generator(PATH), mode=pb.SAMPLE, sample_interval=int(INTERVAL_S * 1e9)
    )
    return pb.SubscribeRequest(subscribe=subscriptions)


async def capture(port: int, seconds: float, keep: int) -> tuple[Rate, list[bytes]]:
    """The wire rate, and `keep` serialized update messages for the bare loops and the replay."""
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:  # ok-insecure: bench
        subscribe = channel.stream_stream(
            "/gnmi.gNMI/Subscribe",
            request_serializer=pb.SubscribeRequest.SerializeToString,
            response_deserializer=lambda raw: raw,  # keep the bytes
        )
        call = subscribe()
        await call.write(_request())
        kept: list[bytes] = []
        count = 0
        start = time.perf_counter()
        async for raw in call:
            if len(raw) > 64:  # not the sync_response
                count += 1
                if len(kept) < keep:
                    kept.append(raw)
            if time.perf_counter() - start >= seconds:
                break
        elapsed = time.perf_counter() - start
        call.cancel()
    per_message = len(pb.SubscribeResponse.FromString(kept[-1]).update.update)
    return Rate("wire (the simulated device, raw stream)", count * per_message, elapsed), kept


async def driver_rate(name: str, port: int, seconds: float) -> Rate:
    """A fresh session and subscription; its first 0.2 s (snapshot, start-up) not counted."""
    target = Target(
        "bench",
        HOST,
        port,
        Credentials(tls=TlsSettings(insecure=True)),  # ok-insecure: loopback bench
        timeout_s=10,
    )
    updates = 0
    async with GnmiDriver() as driver, driver.connect(target) as session:
        events = session.subscribe([PATH], sample_interval_s=INTERVAL_S, encoding="proto")
        async with contextlib.aclosing(events):
            warm_until = time.perf_counter() + 0.2
            start = now = 0.0
            async for event in events:
                now = time.perf_counter()
                if now < warm_until:
                    continue
                if not start:
                    start = now
                updates += len(event.values)
                if now - start >= seconds:
                    break
        if session.dropped:
            raise RuntimeError(f"{name}: the driver dropped {session.dropped} updates")
    return Rate(name, updates, now - start)


def bare_values(messages: list[bytes], seconds: float) -> Rate:
    """ParseFromString, then each update's value: the least that still reads what arrived."""
    parse = pb.SubscribeResponse.FromString
    updates = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for raw in messages:
            notification = parse(raw).update
            _ = notification.timestamp
            for update in notification.update:
                value = update.val
                _ = getattr(value, value.WhichOneof("value"))
                updates += 1
    elapsed = time.perf_counter() - start
    return Rate("bare decode (ParseFromString + values)", updates, elapsed)


def bare_leaves(messages: list[bytes], seconds: float) -> Rate:
    """As `bare_values`, also reading each update's leaf name (the last path element)."""
    parse = pb.SubscribeResponse.FromString
    updates = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for raw in messages:
            notification = parse(raw).update
            _ = notification.timestamp
            for update in notification.update:
                _ = update.path.elem[-1].name
                value = update.val
                _ = getattr(value, value.WhichOneof("value"))
                updates += 1
    elapsed = time.perf_counter() - start
    return Rate("bare decode (ParseFromString + leaf names + values)", updates, elapsed)


def _median(rates: list[Rate]) -> Rate:
    return sorted(rates, key=lambda r: r.per_s)[len(rates) // 2]


# --- main ---------------------------------------------------------------------------------------


async def run(seconds: float, interfaces: int, rounds: int) -> None:
    per_round = seconds / rounds
    device, device_port = _start_peer("--device", "--interfaces", str(interfaces))
    replay: subprocess.Popen[bytes] | None = None
    workdir = Path(tempfile.mkdtemp(prefix="oss-gnmi-bench-"))
    results: dict[str, list[Rate]] = {}

    def record(rate: Rate) -> None:
        results.setdefault(rate.name, []).append(rate)

    try:
        await asyncio.sleep(0.5)  # let the peer settle
        wire, messages = await capture(device_port, min(seconds, 2.0), keep=KEEP_MESSAGES)
        recording = workdir / "recording.bin"
        _save(messages, recording)
        replay, replay_port = _start_peer("--replay", str(recording))
        bare: list[Callable[[list[bytes], float], Rate]] = [bare_values, bare_leaves]
        for _ in range(rounds):
            record(await driver_rate(LIVE, device_port, per_round))
            record(await driver_rate(REPLAY, replay_port, per_round))
            for loop in bare:
                record(loop(messages, per_round))
    finally:
        _stop_peer(device)
        if replay is not None:
            _stop_peer(replay)
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {name: _median(rates) for name, rates in results.items()}
    live, replayed, values, leaves = medians.values()
    per_message = len(pb.SubscribeResponse.FromString(messages[0]).update.update)
    print(f"gNMI bench: {per_message} updates per message ({interfaces} interfaces x 8 counters), "
          f"PROTO; median of {rounds} rounds of {per_round:g} s")  # fmt: skip
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, grpcio {grpc.__version__}")  # fmt: skip
    for rate in (wire, live, replayed, values, leaves):
        print(f"  {rate.name:<52} {rate.per_s:>12,.0f} updates/s")
    for reference in (values, leaves):
        print(f"ratio driver replay / {reference.name}: {replayed.per_s / reference.per_s:.0%}")
    print(f"ratio driver live / wire: {live.per_s / wire.per_s:.0%}")
    ratio = replayed.per_s / values.per_s
    verdict = "meets" if ratio >= 0.5 else "misses"
    print(f"result: {ratio:.0%} of the bare decode loop ({verdict} the goal of >= 50%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=6.0, help="per contender, all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interfaces", type=int, default=64)
    # the children's roles
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--device", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_device(args.port, args.interfaces))
        return
    if args.replay:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_replay(args.port, args.replay))
        return
    asyncio.run(run(min(args.seconds, 30.0), args.interfaces, max(1, args.rounds)))


if __name__ == "__main__":
    main()

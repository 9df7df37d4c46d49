"""MQTT clients side by side: the same QoS 1 retained publishes to the same Mosquitto, one run.

Issue 15 chooses one MQTT client library for the project; this is the measurement the choice
rests on. Each contender runs in a process of its own (so imports and garbage collection do
not mix) and publishes N QoS 1 retained messages (~620-byte JSON alarm documents, one distinct
topic each) with at most `--window` of them unacknowledged, and waits for every PUBACK. The
process's CPU seconds (all its threads) and the wall time of that phase are measured inside it;
connecting is not part of it. Then a `mosquitto_sub` reads the contender's retained messages
back: each of the N topics must be there with its payload's length, or the run fails.

    aiomqtt window      aiomqtt's `publish` awaited by `--window` concurrent senders
    aiomqtt sequential  aiomqtt's `publish` awaited one message at a time
    paho thread         paho-mqtt directly, its network loop in a thread (`loop_start`)
    paho asyncio        paho-mqtt directly, driven by the asyncio loop from its socket
                        callbacks (`loop_read`/`loop_write`/`loop_misc`), as paho documents
    gmqtt               gmqtt (MQTT 3.1.1); PUBACKs counted by the storage of in-flight
                        messages it takes as `persistent_storage`, the way its maintainers
                        advise (gmqtt has no publish callback)
    gmqtt mqtt5         the same with MQTT 5, gmqtt's default protocol; its window stays below
                        the broker's Receive Maximum (past it gmqtt raises OverflowError)

Every window is the caller's, as in the NOC feed (paho's own in-flight bound is off: it
re-scans its queue at every PUBACK).

    .venv/bin/python -m bench.mqtt_client_bench [--count 20000] [--window 500]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.peers.mosquitto import running_mosquitto

MOSQUITTO_SUB = Path("/usr/bin/mosquitto_sub")
CHECKOUT = Path(__file__).resolve().parent.parent  # where `-m bench.mqtt_client_bench` imports
PREFIX = "bench-mqtt"
CONNECT_TIMEOUT_S = 15.0
ACK_TIMEOUT_S = 300.0  # the whole run's PUBACKs; a contender that takes longer has failed
READBACK_TIMEOUT_S = 30  # per group, when the broker holds fewer than expected
READBACK_CHUNK = 5000
CONTENDERS = (
    "aiomqtt window",
    "aiomqtt sequential",
    "paho thread",
    "paho asyncio",
    "gmqtt",
    "gmqtt mqtt5",
)


# --------------------------------------------------------------------------- the workload


def topics(contender: str, count: int) -> list[str]:
    """Grouped by READBACK_CHUNK, so that each group can be read back in one subscription."""
    return [f"{_root(contender)}/{n // READBACK_CHUNK}/{n}" for n in range(count)]


def _root(contender: str) -> str:
    return f"{PREFIX}/{contender.replace(' ', '-')}"


def payloads(count: int) -> list[bytes]:
    """~600-byte TMF642-like alarm documents, built before the clock starts."""
    return [_alarm(n) for n in range(count)]


def _alarm(n: int) -> bytes:
    document = {
        "id": f"alarm-{n}",
        "href": f"/tmf-api/alarmManagement/v5/alarm/alarm-{n}",
        "alarmType": "communicationsAlarm",
        "perceivedSeverity": "major",
        "probableCause": "linkDown",
        "specificProblem": f"interface ge-0/0/{n % 48} operationally down",
        "state": "raised",
        "ackState": "unacknowledged",
        "alarmRaisedTime": "2026-12-07T01:00:00.000000+00:00",
        "alarmedObject": {"id": f"dev{n % 500}:ge-0/0/{n % 48}", "@referredType": "Interface"},
        "alarmedObjectType": "Interface",
        "sourceSystemId": "oss",
        "reportingSystemId": "oss-noc-feed",
        "count": 1 + n % 3,
        "isRootCause": True,
        "affectedService": [{"id": f"slice-{n % 97}"}],
        "@type": "Alarm",
        "@baseType": "Alarm",
    }
    return json.dumps(document).encode()


@dataclass(frozen=True)
class Job:
    host: str
    port: int
    contender: str
    count: int
    window: int

    @property
    def client_id(self) -> str:
        return f"{PREFIX}-{self.contender.replace(' ', '-')}"

    def messages(self) -> list[tuple[str, bytes]]:
        return list(zip(topics(self.contender, self.count), payloads(self.count), strict=True))


@dataclass(frozen=True)
class Measured:
    cpu_s: float
    wall_s: float
    window: int | None = None  # when the broker allowed fewer unacknowledged than asked


class Timer:
    """CPU (every thread of this process) and wall time of one phase."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._wall = time.perf_counter()

    def stop(self, window: int | None = None) -> Measured:
        return Measured(time.process_time() - self._cpu, time.perf_counter() - self._wall, window)


# --------------------------------------------------------------------------- aiomqtt


async def run_aiomqtt(job: Job, concurrent: bool) -> Measured:
    import aiomqtt

    messages = job.messages()
    async with aiomqtt.Client(
        job.host,
        job.port,
        identifier=job.client_id,
        max_inflight_messages=0,  # the window is the senders', as in the NOC feed
        timeout=CONNECT_TIMEOUT_S,
    ) as client:
        timer = Timer()
        if concurrent:
            pending = iter(messages)

            async def sender() -> None:
                for topic, payload in pending:  # shared: each message goes out once
                    await client.publish(topic, payload, qos=1, retain=True, timeout=ACK_TIMEOUT_S)

            async with asyncio.TaskGroup() as senders:
                for _ in range(job.window):
                    senders.create_task(sender())
        else:
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1, retain=True, timeout=ACK_TIMEOUT_S)
        return timer.stop()


# --------------------------------------------------------------------------- paho


def _paho_client(job: Job) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=job.client_id, protocol=mqtt.MQTTv311
    )
    # The window is the caller's, as in the NOC feed: paho's own bound would re-scan its
    # message queue at every PUBACK.
    client.max_inflight_messages_set(0)
    return client


def run_paho_thread(job: Job) -> Measured:
    import paho.mqtt.client as mqtt

    messages = job.messages()
    client = _paho_client(job)
    connected, finished = threading.Event(), threading.Event()
    room = threading.BoundedSemaphore(job.window)
    acked = 0

    def on_publish(*_args: Any) -> None:
        nonlocal acked
        acked += 1
        room.release()
        if acked == len(messages):
            finished.set()

    client.on_connect = lambda *_args: connected.set()
    client.on_publish = on_publish
    client.connect(job.host, job.port)
    client.loop_start()
    try:
        if not connected.wait(CONNECT_TIMEOUT_S):
            raise RuntimeError("paho thread: no CONNACK")
        timer = Timer()
        for topic, payload in messages:
            if not room.acquire(timeout=ACK_TIMEOUT_S):
                raise RuntimeError(f"paho thread: {acked} of {len(messages)} PUBACKs")
            if client.publish(topic, payload, qos=1, retain=True).rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError("paho thread: publish refused")
        if not finished.wait(ACK_TIMEOUT_S):
            raise RuntimeError(f"paho thread: {acked} of {len(messages)} PUBACKs")
        return timer.stop()
    finally:
        client.disconnect()
        client.loop_stop()


class AsyncWindow:
    """At most `size` messages unacknowledged, for a single-threaded asyncio publisher."""

    def __init__(self, size: int, total: int) -> None:
        self.size = size
        self.total = total
        self.in_flight = 0
        self.acked = 0
        self.room = asyncio.Event()
        self.room.set()
        self.finished = asyncio.Event()

    def sent(self) -> None:
        self.in_flight += 1
        if self.in_flight >= self.size:
            self.room.clear()

    def acknowledged(self) -> None:
        self.in_flight -= 1
        self.acked += 1
        self.room.set()
        if self.acked == self.total:
            self.finished.set()

    async def wait_room(self) -> None:
        if not self.room.is_set():
            await asyncio.wait_for(self.room.wait(), ACK_TIMEOUT_S)

    async def wait_all(self, who: str) -> None:
        try:
            await asyncio.wait_for(self.finished.wait(), ACK_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(f"{who}: {self.acked} of {self.total} PUBACKs") from None


class PahoOnAsyncio:
    """paho's documented external-loop interface: its socket callbacks register the socket's
    reading and writing with the asyncio loop; `loop_misc` runs every second (keepalive)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self._misc: asyncio.Task[None] | None = None
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._wrote

    def _opened(self, client: Any, _userdata: Any, sock: socket.socket) -> None:
        self.loop.add_reader(sock, client.loop_read)
        self._misc = self.loop.create_task(self._housekeeping())

    def _closed(self, _client: Any, _userdata: Any, sock: socket.socket) -> None:
        self.loop.remove_reader(sock)
        if self._misc is not None:
            self._misc.cancel()

    def _want_write(self, client: Any, _userdata: Any, sock: socket.socket) -> None:
        self.loop.add_writer(sock, client.loop_write)

    def _wrote(self, _client: Any, _userdata: Any, sock: socket.socket) -> None:
        self.loop.remove_writer(sock)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1)
            self.client.loop_misc()


async def run_paho_asyncio(job: Job) -> Measured:
    import paho.mqtt.client as mqtt

    messages = job.messages()
    client = _paho_client(job)
    connected = asyncio.get_running_loop().create_future()
    window = AsyncWindow(job.window, len(messages))
    client.on_connect = lambda *_args: connected.set_result(None)
    client.on_publish = lambda *_args: window.acknowledged()
    PahoOnAsyncio(client)
    client.connect(job.host, job.port)
    try:
        await asyncio.wait_for(connected, CONNECT_TIMEOUT_S)
        timer = Timer()
        for topic, payload in messages:
            await window.wait_room()
            if client.publish(topic, payload, qos=1, retain=True).rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError("paho asyncio: publish refused")
            window.sent()
        await window.wait_all("paho asyncio")
        return timer.stop()
    finally:
        client.disconnect()


# --------------------------------------------------------------------------- gmqtt


def _acknowledging_storage(window: AsyncWindow) -> Any:
    """gmqtt keeps each unacknowledged QoS 1 message in its `persistent_storage` and removes
    it at the PUBACK (it has no publish callback): a storage that tells the window."""
    from gmqtt.storage import PersistentStorage  # type: ignore[import-untyped]

    class Acknowledging(PersistentStorage):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.mids: set[int] = set()

        def push_message(self, mid: int, raw_package: bytes) -> None:
            super().push_message(mid, raw_package)
            self.mids.add(mid)

        def remove_message_by_mid(self, mid: int) -> None:
            super().remove_message_by_mid(mid)
            if mid in self.mids:
                self.mids.discard(mid)
                window.acknowledged()

    return Acknowledging()


async def run_gmqtt(job: Job, mqtt5: bool) -> Measured:
    import gmqtt  # type: ignore[import-untyped]

    messages = job.messages()
    window = AsyncWindow(job.window, len(messages))
    client = gmqtt.Client(job.client_id, persistent_storage=_acknowledging_storage(window))
    connack: dict[str, list[Any]] = {}
    client.on_connect = lambda _client, _flags, _rc, properties: connack.update(properties)
    version = gmqtt.constants.MQTTv50 if mqtt5 else gmqtt.constants.MQTTv311
    await asyncio.wait_for(client.connect(job.host, job.port, version=version), CONNECT_TIMEOUT_S)
    # MQTT 5: past the broker's Receive Maximum gmqtt raises OverflowError instead of waiting
    # (and it allocates one id fewer than that maximum), so the window must stay below it.
    receive_maximum = connack.get("receive_maximum", [0])[0]
    if receive_maximum:
        window.size = min(job.window, receive_maximum - 1)
    try:
        timer = Timer()
        for topic, payload in messages:
            await window.wait_room()
            client.publish(topic, payload, qos=1, retain=True)
            window.sent()
        await window.wait_all("gmqtt")
        return timer.stop(window.size if window.size < job.window else None)
    finally:
        await client.disconnect()


# --------------------------------------------------------------------------- one contender


RUNNERS: dict[str, Callable[[Job], Awaitable[Measured] | Measured]] = {
    "aiomqtt window": lambda job: run_aiomqtt(job, concurrent=True),
    "aiomqtt sequential": lambda job: run_aiomqtt(job, concurrent=False),
    "paho thread": run_paho_thread,
    "paho asyncio": run_paho_asyncio,
    "gmqtt": lambda job: run_gmqtt(job, mqtt5=False),
    "gmqtt mqtt5": lambda job: run_gmqtt(job, mqtt5=True),
}


def worker(job: Job) -> None:
    """In the contender's own process: run it, print its figures as one JSON line."""
    outcome = RUNNERS[job.contender](job)
    measured = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
    assert isinstance(measured, Measured)
    print(json.dumps(dataclasses.asdict(measured)))


def measure(job: Job) -> Measured:
    argv = [sys.executable, "-m", "bench.mqtt_client_bench", "--worker", job.contender]
    argv += ["--host", job.host, "--port", str(job.port)]
    argv += ["--count", str(job.count), "--window", str(job.window)]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=ACK_TIMEOUT_S + 60, cwd=CHECKOUT
    )
    if done.returncode != 0:
        raise RuntimeError(f"{job.contender} failed (exit {done.returncode}):\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Measured(**figures)


def retained(job: Job) -> dict[str, int]:
    """The contender's retained messages as the broker holds them: topic -> payload length.
    Read a group at a time: the test broker queues at most 10,000 messages per subscriber."""
    held: dict[str, int] = {}
    for group in range(0, (job.count + READBACK_CHUNK - 1) // READBACK_CHUNK):
        expected = min(READBACK_CHUNK, job.count - group * READBACK_CHUNK)
        argv = [str(MOSQUITTO_SUB), "-h", job.host, "-p", str(job.port), "-q", "1"]
        argv += ["-t", f"{_root(job.contender)}/{group}/#", "--retained-only"]
        argv += ["-C", str(expected), "-W", str(READBACK_TIMEOUT_S), "-F", "%l %t"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=READBACK_TIMEOUT_S + 30)
        for line in done.stdout.splitlines():
            length, topic = line.split(" ", 1)
            held[topic] = int(length)
    return held


def verify(job: Job) -> None:
    expected = {
        topic: len(payload)
        for topic, payload in zip(
            topics(job.contender, job.count), payloads(job.count), strict=True
        )
    }
    held = retained(job)
    if held != expected:
        missing = len(expected.keys() - held.keys())
        wrong = sum(1 for topic, length in held.items() if expected.get(topic) != length)
        raise RuntimeError(
            f"{job.contender}: the broker holds {len(held)} of {job.count} retained messages "
            f"({missing} missing, {wrong} unexpected or of another length)"
        )


# --------------------------------------------------------------------------- the run


def report(results: dict[str, Measured], count: int) -> Iterator[str]:
    cheapest = min(measured.cpu_s for measured in results.values())
    yield f"{'client':<20} {'us CPU/msg':>11} {'msgs/s wall':>12} {'CPU vs cheapest':>16}"
    for contender, measured in sorted(results.items(), key=lambda item: item[1].cpu_s):
        note = "" if measured.window is None else f"  (window {measured.window}: the broker's)"
        yield (
            f"{contender:<20} {measured.cpu_s / count * 1e6:11.1f} "
            f"{count / measured.wall_s:12,.0f} {measured.cpu_s / cheapest:15.2f}x{note}"
        )


def run(count: int, window: int, contenders: Sequence[str]) -> None:
    payload_bytes = sum(len(p) for p in payloads(min(count, 1000))) / min(count, 1000)
    print(
        f"MQTT clients: {count:,} QoS 1 retained publishes each (~{payload_bytes:.0f}-byte JSON,"
        f" distinct topics), at most {window} unacknowledged, to one Mosquitto"
    )
    results: dict[str, Measured] = {}
    with running_mosquitto() as broker:
        for contender in contenders:
            job = Job(broker.host, broker.port, contender, count, window)
            results[contender] = measure(job)
            verify(job)
            print(f"  {contender}: done, {count:,} retained messages read back", flush=True)
    for line in report(results, count):
        print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=20_000, help="messages per client")
    parser.add_argument(
        "--window", type=int, default=500, help="unacknowledged at most (the NOC feed: batch_size)"
    )
    parser.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 10_000_000:
        parser.error("--count: must be 1..10,000,000")
    if not 1 <= args.window <= 60_000:
        parser.error("--window: must be 1..60,000 (MQTT packet ids are 16 bits)")
    if args.worker is not None and args.port is None:
        parser.error("--worker: needs --port")
    if args.worker is not None:
        worker(Job(args.host, args.port, args.worker, args.count, args.window))
    else:
        run(args.count, args.window, args.only)


if __name__ == "__main__":
    main()

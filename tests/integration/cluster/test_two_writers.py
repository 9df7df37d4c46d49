"""Two writers, one truth: two `assemble()`d daemons in cluster mode ("a" and "b", each on its
own `Database` handle and pool) on one real PostgreSQL, with a real Mosquitto for the NOC feed.

- The same signals applied on both at once, many times over (`asyncio.gather`: the two
  transactions really meet in the database): one open alarm per reduction key, the counts add
  up, and correlation (a link's root cause and its children) comes out as from one instance.
- A change on a reaches b: b's alarm broadcast (the SSE stream), b's OpenAlarmIndex (the map),
  b's inventory graph and `Inventory.changes` (the topology stream), b's map layouts.
- Outbox rows written on a are published by b's publisher (a's does not run: it is a singleton)
  to the broker, each once and in id order, woken by a's notices (its safety-net poll is a
  minute away).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from sqlalchemy import func, select, text

from oss.api import create_app
from oss.api.map_document import MapState
from oss.app import assemble
from oss.auth_roles import Role
from oss.daemon import Daemon
from oss.errors import Fenced
from oss.faults.alarms import Signal
from oss.faults.correlate import link_root_key
from oss.faults.rules import interface_down_key
from oss.outputs.mqtt_outbox import NocPublisher
from oss.settings import load_settings
from oss.store import leases
from oss.store.fencing import Fence
from oss.store.notify import Notifications
from oss.store.tables import AlarmRow, OutboxRow
from tests.peers.mosquitto import MosquittoServer, running_mosquitto
from tests.peers.postgres import PostgresServer, create_database
from tests.unit.faults.test_alarm_batches import EverySignal
from topology.graph import GraphChange
from topology.model import Device, Endpoint, Link

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # lease periods of seconds

WAIT_S = 20.0  # an upper bound for what takes milliseconds, never a measure
T0 = 1_700_000_000_000_000_000
_numbers = iter(range(1, 10_000))


@pytest.fixture(scope="module")
def mosquitto() -> Iterator[MosquittoServer]:
    with running_mosquitto() as server:
        yield server


@dataclass
class Instance:
    name: str
    daemon: Daemon
    notifications: Notifications
    listener: asyncio.Task[None] | None = None
    stop: asyncio.Event | None = None

    async def listen(self) -> None:
        """Run the notices' listener, as the runtime would, until it LISTENs."""
        self.stop = asyncio.Event()
        self.listener = asyncio.create_task(self.notifications.run(self.stop))
        async with asyncio.timeout(WAIT_S):
            await self.notifications.listening.wait()

    async def stop_listening(self) -> None:
        if self.listener is not None and self.stop is not None:
            self.stop.set()
            await self.listener
            self.listener = None

    @property
    def publisher(self) -> NocPublisher:
        assert self.daemon.noc_publisher is not None
        return self.daemon.noc_publisher


@dataclass
class Pair:
    a: Instance
    b: Instance
    prefix: str  # the NOC feed's topic prefix


@pytest.fixture
async def pair(
    postgres: PostgresServer, mosquitto: MosquittoServer, tmp_path: Path
) -> AsyncIterator[Pair]:
    url = create_database(postgres, f"oss_two_writers_{next(_numbers)}")
    prefix = f"noc-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        instances = []
        for name in ("a", "b"):
            settings = load_settings(
                None,
                state_dir=tmp_path / name,
                database_url=url,
                cluster={"enabled": True, "instance": name, "lease_s": 2.0},
                mqtt={
                    "enabled": True,
                    "host": mosquitto.host,
                    "port": mosquitto.port,
                    "prefix": prefix,
                    "client_id": f"oss-{prefix}-{name}",
                    "poll_interval_s": 60.0,  # only a notice (or an offer) wakes it in time
                    "backoff_initial_s": 0.1,
                    "backoff_max_s": 1.0,
                },
            )
            assembly = assemble(settings)
            daemon = await stack.enter_async_context(assembly)
            assert assembly.notifications is not None  # cluster mode on PostgreSQL
            instance = Instance(name, daemon, assembly.notifications)
            await instance.listen()
            stack.push_async_callback(instance.stop_listening)  # before the daemon closes
            instances.append(instance)
        yield Pair(instances[0], instances[1], prefix)


def signal(kind: str, key: str, obj: str, object_type: str, t: int) -> Signal:
    return Signal(
        kind=kind,  # type: ignore[arg-type]
        reduction_key=key,
        alarm_type="communicationsAlarm",
        severity="major",
        probable_cause="lossOfSignal",
        specific_problem=f"{obj} down",
        object_type=object_type,
        object=obj,
        time_ns=T0 + t,
    )


def down(obj: str, kind: str = "raise", t: int = 0) -> Signal:
    device, _, interface = obj.partition(":")
    return signal(kind, interface_down_key(device, interface), obj, "interface", t)


async def open_alarms(daemon: Daemon) -> dict[str, list[AlarmRow]]:
    async with daemon.db.read() as session:
        rows = (await session.scalars(select(AlarmRow).where(AlarmRow.open))).all()
    found: dict[str, list[AlarmRow]] = {}
    for row in rows:
        found.setdefault(row.reduction_key, []).append(row)
    return found


async def until(check: Callable[[], bool]) -> None:
    """Wait for `check` (a state another instance's notice brings), bounded."""
    async with asyncio.timeout(WAIT_S):
        while not check():  # noqa: ASYNC110 - a state another instance's notice brings
            await asyncio.sleep(0.01)


async def a_chain(pair: Pair) -> None:
    """r1 -1- r2 -2- r3, r4 behind r2 (link 3), added on a; b hears every object."""
    a, b = pair.a.daemon.inventory, pair.b.daemon.inventory
    for name in ("r1", "r2", "r3", "r4"):
        await a.add_device(Device(name=name), actor="test")
    for near, far in (("r1:eth1", "r2:eth1"), ("r2:eth2", "r3:eth1"), ("r2:eth3", "r4:eth1")):
        link = Link(a=Endpoint.parse(near), b=Endpoint.parse(far))
        await a.add_link(link, actor="test")
    await until(lambda: len(b.graph.links()) == 3)


async def test_the_same_signals_on_both_instances_at_once_make_one_alarm_per_key(
    pair: Pair,
) -> None:
    a, b = pair.a.daemon.alarms, pair.b.daemon.alarms
    keys = [f"cpu:edge{i}" for i in range(10)]
    rounds = 25
    for r in range(rounds):  # the storm path: objects the correlator leaves alone
        batch = [signal("raise", k, k.split(":")[1], "device", r) for k in keys]
        await asyncio.gather(a.signals(batch), b.signals(batch))
    found = await open_alarms(pair.a.daemon)
    assert sorted(found) == keys
    assert all(len(rows) == 1 for rows in found.values())
    assert {k: rows[0].count for k, rows in found.items()} == dict.fromkeys(keys, 2 * rounds)

    # One clear on each at once: the alarm closes once; the second clear finds nothing open.
    clears = [signal("clear", k, k.split(":")[1], "device", rounds) for k in keys]
    await asyncio.gather(a.signals(clears), b.signals(clears))
    assert await open_alarms(pair.b.daemon) == {}
    async with pair.a.daemon.db.read() as session:
        closed = await session.scalar(select(func.count()).select_from(AlarmRow))
    assert closed == len(keys)


async def test_an_alarm_write_carries_the_member_fence_checked_under_the_alarm_lock(
    pair: Pair,
) -> None:
    """The fences are checked after the alarm lock (not before): still checked, so a stale
    member's alarm write is refused by the database, on both paths, and nothing is written."""
    a = pair.a.daemon
    first = await a.db.write(lambda c: leases.acquire(c, "member:a", "a", 30.0), fenced=False)
    assert first is not None
    a.db.member_fence = Fence("member:a", "a", first)
    await a.alarms.signal(signal("raise", "cpu:edge5", "edge5", "device", 0))
    again = await a.db.write(lambda c: leases.acquire(c, "member:a", "a", 30.0), fenced=False)
    assert again == first + 1  # re-registered: the old token is stale
    with pytest.raises(Fenced, match="member:a"):
        await a.alarms.signal(signal("raise", "cpu:edge6", "edge6", "device", 1))
    a.alarms.correlator = EverySignal(lambda: a.inventory.graph, a.services)  # the ORM path
    with pytest.raises(Fenced, match="member:a"):
        await a.alarms.signal(signal("raise", "cpu:edge7", "edge7", "device", 2))
    assert sorted(await open_alarms(a)) == ["cpu:edge5"]


async def test_correlation_is_the_same_whichever_instance_hears_the_fault(pair: Pair) -> None:
    await a_chain(pair)
    a, b = pair.a.daemon.alarms, pair.b.daemon.alarms
    link_1 = pair.a.daemon.inventory.graph.link_at(Endpoint.parse("r1:eth1"))
    assert link_1 is not None and link_1.id is not None
    for t in range(10):  # both ends of link 1 go down, seen by both instances at once
        await asyncio.gather(
            a.signals([down("r1:eth1", t=t), down("r2:eth1", t=t)]),
            b.signals([down("r2:eth1", t=t), down("r1:eth1", t=t)]),
        )
    found = await open_alarms(pair.b.daemon)
    root_key = link_root_key(link_1.id)
    assert sorted(found) == sorted(
        [root_key, interface_down_key("r1", "eth1"), interface_down_key("r2", "eth1")]
    )
    assert all(len(rows) == 1 for rows in found.values())
    root = found[root_key][0]
    assert root.is_root_cause and root.parent_id is None
    for end in ("r1", "r2"):
        child = found[interface_down_key(end, "eth1")][0]
        assert (child.parent_id, child.is_root_cause, child.count) == (root.id, False, 20)

    # The link comes back, told to both: the root and its children close, once.
    await asyncio.gather(
        a.signals([down("r1:eth1", "clear", 20), down("r2:eth1", "clear", 20)]),
        b.signals([down("r2:eth1", "clear", 20), down("r1:eth1", "clear", 20)]),
    )
    assert await open_alarms(pair.a.daemon) == {}


async def test_a_change_on_one_instance_reaches_the_others_streams_and_caches(
    pair: Pair,
) -> None:
    a, b = pair.a.daemon, pair.b.daemon
    b_map = MapState.of(b.db, b.alarms)
    a_map = MapState.of(a.db, a.alarms)
    assert await b_map.alarm_index.summary() == await a_map.alarm_index.summary()  # loaded
    revision = b.alarms.revision

    async with b.alarms.broadcast.subscribe() as alarms_seen:
        changes = await a.alarms.signal(signal("raise", "cpu:edge1", "edge1", "device", 0))
        async with asyncio.timeout(WAIT_S):
            heard = await alarms_seen.get()
    assert heard is not None
    event, doc = heard
    assert (event, doc["id"], doc["sequence"]) == ("raised", changes[0][1]["id"], 1)
    assert b.alarms.revision > revision
    worst = (await b_map.alarm_index.summary()).of("device", "edge1")
    assert worst is not None and (worst.severity, worst.count) == ("major", 1)

    async with b.inventory.changes.subscribe() as graph_seen:
        added = await a.inventory.add_device(Device(name="edge1", role="pe"), actor="test")
        async with asyncio.timeout(WAIT_S):
            change = await graph_seen.get()
    assert isinstance(change, GraphChange)
    assert (change.kind, change.op, change.object) == ("device", "added", added)
    assert b.inventory.graph.device("edge1") == added

    async with b.inventory.changes.subscribe() as graph_seen:
        await a.inventory.remove_device("edge1", actor="test")
        async with asyncio.timeout(WAIT_S):
            change = await graph_seen.get()
    assert change is not None and (change.kind, change.op) == ("device", "removed")
    assert [d.name for d in b.inventory.graph.devices()] == []

    await a.inventory.add_device(Device(name="edge2"), actor="test")
    layouts = b_map.layouts.revision
    await a_map.layouts.merge("default", {"edge2": (10.0, 20.0)}, actor="test")
    await until(lambda: b_map.layouts.revision > layouts)
    assert await b_map.layouts.positions("default") == {"edge2": (10.0, 20.0)}


async def test_the_console_map_on_one_instance_shows_the_others_changes(pair: Pair) -> None:
    """b's REST API (its own app, as its `oss serve` would serve): the map follows a's device,
    alarm and layout, each once heard, with no request of b's own to prompt it."""
    a, b = pair.a.daemon, pair.b.daemon
    app = create_app(b)
    token, _ = await b.tokens.create(name="noc-viewer", role=Role.VIEWER, actor="test")
    a_map = MapState.of(a.db, a.alarms)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as api:

        async def device_on_b_map() -> dict[str, Any]:
            response = await api.get("/api/v1/map")
            assert response.status_code == 200, response.text
            devices = {d["name"]: d for d in response.json()["devices"]}
            return dict(devices["edge3"])

        await a.inventory.add_device(Device(name="edge3"), actor="test")
        await until(lambda: any(d.name == "edge3" for d in b.inventory.graph.devices()))
        quiet = await device_on_b_map()
        assert (quiet["severity"], quiet["open_alarms"], quiet["position"]) == (None, 0, None)

        async with b.alarms.broadcast.subscribe() as seen:
            await a.alarms.signal(signal("raise", "cpu:edge3", "edge3", "device", 0))
            async with asyncio.timeout(WAIT_S):
                await seen.get()
        alarmed = await device_on_b_map()
        assert (alarmed["severity"], alarmed["open_alarms"]) == ("major", 1)

        layouts = app.state.map_state.layouts
        revision = layouts.revision
        await a_map.layouts.merge("default", {"edge3": (5.0, 7.0)}, actor="test")
        await until(lambda: layouts.revision > revision)
        placed = await device_on_b_map()
        assert placed["position"] == {"x": 5.0, "y": 7.0}


async def test_what_was_missed_while_not_listening_comes_with_the_resync(pair: Pair) -> None:
    """Notices sent while b was not listening are gone: the resync after its (re)connection
    reads the state whole; its graph tells its listeners the difference, its alarm streams
    end (clients reconnect and catch up) and its map's alarm index reads again."""
    a, b = pair.a.daemon, pair.b.daemon
    b_map = MapState.of(b.db, b.alarms)
    assert (
        await b_map.alarm_index.summary() == await MapState.of(a.db, a.alarms).alarm_index.summary()
    )
    await pair.b.stop_listening()
    await a.inventory.add_device(Device(name="quiet1"), actor="test")
    await a.alarms.signal(signal("raise", "cpu:quiet1", "quiet1", "device", 0))
    with pytest.raises(Exception, match="not found"):
        b.inventory.graph.device("quiet1")
    async with (
        b.inventory.changes.subscribe() as graph_seen,
        b.alarms.broadcast.subscribe() as alarm_stream,
    ):
        await pair.b.listen()
        async with asyncio.timeout(WAIT_S):
            change = await graph_seen.get()
            ended = await alarm_stream.get()
    assert change is not None and (change.kind, change.op) == ("device", "added")
    assert b.inventory.graph.device("quiet1") == a.inventory.graph.device("quiet1")
    assert ended is None  # the stream ended: its client catches up on reconnecting
    worst = (await b_map.alarm_index.summary()).of("device", "quiet1")
    assert worst is not None and worst.count == 1


async def test_the_listener_reconnects_after_the_server_ends_its_session(pair: Pair) -> None:
    """The database ends b's listening session (a restart, a failover, an admin): b reconnects
    with its backoff, resyncs, and hears a's next change."""
    a, b = pair.a.daemon, pair.b
    resyncs = b.notifications.resyncs
    pid = b.notifications.server_pid
    assert pid is not None
    async with a.db.read() as session:
        ended = await session.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert ended is True
    await until(lambda: b.notifications.resyncs > resyncs and b.notifications.listening.is_set())
    async with b.daemon.inventory.changes.subscribe() as graph_seen:
        await a.inventory.add_device(Device(name="after1"), actor="test")
        async with asyncio.timeout(WAIT_S):
            change = await graph_seen.get()
    assert change is not None and change.object.name == "after1"
    shown = b.daemon.metrics.exposition().decode()
    assert 'oss_cluster_listener{state="listening"} 1.0' in shown
    assert f'oss_cluster_resyncs_total{{cause="reconnect_or_overflow"}} {resyncs + 1}.0' in shown
    assert 'oss_cluster_notices_total{channel="oss_inventory"}' in shown


async def test_rows_written_on_one_instance_are_published_by_the_other_once_in_order(
    pair: Pair, mosquitto: MosquittoServer
) -> None:
    a, b = pair.a, pair.b
    received: list[tuple[str, str]] = []
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, timeout=10) as noc:
        await noc.subscribe(f"{pair.prefix}/events/#", qos=1)

        async def listen() -> None:
            async for message in noc.messages:
                payload = message.payload
                text = payload.decode() if isinstance(payload, bytes | bytearray) else str(payload)
                received.append((str(message.topic), text))

        listener = asyncio.create_task(listen())
        publishing = asyncio.create_task(b.publisher.run())  # the singleton runs on b
        try:
            async with asyncio.timeout(WAIT_S):
                while not b.publisher.connected:  # noqa: ASYNC110 - the broker's answer
                    await asyncio.sleep(0.01)
            for t in range(5):  # raised, changed x3, cleared: on a only
                kind = "clear" if t == 4 else "raise"
                await a.daemon.alarms.signal(signal(kind, "cpu:edge9", "edge9", "device", t))
            await a.daemon.alarms.signal(signal("raise", "cpu:edge8", "edge8", "device", 5))
            async with a.daemon.db.read() as session:
                rows = (
                    await session.execute(
                        select(OutboxRow.id, OutboxRow.topic, OutboxRow.payload)
                        .where(OutboxRow.retain.is_(False))
                        .order_by(OutboxRow.id)
                    )
                ).all()
            events = [(topic, payload) for _, topic, payload in rows]
            assert len(events) == 6
            await until(lambda: len(received) >= len(events))
            async with asyncio.timeout(WAIT_S):
                while await b.publisher.pending():  # noqa: ASYNC110 - polls the database
                    await asyncio.sleep(0.01)
        finally:
            publishing.cancel()
            listener.cancel()
            await asyncio.gather(publishing, listener, return_exceptions=True)
    assert received == events  # each once, in id order
    sequences = [json.loads(p)["sequence"] for t, p in received if "/edge9/" in t]
    assert sequences == [1, 2, 3, 4, 5]
    assert a.publisher.published == 0
    assert pair.b.notifications.heard["oss_outbox"] >= 1
    assert await b.publisher.pending() == 0

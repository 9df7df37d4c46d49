"""Several instances, one network (issue 18), with real processes: three `oss serve` in cluster
mode on one real PostgreSQL, sharing the simulated metro lab, a short lease (2 s).

Who polls a device is the lab's own evidence (its SNMP requests per source port, mapped to the
process holding that port); alarms, outbox rows, leases and shares are read from the database;
the NOC feed from a real Mosquitto subscriber.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pysnmp.proto.api import v2c

from drivers.gnmi import GnmiDriver
from drivers.netconf import NetconfDriver
from lab.sim.lab import Ports
from oss.errors import RpcError
from tests.peers.cluster import (
    TRAP_COMMUNITY,
    Cluster,
    Member,
    Requests,
    SharedLab,
    running_cluster,
    running_lab,
    wait_for,
)
from tests.peers.daemon import OSS
from tests.peers.mosquitto import MosquittoServer, running_mosquitto
from tests.peers.ports import free_port
from tests.peers.postgres import PostgresServer
from tests.unit.drivers.test_snmp_trap_codec import v2c_message
from topology.model import Device
from topology.targets import parse_networks, target_for

pytestmark = [pytest.mark.integration, pytest.mark.serial]  # lease periods of seconds

LEASE_S = 2.0
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
STORM_SOURCES = 8  # (source address, ifindex) pairs: one alarm each
STORM_REPEATS = 50  # linkDown traps per pair, each sent to two instances, over ~2.5 s
STORM_PREFIX = "linkDown:127.99.0."
PROBE_TOPIC = "oss/events/probe"
PUBLISH = ("mosquitto_pub", "-q", "1", "-t", PROBE_TOPIC)
SUBSCRIBE = ("mosquitto_sub", "-q", "1", "-v", "-t", "oss/events/#", "-i", "cluster-test-noc")
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
LOOPBACK = parse_networks(["127.0.0.0/8"])
PORTS = Ports.for_this_user().as_dict()
FIELDS = set(Device.model_fields)
_databases = itertools.count(1)


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoServer]:
    with running_mosquitto() as server:
        yield server


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLab]:
    with running_lab(tmp_path_factory.mktemp("cluster-lab")) as running:
        yield running


@pytest.fixture(scope="module")
def three(
    postgres: PostgresServer,
    lab: SharedLab,
    broker: MosquittoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Instances a, b and c with the NOC feed on `broker`; b holds a transaction before its
    confirm for 120 s (the in-flight transaction's test kills it there)."""
    with running_cluster(
        postgres,
        f"oss_cluster_{next(_databases)}",
        tmp_path_factory.mktemp("cluster"),
        lab,
        lease_s=LEASE_S,
        env={
            "OSS_MQTT__ENABLED": "true",
            "OSS_MQTT__HOST": broker.host,
            "OSS_MQTT__PORT": str(broker.port),
            "OSS_BSS__USAGE_INTERVAL_S": "1",
        },
        member_env={"b": {"OSS_PROVISIONING__HOLD_BEFORE_CONFIRM_S": "120"}},
    ) as running:
        yield running


@pytest.fixture
def cluster(three: Cluster) -> Cluster:
    """The three instances, each test starting with all of them running and settled (one a
    test killed is started again, one it paused resumed)."""
    three.heal()
    return three


@pytest.fixture
def running(three: Cluster) -> Cluster:
    """The instances still running (none started again: each start costs seconds of CPU),
    settled among themselves."""
    three.wait_settled()
    return three


def port_of(source: str) -> int:
    return int(source.rsplit(":", 1)[1])


def owned(cluster: Cluster, member: str) -> set[str]:
    return {device for device, owner in cluster.shares().items() if owner == member}


def poll_round(cluster: Cluster) -> dict[str, set[str]]:
    """Who polled each device over two full poll rounds from now (every device polled in
    each): the lab's counts, read until every device has moved twice."""
    start = cluster.snmp_requests()
    middle = wait_for("every device polled once", lambda: every_device_polled(cluster, start))
    end = wait_for("every device polled again", lambda: every_device_polled(cluster, middle))
    return cluster.pollers_since(start, end)


def every_device_polled(cluster: Cluster, since: Requests) -> Requests | None:
    """The lab's counts now, if every device was polled since `since`."""
    now = cluster.snmp_requests()
    return now if all(cluster.pollers_since(since, now).values()) else None


# --- start-up -----------------------------------------------------------------------------


def test_cluster_mode_on_sqlite_is_a_clear_start_up_error(tmp_path: Path) -> None:
    port = free_port()
    started = subprocess.run(
        [OSS, "serve", "--state-dir", str(tmp_path), "--port", str(port)],
        env={"PATH": "/usr/bin:/bin", "OSS_CLUSTER__ENABLED": "true", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 2, started.stderr
    assert "cluster mode needs PostgreSQL" in started.stderr, started.stderr
    assert "SQLite is the single-instance default" in started.stderr, started.stderr
    assert "Traceback" not in started.stderr
    with socket.socket() as probe:  # it never served
        assert probe.connect_ex(("127.0.0.1", port)) != 0


# --- shares ---------------------------------------------------------------------------------


def test_three_instances_share_the_lab_each_device_polled_by_exactly_one(cluster: Cluster) -> None:
    doc = cluster.wait_settled({"a", "b", "c"})
    shares = cluster.shares()
    devices = {row[0] for row in cluster.sql("SELECT name FROM devices")}
    assert set(shares) == devices and len(devices) == 10
    for member in doc["instances"]:
        assert member["devices"] == sum(1 for o in shares.values() if o == member["instance"])
        assert 0 <= member["lease_age_s"] < LEASE_S and member["expires_in_s"] > 0

    polled = poll_round(cluster)
    assert cluster.shares() == shares  # settled: nothing moved meanwhile
    assert polled == {device: {owner} for device, owner in shares.items()}

    # Every instance serves the API and reads the same cluster.
    for member in cluster.members.values():
        seen = cluster.status(member)
        assert seen["instance"] == member.name and seen["leader"] == doc["leader"]
        assert {i["instance"]: i["devices"] for i in seen["instances"]} == {
            i["instance"]: i["devices"] for i in doc["instances"]
        }
    # ... and so does the CLI, as a table and as the document.
    shown = cluster.cli(cluster.members["b"], "cluster", "status")
    assert shown.returncode == 0, shown.stderr
    assert "cluster of 3 instances, 3 alive" in shown.stdout and "b (this)" in shown.stdout
    as_json = cluster.cli(cluster.members["c"], "cluster", "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["instance"] == "c"


# --- a paused leader ------------------------------------------------------------------------


def test_a_paused_leader_is_fenced_steps_down_and_rejoins(cluster: Cluster) -> None:
    doc = cluster.wait_settled({"a", "b", "c"})
    paused = cluster.members[doc["leader"]]
    others = {m.name for m in cluster.members.values() if m is not paused}
    member_lease = cluster.lease(f"member:{paused.name}")
    leader_lease = cluster.lease("leader")
    assert member_lease is not None and leader_lease is not None
    assert leader_lease[0] == paused.name
    member_token, leader_token = member_lease[1], leader_lease[1]

    paused.pause()
    try:
        # Past its lease: the others elect a leader and take its devices over.
        cluster.wait_settled(others)
        new_leader = cluster.lease("leader")
        assert new_leader is not None and new_leader[0] in others
        assert new_leader[1] > leader_token
    except BaseException:
        paused.resume()
        raise

    # It resumes believing it still leads and owns its devices. Until it has renewed (held
    # back here, so that its first writes are not a race with its renewal), what it writes
    # carries its old tokens: the database refuses it.
    with cluster.lease_row_held(f"member:{paused.name}"):
        resumed_at = cluster.db_now()
        paused.resume()
        site = {"name": "written-by-a-paused-instance"}
        refused = paused.post("/api/v1/sites", cluster.token, site)
        assert refused.status_code == 503, refused.text
        detail = refused.json()["detail"]
        assert f"'member:{paused.name}' token {member_token}" in detail, detail
    assert cluster.sql(f"SELECT name FROM sites WHERE name = '{site['name']}'") == []

    # It says why (the lease and the token it held), refused and lost, and steps down;
    # nothing it wrote as the old leader once resumed exists.
    fence = f"'member:{paused.name}' token {member_token}"
    assert f"write refused by the database: lease {fence}" in paused.log()
    lost = re.compile(
        rf"WARNING.*{paused.name} steps down: lease ({fence} lost"
        rf"|'member:{paused.name}' not renewed)"
    )
    wait_for("the paused instance logs the lease it lost", lambda: lost.search(paused.log()))
    stale = cluster.sql(
        "SELECT device FROM device_shares "
        f"WHERE leader_token = {leader_token} AND assigned_at >= '{resumed_at}'"
    )
    assert stale == []
    # It rejoins under a new token and gets its share back.
    cluster.wait_settled({"a", "b", "c"})
    rejoined = cluster.lease(f"member:{paused.name}")
    assert rejoined is not None and rejoined[1] > member_token
    assert owned(cluster, paused.name)


# --- kill -9 under polling and a trap storm -------------------------------------------------


def link_down(ifindex: int, n: int) -> bytes:
    return v2c_message(
        varbinds=[
            ("1.3.6.1.2.1.1.3.0", v2c.TimeTicks(n)),
            ("1.3.6.1.6.3.1.1.4.1.0", v2c.ObjectIdentifier(LINK_DOWN)),
            (f"1.3.6.1.2.1.2.2.1.1.{ifindex}", v2c.Integer(ifindex)),
            (f"1.3.6.1.2.1.2.2.1.8.{ifindex}", v2c.Integer(2)),
        ],
        community=TRAP_COMMUNITY.encode(),
        request_id=n + 1,
    )


class Storm(threading.Thread):
    """The same linkDown traps, each sent to every one of `targets` (an anycast front that
    duplicates), from STORM_SOURCES loopback addresses, ~160 traps/s per target."""

    def __init__(self, targets: list[Member]) -> None:
        super().__init__(daemon=True)
        self.targets = targets
        self.sent = 0

    def run(self) -> None:
        senders = []
        try:
            for n in range(STORM_SOURCES):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((f"127.99.0.{n + 1}", 0))
                senders.append(sock)
            for repeat in range(STORM_REPEATS):
                for n, sock in enumerate(senders):
                    trap = link_down(n + 1, repeat)
                    for target in self.targets:
                        sock.sendto(trap, ("127.0.0.1", target.trap_port))
                        self.sent += 1
                time.sleep(0.05)
        finally:
            for sock in senders:
                sock.close()


class Subscriber:
    """The NOC: mosquitto_sub on the alarm events (QoS 1), every message to a file; started
    (and subscribed: its probe came back) before the storm."""

    def __init__(self, broker: MosquittoServer, path: Path) -> None:
        self.path = path
        self._out = path.open("wb")
        self.proc = subprocess.Popen(
            [*SUBSCRIBE, "-h", broker.host, "-p", str(broker.port)],
            stdout=self._out,
            stderr=subprocess.DEVNULL,
        )
        probe = [*PUBLISH, "-h", broker.host, "-p", str(broker.port), "-m", '{"probe": 1}']

        def probed() -> bool:
            subprocess.run(probe, check=True, timeout=10)
            return any(topic == PROBE_TOPIC for topic, _ in self.lines())

        wait_for("the NOC's subscriber listening", probed)

    def lines(self) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for line in self.path.read_text().splitlines():
            topic, _, payload = line.partition(" ")
            if payload:
                found.append((topic, json.loads(payload)))
        return found

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        """The alarm events received (the probes left out)."""
        return [(topic, alarm) for topic, alarm in self.lines() if topic != PROBE_TOPIC]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self._out.close()


def metric(member: Member, line_prefix: str) -> float:
    text = httpx.get(member.url + "/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_prefix} not on {member.name}'s /metrics")


def traps_received(member: Member) -> float:
    return metric(member, 'oss_collection{counter="traps_received"}')


def test_kill_9_under_polling_and_a_trap_storm_loses_nothing_and_doubles_nothing(
    cluster: Cluster, broker: MosquittoServer, tmp_path: Path
) -> None:
    subscriber = Subscriber(broker, tmp_path / "noc-events.txt")
    try:
        doc = cluster.wait_settled({"a", "b", "c"})
        feed = next(s["holder"] for s in doc["singletons"] if s["job"] == "noc-feed")
        victim = cluster.members[feed]  # the NOC publisher dies mid-storm
        survivors = [m for m in cluster.members.values() if m is not victim]
        names = {m.name for m in survivors}
        orphaned = owned(cluster, victim.name)
        assert orphaned
        received_before = {m.name: traps_received(m) for m in survivors}
        [[last_row]] = cluster.sql("SELECT coalesce(max(id), 0) FROM outbox")

        storm = Storm(survivors)
        storm.start()
        total = STORM_SOURCES * STORM_REPEATS * len(survivors)
        wait_for("the storm a third through", lambda: storm.sent >= total // 3)
        at_kill = cluster.snmp_requests()  # every member's ports mapped, the victim's too
        victim_ports = cluster.ports_of(victim.name)
        killed_at = time.monotonic()
        victim.kill()
        repolled: dict[str, float] = {}

        def every_orphan_repolled() -> bool:
            # The lab's counts alone (cheap, so read often): a request from a port the victim
            # did not hold is a survivor's (checked against the processes' ports below).
            now, at = cluster.lab.snmp_requests(), time.monotonic()
            for device in orphaned - set(repolled):
                earlier = at_kill.get(device, {})
                if any(
                    count > earlier.get(source, 0) and port_of(source) not in victim_ports
                    for source, count in now[device].items()
                ):
                    repolled[device] = at - killed_at
            return set(repolled) == orphaned

        wait_for("the dead instance's devices polled again", every_orphan_repolled)
        after = cluster.pollers_since(at_kill, cluster.snmp_requests())
        assert all(after[device] <= names for device in orphaned), after
        storm.join(timeout=60)
        # Within two lease periods of the kill (the bound).
        print(f"kill -9 -> polled again: {sorted(round(t, 2) for t in repolled.values())} s")
        assert max(repolled.values()) <= 2 * LEASE_S, repolled

        doc = cluster.wait_settled(names)
        [dead] = [i for i in doc["instances"] if i["instance"] == victim.name]
        assert not dead["alive"] and dead["devices"] == 0 and dead["expires_in_s"] < 0, dead
        held = {s["holder"] for s in doc["singletons"] if (s["expires_in_s"] or 0) > 0}
        assert feed not in held, doc["singletons"]  # none of its jobs is live on it
        shares = cluster.shares()
        assert set(shares.values()) == names
        assert poll_round(cluster) == {d: {o} for d, o in shares.items()}
        victim.kill()  # reaped
        victim.start()  # it comes back while the rest is checked (the next test: rebalanced)

        # One open alarm per reduction key, every trap either instance took counted in it.
        seen: dict[str, Any] = {}

        def storm_alarms() -> list[list[str]] | None:
            rows = cluster.sql(
                "SELECT reduction_key, count(*), sum(count) FROM alarms "
                f"WHERE open AND reduction_key LIKE '{STORM_PREFIX}%' GROUP BY reduction_key"
            )
            received = sum(traps_received(m) - received_before[m.name] for m in survivors)
            counted = sum(int(r[2]) for r in rows)
            seen.update(rows=rows, received=received, counted=counted)
            return rows if len(rows) == STORM_SOURCES and counted == received else None

        try:
            rows = wait_for("every trap counted in one alarm per key", storm_alarms)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {seen}\n{cluster.diagnosis()}") from None
        assert {int(r[1]) for r in rows} == {1}

        # The NOC saw every event the outbox holds (the publisher moved to a survivor);
        # repeats only as QoS 1 redelivery: the same alarm, sequence and payload again.
        wait_for(
            "the outbox drained by the new publisher",
            lambda: cluster.sql("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == [["0"]],
        )
        written = {
            (topic, json.dumps(json.loads(payload), sort_keys=True))
            for topic, payload in cluster.sql(
                "SELECT topic, payload FROM outbox "
                f"WHERE id > {last_row} AND topic LIKE 'oss/events/%'"
            )
        }
        assert any(STORM_PREFIX.removeprefix("linkDown:") in p for _, p in written)

        def every_event_seen() -> bool:
            seen = {(t, json.dumps(p, sort_keys=True)) for t, p in subscriber.messages()}
            return written <= seen

        wait_for("every outbox event seen by the NOC", every_event_seen)
        by_sequence: dict[tuple[str, int], set[str]] = {}
        for _topic, alarm in subscriber.messages():
            key = (str(alarm["id"]), int(alarm["sequence"]))
            by_sequence.setdefault(key, set()).add(json.dumps(alarm, sort_keys=True))
        assert all(len(payloads) == 1 for payloads in by_sequence.values())
    finally:
        subscriber.stop()


# --- a transaction in flight on a killed instance ---------------------------------------------


def start_slice_and_kill_before_confirm(cluster: Cluster, victim: Member) -> int:
    """A slice started on `victim` without waiting; once its transaction holds before the
    confirm (every device committed and verified), `victim` is killed."""
    headers = {"Authorization": f"Bearer {cluster.token}"}
    body = {"from": "north", "to": "south", "bandwidth": "100M", "customer": "acme"}
    started = httpx.post(
        f"{victim.url}/api/v1/slices",
        json=body,
        params={"wait": "false"},
        headers=headers,
        timeout=60,
    )
    assert started.status_code == 202, started.text
    txn_id = int(started.json()["transaction_id"])

    def confirming() -> bool:
        txn = victim.get(f"/api/v1/transactions/{txn_id}", cluster.token).json()
        assert txn["state"] not in ("failed", "rolled-back"), txn
        return bool(txn["state"] == "confirming")

    wait_for("the transaction holding before its confirm", confirming, 60)
    victim.kill()
    return txn_id


async def vrf_on(cluster: Cluster, via: Member, names: list[str], vrf: str) -> dict[str, bool]:
    """Per device: whether the VRF is in its running configuration, over its own protocol
    (NETCONF for the lab's platform), and the same over gNMI."""
    seen = {}
    async with NetconfDriver() as netconf, GnmiDriver() as gnmi:
        for name in names:
            shown = via.get(f"/api/v1/devices/{name}", cluster.token).json()
            device = Device.model_validate({k: v for k, v in shown.items() if k in FIELDS})
            target = target_for(device, "netconf", port=PORTS["netconf"], allowed=LOOPBACK)
            async with netconf.connect(target) as session:
                over_netconf = vrf in await session.get_config("running")
            target = target_for(device, "gnmi", port=PORTS["gnmi"], allowed=LOOPBACK)
            async with gnmi.connect(target) as session:
                try:
                    tree = await session.get(["network-instances"], datatype="config")
                except RpcError as exc:
                    assert "NOT_FOUND" in exc.device_error  # nothing configured there
                    tree = {}
            over_gnmi = vrf in json.dumps(tree)
            assert over_netconf == over_gnmi, (name, over_netconf, over_gnmi)
            seen[name] = over_netconf
    return seen


async def test_a_transaction_in_flight_on_a_killed_instance_is_finished_by_another(
    cluster: Cluster,
) -> None:
    victim = cluster.members["b"]  # it holds before the confirm (HOLD_BEFORE_CONFIRM_S)
    txn_id = await asyncio.to_thread(start_slice_and_kill_before_confirm, cluster, victim)
    assert cluster.sql(f"SELECT instance FROM transactions WHERE id = {txn_id}") == [["b"]]
    survivor = cluster.members["c"]

    def ended() -> dict[str, Any] | None:
        txn: dict[str, Any] = survivor.get(f"/api/v1/transactions/{txn_id}", cluster.token).json()
        return txn if txn["state"] in ("committed", "rolled-back") else None

    txn = await asyncio.to_thread(wait_for, "another instance ending the transaction", ended, 60)
    service = survivor.get(f"/api/v1/services/{txn['service_id']}", cluster.token).json()
    hops = service["placement"]["primary"]["devices"]
    seen = await vrf_on(cluster, survivor, hops, service["vrf"])
    # Every device reads back as the journal's outcome says: all of it, or none of it.
    if txn["state"] == "committed":
        assert service["state"] == "active" and seen == dict.fromkeys(hops, True)
    else:
        assert service["state"] != "active" and seen == dict.fromkeys(hops, False)
    # Resolved by another instance, and audited as such.
    audit = survivor.get(
        "/api/v1/audit", cluster.token, object_type="transaction", object_id=str(txn_id)
    ).json()
    [recovered] = [e for e in audit["items"] if e["action"] == "recover"]
    assert recovered["actor"] in {"txn-recovery@a", "txn-recovery@c"}, recovered


# --- usage charged once -----------------------------------------------------------------------


def order_a_slice(cluster: Cluster, via: Member) -> dict[str, Any]:
    """A customer, an account and a completed order of a metro slice (north to south), made
    on `via`; returns the ordered product."""
    customer = {"id": "cluster-co", "name": "Cluster Co"}
    account: dict[str, Any] = {"id": "cluster-co-main", "customer": "cluster-co", "name": "main"}
    account |= {"currency": "EUR", "billing_day": 1}
    for path, body in (("/api/v1/customers", customer), ("/api/v1/accounts", account)):
        created = via.post(path, cluster.token, body)
        assert created.status_code == 201, created.text
    item: dict[str, Any] = {
        "id": "1",
        "action": "add",
        "productOffering": {"id": "metro-slice-200"},
        "product": {
            "productCharacteristic": [
                {"name": "from", "value": "north"},
                {"name": "to", "value": "south"},
            ]
        },
    }
    order: dict[str, Any] = {"billingAccount": {"id": "cluster-co-main"}}
    order["productOrderItem"] = [item]
    placed = via.post(ORDERS, cluster.token, order)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]

    def completed() -> dict[str, Any] | None:
        order: dict[str, Any] = via.get(f"{ORDERS}/{order_id}", cluster.token).json()
        assert order["state"] not in ("failed", "cancelled"), order
        return order if order["state"] == "completed" else None

    product: dict[str, Any] = wait_for("the order completed", completed, 90)["productOrderItem"][0][
        "product"
    ]
    return product


def traffic_in_hour(cluster: Cluster, hours_ago: int) -> None:
    """Minute roll-ups of 10^9 octets received on every interface in one closed hour, as the
    rollup output writes them (what a usage pass reads)."""
    cluster.sql(
        "INSERT INTO kpi_minutes (object_type, object, metric, minute, count, sum, min, max, last) "
        "SELECT 'interface', device || ':' || name, 'in-octets', "
        f"date_trunc('hour', now()) - interval '{hours_ago} hours' + interval '10 minutes', "
        "1, 1e9, 1e9, 1e9, 1e9 FROM interfaces"
    )


def usage_written(cluster: Cluster) -> int:
    """Records the members' usage passes say they wrote, in all their logs."""
    found = re.compile(r"usage records written: (\d+)")
    return sum(int(n) for m in cluster.members.values() for n in found.findall(m.log()))


def test_usage_is_charged_once_across_instances_and_a_kill_9(running: Cluster) -> None:
    """The usage collector runs on one instance (its singleton); killed, it moves, and no
    hour is charged twice: one record per product and hour, as many written as logged."""
    cluster = running
    via = cluster.members["c"]  # b holds its transactions before the confirm
    product = order_a_slice(cluster, via)
    cluster.sql(
        "UPDATE products SET start_at = date_trunc('hour', now()) - interval '5 hours' "
        f"WHERE id = '{product['id']}'"
    )
    traffic_in_hour(cluster, 3)
    traffic_in_hour(cluster, 2)
    keys = f"SELECT key, quantity FROM usage_records WHERE product_id = '{product['id']}'"
    first = wait_for("two hours charged", lambda: charged(cluster, keys, 2))

    doc = cluster.status(via)
    holder = cluster.members[next(s["holder"] for s in doc["singletons"] if s["job"] == "usage")]
    holder.kill()
    traffic_in_hour(cluster, 4)  # an hour that arrives late: the next holder charges it
    rows = wait_for("the late hour charged by the next holder", lambda: charged(cluster, keys, 3))
    assert len({key for key, _ in rows}) == 3 and set(map(tuple, first)) < set(map(tuple, rows))
    assert {quantity for _, quantity in rows} == {first[0][1]}  # the same traffic each hour
    # Each record written once, by one pass on one instance (the killed one's log included).
    [[records]] = cluster.sql("SELECT count(*) FROM usage_records")
    wait_for("every record logged", lambda: usage_written(cluster) >= int(records))
    assert usage_written(cluster) == int(records)


def charged(cluster: Cluster, query: str, hours: int) -> list[list[str]] | None:
    rows = cluster.sql(query)
    return rows if len(rows) >= hours else None

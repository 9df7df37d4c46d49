"""The SNMP driver and trap receiver against a real Net-SNMP agent and the Net-SNMP tools.

Walks run on both polling backends (gufo-snmp and pysnmp) and are compared with
`snmpbulkwalk` run on the same agent. Traps come from `snmptrap`/`snmpinform` and from snmpd.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

import pytest
from pydantic import SecretStr

from drivers import snmp_mib
from drivers.base import Target
from drivers.credentials import Credentials, SnmpCredentials
from drivers.snmp import SnmpDriver
from drivers.snmp_target import SnmpValue
from drivers.snmp_traps import TrapReceiver, TrapUser
from oss.errors import AuthError, ConnectError, DeviceTimeout, RpcError
from oss.events import Event
from tests.peers.snmpd import Sink, SnmpdServer, bulkwalk, free_udp_port, running_snmpd

# Net-SNMP's spelling of the protocols -> the project's (drivers.credentials).
_AUTH = {"SHA": "SHA", "SHA-256": "SHA256"}
_PRIV = {"AES": "AES", "AES256": "AES256"}
TRAP_COMMUNITY = "oss-trap-community"
SENDER_ENGINE_ID = bytes.fromhex("800000000102030405")


def v2c_target(
    server: SnmpdServer,
    community: str | None = None,
    *,
    name: str = "snmpd-v2c",
    port: int | None = None,
    timeout_s: float = 5.0,
) -> Target:
    snmp = SnmpCredentials(version="2c", community=SecretStr(community or server.ro_community))
    return Target(
        name, server.host, port or server.port, Credentials(snmp=snmp), timeout_s=timeout_s
    )


def v3_target(
    server: SnmpdServer,
    user_name: str,
    *,
    auth_key: str | None = None,
    name: str | None = None,
    timeout_s: float = 5.0,
) -> Target:
    user = server.user(user_name)
    snmp = SnmpCredentials(
        version="3",
        user=user.name,
        auth_protocol=_AUTH[user.auth_protocol],
        auth_key=SecretStr(auth_key or user.auth_key),
        priv_protocol=_PRIV[user.priv_protocol],
        priv_key=SecretStr(user.priv_key),
    )
    return Target(
        name or f"snmpd-{user_name}", server.host, server.port, Credentials(snmp=snmp), timeout_s
    )


async def snmpget(server: SnmpdServer, oid: str) -> str:
    """The value `snmpget -Oqv` prints, unquoted."""
    out = await cli(
        server, "snmpget", "-v2c", "-c", server.ro_community, "-Oqv", server.address, oid
    )
    return out.strip().strip('"')


def security_args(server: SnmpdServer, security: str) -> list[str]:
    if security == "v2c":
        return ["-v2c", "-c", server.ro_community]
    return server.user(security).cli_args()


def target_for(server: SnmpdServer, security: str) -> Target:
    return v2c_target(server) if security == "v2c" else v3_target(server, security)


async def cli(server: SnmpdServer, tool: str, *args: str) -> str:
    """A Net-SNMP tool as a subprocess, without blocking the event loop (the trap receiver
    runs on it, and snmpinform waits for its acknowledgement)."""
    proc = await asyncio.create_subprocess_exec(
        tool,
        *args,
        env=server.cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, f"{tool} failed: {err.decode()}"
    return out.decode()


# --- comparing with snmpbulkwalk --------------------------------------------------------------

_HEX = re.compile(r"^(?:[0-9A-F]{2} )+$")
# Columns whose values do not move while the test runs (counters and timestamps do).
_STABLE = {
    snmp_mib.IF_TABLE_ENTRY: {1, 2, 3, 4, 5, 6, 7, 8},
    snmp_mib.IF_X_TABLE_ENTRY: {1, 15, 16, 17, 18},
}


def _net_snmp_value(text: str) -> SnmpValue:
    """A value as `snmpbulkwalk -Oq -Oe -Ot -On` prints it, as the driver returns it."""
    if text.startswith('"') and text.endswith('"'):
        inner = text[1:-1]
        return bytes.fromhex(inner) if _HEX.match(inner) else inner.encode()
    if text.startswith("."):
        return text[1:]
    if text == "":
        return b""
    return int(text)


def parse_bulkwalk(lines: Sequence[str]) -> dict[str, SnmpValue]:
    rows = {}
    for line in lines:
        oid, _, value = line.partition(" ")
        rows[snmp_mib.normalize(oid)] = _net_snmp_value(value.strip())
    return rows


def stable_values(rows: dict[str, SnmpValue]) -> dict[str, SnmpValue]:
    out = {}
    for oid, value in rows.items():
        for entry, columns in _STABLE.items():
            if oid.startswith(entry + "."):
                column = int(oid[len(entry) + 1 :].split(".")[0])
                if column in columns:
                    out[oid] = value
    return out


# --- polling -----------------------------------------------------------------------------------


def test_oid_names() -> None:
    assert snmp_mib.name_of("1.3.6.1.2.1.31.1.1.1.6.3") == "ifHCInOctets.3"
    assert snmp_mib.name_of(".1.3.6.1.2.1.1.3.0") == "sysUpTime.0"
    assert snmp_mib.name_of("1.3.6.1.6.3.1.1.5.3") == "linkDown"
    assert snmp_mib.name_of("1.3.6.1.4.1.9.9.1") == "1.3.6.1.4.1.9.9.1"
    assert snmp_mib.oid("ifHCInOctets.3") == "1.3.6.1.2.1.31.1.1.1.6.3"
    assert snmp_mib.oid("sysName.0") == "1.3.6.1.2.1.1.5.0"
    assert snmp_mib.split_column("1.3.6.1.2.1.2.2.1.8.12") == ("ifOperStatus", "12")
    with pytest.raises(ValueError):
        snmp_mib.oid("ifNoSuchColumn.1")
    with pytest.raises(ValueError):
        snmp_mib.oid("1.3.6.x")


async def test_v2c_get_of_the_system_group(driver: SnmpDriver, snmpd: SnmpdServer) -> None:
    descr = await snmpget(snmpd, "1.3.6.1.2.1.1.1.0")
    async with driver.connect(v2c_target(snmpd)) as snmp:
        assert snmp.backend == driver.backend
        values = await snmp.get("sysDescr.0", "sysUpTime.0", "sysName.0", "sysObjectID.0")
        missing = await snmp.get("1.3.6.1.2.1.1.5.42", "1.3.6.1.2.1.1.99.0")
    assert values["1.3.6.1.2.1.1.1.0"] == descr.encode()
    assert values["1.3.6.1.2.1.1.5.0"] == snmpd.sys_name.encode()
    assert values["1.3.6.1.2.1.1.2.0"] == "1.3.6.1.4.1.8072.3.2.10"  # Net-SNMP on Linux
    uptime = values["1.3.6.1.2.1.1.3.0"]
    assert isinstance(uptime, int) and uptime >= 0
    assert missing == {"1.3.6.1.2.1.1.5.42": None, "1.3.6.1.2.1.1.99.0": None}


@pytest.mark.parametrize("security", ["v2c", "oss-sha", "oss-sha256"])
@pytest.mark.parametrize("table", ["ifTable", "ifXTable"])
async def test_bulk_walk_agrees_with_snmpbulkwalk(
    driver: SnmpDriver, snmpd: SnmpdServer, security: str, table: str
) -> None:
    root = snmp_mib.oid(table)
    theirs = parse_bulkwalk(bulkwalk(snmpd, root, security_args(snmpd, security)))
    async with driver.connect(target_for(snmpd, security)) as snmp:
        ours = dict(await snmp.walk(table))
    assert theirs, "snmpbulkwalk returned nothing"
    assert list(ours) == sorted(ours, key=lambda o: tuple(map(int, o.split("."))))
    assert set(ours) == set(theirs)
    assert stable_values(ours) == stable_values(theirs)
    names = {v for k, v in ours.items() if k.startswith(snmp_mib.oid("ifDescr") + ".")}
    names |= {v for k, v in ours.items() if k.startswith(snmp_mib.oid("ifName") + ".")}
    assert b"lo" in names


async def test_walk_modes_return_the_same_rows(driver: SnmpDriver, snmpd: SnmpdServer) -> None:
    async with driver.connect(v2c_target(snmpd)) as snmp:
        bulk = await snmp.walk("ifXTable")
        one_by_one = await snmp.walk("ifXTable", max_repetitions=1)
        getnext = await snmp.walk("ifXTable", bulk=False)
        wide = await snmp.walk("ifXTable", max_repetitions=100)
        column = await snmp.walk("ifName")
        nothing = await snmp.walk("1.3.6.1.2.1.2.2.1.99")
    oids = [oid for oid, _ in bulk]
    assert [oid for oid, _ in one_by_one] == oids
    assert [oid for oid, _ in getnext] == oids
    assert [oid for oid, _ in wide] == oids
    assert [oid for oid, _ in column] == [
        o for o in oids if o.startswith("1.3.6.1.2.1.31.1.1.1.1.")
    ]
    assert nothing == []


async def test_interface_events(driver: SnmpDriver, snmpd: SnmpdServer) -> None:
    if_names = parse_bulkwalk(bulkwalk(snmpd, snmp_mib.oid("ifName")))
    async with driver.connect(v2c_target(snmpd, name="dut1")) as snmp:
        first = await snmp.interfaces()
        second = await snmp.interfaces()
    expected = {oid.rsplit(".", 1)[1]: value.decode() for oid, value in if_names.items()}
    assert {e.tags["ifindex"]: e.tags["interface"] for e in first} == expected
    assert all(e.name == "interface" and e.device == "dut1" for e in first)
    lo = next(e for e in first if e.tags["interface"] == "lo")
    assert lo.values["oper-status"] == "up"
    assert lo.values["admin-status"] == "up"
    assert lo.values["type"] == 24  # softwareLoopback
    assert isinstance(lo.values["in-octets"], int)
    assert isinstance(lo.values["out-octets"], int)
    assert isinstance(lo.values["speed_bps"], int)
    lo_again = next(e for e in second if e.tags["interface"] == "lo")
    assert lo_again.values["in-octets"] >= lo.values["in-octets"]
    assert lo_again.timestamp_ns >= lo.timestamp_ns


async def test_v2c_set_reads_back(driver: SnmpDriver, snmpd: SnmpdServer) -> None:
    contact = f"noc-{driver.backend}@example.net"
    target = v2c_target(snmpd, snmpd.rw_community, name="snmpd-rw")
    async with driver.connect(target) as snmp:
        echoed = await snmp.set("sysContact.0", "OctetString", contact)
        read_back = await snmp.get("sysContact.0")
        with pytest.raises(RpcError) as wrong_type:
            await snmp.set("sysContact.0", "Integer32", 5)
        with pytest.raises(RpcError) as read_only:  # configured in snmpd.conf: not writable
            await snmp.set("sysLocation.0", "OctetString", "elsewhere")
    assert echoed == contact.encode()
    assert read_back == {"1.3.6.1.2.1.1.4.0": contact.encode()}
    assert await snmpget(snmpd, "1.3.6.1.2.1.1.4.0") == contact
    assert wrong_type.value.device_error == "wrongType at sysContact.0"
    assert read_only.value.device_error == "notWritable at sysLocation.0"
    assert snmpd.rw_community not in str(read_only.value)


async def test_set_with_a_read_only_community_is_refused(
    driver: SnmpDriver, snmpd: SnmpdServer
) -> None:
    async with driver.connect(v2c_target(snmpd, name="snmpd-ro")) as snmp:
        with pytest.raises(RpcError) as refused:
            await snmp.set("sysContact.0", "OctetString", "nobody")
    assert refused.value.device_error == "noAccess at sysContact.0"
    assert snmpd.ro_community not in str(refused.value)


async def test_sessions_are_reused_and_limited_per_device(snmpd: SnmpdServer) -> None:
    async with SnmpDriver(per_device=1) as driver:
        target = v2c_target(snmpd, name="limited")
        async with driver.connect(target) as first:
            pass
        async with driver.connect(target) as again:
            assert again is first
        holding, entered = asyncio.Event(), asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with driver.connect(target):
                holding.set()
                await release.wait()

        async def second() -> None:
            async with driver.connect(target) as snmp:
                entered.set()
                await snmp.get("sysName.0")

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(hold())
            await holding.wait()
            tasks.create_task(second())
            await asyncio.sleep(0.2)
            assert not entered.is_set()  # the device's one slot is taken
            release.set()
        assert entered.is_set()


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("user_name", ["oss-sha", "oss-sha256"])
async def test_wrong_v3_password_is_an_auth_error(
    driver: SnmpDriver, snmpd: SnmpdServer, user_name: str
) -> None:
    wrong = "not-the-right-auth-key"
    target = v3_target(snmpd, user_name, auth_key=wrong, name="wrong-key", timeout_s=3)
    with pytest.raises(AuthError) as refused:
        async with driver.connect(target) as snmp:
            await snmp.get("sysName.0")
    message = str(refused.value)
    assert "wrong-key" in message
    user = snmpd.user(user_name)
    for secret in (wrong, user.auth_key, user.priv_key):
        assert secret not in message
        assert secret not in repr(refused.value)


async def test_unknown_v3_user_is_an_auth_error(driver: SnmpDriver, snmpd: SnmpdServer) -> None:
    known = v3_target(snmpd, "oss-sha", timeout_s=3)
    snmp_creds = known.credentials.snmp
    assert snmp_creds is not None
    stranger = Credentials(snmp=snmp_creds.model_copy(update={"user": "nobody"}))
    target = Target("stranger", snmpd.host, snmpd.port, stranger, timeout_s=3)
    with pytest.raises(AuthError):
        async with driver.connect(target) as snmp:
            await snmp.get("sysName.0")


async def test_wrong_community_times_out(driver: SnmpDriver, snmpd: SnmpdServer) -> None:
    community = "definitely-not-the-community"
    target = v2c_target(snmpd, community, name="bad-community", timeout_s=1)
    with pytest.raises(DeviceTimeout) as timed_out:
        async with driver.connect(target) as snmp:
            await snmp.get("sysName.0")
    assert "bad-community" in str(timed_out.value)
    assert community not in str(timed_out.value)
    assert isinstance(timed_out.value, TimeoutError)


async def test_closed_port(driver: SnmpDriver, snmpd: SnmpdServer) -> None:
    target = v2c_target(snmpd, name="closed-port-device", port=free_udp_port(), timeout_s=1)
    with pytest.raises((ConnectError, DeviceTimeout)) as failed:
        async with driver.connect(target) as snmp:
            await snmp.walk("ifTable")
    if driver.backend == "gufo":
        # gufo's connected socket sees the ICMP port unreachable; pysnmp's unconnected one
        # cannot tell a closed port from silence and times out.
        assert isinstance(failed.value, ConnectError)
    assert snmpd.ro_community not in str(failed.value)
    assert "closed-port-device" in str(failed.value)


# --- traps and informs ------------------------------------------------------------------------


@pytest.fixture
async def traps(snmpd: SnmpdServer) -> AsyncIterator[TrapReceiver]:
    users = [
        TrapUser(
            u.name,
            _AUTH[u.auth_protocol],
            SecretStr(u.auth_key),
            _PRIV[u.priv_protocol],
            SecretStr(u.priv_key),
            sender_engine_ids=(SENDER_ENGINE_ID,),
        )
        for u in snmpd.users
    ]
    receiver = TrapReceiver(
        "127.0.0.1",
        0,
        communities=[SecretStr(TRAP_COMMUNITY)],
        v3_users=users,
        devices={"127.0.0.1": "lab-r1"},
    )
    async with receiver:
        yield receiver


V2C = ["-v2c", "-c", TRAP_COMMUNITY]


async def notify(
    server: SnmpdServer,
    receiver: TrapReceiver,
    tool: str,
    security: Sequence[str],
    trap: str,
    *varbinds: str,
    uptime: str = "",
) -> None:
    """`snmptrap` or `snmpinform` (one try, 3 s for the acknowledgement) to the receiver;
    `trap` is a name from snmp_mib.NOTIFICATIONS or a numeric OID."""
    wait = ["-t", "3", "-r", "0"] if tool == "snmpinform" else []
    trap_oid = snmp_mib.NOTIFICATIONS.get(trap, trap)
    address = f"udp:127.0.0.1:{receiver.port}"
    await cli(server, tool, *security, *wait, address, uptime, trap_oid, *varbinds)


LINK_DOWN_VARBINDS = [  # ifIndex.3, ifAdminStatus.3 (up), ifOperStatus.3 (down)
    *("1.3.6.1.2.1.2.2.1.1.3", "i", "3"),
    *("1.3.6.1.2.1.2.2.1.7.3", "i", "1"),
    *("1.3.6.1.2.1.2.2.1.8.3", "i", "2"),
]


async def test_v2c_trap_from_snmptrap(snmpd: SnmpdServer, traps: TrapReceiver) -> None:
    await notify(snmpd, traps, "snmptrap", V2C, "linkDown", *LINK_DOWN_VARBINDS, uptime="4242")
    event = await traps.get(timeout_s=10)
    assert event.name == "snmp.trap"
    assert event.tags["device"] == "lab-r1"
    assert event.tags["trap"] == "linkDown"
    assert event.tags["trap_oid"] == "1.3.6.1.6.3.1.1.5.3"
    assert event.tags["version"] == "2c"
    assert event.tags["pdu"] == "trap"
    assert event.tags["ifindex"] == "3"
    assert event.values == {
        "sysUpTime.0": 4242,
        "ifIndex.3": 3,
        "ifAdminStatus.3": 1,
        "ifOperStatus.3": 2,
    }
    assert TRAP_COMMUNITY not in repr(event)


async def test_v2c_inform_is_acknowledged(snmpd: SnmpdServer, traps: TrapReceiver) -> None:
    # snmpinform exits 0 only once the receiver acknowledged the inform.
    await notify(snmpd, traps, "snmpinform", V2C, "linkUp", *LINK_DOWN_VARBINDS[:3])
    event = await traps.get(timeout_s=10)
    assert event.tags["trap"] == "linkUp"
    assert event.tags["pdu"] == "inform"
    assert event.values["ifIndex.3"] == 3


async def test_v3_trap_and_inform(snmpd: SnmpdServer, traps: TrapReceiver) -> None:
    sha, sha256 = snmpd.user("oss-sha"), snmpd.user("oss-sha256")
    as_sender = [*sha256.cli_args(), "-e", "0x" + SENDER_ENGINE_ID.hex()]
    await notify(snmpd, traps, "snmptrap", as_sender, "linkDown", *LINK_DOWN_VARBINDS)
    trap = await traps.get(timeout_s=10)
    restarted = ("1.3.6.1.2.1.1.5.0", "s", "r1 restarted")
    await notify(snmpd, traps, "snmpinform", sha.cli_args(), "warmStart", *restarted)
    inform = await traps.get(timeout_s=10)
    assert (trap.tags["trap"], trap.tags["version"], trap.tags["pdu"]) == ("linkDown", "3", "trap")
    assert trap.tags["user"] == "oss-sha256"
    assert trap.values["ifOperStatus.3"] == 2
    assert (inform.tags["trap"], inform.tags["pdu"], inform.tags["user"]) == (
        "warmStart",
        "inform",
        "oss-sha",
    )
    assert inform.values["sysName.0"] == "r1 restarted"


async def test_v1_trap_is_translated(snmpd: SnmpdServer, traps: TrapReceiver) -> None:
    # SNMPv1: enterprise, agent address, generic-trap 2 (linkDown), specific 0, uptime
    v1 = ["-v1", "-c", TRAP_COMMUNITY]
    address = f"udp:127.0.0.1:{traps.port}"
    header = ["1.3.6.1.4.1.8072.3.2.10", "127.0.0.1", "2", "0", "777"]
    await cli(snmpd, "snmptrap", *v1, address, *header, *LINK_DOWN_VARBINDS)
    event = await traps.get(timeout_s=10)
    assert (event.tags["trap"], event.tags["version"]) == ("linkDown", "1")
    assert event.values["sysUpTime.0"] == 777
    assert event.values["ifOperStatus.3"] == 2


async def test_unknown_trap_is_kept_with_its_oid(snmpd: SnmpdServer, traps: TrapReceiver) -> None:
    enterprise = "1.3.6.1.4.1.99999.0.7"
    await notify(
        snmpd, traps, "snmptrap", V2C, enterprise, "1.3.6.1.4.1.99999.1.1.0", "x", "DEADBEEF"
    )
    event = await traps.get(timeout_s=10)
    assert event.tags["trap"] == enterprise
    assert event.tags["trap_oid"] == enterprise
    assert event.values["1.3.6.1.4.1.99999.1.1.0"] == "0xdeadbeef"


async def test_trap_with_a_wrong_community_is_ignored(
    snmpd: SnmpdServer, traps: TrapReceiver
) -> None:
    await notify(snmpd, traps, "snmptrap", ["-v2c", "-c", "wrong-community"], "coldStart")
    await notify(snmpd, traps, "snmptrap", V2C, "warmStart")
    event = await traps.get(timeout_s=10)
    assert event.tags["trap"] == "warmStart"  # the coldStart before it never became an event
    assert traps.received == 1


async def test_traps_sent_by_snmpd_itself(traps: TrapReceiver) -> None:
    sinks = [
        Sink("127.0.0.1", traps.port, TRAP_COMMUNITY),
        Sink("127.0.0.1", traps.port, TRAP_COMMUNITY, inform=True),
    ]
    seen: list[Event] = []
    with running_snmpd(sinks=sinks, sys_name="trapper") as agent:
        # coldStart at start-up, once as a trap and once as an inform
        for _ in range(2):
            seen.append(await traps.get(timeout_s=15))
        # a request with a wrong community: dropped, and reported by authenticationFailure
        proc = await asyncio.create_subprocess_exec(
            "snmpget",
            "-v2c",
            "-c",
            "intruder",
            "-t",
            "0.3",
            "-r",
            "0",
            agent.address,
            "1.3.6.1.2.1.1.5.0",
            env=agent.cli_env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert await proc.wait() != 0
        for _ in range(2):
            seen.append(await traps.get(timeout_s=15))
    cold = [e for e in seen if e.tags["trap"] == "coldStart"]
    auth = [e for e in seen if e.tags["trap"] == "authenticationFailure"]
    assert sorted(e.tags["pdu"] for e in cold) == ["inform", "trap"]
    assert sorted(e.tags["pdu"] for e in auth) == ["inform", "trap"]
    assert all(e.tags["device"] == "lab-r1" and e.tags["version"] == "2c" for e in seen)


async def test_a_full_queue_drops_and_counts(snmpd: SnmpdServer) -> None:
    arrived = asyncio.Event()
    count = 0

    def on_event(event: Event) -> None:
        nonlocal count
        count += 1
        if count == 4:
            arrived.set()

    async with TrapReceiver(
        "127.0.0.1", 0, communities=[TRAP_COMMUNITY], on_event=on_event, queue_size=2
    ) as receiver:
        for n in range(4):
            await notify(snmpd, receiver, "snmptrap", V2C, "linkUp", uptime=str(n))
        await asyncio.wait_for(arrived.wait(), 10)
        assert receiver.received == 4
        assert receiver.queue_depth == 2
        assert receiver.dropped == 2
        kept = [await receiver.get(timeout_s=1) for _ in range(2)]
    assert [e.values["sysUpTime.0"] for e in kept] == [0, 1]


async def test_receiver_iterates_until_stopped(snmpd: SnmpdServer) -> None:
    receiver = TrapReceiver("127.0.0.1", 0, communities=[TRAP_COMMUNITY])
    await receiver.start()
    received: list[Event] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for event in receiver:
            received.append(event)
            first.set()

    async with asyncio.TaskGroup() as tasks:
        consumer = tasks.create_task(consume())
        await notify(snmpd, receiver, "snmptrap", V2C, "coldStart")
        await asyncio.wait_for(first.wait(), 10)
        await receiver.stop()
        await asyncio.wait_for(consumer, 5)
    assert [e.tags["trap"] for e in received] == ["coldStart"]

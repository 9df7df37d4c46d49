"""The simulated agent's lean BER path, checked against pysnmp: requests encoded by pysnmp (and
by Net-SNMP's tools, captured off a socket), responses decoded by pysnmp and compared with an
oracle built here from the device model with pysnmp's own types, byte for byte against what
pysnmp encodes for the same answer."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v2c

from drivers import ber
from drivers.snmp_trap_codec import TrapCodec
from lab.sim import model as sim_model
from lab.sim import snmp_agent
from lab.sim.datastore import Datastores
from lab.sim.model import SimDevice, iface_path
from lab.sim.snmp_agent import MAX_MESSAGE, SnmpAgent

COMMUNITY = "lab-community"
U32 = 0xFFFFFFFF
SYS = (1, 3, 6, 1, 2, 1, 1)
IF_NUMBER = (1, 3, 6, 1, 2, 1, 2, 1, 0)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
IF_ADMIN = (*IF_ENTRY, 7)
IF_ALIAS = (*IFX_ENTRY, 18)
Oid = tuple[int, ...]


class _FrozenClock:
    """time for lab.sim.model and the agent: counters and uptimes that do not move."""

    def __init__(self) -> None:
        self.mono = time.monotonic_ns() + 5_000_000_000
        self.wall = time.time_ns()

    def monotonic_ns(self) -> int:
        return self.mono

    def time_ns(self) -> int:
        return self.wall


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _FrozenClock:
    frozen = _FrozenClock()
    monkeypatch.setattr(sim_model, "time", frozen)
    monkeypatch.setattr(snmp_agent, "time", frozen)
    return frozen


def make_device(count: int = 12, prefix: str = "eth") -> tuple[SimDevice, Datastores]:
    device = SimDevice("r1", interfaces=[f"{prefix}{i}" for i in range(1, count + 1)])
    for n, name in enumerate(device.interfaces):
        if n % 3:
            device.set_link_up(name, True)  # a third stay oper-down
        device.set_traffic(name, 7_000_000_000 + n)
    device.running[iface_path("eth2", "config/description")] = "to r2"
    device.running[iface_path("eth2", "config/mtu")] = 9000
    return device, Datastores(device)


@pytest.fixture
def agent(clock: _FrozenClock) -> SnmpAgent:
    device, datastores = make_device()
    # 30 s of traffic at the frozen instant: counters well past 2^32 where they wrap
    clock.mono += 30_000_000_000
    return SnmpAgent(device, datastores, community=COMMUNITY)


def oracle(device: SimDevice) -> list[tuple[Oid, Any]]:
    """The device's whole MIB view in pysnmp's types, in OID order: what the agent must say."""
    rows: dict[Oid, Any] = {
        (*SYS, 1, 0): v2c.OctetString(device.sys_descr),
        (*SYS, 2, 0): v2c.ObjectIdentifier(device.sys_object_id),
        (*SYS, 3, 0): v2c.TimeTicks(device.uptime_ticks() & U32),
        (*SYS, 4, 0): v2c.OctetString("oss lab <lab@localhost>"),
        (*SYS, 5, 0): v2c.OctetString(device.name),
        (*SYS, 6, 0): v2c.OctetString("oss simulated lab"),
        (*SYS, 7, 0): v2c.Integer(6),
        IF_NUMBER: v2c.Integer(len(device.interfaces)),
    }
    for name, iface in device.interfaces.items():
        i, c = iface.index, device.counters(name)
        leaf = device.running
        if_columns = {
            1: v2c.Integer(i),
            2: v2c.OctetString(name),
            3: v2c.Integer(6),
            4: v2c.Integer(leaf[iface_path(name, "config/mtu")]),
            5: v2c.Gauge32(min(iface.speed_bps, U32)),
            6: v2c.OctetString(snmp_agent._mac(device, name)),
            7: v2c.Integer(1 if device.admin_up(name) else 2),
            8: v2c.Integer(1 if device.oper_up(name) else 2),
            9: v2c.TimeTicks(snmp_agent._last_change(device, name)),
            10: v2c.Counter32(c["in-octets"] & U32),
            11: v2c.Counter32(c["in-unicast-pkts"] & U32),
            13: v2c.Counter32(c["in-discards"] & U32),
            14: v2c.Counter32(c["in-errors"] & U32),
            16: v2c.Counter32(c["out-octets"] & U32),
            17: v2c.Counter32(c["out-unicast-pkts"] & U32),
            19: v2c.Counter32(c["out-discards"] & U32),
            20: v2c.Counter32(c["out-errors"] & U32),
        }
        ifx_columns = {
            1: v2c.OctetString(name),
            6: v2c.Counter64(c["in-octets"]),
            7: v2c.Counter64(c["in-unicast-pkts"]),
            10: v2c.Counter64(c["out-octets"]),
            11: v2c.Counter64(c["out-unicast-pkts"]),
            15: v2c.Gauge32(iface.speed_bps // 1_000_000),
            18: v2c.OctetString(str(leaf[iface_path(name, "config/description")])),
        }
        rows.update({(*IF_ENTRY, col, i): value for col, value in if_columns.items()})
        rows.update({(*IFX_ENTRY, col, i): value for col, value in ifx_columns.items()})
    return sorted(rows.items())


def oracle_next(view: list[tuple[Oid, Any]], oid: Oid) -> tuple[Oid, Any]:
    for name, value in view:
        if name > oid:
            return name, value
    return oid, v2c.EndOfMibView("")


def oracle_bulk(
    view: list[tuple[Oid, Any]], oids: list[Oid], non_repeaters: int, repetitions: int
) -> list[tuple[Oid, Any]]:
    out = [oracle_next(view, oid) for oid in oids[:non_repeaters]]
    cursors = oids[non_repeaters:]
    for _ in range(min(repetitions, 1000 // len(cursors)) if cursors else 0):
        row = [oracle_next(view, oid) for oid in cursors]
        out.extend(row)
        cursors = [oid for oid, _ in row]
        if all(isinstance(value, v2c.EndOfMibView) for _, value in row):
            break
    return out


# --- messages --------------------------------------------------------------------------------


def request(
    kind: str,
    varbinds: list[tuple[Oid, Any]],
    *,
    community: str = COMMUNITY,
    request_id: int = 4242,
    non_repeaters: int = 0,
    repetitions: int = 10,
) -> bytes:
    pdu_type = {
        "get": v2c.GetRequestPDU,
        "next": v2c.GetNextRequestPDU,
        "bulk": v2c.GetBulkRequestPDU,
        "set": v2c.SetRequestPDU,
    }[kind]
    pdu = pdu_type()
    if kind == "bulk":
        v2c.apiBulkPDU.set_defaults(pdu)
        v2c.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
        v2c.apiBulkPDU.set_max_repetitions(pdu, repetitions)
    else:
        v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    v2c.apiPDU.set_varbinds(pdu, varbinds)
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, community)
    v2c.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def nulls(*oids: Oid) -> list[tuple[Oid, Any]]:
    return [(oid, v2c.Null("")) for oid in oids]


def expected_response(
    varbinds: list[tuple[Oid, Any]], *, request_id: int = 4242, status: int = 0, index: int = 0
) -> bytes:
    """What pysnmp itself encodes for this answer."""
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, request_id)
    v2c.apiPDU.set_error_status(pdu, status)
    v2c.apiPDU.set_error_index(pdu, index)
    v2c.apiPDU.set_varbinds(pdu, varbinds)
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, COMMUNITY)
    v2c.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def decoded(response: bytes | None) -> tuple[int, int, int, list[tuple[Oid, Any]]]:
    """(request-id, error-status, error-index, varbinds) as pysnmp decodes the response."""
    assert response is not None
    message, rest = decoder.decode(response, asn1Spec=v2c.Message())
    assert rest == b""
    assert bytes(v2c.apiMessage.get_community(message)) == COMMUNITY.encode()
    pdu = v2c.apiMessage.get_pdu(message)
    assert pdu.tagSet == v2c.ResponsePDU.tagSet
    varbinds = [(tuple(oid), value) for oid, value in v2c.apiPDU.get_varbinds(pdu)]
    return (
        int(v2c.apiPDU.get_request_id(pdu)),
        int(v2c.apiPDU.get_error_status(pdu)),
        int(v2c.apiPDU.get_error_index(pdu)),
        varbinds,
    )


def same(got: list[tuple[Oid, Any]], want: list[tuple[Oid, Any]]) -> None:
    assert [(oid, type(v).__name__, v.prettyPrint()) for oid, v in got] == [
        (oid, type(v).__name__, v.prettyPrint()) for oid, v in want
    ]


# --- reads -----------------------------------------------------------------------------------


def test_get_of_every_object_matches_pysnmp(agent: SnmpAgent) -> None:
    view = oracle(agent.device)
    assert len(view) == 8 + 12 * (17 + 7)
    for start in range(0, len(view), 40):
        chunk = view[start : start + 40]
        response = agent.handle(request("get", nulls(*(oid for oid, _ in chunk))))
        assert response == expected_response(chunk)
        _, status, index, varbinds = decoded(response)
        assert (status, index) == (0, 0)
        same(varbinds, chunk)


def test_counters_are_64_bit_and_32_bit_views_of_one_value(agent: SnmpAgent) -> None:
    wanted = [(*IFX_ENTRY, 10, 2), (*IF_ENTRY, 16, 2)]  # ifHCOutOctets, ifOutOctets
    _, _, _, varbinds = decoded(agent.handle(request("get", nulls(*wanted))))
    hc, low = (int(value) for _, value in varbinds)
    assert hc > U32  # past the 32-bit wrap, so the test says something
    assert low == hc & U32
    assert isinstance(varbinds[0][1], v2c.Counter64)
    assert isinstance(varbinds[1][1], v2c.Counter32)


def test_get_of_missing_objects_and_instances(agent: SnmpAgent) -> None:
    asked = [
        (*SYS, 5, 1),
        (*SYS, 5, 0),
        (1, 3, 6, 1, 4, 1, 9, 9),
        (*IF_ENTRY, 2, 99),
        (*IF_ENTRY, 12, 1),
    ]
    response = agent.handle(request("get", nulls(*asked)))
    _, _, _, varbinds = decoded(response)
    assert [type(v).__name__ for _, v in varbinds] == [
        "NoSuchInstance",
        "OctetString",
        "NoSuchObject",
        "NoSuchInstance",
        "NoSuchObject",  # ifInNUcastPkts (12) is not served
    ]
    assert [oid for oid, _ in varbinds] == asked
    assert response == expected_response(varbinds)


def test_getnext_walks_the_whole_view_then_end_of_mib(agent: SnmpAgent) -> None:
    view = oracle(agent.device)
    cursor: Oid = (1, 3)
    walked = []
    for _ in range(len(view) + 1):
        response = agent.handle(request("next", nulls(cursor)))
        _, _, _, [(oid, value)] = decoded(response)
        assert response == expected_response([(oid, value)])
        if isinstance(value, v2c.EndOfMibView):
            assert oid == cursor  # the name asked for, as RFC 3416 says
            break
        walked.append((oid, value))
        cursor = oid
    same(walked, view)


def test_getnext_from_names_between_and_beyond_objects(agent: SnmpAgent) -> None:
    view = oracle(agent.device)
    asked: list[Oid] = [
        (0, 0),
        (1, 3, 6, 1, 2, 1, 2, 2, 1, 10),
        (*IF_ENTRY, 10, 12, 7),
        (*IFX_ENTRY, 18, 12),
        (2, 5),
    ]
    response = agent.handle(request("next", nulls(*asked)))
    want = [oracle_next(view, oid) for oid in asked]
    same(decoded(response)[3], want)
    assert response == expected_response(want)


@pytest.mark.parametrize(
    ("roots", "non_repeaters", "repetitions"),
    [
        ([IFX_ENTRY[:-1]], 0, 25),  # the poller's ifXTable walk
        ([(*IF_ENTRY[:-1],)], 0, 25),  # ifTable
        ([(*SYS, 3), (*IF_ENTRY, 10), (*IF_ENTRY, 16)], 1, 5),  # uptime + two columns
        ([(*IFX_ENTRY, 18, 10)], 0, 50),  # runs off the end of the view
        ([(*SYS, 1), (*IFX_ENTRY, 18, 12)], 0, 4),  # one column ends, the other goes on
        ([(*SYS, 1), (*SYS, 2)], 2, 10),  # non-repeaters only
        ([(*SYS, 1)], 5, 10),  # non-repeaters above the count: all of them
        ([(*SYS, 1)], 0, 0),  # no repetitions
        ([(1, 3)] * 3, 0, 1000),  # capped at 1000 varbinds
    ],
)
def test_getbulk_matches_the_oracle(
    agent: SnmpAgent, roots: list[Oid], non_repeaters: int, repetitions: int
) -> None:
    view = oracle(agent.device)
    response = agent.handle(
        request("bulk", nulls(*roots), non_repeaters=non_repeaters, repetitions=repetitions)
    )
    want = oracle_bulk(view, roots, non_repeaters, repetitions)
    request_id, status, index, varbinds = decoded(response)
    assert (request_id, status, index) == (4242, 0, 0)
    same(varbinds, want)
    assert response == expected_response(want)


def test_a_response_that_would_be_too_big_is_cut_in_halves(clock: _FrozenClock) -> None:
    device, datastores = make_device(count=100, prefix="x" * 110)
    agent = SnmpAgent(device, datastores, community=COMMUNITY)
    columns = [(*IF_ENTRY, 2), (*IFX_ENTRY, 1)] * 5  # ifDescr / ifName: 115-octet strings
    response = agent.handle(request("bulk", nulls(*columns), repetitions=100))
    assert response is not None
    assert len(response) <= MAX_MESSAGE
    want = oracle_bulk(oracle(device), columns, 0, 100)
    assert len(want) == 1000  # about 130 kB in full
    _, _, _, varbinds = decoded(response)
    assert len(varbinds) == 500
    same(varbinds, want[:500])


def test_request_ids_are_echoed_across_the_integer32_range(agent: SnmpAgent) -> None:
    for request_id in (0, 1, 127, 128, -1, -129, 2**31 - 1, -(2**31)):
        response = agent.handle(request("get", nulls((*SYS, 5, 0)), request_id=request_id))
        assert decoded(response)[0] == request_id


# --- sets ------------------------------------------------------------------------------------


def test_set_admin_status_and_alias(agent: SnmpAgent) -> None:
    alias = "to r9 ü".encode()  # UTF-8 (pysnmp would write a str as latin-1)
    varbinds = [((*IF_ADMIN, 3), v2c.Integer(2)), ((*IF_ALIAS, 3), v2c.OctetString(alias))]
    response = agent.handle(request("set", varbinds))
    assert response == expected_response(varbinds)
    device = agent.device
    assert device.running[iface_path("eth3", "config/enabled")] is False
    assert device.running[iface_path("eth3", "config/description")] == "to r9 ü"
    # read back as set (UTF-8 both ways)
    _, _, _, got = decoded(agent.handle(request("get", nulls((*IF_ALIAS, 3), (*IF_ADMIN, 3)))))
    assert bytes(got[0][1]).decode() == "to r9 ü"
    assert int(got[1][1]) == 2


@pytest.mark.parametrize(
    ("varbinds", "status", "index"),
    [
        ([((*IF_ADMIN, 1), v2c.OctetString("up"))], 7, 1),  # wrongType
        ([((*IF_ADMIN, 1), v2c.Counter32(1))], 7, 1),  # not an INTEGER either
        ([((*IF_ALIAS, 1), v2c.Integer(1))], 7, 1),
        ([((*IF_ALIAS, 1), v2c.OctetString("d")), ((*IF_ADMIN, 1), v2c.Integer(3))], 10, 2),
        ([((*IF_ALIAS, 1), v2c.OctetString("x" * 65))], 8, 1),  # wrongLength
        ([((*IF_ALIAS, 1), v2c.OctetString(b"\xff\xfe"))], 10, 1),  # not UTF-8
        ([((*IF_ENTRY, 2, 1), v2c.OctetString("eth9"))], 17, 1),  # ifDescr: notWritable
        ([((*IF_ENTRY, 2, 77), v2c.OctetString("eth9"))], 17, 1),  # known column
        ([((1, 3, 6, 1, 4, 1, 1, 1), v2c.Integer(1))], 11, 1),  # noCreation
    ],
)
def test_set_errors_change_nothing(
    agent: SnmpAgent, varbinds: list[tuple[Oid, Any]], status: int, index: int
) -> None:
    before = dict(agent.device.running)
    response = agent.handle(request("set", varbinds))
    assert response == expected_response(varbinds, status=status, index=index)
    assert agent.device.running == before


def test_set_refused_while_running_is_locked(agent: SnmpAgent) -> None:
    agent.datastores.lock("running", 7)
    varbinds = [((*IF_ADMIN, 1), v2c.Integer(2))]
    response = agent.handle(request("set", varbinds))
    assert response == expected_response(varbinds, status=13, index=1)  # resourceUnavailable
    assert agent.device.admin_up("eth1")


# --- what is dropped -------------------------------------------------------------------------


def test_other_communities_versions_and_pdus_are_dropped(agent: SnmpAgent) -> None:
    get = nulls((*SYS, 5, 0))
    assert agent.handle(request("get", get, community="public")) is None
    assert agent.handle(request("get", get, community=COMMUNITY + "x")) is None
    assert agent.handle(request("get", get, community=COMMUNITY[:-1])) is None
    v1_message = bytearray(request("get", get))
    assert v1_message[2:5] == b"\x02\x01\x01"
    v1_message[4] = 0  # version 0: SNMPv1
    assert agent.handle(bytes(v1_message)) is None
    response = agent.handle(request("get", get))
    assert response is not None
    assert agent.handle(response) is None  # a Response PDU is not a request
    trap = agent.trap_message(snmp_agent.COLD_START, [])
    assert agent.handle(trap) is None


def raw_message(pdu_tag: int, fields: tuple[int, int, int], value: bytes) -> bytes:
    """A request built by hand, for what pysnmp refuses to encode."""
    varbind = ber.tlv(ber.SEQUENCE, ber.oid_tlv((*SYS, 5, 0)) + value)
    head = b"".join(ber.integer_tlv(field) for field in fields)
    pdu = ber.tlv(pdu_tag, head + ber.tlv(ber.SEQUENCE, varbind))
    community = ber.octets_tlv(COMMUNITY.encode())
    return ber.tlv(ber.SEQUENCE, ber.integer_tlv(1) + community + pdu)


NULL = ber.empty_tlv(ber.NULL)


def test_a_hand_built_request_is_answered() -> None:
    # the control for the next test: the same builder, in-range values
    device, datastores = make_device(count=2)
    agent = SnmpAgent(device, datastores, community=COMMUNITY)
    assert agent.handle(raw_message(ber.GET_BULK_REQUEST, (1, 0, 1), NULL)) is not None
    assert agent.handle(raw_message(ber.GET_REQUEST, (1, 0, 0), ber.integer_tlv(5))) is not None


@pytest.mark.parametrize(
    "message",
    [
        raw_message(ber.GET_BULK_REQUEST, (1, 0, -1), NULL),  # pysnmp refuses negative counts
        raw_message(ber.GET_BULK_REQUEST, (1, -1, 5), NULL),
        raw_message(ber.GET_REQUEST, (2**31, 0, 0), NULL),  # request-id is an Integer32
        raw_message(ber.GET_REQUEST, (1, 0, -1), NULL),  # error-index 0..max-bindings
        raw_message(ber.GET_REQUEST, (1, 0, 0), ber.integer_tlv(2**40)),  # not an Integer32
        raw_message(ber.GET_REQUEST, (1, 0, 0), ber.tlv(ber.COUNTER32, b"\x01\x00\x00\x00\x00")),
        raw_message(ber.GET_REQUEST, (1, 0, 0), ber.tlv(ber.IP_ADDRESS, b"\x7f\x00\x01")),
        raw_message(ber.GET_REQUEST, (1, 0, 0), ber.tlv(0x47, b"")),  # unknown type
        raw_message(ber.GET_REQUEST, (1, 0, 0), ber.tlv(ber.NULL, b"\x00")),
    ],
)
def test_requests_pysnmp_would_not_decode_are_dropped(agent: SnmpAgent, message: bytes) -> None:
    assert agent.handle(message) is None


def _mutations(seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    samples = [
        request("get", nulls((*SYS, 5, 0), (*IF_ENTRY, 10, 1))),
        request("bulk", nulls((*IF_ENTRY, 10), (*IFX_ENTRY, 6)), non_repeaters=1),
        request(
            "set", [((*IF_ALIAS, 1), v2c.OctetString("abc")), ((*IF_ADMIN, 2), v2c.Integer(1))]
        ),
    ]
    yield b""
    yield b"\x30"
    yield b"\x30\x80\x02\x01\x01\x00\x00"  # indefinite length
    yield b"\x30\x84\xff\xff\xff\xff"
    for sample in samples:
        for cut in range(len(sample)):
            yield sample[:cut]
        for _ in range(300):
            mutated = bytearray(sample)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            yield bytes(mutated)
    for _ in range(300):
        yield bytes(rng.randrange(256) for _ in range(rng.randint(1, 80)))


def test_garbage_never_raises(agent: SnmpAgent) -> None:
    answered = 0
    for message in _mutations(seed=5):
        response = agent.handle(message)
        if response is not None:
            decoded(response)  # whatever is answered, pysnmp can read
            answered += 1
    assert answered > 0  # some mutations only touch values: still answered


# --- traps -----------------------------------------------------------------------------------


def test_trap_message_decodes_with_pysnmp_and_the_trap_codec(agent: SnmpAgent) -> None:
    index = 4
    message = agent.trap_message(
        snmp_agent.LINK_DOWN,
        [
            ((*IF_ENTRY, 1, index), snmp_agent.integer_tlv(index)),
            ((*IF_ENTRY, 7, index), snmp_agent.integer_tlv(1)),
            ((*IF_ENTRY, 8, index), snmp_agent.integer_tlv(2)),
        ],
    )
    parsed, rest = decoder.decode(message, asn1Spec=v2c.Message())
    assert rest == b""
    pdu = v2c.apiMessage.get_pdu(parsed)
    assert pdu.tagSet == v2c.TrapPDU.tagSet
    varbinds = [(tuple(oid), value) for oid, value in v2c.apiTrapPDU.get_varbinds(pdu)]
    same(
        varbinds,
        [
            ((*SYS, 3, 0), v2c.TimeTicks(agent.device.uptime_ticks())),
            ((1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), v2c.ObjectIdentifier(snmp_agent.LINK_DOWN)),
            ((*IF_ENTRY, 1, index), v2c.Integer(index)),
            ((*IF_ENTRY, 7, index), v2c.Integer(1)),
            ((*IF_ENTRY, 8, index), v2c.Integer(2)),
        ],
    )
    assert encoder.encode(parsed) == message  # canonical, as pysnmp writes it
    note = TrapCodec([COMMUNITY.encode()]).decode(message)
    assert note.trap_oid == "1.3.6.1.6.3.1.1.5.3"


async def test_traps_go_to_receivers_on_start_and_on_link_changes() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    device, datastores = make_device(count=4)
    agent = SnmpAgent(
        device, datastores, community=COMMUNITY, trap_receivers=[receiver.getsockname()]
    )
    codec = TrapCodec([COMMUNITY.encode()])
    loop = asyncio.get_running_loop()
    try:
        await agent.start("127.0.0.1", 0)
        cold = codec.decode(await asyncio.wait_for(loop.sock_recv(receiver, 2048), 5))
        assert cold.trap_oid == "1.3.6.1.6.3.1.1.5.1"
        device.set_link_up("eth2", False)
        down = codec.decode(await asyncio.wait_for(loop.sock_recv(receiver, 2048), 5))
        assert down.trap_oid == "1.3.6.1.6.3.1.1.5.3"
        assert dict(down.varbinds)["1.3.6.1.2.1.2.2.1.8.2"] == 2  # ifOperStatus down
        assert agent.traps_sent == 2
        # and a request over the socket is answered
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        try:
            await loop.sock_sendto(
                client, request("get", nulls((*SYS, 5, 0))), ("127.0.0.1", agent.port)
            )
            reply = await asyncio.wait_for(loop.sock_recv(client, 4096), 5)
        finally:
            client.close()
        assert bytes(decoded(reply)[3][0][1]) == b"r1"
    finally:
        await agent.stop()
        receiver.close()


# --- Net-SNMP's encoder ----------------------------------------------------------------------


def _capture(args: list[str]) -> bytes:
    """The request a Net-SNMP tool sends (to a socket that never answers)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(5)
    port = sink.getsockname()[1]
    try:
        tool = subprocess.Popen(
            [
                args[0],
                "-v2c",
                "-c",
                COMMUNITY,
                "-m",
                "",
                "-t",
                "1",
                "-r",
                "0",
                f"udp:127.0.0.1:{port}",
                *args[1:],
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            data, _ = sink.recvfrom(65535)
        finally:
            tool.kill()
            tool.wait()
    finally:
        sink.close()
    return data


@pytest.mark.skipif(shutil.which("snmpbulkget") is None, reason="Net-SNMP tools not installed")
@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["snmpget", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.2.2.1.10.3"], "get"),
        (["snmpgetnext", "1.3.6.1.2.1.31.1.1.1.6"], "next"),
        (["snmpbulkget", "-Cn1", "-Cr25", "1.3.6.1.2.1.1.3", "1.3.6.1.2.1.31.1.1"], "bulk"),
        (["snmpset", "1.3.6.1.2.1.31.1.1.1.18.5", "s", "via net-snmp"], "set"),
    ],
)
def test_requests_encoded_by_net_snmp(agent: SnmpAgent, args: list[str], kind: str) -> None:
    message = _capture(args)
    parsed, _ = decoder.decode(message, asn1Spec=v2c.Message())
    pdu = v2c.apiMessage.get_pdu(parsed)
    request_id = int(v2c.apiPDU.get_request_id(pdu))
    asked = [(tuple(oid), value) for oid, value in v2c.apiPDU.get_varbinds(pdu)]
    view = oracle(agent.device)
    if kind == "get":
        want = [(oid, dict(view)[oid]) for oid, _ in asked]
    elif kind == "next":
        want = [oracle_next(view, oid) for oid, _ in asked]
    elif kind == "bulk":
        want = oracle_bulk(view, [oid for oid, _ in asked], 1, 25)
    else:
        want = asked
    response = agent.handle(message)
    assert response == expected_response(want, request_id=request_id)
    if kind == "set":
        assert agent.device.running[iface_path("eth5", "config/description")] == "via net-snmp"


def test_requests_are_counted_by_source_the_most_recent_kept(agent: SnmpAgent) -> None:
    """Who polls the device (the cluster tests tell instances apart by it): per source address,
    the most recent `SOURCES_KEPT`; a message for another community is not counted."""
    asked = request("get", nulls((*SYS, 3, 0)))
    for port in range(snmp_agent.SOURCES_KEPT + 2):
        agent.handle(asked, ("127.0.0.1", 40000 + port))
    agent.handle(asked, ("127.0.0.1", 40002))
    assert agent.handle(request("get", nulls((*SYS, 3, 0)), community="other"), ("h", 1)) is None
    sources = agent.requests_by_source
    assert len(sources) == snmp_agent.SOURCES_KEPT and "h:1" not in sources
    assert "127.0.0.1:40000" not in sources and "127.0.0.1:40001" not in sources  # oldest gone
    assert sources["127.0.0.1:40002"] == 2 and list(sources)[-1] == "127.0.0.1:40002"

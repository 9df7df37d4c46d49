"""The trap receiver's lean path on a real loopback socket: broken datagrams are counted and
logged (rate-limited, per source), never stop it; informs are acknowledged; an ICMP error for
a response sent is noted, not fatal."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from pyasn1.codec.ber import decoder
from pysnmp.proto.api import v2c

from drivers.snmp_traps import TrapReceiver
from tests.unit.drivers.test_snmp_trap_codec import COMMUNITY, v1_message, v2c_message

IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux's value; older Pythons do not name it


async def _send(sock: socket.socket, port: int, *packets: bytes) -> None:
    for packet in packets:
        sock.sendto(packet, ("127.0.0.1", port))
    await asyncio.sleep(0)


async def test_broken_datagrams_are_counted_and_logged_once_per_source_host(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.snmp_traps")
    async with TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()]) as receiver:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as two,
        ):
            one.bind(("127.0.0.1", 0))
            two.bind(("127.0.0.2", 0))
            one_port, two_port = one.getsockname()[1], two.getsockname()[1]
            garbage = [b"", b"\x30", b"hello", v2c_message()[:40], b"\x30\x80\x02\x01\x01"]
            await _send(one, receiver.port, *garbage)
            await _send(two, receiver.port, v2c_message(community=b"guess"), v2c_message())
            event = await receiver.get(timeout_s=5)
        assert event.tags["trap_oid"] == "1.3.6.1.4.1.99999.0.7"
        assert event.tags["version"] == "2c"
        assert (receiver.malformed, receiver.bad_community, receiver.received) == (5, 1, 1)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # the first of each source; the rest suppressed
    assert f"127.0.0.1:{one_port}" in warnings[0]
    assert "truncated" in warnings[0] or "SEQUENCE" in warnings[0]
    assert f"127.0.0.2:{two_port}" in warnings[1] and "unknown community" in warnings[1]
    assert all("guess" not in w and COMMUNITY.decode() not in w for w in warnings)


async def test_inform_is_acknowledged_and_v1_has_no_community() -> None:
    async with TrapReceiver(
        "127.0.0.1", 0, communities=[COMMUNITY.decode()], devices={"127.0.0.1": "r1"}
    ) as receiver:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await _send(sock, receiver.port, v2c_message(v2c.InformRequestPDU, request_id=99))
            reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
            inform = await receiver.get(timeout_s=5)
            await _send(sock, receiver.port, v1_message(2))
            trap = await receiver.get(timeout_s=5)
    message, _ = decoder.decode(reply, asn1Spec=v2c.Message())
    pdu = v2c.apiMessage.get_pdu(message)
    assert pdu.tagSet == v2c.ResponsePDU.tagSet
    assert int(v2c.apiPDU.get_request_id(pdu)) == 99
    assert (inform.tags["pdu"], inform.tags["device"], inform.tags["trap"]) == (
        "inform",
        "r1",
        "1.3.6.1.4.1.99999.0.7",
    )
    assert inform.values["sysUpTime.0"] == 4242
    assert inform.values["1.3.6.1.4.1.99999.1.2"] == "0x00ff62696e617279"
    assert inform.values["1.3.6.1.4.1.99999.1.4"] == ""
    assert (trap.tags["trap"], trap.tags["version"], trap.tags["ifindex"]) == ("linkDown", "1", "3")
    assert trap.values == {
        "sysUpTime.0": 777,
        "snmpTrapAddress.0": "192.0.2.7",
        "snmpTrapEnterprise.0": "1.3.6.1.4.1.8072.3.2.10",
        "ifIndex.3": 3,
        "sysName.0": "r1",
    }


async def test_sources_follow_the_inventory_devices_and_their_communities() -> None:
    async with TrapReceiver("127.0.0.1", 0, communities=["configured"]) as receiver:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.3", 0))
            await _send(sock, receiver.port, v2c_message())  # the device's own community
            with pytest.raises(TimeoutError):
                await receiver.get(timeout_s=0.5)
            assert receiver.bad_community == 1

            receiver.update_sources({"127.0.0.3": "pe1"}, [COMMUNITY.decode()])
            await _send(sock, receiver.port, v2c_message())
            event = await receiver.get(timeout_s=5)
            assert event.tags["device"] == "pe1"
            await _send(sock, receiver.port, v2c_message(community=b"configured"))
            assert (await receiver.get(timeout_s=5)).tags["device"] == "pe1"


async def test_an_icmp_error_for_a_sent_response_does_not_stop_the_receiver(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The inform's acknowledgement goes to a port closed meanwhile: the kernel's ICMP port
    unreachable surfaces on the receiver's next read (Linux reports it on an unconnected UDP
    socket with IP_RECVERR, as other systems do without it). It is noted and reading goes on."""
    caplog.set_level(logging.DEBUG)
    async with TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()]) as receiver:
        assert receiver._sock is not None  # the receiver's own socket: nothing else exposes it
        receiver._sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
            gone.bind(("127.0.0.1", 0))
            gone.sendto(
                v2c_message(v2c.InformRequestPDU, request_id=7), ("127.0.0.1", receiver.port)
            )
        inform = await receiver.get(timeout_s=5)  # read, acknowledged to the closed port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            await _send(sock, receiver.port, v2c_message())
            trap = await receiver.get(timeout_s=5)
    assert (inform.tags["pdu"], trap.tags["pdu"]) == ("inform", "trap")
    assert receiver.received == 2
    noted = [r.getMessage() for r in caplog.records if r.name == "drivers.snmp_traps"]
    assert any("socket error" in m and "refused" in m.lower() for m in noted), noted
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # nothing escaped

"""The trap receiver's socket drain and batch queue on a real loopback socket: bursts arrive
whole and in order through get_batch, batches respect their limit, the queue bound counts what
it drops, stop() ends the consumers, and informs are still acknowledged."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from pyasn1.codec.ber import decoder
from pysnmp.proto.api import v2c

from drivers.snmp_traps import TrapReceiver
from oss.events import Event
from tests.unit.drivers.test_snmp_trap_codec import COMMUNITY, v2c_message

CHUNK = 200  # datagrams sent back to back before the receiver gets to run (fits any buffer)


def trap(uptime: int, pdu_type: object = v2c.SNMPv2TrapPDU) -> bytes:
    """A linkDown-shaped notification whose sysUpTime.0 (and request-id) says which it is."""
    return v2c_message(
        pdu_type,
        varbinds=[
            ("1.3.6.1.2.1.1.3.0", v2c.TimeTicks(uptime)),
            ("1.3.6.1.6.3.1.1.4.1.0", v2c.ObjectIdentifier("1.3.6.1.6.3.1.1.5.3")),
            ("1.3.6.1.2.1.2.2.1.1.7", v2c.Integer(7)),
            ("1.3.6.1.2.1.2.2.1.8.7", v2c.Integer(2)),
        ],
        request_id=uptime + 1,
    )


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


async def burst(receiver: TrapReceiver, sock: socket.socket, packets: list[bytes]) -> None:
    """Send `packets` in tight loops of CHUNK, letting the receiver read each chunk before the
    next (a kernel's default receive buffer holds a few hundred small datagrams)."""

    def seen() -> int:
        return receiver.received + receiver.malformed + receiver.bad_community

    sent = seen()
    for at in range(0, len(packets), CHUNK):
        chunk = packets[at : at + CHUNK]
        for packet in chunk:
            sock.sendto(packet, ("127.0.0.1", receiver.port))
        sent += len(chunk)
        for _ in range(10_000):  # at most ~10 s
            if seen() >= sent:
                break
            await asyncio.sleep(0.001)
        assert seen() == sent, f"{sent - seen()} datagrams of a burst did not arrive"


def uptimes(events: list[Event]) -> list[object]:
    return [event.values["sysUpTime.0"] for event in events]


async def test_a_burst_arrives_whole_and_in_order_in_batches_of_at_most_the_limit(
    sender: socket.socket,
) -> None:
    async with TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()]) as receiver:
        await burst(receiver, sender, [trap(n) for n in range(2000)])
        assert receiver.queue_depth == 2000
        batches = []
        while sum(len(b) for b in batches) < 2000:
            batches.append(await receiver.get_batch(300, timeout_s=5))
        assert receiver.queue_depth == 0
    assert [len(b) for b in batches] == [300] * 6 + [200]
    events = [event for batch in batches for event in batch]
    assert uptimes(events) == list(range(2000))
    assert (receiver.received, receiver.dropped, receiver.malformed) == (2000, 0, 0)
    first = events[0]
    assert first.name == "snmp.trap"
    assert first.tags == {
        "device": "127.0.0.1",
        "source": f"127.0.0.1:{sender.getsockname()[1]}",
        "trap": "linkDown",
        "trap_oid": "1.3.6.1.6.3.1.1.5.3",
        "version": "2c",
        "pdu": "trap",
        "ifindex": "7",
    }
    assert first.values == {"sysUpTime.0": 0, "ifIndex.7": 7, "ifOperStatus.7": 2}


async def test_a_waiting_batch_gets_what_arrives_and_get_takes_one_at_a_time(
    sender: socket.socket,
) -> None:
    async with TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()]) as receiver:
        waiting = asyncio.ensure_future(receiver.get_batch(10))
        await asyncio.sleep(0)
        assert not waiting.done()
        sender.sendto(trap(1), ("127.0.0.1", receiver.port))
        assert uptimes(await asyncio.wait_for(waiting, 5)) == [1]

        await burst(receiver, sender, [trap(n) for n in range(2, 5)])
        assert uptimes([await receiver.get(timeout_s=5)]) == [2]
        assert uptimes(await receiver.get_batch(10, timeout_s=5)) == [3, 4]
        with pytest.raises(TimeoutError):
            await receiver.get_batch(10, timeout_s=0.05)
        with pytest.raises(ValueError, match="at least one"):
            await receiver.get_batch(0)


async def test_the_queue_bound_drops_the_newest_and_counts_them(sender: socket.socket) -> None:
    seen: list[Event] = []
    async with TrapReceiver(
        "127.0.0.1", 0, communities=[COMMUNITY.decode()], queue_size=50, on_event=seen.append
    ) as receiver:
        await burst(receiver, sender, [trap(n) for n in range(120)])
        assert (receiver.received, receiver.queue_depth, receiver.dropped) == (120, 50, 70)
        kept = await receiver.get_batch(1000, timeout_s=5)
        # Room again: the next trap is queued, not dropped.
        await burst(receiver, sender, [trap(500)])
        assert uptimes(await receiver.get_batch(1000, timeout_s=5)) == [500]
    assert uptimes(kept) == list(range(50))
    assert uptimes(seen) == [*range(120), 500]  # on_event sees every trap, dropped or not
    assert receiver.dropped == 70


async def test_stop_hands_out_what_is_queued_then_raises_lookup_error(
    sender: socket.socket,
) -> None:
    receiver = TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()])
    await receiver.start()
    waiting = asyncio.ensure_future(receiver.get_batch(10))
    await burst(receiver, sender, [trap(0)])
    assert uptimes(await asyncio.wait_for(waiting, 5)) == [0]
    await burst(receiver, sender, [trap(n) for n in range(1, 6)])

    blocked = asyncio.ensure_future(receiver.get_batch(10))
    await receiver.get_batch(10, timeout_s=5)  # takes the five
    await asyncio.sleep(0)
    assert not blocked.done()
    await burst(receiver, sender, [trap(n) for n in range(6, 9)])
    assert uptimes(await asyncio.wait_for(blocked, 5)) == [6, 7, 8]

    await burst(receiver, sender, [trap(n) for n in range(9, 14)])
    await receiver.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # the port is released
        probe.bind(("127.0.0.1", receiver.port))
    assert uptimes(await receiver.get_batch(3)) == [9, 10, 11]
    assert uptimes([await receiver.get()]) == [12]
    assert uptimes([event async for event in receiver]) == [13]
    with pytest.raises(LookupError):
        await receiver.get_batch(10)
    with pytest.raises(LookupError):
        await receiver.get()


async def test_a_consumer_waiting_when_stop_comes_gets_lookup_error() -> None:
    receiver = TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()])
    await receiver.start()
    batch = asyncio.ensure_future(receiver.get_batch(10))
    single = asyncio.ensure_future(receiver.get())
    iterated = asyncio.ensure_future(anext(aiter(receiver), None))
    await asyncio.sleep(0)
    await receiver.stop()
    with pytest.raises(LookupError):
        await asyncio.wait_for(batch, 5)
    with pytest.raises(LookupError):
        await asyncio.wait_for(single, 5)
    assert await asyncio.wait_for(iterated, 5) is None  # the iteration just ends


async def test_informs_in_a_burst_are_each_acknowledged(sender: socket.socket) -> None:
    sender.setblocking(False)
    loop = asyncio.get_running_loop()
    async with TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()]) as receiver:
        await burst(receiver, sender, [trap(n, v2c.InformRequestPDU) for n in range(50)])
        replies = [await asyncio.wait_for(loop.sock_recv(sender, 65535), 5) for _ in range(50)]
        events = await receiver.get_batch(100, timeout_s=5)
    request_ids = []
    for reply in replies:
        message, _ = decoder.decode(reply, asn1Spec=v2c.Message())
        pdu = v2c.apiMessage.get_pdu(message)
        assert pdu.tagSet == v2c.ResponsePDU.tagSet
        assert bytes(v2c.apiMessage.get_community(message)) == COMMUNITY
        request_ids.append(int(v2c.apiPDU.get_request_id(pdu)))
    assert sorted(request_ids) == list(range(1, 51))
    assert [e.tags["pdu"] for e in events] == ["inform"] * 50
    assert uptimes(events) == list(range(50))


async def test_device_names_follow_update_sources_for_a_sender_seen_before(
    sender: socket.socket,
) -> None:
    async with TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()]) as receiver:
        await burst(receiver, sender, [trap(1)])
        before = await receiver.get_batch(10, timeout_s=5)
        receiver.update_sources({"127.0.0.1": "pe7"})
        await burst(receiver, sender, [trap(2)])
        after = await receiver.get_batch(10, timeout_s=5)
    assert [e.tags["device"] for e in before + after] == ["127.0.0.1", "pe7"]
    assert before[0].tags["source"] == after[0].tags["source"]


async def test_garbage_between_traps_is_counted_and_the_reader_goes_on(
    sender: socket.socket,
) -> None:
    async with TrapReceiver("127.0.0.1", 0, communities=[COMMUNITY.decode()]) as receiver:
        packets = []
        for n in range(300):
            packets += [trap(n), b"\x30\x03\x02", v2c_message(community=b"guess")]
        await burst(receiver, sender, packets)
        events = await receiver.get_batch(1000, timeout_s=5)
    assert uptimes(events) == list(range(300))
    assert (receiver.malformed, receiver.bad_community) == (300, 300)

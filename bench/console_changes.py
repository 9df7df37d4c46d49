"""The console bench's alarm changes: linkDown / linkUp traps (SNMPv2c, as an agent sends them,
with the interface's ifName) from the generated inventory's trap sources, paced at a rate, each
a real alarm change in the daemon (a linkDown on a spare port raises an interface alarm, the
linkUp clears it).

The flapped ports are every (source, spare port) pair, taken in turn: a round down, then the
same round up, so each alarm stays open for `len(ports) / rate` seconds. The sender is a
process of its own; it returns the wall-clock time (`time.time()`, what the page's
`Date.now()` compares with) of each send.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

from drivers.ber import (
    OCTET_STRING,
    SEQUENCE,
    TIMETICKS,
    V2_TRAP,
    integer_tlv,
    octets_tlv,
    oid_tlv,
    tlv,
    unsigned_tlv,
)

SYS_UPTIME_0 = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID_0 = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
LINK_DOWN, LINK_UP = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3), (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IF_INDEX, IF_ADMIN_STATUS, IF_OPER_STATUS = (*IF_ENTRY, 1), (*IF_ENTRY, 7), (*IF_ENTRY, 8)
IF_NAME = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1)


@dataclass(frozen=True)
class Port:
    device: str
    source: str  # the device's management address: the trap's source
    interface: str
    ifindex: int

    @property
    def alarmed_object(self) -> str:
        return f"{self.device}:{self.interface}"


@dataclass(frozen=True)
class Change:
    port: Port
    down: bool  # linkDown (raises) or linkUp (clears)
    episode: int  # the n-th alarm of this port


def ports(sources: Sequence[tuple[str, str, Sequence[str]]], first_ifindex: int) -> list[Port]:
    """Every spare port of every trap source (device, address, spare port names)."""
    return [
        Port(device, address, name, first_ifindex + k)
        for device, address, spare in sources
        for k, name in enumerate(spare)
    ]


def plan(flapped: Sequence[Port], count: int) -> list[Change]:
    """`count` changes: all ports down, then all up, and again."""
    n = len(flapped)
    return [Change(flapped[i % n], (i // n) % 2 == 0, i // (2 * n)) for i in range(count)]


def encode(change: Change, request_id: int, community: bytes) -> bytes:
    """One SNMPv2-Trap message: sysUpTime.0, snmpTrapOID.0, ifIndex, ifName, ifAdminStatus,
    ifOperStatus of the port."""
    index = change.port.ifindex
    varbinds = (
        (SYS_UPTIME_0, unsigned_tlv(TIMETICKS, request_id)),
        (SNMP_TRAP_OID_0, oid_tlv(LINK_DOWN if change.down else LINK_UP)),
        ((*IF_INDEX, index), integer_tlv(index)),
        ((*IF_NAME, index), octets_tlv(change.port.interface.encode(), OCTET_STRING)),
        ((*IF_ADMIN_STATUS, index), integer_tlv(1)),
        ((*IF_OPER_STATUS, index), integer_tlv(2 if change.down else 1)),
    )
    listed = b"".join(tlv(SEQUENCE, oid_tlv(oid) + value) for oid, value in varbinds)
    pdu = tlv(
        V2_TRAP, integer_tlv(request_id) + integer_tlv(0) + integer_tlv(0) + tlv(SEQUENCE, listed)
    )
    return tlv(SEQUENCE, integer_tlv(1) + octets_tlv(community) + pdu)


def send(
    changes: Sequence[Change], port: int, rate: float, community: bytes, out: Connection
) -> None:
    """The sender process's body: each change's trap from its port's source address to
    127.0.0.1:`port`, paced at `rate`/s; sends back the wall-clock time of each sendto()."""
    packets = [encode(c, i + 1, community) for i, c in enumerate(changes)]
    socks: dict[str, socket.socket] = {}
    for change in changes:
        if change.port.source not in socks:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((change.port.source, 0))
            socks[change.port.source] = sock
    sent = [0.0] * len(changes)
    start = time.monotonic()
    try:
        for i, (change, packet) in enumerate(zip(changes, packets, strict=True)):
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            socks[change.port.source].sendto(packet, ("127.0.0.1", port))
            sent[i] = time.time()
    finally:
        for sock in socks.values():
            sock.close()
    out.send(sent)
    out.close()


class Sender:
    """The sender process: `start()` begins sending, `times()` waits for it to end."""

    def __init__(self, changes: Sequence[Change], port: int, rate: float, community: bytes):
        ctx = multiprocessing.get_context("spawn")
        self._results, sending = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=send, args=(list(changes), port, rate, community, sending), daemon=True
        )
        self._sending = sending

    def start(self) -> None:
        self._process.start()
        self._sending.close()

    def times(self, timeout: float) -> list[float]:
        try:
            if not self._results.poll(timeout):
                raise TimeoutError(f"the trap sender did not finish within {timeout:.0f} s")
            sent: list[float] = self._results.recv()
            return sent
        finally:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()

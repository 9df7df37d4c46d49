"""The kernel's side of a UDP receiver: /proc/net/udp's `drops` column found by the socket's
inode, /proc/net/snmp's `Udp: RcvbufErrors`, both on samples and on a real socket the kernel
drops datagrams for; and the receive buffer asked for and granted."""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from drivers import snmp_traps
from drivers.snmp_traps import TrapReceiver
from drivers.udp_stats import (
    host_rcvbuf_errors,
    receive_buffer,
    rmem_max,
    size_receive_buffer,
    snmp_udp_counter,
    socket_drops,
    udp_table_drops,
)

# Samples of the kernel's tables, as it pads them (rows wider than this file's lines).
UDP_TABLE = "\n".join(
    [
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode ref pointer drops            ",
        " 5244: 0100007F:9D89 00000000:0000 07 00000000:00000000 00:00000000 00000000     0   "
        "     0 543763 2 00000000cf893a24 0        ",
        "14228: 0A4E0B7F:00A1 00000000:0000 07 00000000:00000C00 00:00000000 00000000     0   "
        "     0 542696 2 00000000f5aa2650 1234     ",
    ]
)
SNMP = "\n".join(
    [
        "Ip: Forwarding DefaultTTL",
        "Ip: 1 64",
        "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors "
        "IgnoredMulti MemErrors",
        "Udp: 775288 377 29356 805065 29355 0 0 0 0",
        "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors",
        "UdpLite: 0 0 0 0 7 0 0",
    ]
)

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="/proc/net is Linux's")


def test_the_drops_column_of_the_row_with_the_inode() -> None:
    assert udp_table_drops(UDP_TABLE, 542696) == 1234
    assert udp_table_drops(UDP_TABLE, 543763) == 0
    assert udp_table_drops(UDP_TABLE, 1) is None  # no such socket
    assert udp_table_drops("", 542696) is None


def test_the_udp_counter_of_proc_net_snmp() -> None:
    assert snmp_udp_counter(SNMP, "RcvbufErrors") == 29355  # Udp's, not UdpLite's
    assert snmp_udp_counter(SNMP, "InDatagrams") == 775288
    assert snmp_udp_counter(SNMP, "NoSuchCounter") is None
    assert snmp_udp_counter("Ip: Forwarding\nIp: 1\n", "RcvbufErrors") is None


@pytest.fixture
def small_receiver() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel's minimum
        sock.bind(("127.0.0.1", 0))
        yield sock


@linux_only
def test_a_full_socket_s_drops_are_read_from_proc(small_receiver: socket.socket) -> None:
    host_before = host_rcvbuf_errors()
    assert socket_drops(small_receiver) == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(200):  # nobody reads: the small buffer overflows
            sender.sendto(b"x" * 100, small_receiver.getsockname())
    drops = socket_drops(small_receiver)
    assert drops is not None and 0 < drops < 200
    queued = 0
    small_receiver.setblocking(False)
    while True:
        try:
            small_receiver.recv(256)
        except BlockingIOError:
            break
        queued += 1
    assert queued + drops == 200  # every datagram either read or counted
    assert host_before is not None
    host_after = host_rcvbuf_errors()
    assert host_after is not None and host_after - host_before >= drops


@linux_only
def test_a_closed_socket_has_no_row() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.close()
    assert socket_drops(sock) is None


@linux_only
def test_the_receive_buffer_granted_is_reported() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        granted = size_receive_buffer(sock, 1 << 20)
        assert granted == receive_buffer(sock)
        cap = rmem_max()
        assert cap is not None
        assert granted >= 2 * min(1 << 20, cap)  # Linux reports twice what it accepted


def test_a_smaller_grant_is_logged_with_the_sysctl_to_raise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A fake grant: the test may run privileged (SO_RCVBUFFORCE passes rmem_max then).
    monkeypatch.setattr(snmp_traps, "size_receive_buffer", lambda sock, asked: 425_984)
    receiver = TrapReceiver("127.0.0.1", 0, receive_buffer_bytes=16 << 20)
    with caplog.at_level(logging.INFO, logger="drivers.snmp_traps"):
        receiver.bind()
    receiver.unbind()
    assert receiver.receive_buffer == 425_984
    (record,) = [r for r in caplog.records if "receive buffer" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "receive buffer 425984 bytes, asked 16777216" in record.getMessage()
    assert "sysctl -w net.core.rmem_max=16777216" in record.getMessage()


@linux_only
def test_the_trap_receiver_counts_the_kernel_s_drops() -> None:
    receiver = TrapReceiver("127.0.0.1", 0, communities=["public"], receive_buffer_bytes=65_536)
    receiver.bind()
    try:
        assert receiver.receive_buffer >= 65_536
        assert receiver.kernel_dropped == 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(2000):  # not started: nobody reads, ~130 kB of buffer overflow
                sender.sendto(b"x" * 100, ("127.0.0.1", receiver.port))
        deadline = time.monotonic() + 5
        while receiver.kernel_dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        dropped = receiver.kernel_dropped
        assert 0 < dropped < 2000
    finally:
        receiver.unbind()
    assert receiver.kernel_dropped == dropped  # kept once the socket is gone
    assert receiver.host_rcvbuf_errors() >= dropped

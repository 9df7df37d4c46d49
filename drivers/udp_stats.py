"""A UDP receiver's kernel side (Linux): the receive buffer it asks for and gets, and the
datagrams the kernel dropped because that buffer was full.

    granted = size_receive_buffer(sock, 16 << 20)  # bytes the kernel granted (getsockopt)
    socket_drops(sock)     # this socket's `drops` column of /proc/net/udp (or udp6)
    host_rcvbuf_errors()   # `Udp: RcvbufErrors` of /proc/net/snmp, every socket of the host

Linux doubles a requested SO_RCVBUF (room for its bookkeeping) and caps the request at
`net.core.rmem_max`; SO_RCVBUFFORCE passes that cap but needs CAP_NET_ADMIN. Elsewhere (no
/proc) the readers answer None.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

PROC_NET = Path("/proc/net")
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")
# SO_RCVBUFFORCE is Linux's (asm-generic/socket.h: 33); Python's socket module does not name it.
_SO_RCVBUFFORCE: int | None = 33 if sys.platform == "linux" else None


def size_receive_buffer(sock: socket.socket, requested: int) -> int:
    """Ask for `requested` bytes of receive buffer (past rmem_max when privileged); the size
    the kernel granted (Linux reports twice the size it accepted)."""
    with contextlib.suppress(OSError):  # the default then
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, requested)
    granted = receive_buffer(sock)
    if granted < requested and _SO_RCVBUFFORCE is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, requested)
        except OSError:  # not privileged: rmem_max's cap stays
            return granted
        granted = receive_buffer(sock)
    return granted


def receive_buffer(sock: socket.socket) -> int:
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def rmem_max() -> int | None:
    """net.core.rmem_max, the cap of an unprivileged SO_RCVBUF (None: unknown)."""
    try:
        return int(RMEM_MAX.read_text())
    except (OSError, ValueError):
        return None


def socket_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped for this socket (its receive buffer was full, or a filter
    refused them): the `drops` column of its row in /proc/net/udp or udp6, found by the
    socket's inode. None when there is no such table (not Linux) or the socket is closed."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except (OSError, ValueError):
        return None
    table = "udp6" if sock.family == socket.AF_INET6 else "udp"
    try:
        text = (PROC_NET / table).read_text()
    except OSError:
        return None
    return udp_table_drops(text, inode)


def udp_table_drops(text: str, inode: int) -> int | None:
    """The `drops` column of the row of socket `inode` in a /proc/net/udp(6) table."""
    lines = text.splitlines()
    if not lines:
        return None
    header = lines[0].split()
    # The header names "tx_queue rx_queue" and "tr tm->when" as one column each where rows
    # have them joined by ':'; the inode and drops columns are found from the end of the row.
    if "drops" not in header or "inode" not in header:
        return None
    from_end_inode = len(header) - header.index("inode")
    from_end_drops = len(header) - header.index("drops")
    wanted = str(inode)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) >= from_end_inode and fields[-from_end_inode] == wanted:
            return int(fields[-from_end_drops])
    return None


def host_rcvbuf_errors() -> int | None:
    """`Udp: RcvbufErrors` of /proc/net/snmp: datagrams dropped by a full receive buffer, all
    UDP sockets of the host (network namespace) together; None when unreadable."""
    try:
        text = (PROC_NET / "snmp").read_text()
    except OSError:
        return None
    return snmp_udp_counter(text, "RcvbufErrors")


def snmp_udp_counter(text: str, name: str) -> int | None:
    """One counter of the `Udp:` lines (names, then values) of a /proc/net/snmp text."""
    rows = [line.split()[1:] for line in text.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2 or name not in rows[0]:
        return None
    return int(rows[1][rows[0].index(name)])

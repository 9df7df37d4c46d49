"""Entering a named network namespace from a thread: setns(2) moves only the calling thread, so
the sockets it creates live in that namespace (and so do the processes it starts)."""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor

from lab.netns.iproute import NETNS_DIR

CLONE_NEWNET = 0x40000000


def enter(name: str) -> None:
    """Move the calling thread into the network namespace /run/netns/<name>."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def namespace_thread(name: str) -> ThreadPoolExecutor:
    """One worker thread that lives in the namespace: `.submit(fn)` runs fn there."""
    return ThreadPoolExecutor(1, thread_name_prefix=name, initializer=enter, initargs=(name,))

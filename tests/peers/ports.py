"""Free loopback ports for the servers tests start, and each pytest-xdist worker's share of a
pool that random choices draw from (so workers running side by side never pick alike)."""

from __future__ import annotations

import os
import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def worker_share(pool: range) -> range:
    """This pytest-xdist worker's part of `pool`, disjoint from every other worker's (all of
    `pool` outside xdist): two labs picked at random by two workers at once never collide."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    return pool[index % count :: count]

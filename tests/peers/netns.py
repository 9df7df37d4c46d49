"""A network namespace of a test's own (root only), and a way into it from the test.

`ip netns add` makes the namespace with its loopback up; `NetNs.call(fn)` runs `fn` in a worker
thread that entered the namespace (setns(2) moves only the calling thread), so the sockets it
creates live there, and so do the processes it starts (a child gets the namespace of the thread
that forked it). Nothing the test does in the namespace can reach the host's networks: it has
no route out. The namespace is deleted at the end, also on failure; the processes started in it
are their starters' to end first.

    with network_namespace() as ns:
        ns.ip("link", "add", "a0", "type", "veth", "peer", "name", "a1")
        server = ns.call(subprocess.Popen, [...])       # a process inside
        reply = ns.call(httpx.get, "http://127.0.0.1:8080/healthz")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from lab.netns.nsenter import namespace_thread

T = TypeVar("T")


def namespaces_unavailable() -> str | None:
    """Why this machine cannot give a test a namespace (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    return None


@dataclass
class NetNs:
    name: str
    _thread: ThreadPoolExecutor

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` run inside the namespace (in its one worker thread)."""
        return self._thread.submit(fn, *args, **kwargs).result()

    def ip(self, *args: str) -> str:
        out = subprocess.run(
            ["ip", "-n", self.name, *args], capture_output=True, text=True, timeout=30
        )
        if out.returncode != 0:
            raise RuntimeError(f"ip -n {self.name} {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def ifindex(self, interface: str) -> int:
        (link,) = json.loads(self.ip("-j", "link", "show", "dev", interface))
        return int(link["ifindex"])


@contextmanager
def network_namespace(prefix: str = "oss-test") -> Iterator[NetNs]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    thread = namespace_thread(name)
    try:
        ns = NetNs(name, thread)
        ns.ip("link", "set", "lo", "up")
        yield ns
    finally:
        thread.shutdown(wait=True)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)

"""Ending the lab's processes: by pid, only after checking the pid is still the one recorded.

A pid is reused once its process is gone, so before a signal each recorded process is checked:
its /proc/<pid>/cmdline still starts with the recorded argv0, and /proc/<pid>/ns/net is the
recorded namespace (same nsfs inode as /run/netns/<name>). A process that fails either check is
somebody else's now and is left alone.

`down` also ends processes that live in one of the lab's namespaces without a record (started
by `oss lab exec`, or by a node launcher killed between fork and record): the namespace is the
lab's, so whatever runs in it is too. A thread that merely entered a namespace (setns) is not
a process living there: /proc/<pid>/ns/net is its process's main thread's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from lab.netns import iproute
from lab.netns.state import ROOT_NAMESPACE, ProcessRecord

PROC = Path("/proc")


def net_namespace_of(pid: int) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the process's network namespace; None when it is gone."""
    try:
        found = os.stat(PROC / str(pid) / "ns" / "net")
    except OSError:
        return None
    return found.st_dev, found.st_ino


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child that has exited
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def is_recorded(record: ProcessRecord, namespaces: Mapping[str, tuple[int, int] | None]) -> bool:
    """The live process at record.pid is still the one the lab started."""
    if not alive(record.pid):
        return False
    try:
        cmdline = (PROC / str(record.pid) / "cmdline").read_bytes()
    except OSError:
        return False
    argv0 = cmdline.split(b"\0", 1)[0].decode(errors="replace")
    if not (argv0 == record.argv0 or cmdline.startswith(record.argv0.encode())):
        return False
    found = net_namespace_of(record.pid)
    if record.namespace == ROOT_NAMESPACE:  # `down` runs in the root namespace
        return found == net_namespace_of(os.getpid())
    expected = namespaces.get(record.namespace)
    if expected is not None:
        return found == expected
    # The name is gone (deleted by hand?) while the process lives: accept it only if it is not
    # in the namespace this program runs in.
    return found is not None and found != net_namespace_of(os.getpid())


def inodes(names: Iterable[str]) -> dict[str, tuple[int, int] | None]:
    return {name: iproute.namespace_inode(name) for name in names if name != ROOT_NAMESPACE}


def living_in(namespaces: Iterable[str]) -> list[int]:
    """Pids of the processes whose network namespace is one of `namespaces` (by name)."""
    wanted = {i for i in inodes(namespaces).values() if i is not None}
    if not wanted:
        return []
    me = os.getpid()
    found = []
    for entry in PROC.iterdir():
        pid = int(entry.name) if entry.name.isdigit() else 0
        if pid and pid != me and net_namespace_of(pid) in wanted and alive(pid):
            found.append(pid)
    return sorted(found)


def end(pids: Iterable[int], timeout_s: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL what is left after `timeout_s`; the pids that were ended."""
    pending = [p for p in dict.fromkeys(pids) if alive(p)]
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for sig_timeout, sig in ((timeout_s, signal.SIGKILL), (5.0, None)):
        deadline = time.monotonic() + sig_timeout
        while any(alive(p) for p in pending) and time.monotonic() < deadline:
            time.sleep(0.02)
        if sig is not None:
            for pid in pending:
                if alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
    return pending


def stop_node_daemons(
    records: Iterable[ProcessRecord], timeout_s: float = 10.0
) -> list[ProcessRecord]:
    """End the recorded processes that are still the lab's; the records that were ended."""
    records = list(records)
    known = inodes({r.namespace for r in records})
    ours = [r for r in records if is_recorded(r, known)]
    end([r.pid for r in ours], timeout_s)
    return ours

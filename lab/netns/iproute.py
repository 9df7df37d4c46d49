"""iproute2 for the namespace lab: `ip` and `tc`, bounded in time, failures as LabError.

Commands run from the root namespace but act inside a lab namespace with `ip -n NAME` (iproute2
enters the namespace itself); many changes go through one `ip -batch -` process, which stops at
the first failing line and names it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from oss.errors import OssError

TIMEOUT_S = 30.0
NETNS_DIR = Path("/run/netns")


class LabError(OssError, RuntimeError):
    """The namespace lab could not do what was asked (the message says what and where)."""


def unavailable() -> str | None:
    """Why this process cannot build a namespace lab (None: it can)."""
    if os.geteuid() != 0:
        return "--netns needs root (network namespaces)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"no `{tool}` command (install iproute2)"
    return None


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run an iproute2 command; its stdout, or LabError naming the command and its stderr."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(argv)}` did not finish within {TIMEOUT_S:g} s") from None
    except FileNotFoundError:
        raise LabError(f"`{argv[0]}` not found (install iproute2)") from None
    if check and done.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    return run(["ip", *(["-n", netns] if netns else []), *args], check=check)


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    out = ip("-j", *args, netns=netns).strip()
    data = json.loads(out) if out else []
    return data if isinstance(data, list) else []


def batch(lines: Iterable[str], *, netns: str | None = None, force: bool = False) -> None:
    """Many `ip` commands in one process (`ip -batch -`); with `force`, past failing lines."""
    text = "".join(f"{line}\n" for line in lines)
    if not text:
        return
    argv = ["ip", *(["-n", netns] if netns else []), *(["-force"] if force else []), "-batch", "-"]
    run(argv, stdin=text, check=not force)


def tc(*args: str, netns: str, check: bool = True) -> str:
    return run(["tc", "-n", netns, *args], check=check)


def namespaces() -> set[str]:
    """The names in /run/netns (what `ip netns list` shows)."""
    try:
        return {entry.name for entry in NETNS_DIR.iterdir()}
    except FileNotFoundError:
        return set()


def namespace_inode(name: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a named namespace: what /proc/<pid>/ns/net of its processes shows."""
    try:
        found = os.stat(NETNS_DIR / name)
    except OSError:
        return None
    return found.st_dev, found.st_ino

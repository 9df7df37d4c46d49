"""The cluster bench's simulated lab: the lab `oss lab up` runs (`lab.sim.lab.Lab`, one process,
every node on its own loopback address), whose nodes also note when each SNMP poll of them
began and from which address and port it came, so the bench can tell when a device was polled
and by which `oss serve` process (a source port belongs to one process's socket).

A poll is a burst of requests (a GET, the interface tables' GETBULKs); a request that comes more
than `POLL_GAP_S` after the node's previous one from the same source starts a new poll. The
control socket answers `{"op": "polls", "since": <unix time>}` with every node's poll starts
since then: `{node: [[time, "host:port"], ...]}`; the other operations are the lab's own.

    python -m bench.cluster_lab FILE.clab.yml --state-dir DIR [--high-ports]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.sim.lab import Lab, Ports, serve
from lab.sim.snmp_agent import SnmpAgent
from oss.errors import InvalidInput

POLL_GAP_S = 1.0  # a poll's requests come within milliseconds; polls are seconds apart
STARTS_KEPT = 256  # per node: at a 10 s interval, the last 40 minutes


class RecordingAgent(SnmpAgent):
    """The lab's SNMP agent, noting each poll's start (time, source) before answering."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.starts: collections.deque[tuple[float, str]] = collections.deque(maxlen=STARTS_KEPT)
        self._last: dict[str, float] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        now = time.time()
        source = f"{addr[0]}:{addr[1]}"
        previous = self._last.get(source)
        if previous is None or now - previous > POLL_GAP_S:
            self.starts.append((now, source))
        self._last[source] = now
        super().datagram_received(data, addr)


class RecordingLab(Lab):
    def _build(self) -> None:
        super()._build()
        for node in self.nodes.values():
            node.snmp = RecordingAgent(
                node.device,
                node.datastores,
                community=self.secrets.community,
                trap_receivers=self.trap_receivers,
            )

    async def control(self, request: dict[str, Any]) -> Any:
        if request.get("op") != "polls":
            return await super().control(request)
        since = request.get("since", 0.0)
        if isinstance(since, bool) or not isinstance(since, int | float):
            raise InvalidInput(f"since must be a number, got {since!r}")
        found: dict[str, list[tuple[float, str]]] = {}
        for name, node in self.nodes.items():
            assert isinstance(node.snmp, RecordingAgent)
            found[name] = [s for s in node.snmp.starts if s[0] >= since]
        return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_lab")
    parser.add_argument("topology", type=Path)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--high-ports", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    lab = RecordingLab.from_file(
        args.topology,
        args.state_dir,
        ports=Ports.high() if args.high_ports else None,
        gnmi=False,  # polled over SNMP only
    )
    asyncio.run(serve(lab))
    return 0


if __name__ == "__main__":
    sys.exit(main())

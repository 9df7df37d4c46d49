"""A delay line in user space: what `tc qdisc netem` does, for kernels built without it.

`faults.impair` uses netem where the kernel has it (CONFIG_NET_SCH_NETEM). Where it does not
(this project's CI kernel), the endpoint's egress is redirected by a tc u32 filter into a veth
pair inside the same namespace; this process reads each frame from the pair's far end, holds
it for the delay (plus a uniform jitter), drops the configured share, and sends it on the real
interface with PACKET_QDISC_BYPASS, which skips the egress hook and so the redirect. Frames keep
their order (a fibre does not reorder), the queue holds at most LIMIT frames (netem's default),
and only the endpoint's own egress is affected, as with netem.

    python -m lab.netns.delay_line --tap dlb5 --out eth1 --delay-ms 20 --jitter-ms 2 --loss-pct 1
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import random
import signal
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
LIMIT = 1000


class DelayLine:
    def __init__(self, tap: str, out: str, delay_s: float, jitter_s: float, loss: float) -> None:
        self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.rx.bind((tap, 0))
        self.rx.settimeout(0.2)
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.tx.bind((out, 0))
        self.tx.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        self.delay_s, self.jitter_s, self.loss = delay_s, jitter_s, loss
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.ready = threading.Condition()
        self.stopped = threading.Event()
        self.last_due = 0.0

    def receive(self) -> None:
        while not self.stopped.is_set():
            try:
                frame, address = self.rx.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                if self.stopped.is_set():
                    return
                raise
            if address[2] == socket.PACKET_OUTGOING or random.random() < self.loss:
                continue
            jitter = random.uniform(-self.jitter_s, self.jitter_s) if self.jitter_s else 0.0
            due = max(time.monotonic() + max(0.0, self.delay_s + jitter), self.last_due)
            with self.ready:
                if len(self.queue) < LIMIT:
                    self.queue.append((due, frame))
                    self.last_due = due
                    self.ready.notify()

    def send(self) -> None:
        while not self.stopped.is_set():
            with self.ready:
                while not self.queue and not self.stopped.is_set():
                    self.ready.wait(0.2)
                if not self.queue:
                    continue
                due, frame = self.queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self.ready.wait(wait)
                    continue
                self.queue.popleft()
            # An interface set down (a link fault on top of the delay) loses the frame.
            with contextlib.suppress(OSError):
                self.tx.send(frame)

    def stop(self) -> None:
        self.stopped.set()
        with self.ready:
            self.ready.notify_all()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.netns.delay_line")
    parser.add_argument("--tap", required=True, help="where the redirected frames arrive")
    parser.add_argument("--out", required=True, help="the interface to send them on")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss-pct", type=float, default=0.0)
    parser.add_argument("--ready-file", type=Path, help="created once the sockets are bound")
    args = parser.parse_args(argv)
    line = DelayLine(
        args.tap, args.out, args.delay_ms / 1000, args.jitter_ms / 1000, args.loss_pct / 100
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: line.stop())
    sender = threading.Thread(target=line.send, name="send", daemon=True)
    sender.start()
    if args.ready_file is not None:
        args.ready_file.touch()
    line.receive()
    sender.join(timeout=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

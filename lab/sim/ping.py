"""The simulated device's `ping`: iputils' options and output, answered from the lab's route
to the address (`lab.sim.paths`), so a latency or loss fault on the route shows in it.

    ping [-c COUNT] [-i INTERVAL] [-W TIMEOUT] [-s SIZE] [-q] [-n] ADDRESS

Without `-c` it sends 4 (a simulated ping cannot be interrupted). It takes the time a real
one would ((COUNT - 1) x INTERVAL, plus the last round trip) and prints iputils' summary,
`rtt min/avg/max/mdev`, which the daemon's probes read. Each echo's time is the route's round
trip with a little noise, and it is lost with the route's loss; an address no route reaches
answers "Destination Host Unreachable", one that is no lab node's nothing at all.
"""

from __future__ import annotations

import asyncio
import getopt
import ipaddress
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from lab.sim.paths import Route

DEFAULT_COUNT = 4
MAX_COUNT = 100
MIN_INTERVAL_S = 0.2  # iputils' floor for an unprivileged user
_USAGE = "usage: ping [-c count] [-i interval] [-W timeout] [-s size] [-q] [-n] address\n"
_rng = random.Random()

# address -> the route to it; "unreachable": a lab node's that no route reaches; None: no
# node has it (nothing answers)
Router = Callable[[str], Route | Literal["unreachable"] | None]


@dataclass(frozen=True)
class PingRequest:
    address: str
    count: int = DEFAULT_COUNT
    interval_s: float = 1.0
    timeout_s: float = 10.0
    size: int = 56
    quiet: bool = False


def parse(args: list[str]) -> PingRequest | str:
    """The request, or the error text ping would print."""
    try:
        options, rest = getopt.gnu_getopt(args, "c:i:W:s:qn")
    except getopt.GetoptError as exc:
        return f"ping: {exc}\n{_USAGE}"
    if len(rest) != 1:
        return _USAGE
    try:
        address = str(ipaddress.ip_address(rest[0]))
    except ValueError:
        return f"ping: {rest[0]}: Name or service not known\n"
    values: dict[str, str] = dict(options)
    try:
        count = int(values.get("-c", DEFAULT_COUNT))
        interval = float(values.get("-i", 1.0))
        timeout = float(values.get("-W", 10.0))
        size = int(values.get("-s", 56))
    except ValueError as exc:
        return f"ping: invalid argument: {exc}\n"
    if not 1 <= count <= MAX_COUNT:
        return f"ping: invalid argument: count {count} out of range 1..{MAX_COUNT}\n"
    if not MIN_INTERVAL_S <= interval <= 60 or not 0 < timeout <= 60 or not 0 <= size <= 65507:
        return "ping: invalid argument: interval, timeout or size out of range\n"
    return PingRequest(address, count, interval, timeout, size, "-q" in values)


async def ping(request: PingRequest, source_address: str, router: Router) -> tuple[str, bool]:
    """Run the ping (taking its time) and return its output and whether any echo came back."""
    answer = router(request.address)
    found = answer if isinstance(answer, Route) else None
    unreachable = answer == "unreachable"
    lines = [f"PING {request.address} ({request.address}) {request.size}({request.size + 28}) "
             "bytes of data."]  # fmt: skip
    times: list[float] = []
    for seq in range(1, request.count + 1):
        if found is not None and _rng.random() >= found.loss:
            rtt_ms = _sample_ms(found)
            times.append(rtt_ms)
            if not request.quiet:
                ttl = 64 - max(found.hops - 1, 0)
                lines.append(
                    f"{request.size + 8} bytes from {request.address}: icmp_seq={seq} "
                    f"ttl={ttl} time={_ms(rtt_ms)} ms"
                )
        elif unreachable and not request.quiet:
            lines.append(f"From {source_address} icmp_seq={seq} Destination Host Unreachable")
    last_ms = times[-1] if times else request.timeout_s * 1000
    elapsed_s = (request.count - 1) * request.interval_s
    await asyncio.sleep(elapsed_s + min(last_ms / 1000, request.timeout_s))
    lost = request.count - len(times)
    errors = f", +{request.count} errors" if unreachable else ""
    lines += [
        "",
        f"--- {request.address} ping statistics ---",
        f"{request.count} packets transmitted, {len(times)} received{errors}, "
        f"{100 * lost / request.count:g}% packet loss, time {round(elapsed_s * 1000)}ms",
    ]
    if times:
        avg = sum(times) / len(times)
        mdev = math.sqrt(max(sum(t * t for t in times) / len(times) - avg * avg, 0.0))
        lines.append(
            f"rtt min/avg/max/mdev = {min(times):.3f}/{avg:.3f}/{max(times):.3f}/{mdev:.3f} ms"
        )
    return "\n".join(lines) + "\n", bool(times)


def _sample_ms(found: Route) -> float:
    """One echo's round trip: the route's, plus forwarding per hop and a little queueing."""
    base_ms = found.rtt_us / 1000 + 0.02 + 0.01 * found.hops
    return base_ms * (1 + _rng.uniform(0.0, 0.01)) + _rng.uniform(0.0, 0.03)  # never faster


def _ms(value: float) -> str:
    """As iputils prints a time: three significant digits, at least one decimal below 100."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if value >= 1 else f"{value:.3f}"

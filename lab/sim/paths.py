"""Where a packet goes in the simulated lab: the route between two nodes over the links that
carry light, and what the links on it add (latency, loss). The CLI's `ping` answers from it.

The route is what a static IGP would pick: fewest hops, ties broken by the links' latency as
the topology file gives it (a cost, fixed), so a latency fault on the route makes it slower
without moving it, as on a real network; a link or node that goes down moves it. A link's
latency is one way and both ways alike: the round trip over a route is twice the sum.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RouteLink:
    a: str  # device at one end
    b: str
    up: bool  # both ends receive light (the link, both nodes and both ports are up)
    cost_us: int  # the latency the topology gives the link: fixed, what routing compares
    latency_us: int  # now, faults included
    loss: float  # fraction of packets lost each way


@dataclass(frozen=True)
class Route:
    devices: tuple[str, ...]  # from the source to the destination
    rtt_us: int  # the round trip over the links
    loss: float  # the chance that an echo or its reply is lost

    @property
    def hops(self) -> int:
        return len(self.devices) - 1


def route(links: Iterable[RouteLink], source: str, destination: str) -> Route | None:
    """The route from `source` to `destination`, or None when none carries light."""
    if source == destination:
        return Route((source,), 0, 0.0)
    adjacent: dict[str, list[tuple[str, RouteLink]]] = {}
    for link in links:
        if link.up:
            adjacent.setdefault(link.a, []).append((link.b, link))
            adjacent.setdefault(link.b, []).append((link.a, link))
    order = itertools.count()  # ties in the heap never compare links
    queue: list[tuple[int, int, int, str, tuple[str, ...], tuple[RouteLink, ...]]] = [
        (0, 0, next(order), source, (source,), ())
    ]
    done: set[str] = set()
    while queue:
        hops, cost, _, node, devices, used = heapq.heappop(queue)
        if node in done:
            continue
        done.add(node)
        if node == destination:
            return _route(devices, used)
        for neighbour, link in adjacent.get(node, ()):
            if neighbour not in done:
                heapq.heappush(
                    queue,
                    (
                        hops + 1,
                        cost + link.cost_us,
                        next(order),
                        neighbour,
                        (*devices, neighbour),
                        (*used, link),
                    ),
                )
    return None


def _route(devices: tuple[str, ...], used: tuple[RouteLink, ...]) -> Route:
    delivered = 1.0
    for link in used:
        delivered *= (1.0 - link.loss) ** 2  # the echo and its reply
    return Route(devices, 2 * sum(link.latency_us for link in used), 1.0 - delivered)

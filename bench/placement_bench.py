"""Constrained placement vs plain `nx.shortest_path` on the same generated 10k-device network
(goal: the placement's median and p95 within 3x of the plain search; p95 under 50 ms).

The network is generated, Waxman-like, from a fixed seed: devices scattered over a 1500 km
square, each cabled to its 3 nearest neighbours, then longer links drawn with a probability that
falls with distance (exp(-d / 150 km)) until there are 40k links, about 4% of them parallel
(a second fibre between the same two devices). The components are joined so the network is
connected. Latency follows distance (5 us/km over a 1.3 route factor, plus 10 us per hop);
capacities are 1G to 400G (long links larger); 60% of links carry reservations of 0-95% of their
capacity and 2% are down.

Both contenders answer the same random device pairs, alternating which goes first:

- plain: `nx.shortest_path(g, a, b, weight="latency")` on a simple `nx.Graph` of the up links
  (the lowest latency of parallel links as the edge weight): no bandwidth, no budget;
- placement: `topology.placement.place` on the `InventoryGraph` for a 500M demand with a 40 ms
  budget: only up links with 500M free, the best of parallel links, the budget checked, refusals
  explained (their count is printed; they are timed too). Its search index (compact adjacency
  and landmark distances, kept until the graph changes) is built before the timed pairs; the
  build time is printed, with the rebuild after a link state change.

It also times protected placements (node-disjoint, same demand) on a few pairs. Bounded: at most
--pairs pairs and --seconds seconds of timing each for the unprotected and protected parts.

    .venv/bin/python -m bench.placement_bench [--pairs 400] [--seconds 60] [--protected 20]
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import networkx as nx

from topology.graph import InventoryGraph
from topology.model import Device, Endpoint, Interface, Link, LinkState
from topology.placement import Demand, PlacementRefused, place

DEVICES = 10_000
LINKS = 40_000
SIDE_KM = 1500.0
NEAREST = 3
WAXMAN_KM = 150.0
PARALLEL_SHARE = 0.04
DEMAND_BPS = 500_000_000
BUDGET_US = 40_000
G = 1_000_000_000
LOCAL_CAPACITY = ([1 * G, 10 * G, 100 * G, 400 * G], [20, 50, 25, 5])
LONG_CAPACITY = ([10 * G, 100 * G, 400 * G], [20, 50, 30])


# --------------------------------------------------------------------------- the network


class _Cables:
    """The generated cabling: points and (a, b) device pairs, parallel pairs allowed."""

    def __init__(self, rng: random.Random, devices: int) -> None:
        self.rng = rng
        self.points = [(rng.uniform(0, SIDE_KM), rng.uniform(0, SIDE_KM)) for _ in range(devices)]
        self.cell_km = SIDE_KM / math.sqrt(devices)  # about one device per grid cell
        self.grid: dict[tuple[int, int], list[int]] = {}
        for i, point in enumerate(self.points):
            self.grid.setdefault(self._cell(point), []).append(i)
        self.pairs: list[tuple[int, int]] = []
        self.joined: set[tuple[int, int]] = set()

    def km(self, i: int, j: int) -> float:
        (x1, y1), (x2, y2) = self.points[i], self.points[j]
        return math.hypot(x1 - x2, y1 - y2)

    def add(self, i: int, j: int) -> None:
        self.pairs.append((i, j))
        self.joined.add((min(i, j), max(i, j)))

    def nearest(
        self, point: tuple[float, float], k: int, exclude: Callable[[int], bool]
    ) -> list[int]:
        """The k devices nearest to a point, none of them `exclude`d (ring search on the grid)."""
        cx, cy = self._cell(point)
        found: list[tuple[float, int]] = []
        ring = 0
        while ring <= 2 * math.isqrt(len(self.points)) + 2:
            for gx in range(cx - ring, cx + ring + 1):
                for gy in range(cy - ring, cy + ring + 1):
                    if max(abs(gx - cx), abs(gy - cy)) != ring:
                        continue
                    found.extend(
                        (math.dist(point, self.points[j]), j)
                        for j in self.grid.get((gx, gy), [])
                        if not exclude(j)
                    )
            # Cells up to `ring` away are all searched: anything not found yet is further than
            # `ring` cell widths, so the k nearest are final once the k-th is within that.
            if len(found) >= k and sorted(found)[k - 1][0] <= ring * self.cell_km:
                break
            ring += 1
        return [j for _, j in sorted(found)[:k]]

    def _cell(self, point: tuple[float, float]) -> tuple[int, int]:
        return int(point[0] // self.cell_km), int(point[1] // self.cell_km)


def generate_cables(seed: int, devices: int, links: int) -> _Cables:
    rng = random.Random(seed)
    cables = _Cables(rng, devices)
    for i in range(devices):
        for j in cables.nearest(cables.points[i], NEAREST, i.__eq__):
            if (min(i, j), max(i, j)) not in cables.joined:
                cables.add(i, j)
    _connect(cables)
    parallel = int(links * PARALLEL_SHARE)
    while len(cables.pairs) < links - parallel:
        # Waxman-like: the far end is the device nearest to a point at a distance drawn with a
        # density falling as exp(-d / WAXMAN_KM), in a random direction.
        i = rng.randrange(devices)
        km, angle = rng.expovariate(1 / WAXMAN_KM), rng.uniform(0, 2 * math.pi)
        x, y = cables.points[i]
        (j,) = cables.nearest((x + km * math.cos(angle), y + km * math.sin(angle)), 1, i.__eq__)
        if (min(i, j), max(i, j)) not in cables.joined:
            cables.add(i, j)
    while len(cables.pairs) < links:
        cables.pairs.append(rng.choice(cables.pairs))  # a second fibre on an existing route
    return cables


def _connect(cables: _Cables) -> None:
    """Cable each smaller component to the nearest device outside it, until one is left."""
    while True:
        g = nx.Graph()
        g.add_nodes_from(range(len(cables.points)))
        g.add_edges_from(cables.pairs)
        parts = sorted(nx.connected_components(g), key=len)
        if len(parts) == 1:
            return
        for part in parts[:-1]:
            _, i, j = min(
                (cables.km(i, j), i, j)
                for i in part
                for j in cables.nearest(cables.points[i], 1, part.__contains__)
            )
            cables.add(i, j)


def build_inventory(cables: _Cables, rng: random.Random) -> tuple[InventoryGraph, dict[int, int]]:
    """The InventoryGraph of the cabling, and random reservations on its links."""
    g = InventoryGraph()
    names = [f"r{i}" for i in range(len(cables.points))]
    for name in names:
        g.upsert_device(Device(name=name))
    ports = [0] * len(names)
    reserved: dict[int, int] = {}
    for link_id, (i, j) in enumerate(cables.pairs, start=1):
        ends = []
        for dev in (i, j):
            ports[dev] += 1
            ends.append(Endpoint(device=names[dev], interface=f"eth{ports[dev]}"))
            g.upsert_interface(Interface(device=names[dev], name=f"eth{ports[dev]}"))
        km = cables.km(i, j)
        choices, weights = LOCAL_CAPACITY if km < 3 * cables.cell_km else LONG_CAPACITY
        capacity = rng.choices(choices, weights)[0]
        state = LinkState.DOWN if rng.random() < 0.02 else LinkState.UP
        g.upsert_link(
            Link(
                id=link_id,
                a=ends[0],
                b=ends[1],
                capacity_bps=capacity,
                latency_us=int(km * 1.3 * 5) + 10,
                state=state,
            )
        )
        if rng.random() < 0.6:
            reserved[link_id] = int(capacity * rng.uniform(0, 0.95))
    return g, reserved


def plain_graph(g: InventoryGraph) -> Any:
    """A simple nx.Graph of the up links, weighted by the lowest latency of parallel links."""
    plain = nx.Graph()
    plain.add_nodes_from(d.name for d in g.devices())
    for lk in g.links():
        if lk.state is not LinkState.UP:
            continue
        u, v = lk.a.device, lk.b.device
        old = plain.get_edge_data(u, v)
        if old is None or lk.latency_us < old["latency"]:
            plain.add_edge(u, v, latency=lk.latency_us)
    return plain


# --------------------------------------------------------------------------- timing


def _ms(ns: list[int]) -> tuple[float, float]:
    ordered = sorted(ns)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered) / 1e6, p95 / 1e6


def run(pairs: int, seconds: float, protected: int, seed: int) -> None:
    started = time.perf_counter()
    cables = generate_cables(seed, DEVICES, LINKS)
    g, reserved = build_inventory(cables, random.Random(seed + 1))
    plain = plain_graph(g)
    counts = g.counts()
    print(
        f"network: {counts['devices']} devices, {counts['links']} links "
        f"({plain.number_of_edges()} device pairs over up links), "
        f"{len(reserved)} links with reservations; built in {time.perf_counter() - started:.1f} s"
    )
    print(f"python {sys.version.split()[0]}, networkx {nx.__version__}, {platform.machine()}")

    rng = random.Random(seed + 2)
    names = [d.name for d in g.devices()]
    cold = _timed(lambda: _try_place(g, Demand(names[0], names[-1], DEMAND_BPS), reserved))
    flap = g.links()[len(names) // 2]
    g.upsert_link(flap.model_copy(update={"state": LinkState.DOWN}))
    warm = _timed(lambda: _try_place(g, Demand(names[0], names[-1], DEMAND_BPS), reserved))
    g.upsert_link(flap)
    print(
        f"search index: built by the first placement in {cold:.2f} s; rebuilt after a link "
        f"state change (landmarks kept) in {warm:.2f} s"
    )
    for _ in range(5):  # warm-up
        a, b = rng.sample(names, 2)
        nx.shortest_path(plain, a, b, weight="latency")
        _try_place(g, Demand(a, b, DEMAND_BPS, BUDGET_US), reserved)

    plain_ns: list[int] = []
    place_ns: list[int] = []
    outcomes: Counter[str] = Counter()
    stretch: list[float] = []
    deadline = time.perf_counter() + seconds
    gc.collect()
    for n in range(pairs):
        if time.perf_counter() > deadline:
            break
        a, b = rng.sample(names, 2)
        demand = Demand(a, b, DEMAND_BPS, BUDGET_US)
        for turn in (0, 1) if n % 2 else (1, 0):
            t0 = time.perf_counter_ns()
            if turn == 0:
                nodes = nx.shortest_path(plain, a, b, weight="latency")
                plain_ns.append(time.perf_counter_ns() - t0)
            else:
                outcome, latency = _try_place(g, demand, reserved)
                place_ns.append(time.perf_counter_ns() - t0)
        outcomes[outcome] += 1
        if latency is not None:
            best = nx.path_weight(plain, nodes, weight="latency")
            stretch.append(latency / best if best else 1.0)

    plain_med, plain_p95 = _ms(plain_ns)
    place_med, place_p95 = _ms(place_ns)
    print(
        f"\n{len(place_ns)} random pairs, demand {DEMAND_BPS // 1_000_000}M within {BUDGET_US} us"
    )
    print(f"  plain nx.shortest_path : median {plain_med:7.2f} ms   p95 {plain_p95:7.2f} ms")
    print(f"  constrained placement  : median {place_med:7.2f} ms   p95 {place_p95:7.2f} ms")
    print(
        f"  ratio placement/plain  : median {place_med / plain_med:.2f}x   "
        f"p95 {place_p95 / plain_p95:.2f}x   (goal <= 3x; p95 < 50 ms)"
    )
    print(f"  outcomes: {dict(sorted(outcomes.items()))}")
    if stretch:
        print(
            f"  placed paths' latency vs the unconstrained best: median "
            f"{statistics.median(stretch):.3f}x, max {max(stretch):.3f}x"
        )

    protected_ns: list[int] = []
    protected_outcomes: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds
    for _ in range(protected):
        if time.perf_counter() > deadline:
            break
        a, b = rng.sample(names, 2)
        demand = Demand(a, b, DEMAND_BPS, BUDGET_US, protection="node")
        t0 = time.perf_counter_ns()
        outcome, _ = _try_place(g, demand, reserved)
        protected_ns.append(time.perf_counter_ns() - t0)
        protected_outcomes[outcome] += 1
    if protected_ns:
        med, p95 = _ms(protected_ns)
        print(
            f"\n{len(protected_ns)} node-disjoint protected placements: median {med:.1f} ms, "
            f"p95 {p95:.1f} ms ({med / plain_med:.1f}x the plain search's median); "
            f"outcomes: {dict(sorted(protected_outcomes.items()))}"
        )


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _try_place(
    g: InventoryGraph, demand: Demand, reserved: dict[int, int]
) -> tuple[str, int | None]:
    try:
        placement = place(g, demand, reserved)
    except PlacementRefused as err:
        return f"refused: {err.reason}", None
    return "placed", placement.primary.latency_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=400, help="random pairs (max 5000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="timing budget (max 300)")
    parser.add_argument("--protected", type=int, default=20, help="protected placements (max 200)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    run(min(args.pairs, 5000), min(args.seconds, 300.0), min(args.protected, 200), args.seed)


if __name__ == "__main__":
    main()

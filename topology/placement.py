"""Constrained path placement for services and slices on the inventory graph.

`place` finds where a demand fits: the lowest-latency path between two devices whose every link
is up and has enough free bandwidth (capacity minus what committed services reserved), within the
latency budget when one is given, and optionally a second path link- or node-disjoint from it.
When nothing fits it raises `PlacementRefused` saying why in terms an engineer can act on: the
unknown device, the down link, the link whose free bandwidth limits the demand, the best latency
achievable, the one link or device every protection path would share.
`disjoint_pair` is the same disjoint search without bandwidth or budget (the API's disjoint
paths): the one implementation of disjoint paths.

Between parallel links the lowest-latency usable one carries the demand (then the one with the
most free bandwidth, then the lowest id). The caller owns the reservations (`reserved`: link id
-> bit/s booked by committed services) and books `Placement.links()` once the service is
committed.

Speed: searches run on a compact index of the graph (integer device numbers, one tuple per link
end) kept with the graph until it next changes (`InventoryGraph.derived`), and test each link's
state and free bandwidth as they reach it: nothing is filtered or copied per call. The
shortest-path search is A* with landmark lower bounds (ALT): the latency from a dozen far-apart
devices to every device, over all links whatever their state. For any devices u, t and landmark
L, |d(L, u) - d(L, t)| <= d(u, t) on any subset of the links, so the largest such difference is
an admissible and consistent heuristic for every constrained search; it steers the search
towards the target instead of growing a ball around the source. The landmark distances survive
changes that cannot lower a distance (link state, capacity, removals, slower links): the next
index takes them from the one before; other changes recompute them.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from itertools import pairwise
from operator import sub
from typing import Any, Literal

from oss.errors import InvalidInput, NoPath, NotFound, OssError
from topology.graph import InventoryGraph, Path, natural_key
from topology.model import Link, LinkState
from topology.units import format_rate

ProtectionMode = Literal["none", "link", "node"]
RefusalReason = Literal["unknown-device", "no-path", "bandwidth", "latency", "protection"]

# Devices where the two paths of a link-disjoint pair meet: at each, the halves can be paired
# two ways; up to 2**8 pairings are compared to keep the longer path within the budget.
_MAX_MEETING_POINTS = 8
_LANDMARKS = 12  # more tightens the bounds a little, and costs per search step and per rebuild
_UNLIMITED = 1 << 62  # more than any latency sum or bandwidth
_NO_LINK = -1

_Arc = tuple[str, str, Link]  # from device, to device, over link
# One end of a link in the index: (neighbour, latency_us, link id, capacity_bps, up).
_Entry = tuple[int, int, int, int, bool]


@dataclass(frozen=True)
class Demand:
    """What a service asks of the network between two devices."""

    a: str
    b: str
    bandwidth_bps: int
    max_latency_us: int | None = None
    protection: ProtectionMode = "none"

    def __post_init__(self) -> None:
        if self.a == self.b:
            raise InvalidInput(f"a demand joins two different devices, got '{self.a}' twice")
        if self.bandwidth_bps < 0:
            raise InvalidInput(f"bandwidth must be >= 0 bit/s, got {self.bandwidth_bps}")
        if self.max_latency_us is not None and self.max_latency_us < 0:
            raise InvalidInput(f"latency budget must be >= 0 us, got {self.max_latency_us}")
        if self.protection not in ("none", "link", "node"):
            raise InvalidInput(
                f"protection must be 'none', 'link' or 'node', got {self.protection!r}"
            )


@dataclass(frozen=True)
class Placement:
    """Where a demand goes: the primary path and, when protection was asked for, the backup."""

    primary: Path
    protection: Path | None = None

    def paths(self) -> list[Path]:
        return [self.primary] if self.protection is None else [self.primary, self.protection]

    def links(self) -> list[int]:
        """Every link either path uses (the links to reserve bandwidth on), once, by id."""
        return sorted({link for path in self.paths() for link in path.links})

    def devices(self) -> list[str]:
        """Every device either path crosses, once, in natural order."""
        return sorted({dev for path in self.paths() for dev in path.devices}, key=natural_key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary.to_dict(),
            "protection": None if self.protection is None else self.protection.to_dict(),
            "links": self.links(),
            "devices": self.devices(),
        }


class PlacementRefused(OssError, ValueError):
    """The demand does not fit. The message says why and names what to act on.

    `reason` is one of `RefusalReason`; `bottleneck` is the id of the link that limits the
    demand (the bandwidth bottleneck, or the one link every protection path would share), else
    None. Other details (best latency, down links...) are in `extra` for the API's problem body.
    """

    status = 409
    slug = "placement-refused"
    title = "Placement refused"

    def __init__(
        self,
        message: str,
        *,
        reason: RefusalReason,
        bottleneck: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message, reason=reason, bottleneck=bottleneck, **extra)
        self.reason: RefusalReason = reason
        self.bottleneck = bottleneck


def available_bps(graph: InventoryGraph, reserved: Mapping[int, int]) -> dict[int, int]:
    """Free bandwidth of every link (whatever its state): capacity minus reservations.

    Negative when a link is over-booked: kept as is so that the over-booking shows.
    """
    return {_id(lk): lk.capacity_bps - reserved.get(_id(lk), 0) for lk in graph.links()}


def place(graph: InventoryGraph, demand: Demand, reserved: Mapping[int, int]) -> Placement:
    """Place `demand` given the bandwidth already `reserved` per link id; see the module doc.

    The first call after the graph changed (re)builds the search index: O(links), plus the
    landmark distances when the change could shorten a path.
    """
    for name in (demand.a, demand.b):
        try:
            graph.device(name)
        except NotFound:
            raise PlacementRefused(
                f"device '{name}' is not in the inventory", reason="unknown-device", device=name
            ) from None
    net = _network(graph, reserved)
    primary = _place_primary(net, demand)
    if demand.protection == "none":
        return Placement(primary)
    return _place_protected(net, demand, primary)


def disjoint_pair(
    graph: InventoryGraph,
    src: str,
    dst: str,
    mode: Literal["link", "node"] = "link",
    *,
    include_down: bool = False,
) -> tuple[Path, Path]:
    """The two disjoint paths with the least total latency, primary (lower latency) first,
    whatever the links' load: the search protected placements use (Suurballe), unconstrained.

    It finds the optimal pair even where "shortest path, remove it, search again" finds none
    or a worse one. `link` mode: no link is shared (parallel links are distinct links). `node`
    mode: no device other than `src` and `dst` is shared.
    """
    if mode not in ("link", "node"):
        raise InvalidInput(f"mode must be 'link' or 'node', got {mode!r}")
    graph.check_ends(src, dst)
    net = _network(graph, {})
    usable = net.filter(include_down=include_down)
    primary = net.shortest(src, dst, usable)
    flow = (
        None
        if primary is None
        else _disjoint_flow(net, usable, primary, node_disjoint=mode == "node")
    )
    if not isinstance(flow, list):
        up = "" if include_down else " over up links"
        raise NoPath(f"no {mode}-disjoint pair of paths from {src} to {dst}{up}")
    return _ordered(_two_paths(src, dst, flow))


def _network(graph: InventoryGraph, reserved: Mapping[int, int]) -> _Network:
    """The graph's search index (kept with the graph until it changes) with `reserved`."""
    return _Network(graph.derived(__name__, partial(_Index.build, graph)), reserved)


# --------------------------------------------------------------------------- primary path


def _place_primary(net: _Network, demand: Demand) -> Path:
    primary = net.shortest(demand.a, demand.b, net.filter(bandwidth=demand.bandwidth_bps))
    if primary is None:
        if net.shortest(demand.a, demand.b, net.filter()) is None:
            raise _disconnected(net, demand)
        raise _short_of_bandwidth(net, demand)
    budget = demand.max_latency_us
    if budget is not None and primary.latency_us > budget:
        raise _over_budget(net, demand, primary, budget)
    return primary


def _disconnected(net: _Network, demand: Demand) -> PlacementRefused:
    a, b = demand.a, demand.b
    detour = net.shortest(a, b, net.filter(include_down=True))
    if detour is None:
        return PlacementRefused(
            f"no path from {a} to {b}: no chain of links joins them in the inventory",
            reason="no-path",
            down_links=[],
        )
    down = [lk for lk in net.links_of(detour) if lk.state is not LinkState.UP]
    return PlacementRefused(
        f"no path from {a} to {b} over up links; the shortest path over all links needs down "
        f"link(s) {', '.join(_describe(lk) for lk in down)}",
        reason="no-path",
        down_links=[_id(lk) for lk in down],
    )


def _short_of_bandwidth(net: _Network, demand: Demand) -> PlacementRefused:
    """Name the link that limits the bandwidth between the two devices.

    The least-free link on the lowest-latency path would be an arbitrary answer when another
    route has more room. So: `best` is the most free bandwidth any path offers end to end (the
    widest path). The devices `a` reaches over links with more than `best` free do not include
    `b`, so the links leaving them form a cut that every path crosses, each with at most `best`
    free: the min cut of this max-min problem. Nothing carries more than `best` until a link of
    that cut gains room. The named link is where the lowest-latency widest path crosses that cut:
    the link whose free bandwidth must grow (or whose reservations must shrink) first. The
    message also gives `best`, the most this demand could get today.
    """
    a, b = demand.a, demand.b
    best = net.widest(a, b)
    widest = net.shortest(a, b, net.filter(bandwidth=best))
    assert widest is not None  # the widest search just found a path with `best` free
    roomy = net.reach(a, net.filter(bandwidth=best + 1))
    tight = next(
        lk
        for (u, v), lk in zip(pairwise(widest.devices), net.links_of(widest), strict=True)
        if u in roomy and v not in roomy  # it has exactly `best` free: <= by the cut, >= by path
    )
    return PlacementRefused(
        f"not enough free bandwidth from {a} to {b}: {_describe(tight)} has "
        f"{format_rate(net.free(tight))} of {format_rate(tight.capacity_bps)} free, "
        f"{format_rate(demand.bandwidth_bps)} needed; no path has more than "
        f"{format_rate(best)} free end to end (the widest: {_route(widest)})",
        reason="bandwidth",
        bottleneck=_id(tight),
        free_bps=net.free(tight),
        needed_bps=demand.bandwidth_bps,
        best_bps=best,
    )


def _over_budget(net: _Network, demand: Demand, best: Path, budget: int) -> PlacementRefused:
    """Give the best latency achievable and, when bandwidth is what pushes it over, the link."""
    a, b = demand.a, demand.b
    message = (
        f"no path from {a} to {b}{_with_free(demand)} within {budget} us: the fastest takes "
        f"{best.latency_us} us ({_route(best)})"
    )
    bottleneck = None
    fastest = net.shortest(a, b, net.filter())
    assert fastest is not None  # `best` is a path of up links
    if fastest.latency_us <= budget:
        short = [lk for lk in net.links_of(fastest) if net.free(lk) < demand.bandwidth_bps]
        tight = min(short, key=net.free)
        bottleneck = _id(tight)
        more = f" ({len(short) - 1} more of its links lack it too)" if len(short) > 1 else ""
        message += (
            f"; the fastest path regardless of bandwidth takes {fastest.latency_us} us, but "
            f"{_describe(tight)} on it has {format_rate(net.free(tight))} of "
            f"{format_rate(tight.capacity_bps)} free, "
            f"{format_rate(demand.bandwidth_bps)} needed{more}"
        )
    return PlacementRefused(
        message,
        reason="latency",
        bottleneck=bottleneck,
        best_latency_us=best.latency_us,
        budget_us=budget,
    )


# --------------------------------------------------------------------------- protection


def _place_protected(net: _Network, demand: Demand, primary: Path) -> Placement:
    """The disjoint pair with the least total latency whose paths both meet the budget.

    A disjoint pair with a bound on each path's latency is NP-hard in general, so two good
    candidates are compared: the min-total pair (Suurballe, which finds a pair whenever one
    exists), and the primary with the fastest path avoiding it (keeps the best primary, and
    sometimes fits a budget the balanced pair misses).
    """
    mode = demand.protection
    a, b = demand.a, demand.b
    usable = net.filter(bandwidth=demand.bandwidth_bps)
    flow = _disjoint_flow(net, usable, primary, node_disjoint=mode == "node")
    if isinstance(flow, _SharedPoint):
        raise _unprotectable(demand, primary, flow)
    budget = demand.max_latency_us
    candidates = [_two_paths(a, b, flow)]
    avoid = replace(usable, banned_links=frozenset(primary.links))
    if mode == "node":
        avoid = replace(avoid, banned_devices=net.numbers(primary.devices[1:-1]))
    detour = net.shortest(a, b, avoid)
    if detour is not None:
        candidates.append((primary, detour))
    fitting = [pair for pair in candidates if budget is None or _longest(pair) <= budget]
    if not fitting:
        assert budget is not None
        closest = min(candidates, key=lambda pair: (_longest(pair), _total(pair)))
        first, second = _ordered(closest)
        raise PlacementRefused(
            f"no {mode}-disjoint protection for {a} -> {b}{_with_free(demand)} within "
            f"{budget} us: the best pair found takes {first.latency_us} us "
            f"({_route(first)}) and {second.latency_us} us ({_route(second)}); the primary "
            "alone fits",
            reason="protection",
            pair_latency_us=[first.latency_us, second.latency_us],
            budget_us=budget,
        )
    chosen = min(fitting, key=lambda pair: (_total(pair), min(p.latency_us for p in pair)))
    first, second = _ordered(chosen)
    return Placement(first, second)


@dataclass(frozen=True)
class _SharedPoint:
    """A link or a device that every usable path from a to b crosses."""

    link: Link | None = None
    device: str | None = None


def _unprotectable(demand: Demand, primary: Path, shared: _SharedPoint) -> PlacementRefused:
    what = f"device {shared.device}" if shared.link is None else _describe(shared.link)
    return PlacementRefused(
        f"no {demand.protection}-disjoint protection for {demand.a} -> {demand.b}"
        f"{_with_free(demand)}: every such path crosses {what}; the primary alone fits "
        f"({_route(primary)}, {primary.latency_us} us)",
        reason="protection",
        bottleneck=None if shared.link is None else _id(shared.link),
        shared_link=None if shared.link is None else _id(shared.link),
        shared_device=shared.device,
    )


def _disjoint_flow(
    net: _Network, usable: _Filter, primary: Path, *, node_disjoint: bool
) -> list[_Arc] | _SharedPoint:
    """Suurballe's algorithm: two units of min-latency flow along usable links, as arcs.

    1. The primary P is a shortest path; distances d from its source give every link a reduced
       cost latency + d(u) - d(v) >= 0, which is 0 along P.
    2. In the residual graph P's links can only be walked backwards (cancelling that part of P,
       reduced cost 0), so Dijkstra finds the second path on reduced costs.
    3. P and the second path minus the cancelled links carry the two units of flow.

    Node-disjoint: each device but the ends is split into an in-half and an out-half (states
    2n+1 and 2n), joined by an arc of capacity 1, so at most one path crosses it. When no second
    path exists, the search's reach is one side of a cut of capacity 1: the link or device of P
    that leaves it is what every path shares, and is returned instead.
    """
    index = net.index
    src, dst = index.at[primary.devices[0]], index.at[primary.devices[-1]]
    first = [
        (index.at[u], index.at[v], link_id)
        for (u, v), link_id in zip(pairwise(primary.devices), primary.links, strict=True)
    ]
    # Distances capped at dst's stay a feasible potential (the minimum of two feasible ones),
    # so the search may stop there: devices it did not settle are at least that far.
    cap = primary.latency_us
    potential = [min(d, cap) for d in index.ball(usable, net.reserved, src, cap)]
    entered_by = {v: (u, link_id) for u, v, link_id in first}
    interior = {v for _, v, _ in first[:-1]}
    on_first = {link_id for _, _, link_id in first}

    def split(dev: int) -> bool:
        return node_disjoint and dev not in (src, dst)

    def moves(state: int) -> Iterable[tuple[int, int, int, bool]]:
        """(next state, reduced cost, link id or _NO_LINK, cancels P's use of the link?)"""
        dev, in_half = state >> 1, state & 1
        if in_half and dev not in interior:
            yield 2 * dev, 0, _NO_LINK, False
            return
        if split(dev) and not in_half and dev in interior:
            yield 2 * dev + 1, 0, _NO_LINK, False  # undo P's pass through dev
        elif dev in entered_by:  # back over the link P entered dev by
            prev, link_id = entered_by[dev]
            latency = index.links[link_id].latency_us
            yield 2 * prev, potential[dev] - potential[prev] - latency, link_id, True
        if in_half:
            return
        for entry in index.adjacency[dev]:
            nbr, latency, link_id = entry[0], entry[1], entry[2]
            if nbr != dev and link_id not in on_first and usable.allows(entry, net.reserved):
                cost = latency + potential[dev] - potential[nbr]
                yield 2 * nbr + split(nbr), cost, link_id, False

    reached, prev_of, settled = _dijkstra_states(2 * src, 2 * dst, moves)
    if reached is None:
        return _shared_point(net, first, settled, split)
    cancelled: set[int] = set()
    arcs: list[_Arc] = []
    state = reached
    while state != 2 * src:
        before, link_id, cancel = prev_of[state]
        if cancel:
            cancelled.add(link_id)
        elif link_id != _NO_LINK:
            arcs.append((index.names[before >> 1], index.names[state >> 1], index.links[link_id]))
        state = before
    arcs += [
        (index.names[u], index.names[v], index.links[link_id])
        for u, v, link_id in first
        if link_id not in cancelled
    ]
    return _net_arcs(arcs)


def _dijkstra_states(
    start: int, goal: int, moves: Callable[[int], Iterable[tuple[int, int, int, bool]]]
) -> tuple[int | None, dict[int, tuple[int, int, bool]], set[int]]:
    """Dijkstra over integer states until `goal` is settled: (goal or None, how each state was
    reached as (previous state, link id, cancel), the settled states)."""
    settled: set[int] = set()
    seen = {start: 0}
    prev_of: dict[int, tuple[int, int, bool]] = {}
    heap = [(0, start)]
    while heap:
        dist, state = heapq.heappop(heap)
        if state in settled:
            continue
        settled.add(state)
        if state == goal:
            return state, prev_of, settled
        for nxt, cost, link_id, cancel in moves(state):
            total = dist + cost
            if nxt not in settled and total < seen.get(nxt, _UNLIMITED):
                seen[nxt] = total
                prev_of[nxt] = (state, link_id, cancel)
                heapq.heappush(heap, (total, nxt))
    return None, prev_of, settled


def _shared_point(
    net: _Network,
    first: list[tuple[int, int, int]],
    reach: set[int],
    split: Callable[[int], bool],
) -> _SharedPoint:
    """The element of the first path that leaves the residual search's reach."""
    for u, v, link_id in first:
        entry = 2 * v + split(v)
        if 2 * u in reach and entry not in reach:
            return _SharedPoint(link=net.index.links[link_id])
        if split(v) and entry in reach and 2 * v not in reach:
            return _SharedPoint(device=net.index.names[v])
    raise AssertionError("a cut of capacity 1 crosses the first path")


def _net_arcs(arcs: list[_Arc]) -> list[_Arc]:
    """Drop pairs of arcs that cross one link in opposite directions (they cancel out)."""
    by_link: dict[int, list[_Arc]] = {}
    for arc in arcs:
        by_link.setdefault(_id(arc[2]), []).append(arc)
    kept = []
    for arc in arcs:
        same = by_link[_id(arc[2])]
        if not any(other[0] == arc[1] and other[1] == arc[0] for other in same):
            kept.append(arc)
    return kept


def _two_paths(src: str, dst: str, arcs: list[_Arc]) -> tuple[Path, Path]:
    """Split two units of flow into two paths, the longer one as short as possible.

    Where the two units meet at a device (possible when only links must be disjoint), either
    incoming half can continue on either outgoing one; pairings are compared, up to a limit.
    """
    outgoing: dict[str, list[_Arc]] = {}
    for arc in sorted(arcs, key=lambda arc: _id(arc[2])):
        outgoing.setdefault(arc[0], []).append(arc)
    meeting = [d for d in sorted(outgoing, key=natural_key) if d != src and len(outgoing[d]) > 1]
    choices = meeting[:_MAX_MEETING_POINTS]
    best: tuple[Path, Path] | None = None
    for bits in itertools.product((0, 1), repeat=len(choices)):
        left = {dev: list(out) for dev, out in outgoing.items()}
        pick = dict(zip(choices, bits, strict=True))
        pair = (_walk(src, dst, left, pick), _walk(src, dst, left, {}))
        if best is None or (_longest(pair), _total(pair)) < (_longest(best), _total(best)):
            best = pair
    assert best is not None
    return best


def _walk(src: str, dst: str, outgoing: dict[str, list[_Arc]], pick: Mapping[str, int]) -> Path:
    """Take one unit of flow out of `outgoing` (consumed) as a path, cutting any loops."""
    nodes: list[str] = [src]
    links: list[Link] = []
    while nodes[-1] != dst:
        options = outgoing[nodes[-1]]
        _, to, link = options.pop(min(pick.get(nodes[-1], 0), len(options) - 1))
        if to in nodes:  # zero-latency cycles can appear in the flow: drop the loop
            cut = nodes.index(to)
            del nodes[cut + 1 :], links[cut:]
        else:
            nodes.append(to)
            links.append(link)
    return Path.through(nodes, links)


def _longest(pair: tuple[Path, Path]) -> int:
    return max(pair[0].latency_us, pair[1].latency_us)


def _total(pair: tuple[Path, Path]) -> int:
    return pair[0].latency_us + pair[1].latency_us


def _ordered(pair: tuple[Path, Path]) -> tuple[Path, Path]:
    first, second = sorted(pair, key=lambda p: (p.latency_us, p.hops, p.links))
    return first, second


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class _Landmarks:
    """Latency from each landmark to every device over all links, per device name (-1: out of
    reach), with the links they were computed over: (a, b, latency) per link id."""

    distances: dict[str, tuple[int, ...]]
    over: dict[int, tuple[str, str, int]]

    def still_bound(self, names: list[str], links: Iterable[Link]) -> bool:
        """Still lower bounds: no new device, and no link that is new, moved or faster."""
        if any(name not in self.distances for name in names):
            return False
        for lk in links:
            was = self.over.get(_id(lk))
            if was is None or was[:2] != (lk.a.device, lk.b.device) or lk.latency_us < was[2]:
                return False
        return True


@dataclass(frozen=True)
class _Index:
    """The graph as integers: device i is `names[i]`, `adjacency[i]` lists its link ends."""

    names: list[str]
    at: dict[str, int]
    adjacency: list[list[_Entry]]
    links: dict[int, Link]
    bounds: list[tuple[int, ...]]  # landmark distances per device number
    landmarks: _Landmarks

    @classmethod
    def build(cls, graph: InventoryGraph, last: _Index | None) -> _Index:
        """The index of the graph as it is; `last` (built before the graph's last change) lends
        its landmarks when they are still lower bounds."""
        names = [device.name for device in graph.devices()]
        at = {name: i for i, name in enumerate(names)}
        adjacency: list[list[_Entry]] = [[] for _ in names]
        links = {_id(lk): lk for lk in graph.links()}
        for link_id, lk in links.items():
            u, v = at[lk.a.device], at[lk.b.device]
            if u != v:  # a loop never helps a path
                up = lk.state is LinkState.UP
                adjacency[u].append((v, lk.latency_us, link_id, lk.capacity_bps, up))
                adjacency[v].append((u, lk.latency_us, link_id, lk.capacity_bps, up))
        landmarks = None if last is None else last.landmarks
        if landmarks is None or not landmarks.still_bound(names, links.values()):
            landmarks = _choose_landmarks(names, adjacency, links)
        bounds = [landmarks.distances[name] for name in names]
        return cls(names, at, adjacency, links, bounds, landmarks)

    def astar(
        self, usable: _Filter, reserved: Mapping[int, int], src: int, dst: int
    ) -> list[int] | None:
        """Device numbers of the lowest-latency usable path, or None (A* with the landmarks).

        This loop is what every placement spends its time in, so the link test is inlined.
        """
        adjacency, bounds = self.adjacency, self.bounds
        need = usable.need
        any_state = usable.include_down
        banned_links, banned_devices = usable.banned_links, usable.banned_devices
        restricted = bool(banned_links or banned_devices)
        target = bounds[dst]
        count = len(adjacency)
        best = [_UNLIMITED] * count
        parent = [-1] * count
        lower = [-1] * count  # the heuristic, computed once per device reached
        closed = bytearray(count)
        best[src] = 0
        heap = [(0, 0, src)]
        while heap:
            _, dist, u = heapq.heappop(heap)
            if closed[u]:
                continue
            if u == dst:
                nodes = [dst]
                while nodes[-1] != src:
                    nodes.append(parent[nodes[-1]])
                return nodes[::-1]
            closed[u] = 1
            for v, latency, link_id, capacity, up in adjacency[u]:
                if closed[v] or not (up or any_state):
                    continue
                if capacity - reserved.get(link_id, 0) < need:
                    continue
                if restricted and (link_id in banned_links or v in banned_devices):
                    continue
                total = dist + latency
                if total < best[v]:
                    best[v] = total
                    parent[v] = u
                    h = lower[v]
                    if h < 0:
                        h = lower[v] = max(map(abs, map(sub, bounds[v], target)))
                    heapq.heappush(heap, (total + h, total, v))
        return None

    def ball(
        self, usable: _Filter, reserved: Mapping[int, int], src: int, radius: int
    ) -> list[int]:
        """Distances from src over usable links, for every device up to `radius` away (the
        others get _UNLIMITED)."""
        dist = [_UNLIMITED] * len(self.adjacency)
        done = bytearray(len(self.adjacency))
        dist[src] = 0
        heap = [(0, src)]
        while heap:
            d, u = heapq.heappop(heap)
            if done[u]:
                continue
            done[u] = 1
            if d >= radius:
                break
            for entry in self.adjacency[u]:
                v, latency = entry[0], entry[1]
                if d + latency < dist[v] and usable.allows(entry, reserved):
                    dist[v] = d + latency
                    heapq.heappush(heap, (d + latency, v))
        return dist


def _choose_landmarks(
    names: list[str], adjacency: list[list[_Entry]], links: dict[int, Link]
) -> _Landmarks:
    """Far-apart landmarks (each the device farthest from those already chosen; a device out
    of their reach counts as farthest, so every part of a split network gets one)."""
    count = len(names)
    nearest = [_UNLIMITED] * count
    start = _farthest(_all_link_distances(adjacency, 0))
    chosen: list[list[int]] = []
    candidate = start
    while len(chosen) < min(_LANDMARKS, count):
        dist = _all_link_distances(adjacency, candidate)
        chosen.append(dist)
        nearest = [min(x, y) for x, y in zip(nearest, dist, strict=True)]
        candidate = _farthest(nearest)
        if nearest[candidate] == 0:
            break  # every device is a landmark already
    distances = {
        name: tuple(d[i] if d[i] < _UNLIMITED else -1 for d in chosen)
        for i, name in enumerate(names)
    }
    over = {link_id: (lk.a.device, lk.b.device, lk.latency_us) for link_id, lk in links.items()}
    return _Landmarks(distances, over)


def _farthest(dist: list[int]) -> int:
    return max(range(len(dist)), key=dist.__getitem__)  # the first of equals


def _all_link_distances(adjacency: list[list[_Entry]], src: int) -> list[int]:
    """Dijkstra from src over every link, whatever its state or load."""
    dist = [_UNLIMITED] * len(adjacency)
    dist[src] = 0
    heap = [(0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, latency, *_ in adjacency[u]:
            if d + latency < dist[v]:
                dist[v] = d + latency
                heapq.heappush(heap, (d + latency, v))
    return dist


# --------------------------------------------------------------------------- searches


@dataclass(frozen=True)
class _Filter:
    """Which links a search may use."""

    need: int = -_UNLIMITED  # free bandwidth a link must have; the default: whatever it has
    include_down: bool = False
    banned_links: frozenset[int] = frozenset()
    banned_devices: frozenset[int] = frozenset()

    def allows(self, entry: _Entry, reserved: Mapping[int, int]) -> bool:
        nbr, _, link_id, capacity, up = entry
        return (
            (up or self.include_down)
            and capacity - reserved.get(link_id, 0) >= self.need
            and link_id not in self.banned_links
            and nbr not in self.banned_devices
        )


class _Network:
    """One placement's view: the index and the reservations."""

    def __init__(self, index: _Index, reserved: Mapping[int, int]) -> None:
        self.index = index
        self.reserved = reserved

    def filter(self, *, bandwidth: int | None = None, include_down: bool = False) -> _Filter:
        need = -_UNLIMITED if bandwidth is None else bandwidth
        return _Filter(need=need, include_down=include_down)

    def numbers(self, names: Iterable[str]) -> frozenset[int]:
        return frozenset(self.index.at[name] for name in names)

    def free(self, link: Link) -> int:
        return link.capacity_bps - self.reserved.get(_id(link), 0)

    def shortest(self, src: str, dst: str, usable: _Filter) -> Path | None:
        """The lowest-latency path over usable links, if any."""
        index = self.index
        nodes = index.astar(usable, self.reserved, index.at[src], index.at[dst])
        if nodes is None:
            return None
        links = [self._pick(usable, u, v) for u, v in pairwise(nodes)]
        return Path.through([index.names[i] for i in nodes], links)

    def _pick(self, usable: _Filter, u: int, v: int) -> Link:
        """The usable link from u to v with the lowest latency, then most free, then lowest id."""
        entries = [
            e for e in self.index.adjacency[u] if e[0] == v and usable.allows(e, self.reserved)
        ]
        _, _, link_id, _, _ = min(
            entries, key=lambda e: (e[1], -(e[3] - self.reserved.get(e[2], 0)), e[2])
        )
        return self.index.links[link_id]

    def links_of(self, path: Path) -> list[Link]:
        return [self.index.links[link_id] for link_id in path.links]

    def widest(self, src: str, dst: str) -> int:
        """The most free bandwidth a path of up links offers end to end (max-min Dijkstra)."""
        index, usable = self.index, self.filter()
        start, goal = index.at[src], index.at[dst]
        best = {start: _UNLIMITED}
        done: set[int] = set()
        heap = [(-_UNLIMITED, start)]
        while heap:
            negated, u = heapq.heappop(heap)
            if u in done:
                continue
            if u == goal:
                return -negated
            done.add(u)
            for entry in index.adjacency[u]:
                v, link_id, capacity = entry[0], entry[2], entry[3]
                room = min(-negated, capacity - self.reserved.get(link_id, 0))
                better = v not in done and room > best.get(v, -_UNLIMITED)
                if better and usable.allows(entry, self.reserved):
                    best[v] = room
                    heapq.heappush(heap, (-room, v))
        raise NoPath(f"no path from {src} to {dst} over up links")

    def reach(self, src: str, usable: _Filter) -> set[str]:
        """The devices src reaches over usable links."""
        index = self.index
        found, todo = {index.at[src]}, [index.at[src]]
        while todo:
            for entry in index.adjacency[todo.pop()]:
                if entry[0] not in found and usable.allows(entry, self.reserved):
                    found.add(entry[0])
                    todo.append(entry[0])
        return {index.names[i] for i in found}


# --------------------------------------------------------------------------- wording


def _id(link: Link) -> int:
    return link.id or 0  # links in the graph always have an id


def _describe(link: Link) -> str:
    return f"link {_id(link)} {link.a} <-> {link.b}"


def _route(path: Path) -> str:
    return " -> ".join(path.devices)


def _with_free(demand: Demand) -> str:
    return f" with {format_rate(demand.bandwidth_bps)} free" if demand.bandwidth_bps else ""

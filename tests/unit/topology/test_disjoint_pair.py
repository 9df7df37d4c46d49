"""topology.placement.disjoint_pair: the least-latency disjoint pair (Suurballe, the search
protected placements use) on hand-built graphs, the shipped metro lab and against brute force."""

from __future__ import annotations

import itertools
import random

import networkx as nx
import pytest

from oss.errors import InvalidInput, NoPath, NotFound
from tests.unit.topology.test_graph import G10, Spec, build, load
from topology.graph import InventoryGraph
from topology.model import Device, LinkState
from topology.placement import _walk, disjoint_pair


def trap() -> InventoryGraph:
    """The classic trap: the shortest path s-a-b-t uses the only link that both disjoint paths
    would need to avoid, so "shortest path, then remove it, then search again" finds nothing."""
    return build(
        [
            ("s", "a", 1),  # 1
            ("a", "b", 1),  # 2
            ("b", "t", 1),  # 3
            ("s", "b", 3),  # 4
            ("a", "t", 3),  # 5
        ]
    )


@pytest.mark.parametrize("mode", ["link", "node"])
def test_disjoint_pair_escapes_the_trap(mode: str) -> None:
    g = trap()
    assert g.shortest_path("s", "t").devices == ["s", "a", "b", "t"]
    # the greedy second search really fails once the first path's links are gone
    for link_id in g.shortest_path("s", "t").links:
        g.remove_link(link_id)
    with pytest.raises(NoPath):
        g.shortest_path("s", "t")

    primary, backup = disjoint_pair(trap(), "s", "t", mode)  # type: ignore[arg-type]
    assert {tuple(primary.devices), tuple(backup.devices)} == {("s", "a", "t"), ("s", "b", "t")}
    assert primary.latency_us + backup.latency_us == 8
    assert set(primary.links).isdisjoint(backup.links)


def test_disjoint_primary_is_the_faster_path() -> None:
    g = build([("s", "x", 1), ("x", "t", 1), ("s", "y", 5), ("y", "t", 5)])
    primary, backup = disjoint_pair(g, "s", "t", "link")
    assert (primary.devices, primary.latency_us) == (["s", "x", "t"], 2)
    assert (backup.devices, backup.latency_us) == (["s", "y", "t"], 10)


def test_parallel_links_are_link_disjoint() -> None:
    g = build([("s", "t", 9), ("s", "t", 3), ("s", "t", 1, G10, "down")])
    primary, backup = disjoint_pair(g, "s", "t", "link")
    assert (primary.links, backup.links) == ([2], [1])
    # direct parallel links share no intermediate device either
    assert [p.links for p in disjoint_pair(g, "s", "t", "node")] == [[2], [1]]


def test_node_mode_refuses_a_shared_device() -> None:
    # bow tie: two parallel links on each side of m
    g = build([("s", "m", 1), ("s", "m", 2), ("m", "t", 1), ("m", "t", 2)])
    primary, backup = disjoint_pair(g, "s", "t", "link")
    assert primary.devices == backup.devices == ["s", "m", "t"]
    assert set(primary.links).isdisjoint(backup.links)
    assert primary.latency_us + backup.latency_us == 6
    with pytest.raises(NoPath, match="node-disjoint"):
        disjoint_pair(g, "s", "t", "node")


def test_no_disjoint_pair_over_a_bridge() -> None:
    g = build([("s", "a", 1), ("s", "a", 1, G10, "down"), ("a", "t", 1)])
    with pytest.raises(NoPath, match="no link-disjoint pair of paths from s to t over up links"):
        disjoint_pair(g, "s", "t", "link")
    g.upsert_device(Device(name="alone"))
    for mode in ("link", "node"):
        with pytest.raises(NoPath, match=f"no {mode}-disjoint pair of paths from s to alone"):
            disjoint_pair(g, "s", "alone", mode)
    with pytest.raises(InvalidInput):
        disjoint_pair(g, "s", "t", "ring")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        disjoint_pair(g, "s", "x")


def test_disjoint_pair_on_metro() -> None:
    g = load("metro.clab.yml")
    primary, backup = disjoint_pair(g, "acc1", "acc4", "node")
    assert primary.devices == ["acc1", "agg1", "acc4"]
    assert backup.devices == ["acc1", "agg2", "acc4"]
    assert primary.latency_us == backup.latency_us == 1300
    # link mode may reuse agg1 via the parallel core links; the optimum still doesn't need to
    link_pair = disjoint_pair(g, "pe1", "pe2", "link")
    assert sum(p.latency_us for p in link_pair) == 1100 + 1100


def brute_force_best(g: nx.MultiGraph, src: str, dst: str, mode: str) -> int | None:
    """Least total latency over all pairs of disjoint simple paths (exhaustive)."""
    paths = []
    for edges in nx.all_simple_edge_paths(g, src, dst):
        latency = sum(g.edges[e]["latency"] for e in edges)
        ids = {e[2] for e in edges}
        inner = {n for e in edges for n in e[:2]} - {src, dst}
        paths.append((latency, ids, inner))
    best = None
    for (l1, ids1, in1), (l2, ids2, in2) in itertools.combinations(paths, 2):
        disjoint = not (in1 & in2) if mode == "node" else not (ids1 & ids2)
        if disjoint and (best is None or l1 + l2 < best):
            best = l1 + l2
    return best


def least_disjoint_total(g: InventoryGraph, src: str, dst: str, mode: str) -> int | None:
    """Least total latency of a disjoint pair over up links, by networkx's min-cost flow (an
    independent reference): two units from src to dst, each link a middle node of capacity 1
    entered from either end at its latency; in node mode every other device is split in two
    halves joined by capacity 1. None when no pair exists."""

    def half(dev: str, side: str) -> object:
        return (dev, side) if mode == "node" and dev not in (src, dst) else dev

    d = nx.DiGraph()
    d.add_edge("source", src, capacity=2, weight=0)
    d.add_node(dst)
    for dev in (device.name for device in g.devices()):
        if half(dev, "in") != dev:
            d.add_edge((dev, "in"), (dev, "out"), capacity=1, weight=0)
    for lk in g.links():
        u, v = lk.a.device, lk.b.device
        if lk.state is not LinkState.UP or u == v:
            continue
        mid = ("link", lk.id)
        for end, other in ((u, v), (v, u)):
            d.add_edge(half(end, "out"), mid, capacity=1, weight=lk.latency_us)
            d.add_edge(mid, half(other, "in"), capacity=1, weight=0)
    flow = nx.max_flow_min_cost(d, "source", dst)
    if flow["source"][src] < 2:
        return None
    total: int = nx.cost_of_flow(d, flow)
    return total


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("mode", ["link", "node"])
def test_disjoint_pair_matches_min_cost_flow(seed: int, mode: str) -> None:
    """Larger random graphs than brute force can check, parallel and zero-latency links in."""
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(14)]
    specs: list[Spec] = []
    for _ in range(32):
        a, b = rng.sample(names, 2)
        state = "down" if rng.random() < 0.1 else "up"
        specs.append((a, b, rng.randint(0, 9), G10, state))
    g = build(specs, extra_devices=tuple(names))
    expected = least_disjoint_total(g, "n0", "n1", mode)
    if expected is None:
        with pytest.raises(NoPath):
            disjoint_pair(g, "n0", "n1", mode)  # type: ignore[arg-type]
        return
    primary, backup = disjoint_pair(g, "n0", "n1", mode)  # type: ignore[arg-type]
    assert primary.latency_us + backup.latency_us == expected
    assert primary.latency_us <= backup.latency_us
    assert set(primary.links).isdisjoint(backup.links)
    if mode == "node":
        assert set(primary.devices[1:-1]).isdisjoint(backup.devices[1:-1])


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("mode", ["link", "node"])
def test_disjoint_pair_matches_brute_force(seed: int, mode: str) -> None:
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(7)]
    specs: list[Spec] = []
    for _ in range(12):
        a, b = rng.sample(names, 2)
        state = "down" if rng.random() < 0.1 else "up"
        specs.append((a, b, rng.randint(0, 6), G10, state))  # zero latency included on purpose
    g = build(specs, extra_devices=tuple(names))
    reference = nx.MultiGraph()
    for i, (a, b, latency, _, state) in enumerate(specs, start=1):  # type: ignore[misc]
        if state == "up":
            reference.add_edge(a, b, key=i, latency=latency)
    reference.add_nodes_from(names)
    expected = brute_force_best(reference, "n0", "n1", mode)
    if expected is None:
        with pytest.raises(NoPath):
            disjoint_pair(g, "n0", "n1", mode)  # type: ignore[arg-type]
        return
    primary, backup = disjoint_pair(g, "n0", "n1", mode)  # type: ignore[arg-type]
    assert primary.latency_us + backup.latency_us == expected
    assert primary.latency_us <= backup.latency_us
    for p in (primary, backup):
        assert p.devices[0] == "n0" and p.devices[-1] == "n1"
        assert len(set(p.devices)) == len(p.devices)
        for (u, v), link_id in zip(itertools.pairwise(p.devices), p.links, strict=True):
            link = g.link(link_id)
            assert {link.a.device, link.b.device} == {u, v} and link.state is LinkState.UP
        assert p.latency_us == sum(g.link(i).latency_us for i in p.links)
    assert set(primary.links).isdisjoint(backup.links)
    if mode == "node":
        assert set(primary.devices[1:-1]).isdisjoint(backup.devices[1:-1])


def test_flow_walk_cuts_zero_latency_loops() -> None:
    # A min-cost flow may carry a zero-cost cycle; turning flow into a path must drop it.
    g = build([("s", "a", 1), ("a", "b", 0), ("b", "a", 0), ("a", "t", 1)])
    one, two, three, four = (g.link(i) for i in (1, 2, 3, 4))
    outgoing = {
        "s": [("s", "a", one)],
        "a": [("a", "b", two), ("a", "t", four)],
        "b": [("b", "a", three)],
    }
    path = _walk("s", "t", outgoing, {})
    assert (path.devices, path.links, path.latency_us) == (["s", "a", "t"], [1, 4], 2)
    assert all(not arcs for arcs in outgoing.values())

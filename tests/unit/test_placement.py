"""Constrained placement (topology.placement) on small hand-built graphs, plus randomized
cross-checks against InventoryGraph's unconstrained searches and a min-cost flow on
pre-filtered copies."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from oss.errors import InvalidInput, NoPath, OssError
from tests.unit.topology.test_disjoint_pair import least_disjoint_total
from topology.graph import InventoryGraph
from topology.model import Device, Endpoint, Interface, Link, LinkState
from topology.placement import (
    Demand,
    Placement,
    PlacementRefused,
    available_bps,
    place,
)

G = 1_000_000_000
M = 1_000_000
G10 = 10 * G
G100 = 100 * G

# A link spec: (a, b, latency_us) or (a, b, latency_us, capacity_bps) or (..., state).
Spec = tuple[str, str, int] | tuple[str, str, int, int] | tuple[str, str, int, int, str]


def build(specs: list[Spec], extra_devices: tuple[str, ...] = ()) -> InventoryGraph:
    """A graph whose link i (1-based) is specs[i-1]; interfaces are eth1, eth2... per device."""
    g = InventoryGraph()
    ports: dict[str, int] = {}

    def port(dev: str) -> Endpoint:
        if dev not in ports:
            g.upsert_device(Device(name=dev))
            ports[dev] = 0
        ports[dev] += 1
        end = Endpoint(device=dev, interface=f"eth{ports[dev]}")
        g.upsert_interface(Interface(device=dev, name=end.interface))
        return end

    for dev in extra_devices:
        port(dev)
    for i, spec in enumerate(specs, start=1):
        capacity = spec[3] if len(spec) > 3 else G10
        state = spec[4] if len(spec) > 4 else "up"
        g.upsert_link(
            Link(
                id=i,
                a=port(spec[0]),
                b=port(spec[1]),
                latency_us=spec[2],
                capacity_bps=capacity,
                state=LinkState(state),
            )
        )
    return g


def refused(g: InventoryGraph, demand: Demand, reserved: dict[int, int] | None = None):
    with pytest.raises(PlacementRefused) as info:
        place(g, demand, reserved or {})
    return info.value


DIAMOND: list[Spec] = [
    ("a", "b", 10),  # 1
    ("b", "d", 10),  # 2
    ("a", "c", 5),  # 3
    ("c", "d", 5),  # 4
]


# --------------------------------------------------------------------------- primary path


def test_the_lowest_latency_path_is_chosen() -> None:
    p = place(build(DIAMOND), Demand("a", "d", 100 * M), {})
    assert p.primary.devices == ["a", "c", "d"]
    assert p.primary.links == [3, 4]
    assert p.primary.latency_us == 10
    assert p.protection is None


def test_a_link_without_the_capacity_is_avoided() -> None:
    specs = list(DIAMOND)
    specs[3] = ("c", "d", 5, 1 * G)
    g = build(specs)
    assert place(g, Demand("a", "d", 1 * G), {}).primary.links == [3, 4]  # exactly enough
    assert place(g, Demand("a", "d", 1 * G + 1), {}).primary.links == [1, 2]


def test_a_reservation_makes_a_link_ineligible_at_the_boundary() -> None:
    g = build(DIAMOND)
    need = 2 * G
    assert place(g, Demand("a", "d", need), {3: G10 - need}).primary.links == [3, 4]
    assert place(g, Demand("a", "d", need), {3: G10 - need + 1}).primary.links == [1, 2]


def test_reservations_on_other_links_do_not_matter() -> None:
    g = build(DIAMOND)
    assert place(g, Demand("a", "d", 9 * G), {1: G10, 2: G10}).primary.links == [3, 4]


def test_down_links_are_excluded() -> None:
    specs = list(DIAMOND)
    specs[2] = ("a", "c", 5, G10, "down")
    assert place(build(specs), Demand("a", "d", 0), {}).primary.links == [1, 2]


def test_parallel_links_the_best_feasible_one_carries_the_demand() -> None:
    g = build(
        [
            ("a", "b", 5, 1 * G),  # 1: fastest but small
            ("a", "b", 8, G10),  # 2
            ("a", "b", 8, G100),  # 3: as fast as 2, more room
            ("b", "c", 1),  # 4
        ]
    )
    assert place(g, Demand("a", "c", 500 * M), {}).primary.links == [1, 4]
    assert place(g, Demand("a", "c", 2 * G), {}).primary.links == [3, 4]
    assert place(g, Demand("a", "c", 2 * G), {3: G100 - G}).primary.links == [2, 4]
    assert place(g, Demand("a", "c", 500 * M), {1: 600 * M}).primary.links == [3, 4]
    assert place(g, Demand("a", "c", 500 * M), {1: 600 * M}).primary.latency_us == 9


def test_the_latency_budget_accepts_a_path_exactly_on_it() -> None:
    p = place(build(DIAMOND), Demand("a", "d", 0, max_latency_us=10), {})
    assert p.primary.latency_us == 10


# --------------------------------------------------------------------------- refusals


def test_unknown_device() -> None:
    err = refused(build(DIAMOND), Demand("a", "zz", 1))
    assert err.reason == "unknown-device"
    assert "device 'zz' is not in the inventory" in str(err)
    assert err.bottleneck is None
    assert isinstance(err, OssError) and isinstance(err, ValueError)
    assert err.status == 409


def test_no_path_at_all() -> None:
    g = build([("a", "b", 1), ("c", "d", 1)])
    err = refused(g, Demand("a", "d", 1))
    assert err.reason == "no-path"
    assert "no path from a to d: no chain of links joins them" in str(err)


def test_no_path_over_up_links_names_the_down_link() -> None:
    g = build([("a", "b", 1), ("b", "c", 1, G10, "down"), ("a", "c", 50, G10, "down")])
    err = refused(g, Demand("a", "c", 1))
    assert err.reason == "no-path"
    assert err.extra["down_links"] == [2]
    assert "needs down link(s) link 2 b:eth2 <-> c:eth1" in str(err)


def test_over_subscription_names_the_bottleneck_link() -> None:
    g = build([("agg0", "agg1", 10, G100), ("agg1", "agg2", 10, G100)])
    err = refused(g, Demand("agg0", "agg2", 200 * M), {2: G100 - 150 * M})
    assert err.reason == "bandwidth"
    assert err.bottleneck == 2
    assert "link 2 agg1:eth2 <-> agg2:eth1 has 150M of 100G free, 200M needed" in str(err)
    assert "no path has more than 150M free end to end" in str(err)
    assert err.extra["free_bps"] == 150 * M
    assert err.extra["best_bps"] == 150 * M


def test_the_bottleneck_is_on_the_widest_path_not_the_fastest() -> None:
    g = build(
        [
            ("a", "x", 1),  # 1
            ("x", "d", 1, 1 * G),  # 2: on the fastest path, 50M free
            ("a", "y", 5),  # 3
            ("y", "d", 5, 1 * G),  # 4: on the slower path, 150M free
        ]
    )
    err = refused(g, Demand("a", "d", 200 * M), {2: 950 * M, 4: 850 * M})
    assert err.bottleneck == 4
    assert "has 150M of 1G free, 200M needed" in str(err)
    assert "(the widest: a -> y -> d)" in str(err)


def test_the_bottleneck_is_where_the_widest_path_crosses_the_min_cut() -> None:
    # The widest path a -> p -> d takes link 1 (150M free, fast) but p is also reachable over
    # link 3 with plenty of room, so freeing link 1 would not help: link 2 is the one to name.
    g = build([("a", "p", 1, 150 * M), ("p", "d", 1, 150 * M), ("a", "p", 10, G10)])
    err = refused(g, Demand("a", "d", 200 * M))
    assert err.bottleneck == 2
    assert "link 2 p:eth2 <-> d:eth1 has 150M of 150M free" in str(err)


def test_an_over_booked_link_reports_negative_free_bandwidth() -> None:
    g = build([("a", "b", 1, G)])
    err = refused(g, Demand("a", "b", 1), {1: G + 50 * M})
    assert err.bottleneck == 1
    assert "has -50M of 1G free" in str(err)


def test_latency_budget_refusal_gives_the_best_latency() -> None:
    g = build(DIAMOND)
    err = refused(g, Demand("a", "d", 0, max_latency_us=9))
    assert err.reason == "latency"
    assert err.extra["best_latency_us"] == 10
    assert err.bottleneck is None
    assert "within 9 us: the fastest takes 10 us (a -> c -> d)" in str(err)


def test_latency_budget_refusal_names_the_link_short_of_bandwidth_on_the_fast_path() -> None:
    specs = list(DIAMOND)
    specs[3] = ("c", "d", 5, 1 * G)
    err = refused(build(specs), Demand("a", "d", 2 * G, max_latency_us=15))
    assert err.reason == "latency"
    assert err.extra["best_latency_us"] == 20
    assert err.bottleneck == 4
    message = str(err)
    assert "with 2G free within 15 us: the fastest takes 20 us (a -> b -> d)" in message
    assert "takes 10 us, but link 4 c:eth2 <-> d:eth2 on it has 1G of 1G free, 2G needed" in message


# --------------------------------------------------------------------------- protection

# Two parallel links a=m and two m=d, plus a slower way round through z.
BOWTIE: list[Spec] = [
    ("a", "m", 1),  # 1
    ("a", "m", 2),  # 2
    ("m", "d", 1),  # 3
    ("m", "d", 2),  # 4
    ("a", "z", 10),  # 5
    ("z", "d", 10),  # 6
]


def test_link_disjoint_protection_may_share_a_device() -> None:
    p = place(build(BOWTIE), Demand("a", "d", G, protection="link"), {})
    assert p.primary.links == [1, 3]
    assert p.protection is not None
    assert p.protection.devices == ["a", "m", "d"]
    assert p.protection.links == [2, 4]
    assert p.links() == [1, 2, 3, 4]
    assert p.devices() == ["a", "d", "m"]


def test_node_disjoint_protection_avoids_the_primary_s_devices() -> None:
    p = place(build(BOWTIE), Demand("a", "d", G, protection="node"), {})
    assert p.primary.links == [1, 3]
    assert p.protection is not None
    assert p.protection.devices == ["a", "z", "d"]
    assert p.links() == [1, 3, 5, 6]


def test_protection_respects_bandwidth() -> None:
    g = build(BOWTIE)
    p = place(g, Demand("a", "d", G, protection="link"), {4: G10 - G + 1})
    assert p.primary.links == [1, 3]
    assert p.protection is not None
    assert p.protection.links == [5, 6]


def test_protection_finds_the_pair_that_shortest_then_remove_misses() -> None:
    # The trap: the shortest path s-a-b-t leaves no second path once removed; the only
    # disjoint pair uses neither of its middle links.
    g = build([("s", "a", 1), ("a", "b", 1), ("b", "t", 1), ("s", "b", 3), ("a", "t", 3)])
    for mode in ("link", "node"):
        p = place(g, Demand("s", "t", 0, protection=mode), {})
        assert p.protection is not None
        assert {tuple(p.primary.devices), tuple(p.protection.devices)} == {
            ("s", "a", "t"),
            ("s", "b", "t"),
        }
        assert p.primary.latency_us == p.protection.latency_us == 4


def test_node_disjoint_protection_impossible_names_the_shared_device() -> None:
    g = build([("a", "b", 1), ("a", "b", 2), ("b", "c", 1), ("b", "c", 2)])
    assert place(g, Demand("a", "c", 0, protection="link"), {}).protection is not None
    err = refused(g, Demand("a", "c", 0, protection="node"))
    assert err.reason == "protection"
    assert err.extra["shared_device"] == "b"
    assert err.bottleneck is None
    assert "no node-disjoint protection for a -> c: every such path crosses device b" in str(err)
    assert "the primary alone fits (a -> b -> c, 2 us)" in str(err)


def test_link_disjoint_protection_impossible_names_the_shared_link() -> None:
    # a=b is doubled, b-c is single: every a-c path crosses link 3.
    g = build([("a", "b", 1), ("a", "b", 2), ("b", "c", 1), ("c", "d", 1), ("c", "d", 1)])
    err = refused(g, Demand("a", "d", 100 * M, protection="link"))
    assert err.reason == "protection"
    assert err.bottleneck == 3
    assert err.extra["shared_link"] == 3
    assert "with 100M free: every such path crosses link 3 b:eth3 <-> c:eth1" in str(err)


def test_protection_impossible_because_of_bandwidth() -> None:
    g = build(DIAMOND)
    err = refused(g, Demand("a", "d", G, protection="link"), {2: G10})
    assert err.reason == "protection"
    assert err.bottleneck == 3  # the first shared link of the only feasible route a-c-d


def test_protection_pairs_the_halves_to_fit_the_budget() -> None:
    # Both paths must cross m over parallel links: 1+1 / 9+9 or 1+9 / 9+1.
    g = build([("s", "m", 1), ("s", "m", 9), ("m", "t", 1), ("m", "t", 9)])
    best_primary = place(g, Demand("s", "t", 0, protection="link"), {})
    assert best_primary.primary.links == [1, 3]
    assert best_primary.protection is not None
    assert best_primary.protection.links == [2, 4]

    balanced = place(g, Demand("s", "t", 0, max_latency_us=12, protection="link"), {})
    assert balanced.protection is not None
    assert {balanced.primary.latency_us, balanced.protection.latency_us} == {10}
    assert {tuple(balanced.primary.links), tuple(balanced.protection.links)} == {(1, 4), (2, 3)}

    err = refused(g, Demand("s", "t", 0, max_latency_us=9, protection="link"))
    assert err.reason == "protection"
    assert err.extra["pair_latency_us"] == [10, 10]
    assert "no link-disjoint protection for s -> t within 9 us" in str(err)
    assert "the primary alone fits" in str(err)


def test_the_primary_budget_is_checked_before_protection() -> None:
    err = refused(build(BOWTIE), Demand("a", "d", 0, max_latency_us=1, protection="node"))
    assert err.reason == "latency"
    assert err.extra["best_latency_us"] == 2


# --------------------------------------------------------------------------- graph changes


def test_placement_follows_changes_to_the_graph() -> None:
    # Each placement after a change must see it, although the search index is kept between calls.
    g = build([*DIAMOND, ("d", "e", 5)])
    assert place(g, Demand("a", "e", 0), {}).primary.links == [3, 4, 5]
    g.upsert_link(g.link(3).model_copy(update={"state": LinkState.DOWN}))
    assert place(g, Demand("a", "e", 0), {}).primary.links == [1, 2, 5]
    g.upsert_link(g.link(3).model_copy(update={"state": LinkState.UP}))
    assert place(g, Demand("a", "e", 0), {}).primary.links == [3, 4, 5]
    g.upsert_link(g.link(2).model_copy(update={"latency_us": 1}))  # a-b-d 11, still slower
    assert place(g, Demand("a", "e", 0), {}).primary.links == [3, 4, 5]
    g.upsert_link(g.link(1).model_copy(update={"latency_us": 1}))  # a-b-d now takes 2
    assert place(g, Demand("a", "e", 0), {}).primary.links == [1, 2, 5]
    g.upsert_interface(Interface(device="a", name="eth9"))
    g.upsert_interface(Interface(device="e", name="eth9"))
    shortcut = Link(
        id=9,
        a=Endpoint(device="a", interface="eth9"),
        b=Endpoint(device="e", interface="eth9"),
        latency_us=3,
    )
    g.upsert_link(shortcut)
    assert place(g, Demand("a", "e", 0), {}).primary.links == [9]
    g.remove_link(9)
    assert place(g, Demand("a", "e", 0), {}).primary.links == [1, 2, 5]


def test_placement_sees_devices_added_later() -> None:
    g = build(DIAMOND)
    place(g, Demand("a", "d", 0), {})
    g.upsert_device(Device(name="f"))
    g.upsert_interface(Interface(device="f", name="eth1"))
    g.upsert_interface(Interface(device="d", name="eth9"))
    g.upsert_link(
        Link(
            id=7, a=Endpoint(device="d", interface="eth9"), b=Endpoint(device="f", interface="eth1")
        )
    )
    assert place(g, Demand("a", "f", 0), {}).primary.devices == ["a", "c", "d", "f"]


@pytest.mark.parametrize("seed", range(10))
def test_randomized_changes_between_placements(seed: int) -> None:
    # Faster, new and removed links between placements: the result always matches a search on
    # a freshly built copy (the index and its landmark bounds are rebuilt or reused correctly).
    rng = random.Random(1000 + seed)
    g = random_graph(rng, n=12, m=30)
    names = [d.name for d in g.devices()]
    for _ in range(25):
        a, b = rng.sample(names, 2)
        ref = filtered(g, {}, 0)
        try:
            expected = ref.shortest_path(a, b).latency_us
        except NoPath:
            expected = None
        try:
            got: int | None = place(g, Demand(a, b, 0), {}).primary.latency_us
        except PlacementRefused:
            got = None
        assert got == expected
        change = rng.choice(["faster", "slower", "flip", "remove", "add"])
        links = g.links()
        lk = rng.choice(links)
        if change == "faster":
            g.upsert_link(lk.model_copy(update={"latency_us": lk.latency_us // 3}))
        elif change == "slower":
            g.upsert_link(lk.model_copy(update={"latency_us": lk.latency_us * 2 + 1}))
        elif change == "flip":
            state = LinkState.DOWN if lk.state is LinkState.UP else LinkState.UP
            g.upsert_link(lk.model_copy(update={"state": state}))
        elif change == "remove":
            g.remove_link(lk.id or 0)
        else:
            u, v = rng.sample(names, 2)
            new_id = max(x.id or 0 for x in links) + 1
            ends = []
            for dev in (u, v):
                name = f"x{new_id}"
                g.upsert_interface(Interface(device=dev, name=name))
                ends.append(Endpoint(device=dev, interface=name))
            g.upsert_link(Link(id=new_id, a=ends[0], b=ends[1], latency_us=rng.randint(0, 5)))


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("bps", "text"),
    [
        (0, "0"),
        (999, "999"),
        (150 * M, "150M"),
        (1_500_000_000, "1.5G"),
        (73_025_702_547, "73.025G"),
        (199_999_999, "199.999M"),
        (-50 * M, "-50M"),
        (400 * G, "400G"),
    ],
)
def test_rates_in_messages(bps: int, text: str) -> None:
    g = build([("a", "b", 1, 400 * G)])
    err = refused(g, Demand("a", "b", 400 * G + 1), {1: 400 * G - bps})
    assert f"has {text} of 400G free" in str(err)
    assert err.extra["free_bps"] == bps


def test_available_bps() -> None:
    g = build([("a", "b", 1, G), ("b", "c", 1, G10), ("c", "d", 1, G, "down")])
    assert available_bps(g, {1: 300 * M, 3: 2 * G, 99: 5}) == {1: 700 * M, 2: G10, 3: -G}


def test_placement_to_dict() -> None:
    p = place(build(BOWTIE), Demand("a", "d", G, protection="node"), {})
    data = p.to_dict()
    assert data["primary"]["devices"] == ["a", "m", "d"]
    assert data["protection"]["devices"] == ["a", "z", "d"]
    assert data["links"] == [1, 3, 5, 6]
    assert data["devices"] == ["a", "d", "m", "z"]
    unprotected = Placement(p.primary)
    assert unprotected.to_dict()["protection"] is None
    assert unprotected.links() == [1, 3]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"a": "x", "b": "x", "bandwidth_bps": 1},
        {"a": "x", "b": "y", "bandwidth_bps": -1},
        {"a": "x", "b": "y", "bandwidth_bps": 1, "max_latency_us": -5},
        {"a": "x", "b": "y", "bandwidth_bps": 1, "protection": "path"},
    ],
)
def test_invalid_demands(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        Demand(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- randomized


def random_graph(rng: random.Random, n: int, m: int) -> InventoryGraph:
    specs: list[Spec] = []
    for _ in range(m):
        a, b = rng.sample([f"r{i}" for i in range(n)], 2)
        capacity = rng.choice([G, G10, G100])
        state = "down" if rng.random() < 0.1 else "up"
        specs.append((a, b, rng.randint(0, 20), capacity, state))
    return build(specs, extra_devices=tuple(f"r{i}" for i in range(n)))


def filtered(g: InventoryGraph, reserved: dict[int, int], need: int) -> InventoryGraph:
    """A copy keeping only the links the demand may use (the slow way the placement avoids)."""
    copy = InventoryGraph()
    for device in g.devices():
        copy.upsert_device(device)
    for interface in g.interfaces():
        copy.upsert_interface(interface)
    for lk in g.links():
        if lk.state is LinkState.UP and lk.capacity_bps - reserved.get(lk.id or 0, 0) >= need:
            copy.upsert_link(lk)
    return copy


@pytest.mark.parametrize("seed", range(40))
def test_randomized_against_unconstrained_searches_on_a_filtered_copy(seed: int) -> None:
    rng = random.Random(seed)
    g = random_graph(rng, n=rng.randint(4, 9), m=rng.randint(6, 22))
    reserved = {lk.id or 0: rng.choice([0, G // 2, 9 * G]) for lk in g.links()}
    need = rng.choice([0, G // 4, 2 * G])
    ref = filtered(g, reserved, need)
    names = [d.name for d in g.devices()]
    for _ in range(6):
        a, b = rng.sample(names, 2)
        for mode in ("none", "link", "node"):
            demand = Demand(a, b, need, protection=mode)  # type: ignore[arg-type]
            try:
                expected = ref.shortest_path(a, b)
            except NoPath:
                assert_unplaceable(g, reserved, demand, refused(g, demand, reserved))
                continue
            budget = rng.randint(0, 60)
            tight = Demand(a, b, need, max_latency_us=budget, protection=mode)  # type: ignore[arg-type]
            try:
                within = place(g, tight, reserved)
            except PlacementRefused as err:
                if err.reason == "latency":
                    assert err.extra["best_latency_us"] == expected.latency_us > budget
                else:
                    assert err.reason == "protection"
            else:
                assert all(path.latency_us <= budget for path in within.paths())
            if mode == "none":
                assert place(g, demand, reserved).primary.latency_us == expected.latency_us
                continue
            least = least_disjoint_total(ref, a, b, mode)
            if least is None:
                refusal = refused(g, demand, reserved)
                assert refusal.reason == "protection"
                assert_cuts(filtered(g, reserved, need), a, b, refusal)
                continue
            p = place(g, demand, reserved)
            assert p.protection is not None
            total = p.primary.latency_us + p.protection.latency_us
            assert total == least
            assert p.primary.latency_us <= p.protection.latency_us
            check_disjoint(g, p, mode, reserved, need)


def assert_unplaceable(
    g: InventoryGraph, reserved: dict[int, int], demand: Demand, err: PlacementRefused
) -> None:
    """No path at all, or the most any path carries (found by brute force) and its bottleneck."""
    a, b = demand.a, demand.b
    frees = sorted({lk.capacity_bps - reserved.get(lk.id or 0, 0) for lk in g.links()})
    carried = [f for f in frees if has_path(filtered(g, reserved, f), a, b)]
    if not carried:
        assert err.reason == "no-path"
        return
    assert err.reason == "bandwidth"
    assert err.extra["best_bps"] == max(carried) < demand.bandwidth_bps
    assert err.extra["free_bps"] == max(carried)
    assert g.link(err.bottleneck).capacity_bps - reserved.get(err.bottleneck, 0) == max(carried)


def has_path(g: InventoryGraph, a: str, b: str) -> bool:
    try:
        g.shortest_path(a, b)
    except NoPath:
        return False
    return True


def assert_cuts(ref: InventoryGraph, a: str, b: str, err: PlacementRefused) -> None:
    """The link or device the refusal names really is on every usable path from a to b."""
    link, device = err.extra["shared_link"], err.extra["shared_device"]
    assert (link is None) != (device is None)
    assert err.bottleneck == link
    if link is not None:
        ref.remove_link(link)
    else:
        assert device not in (a, b)
        ref.remove_device(device)
    with pytest.raises(NoPath):
        ref.shortest_path(a, b)


def check_disjoint(
    g: InventoryGraph, p: Placement, mode: str, reserved: dict[int, int], need: int
) -> None:
    assert p.protection is not None
    assert not set(p.primary.links) & set(p.protection.links)
    if mode == "node":
        assert not set(p.primary.devices[1:-1]) & set(p.protection.devices[1:-1])
    for path in (p.primary, p.protection):
        assert len(set(path.devices)) == len(path.devices)  # loopless
        for (u, v), link_id in zip(pairwise(path.devices), path.links, strict=True):
            lk = g.link(link_id)
            assert {lk.a.device, lk.b.device} == {u, v}
            assert lk.state is LinkState.UP
            assert lk.capacity_bps - reserved.get(link_id, 0) >= need

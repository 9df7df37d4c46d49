"""InventoryGraph: mutations, reads, paths and impact on hand-built graphs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path as FsPath

import pytest

from oss.errors import Conflict, InvalidInput, NoPath, NotFound
from topology.clab import parse_clab
from topology.graph import Impact, InventoryGraph, Neighbour, Path, natural_key
from topology.model import Device, Endpoint, Interface, Link, LinkState, Site

LAB = FsPath(__file__).resolve().parents[3] / "lab" / "topologies"
G10 = 10_000_000_000

# A link spec for `build`: (a, b, latency_us) or (a, b, latency_us, capacity_bps, state).
Spec = tuple[str, str, int] | tuple[str, str, int, int, str]


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
        g.upsert_device(Device(name=dev))
        ports[dev] = 0
    for i, spec in enumerate(specs, start=1):
        a, b, latency = spec[0], spec[1], spec[2]
        capacity, state = (spec[3], spec[4]) if len(spec) == 5 else (G10, "up")
        g.upsert_link(
            Link(
                id=i,
                a=port(a),
                b=port(b),
                latency_us=latency,
                capacity_bps=capacity,
                state=LinkState(state),
            )
        )
    return g


def load(filename: str) -> InventoryGraph:
    """A shipped example file loaded the way oss.inventory does, ids in file order."""
    topo = parse_clab((LAB / filename).read_text(), filename)
    g = InventoryGraph()
    for site in topo.sites:
        g.upsert_site(site)
    for device in topo.devices:
        g.upsert_device(device)
    for interface in topo.interfaces:
        g.upsert_interface(interface)
    for i, link in enumerate(topo.links, start=1):
        g.upsert_link(link.model_copy(update={"id": i}))
    return g


def link_between(g: InventoryGraph, a: str, b: str) -> Link:
    (found,) = [lk for lk in g.links(a) if {lk.a.device, lk.b.device} == {a, b}]
    return found


# --------------------------------------------------------------------------- mutations and reads


def test_devices_sorted_naturally_and_not_found_message() -> None:
    g = build([], extra_devices=("r10", "r2", "r1"))
    assert [d.name for d in g.devices()] == ["r1", "r2", "r10"]
    with pytest.raises(NotFound, match=r"^device 'x' not found$"):
        g.device("x")


def test_upsert_device_replaces_and_keeps_interfaces_and_links() -> None:
    g = build([("r1", "r2", 100)])
    g.upsert_device(Device(name="r1", role="core"))
    assert g.device("r1").role == "core"
    assert [i.name for i in g.interfaces("r1")] == ["eth1"]
    assert [lk.id for lk in g.links("r1")] == [1]


def test_sites_must_exist_for_devices_and_cannot_go_while_used() -> None:
    g = InventoryGraph()
    with pytest.raises(NotFound, match="site 'north'"):
        g.upsert_device(Device(name="r1", site="north"))
    g.upsert_site(Site(name="north", description="North PoP"))
    g.upsert_device(Device(name="r1", site="north"))
    assert g.site("north").description == "North PoP"
    with pytest.raises(Conflict, match="r1"):
        g.remove_site("north")
    g.remove_device("r1")
    g.remove_site("north")
    assert g.sites() == []
    with pytest.raises(NotFound):
        g.remove_site("north")


def test_interface_needs_its_device() -> None:
    g = InventoryGraph()
    with pytest.raises(NotFound, match="device 'r1' not found"):
        g.upsert_interface(Interface(device="r1", name="eth1"))
    with pytest.raises(NotFound, match="r1:eth1"):
        build([], extra_devices=("r1",)).interface("r1", "eth1")


def test_interfaces_sorted_naturally() -> None:
    g = build([], extra_devices=("r1", "r2"))
    for dev, name in [("r2", "eth1"), ("r1", "eth10"), ("r1", "eth2")]:
        g.upsert_interface(Interface(device=dev, name=name))
    assert [(i.device, i.name) for i in g.interfaces()] == [
        ("r1", "eth2"),
        ("r1", "eth10"),
        ("r2", "eth1"),
    ]
    assert [i.name for i in g.interfaces("r1")] == ["eth2", "eth10"]
    with pytest.raises(NotFound):
        g.interfaces("nope")


def test_upsert_link_checks() -> None:
    g = build([("r1", "r2", 100)], extra_devices=("r3",))
    g.upsert_interface(Interface(device="r3", name="eth1"))
    r1e1, r3e1 = Endpoint(device="r1", interface="eth1"), Endpoint(device="r3", interface="eth1")
    r1e9 = Endpoint(device="r1", interface="eth9")
    with pytest.raises(InvalidInput, match="no id"):
        g.upsert_link(Link(a=r3e1, b=r1e1))
    with pytest.raises(NotFound, match="r1:eth9"):
        g.upsert_link(Link(id=2, a=r3e1, b=r1e9))
    with pytest.raises(NotFound, match="device 'r9'"):
        g.upsert_link(Link(id=2, a=r3e1, b=Endpoint(device="r9", interface="eth1")))
    with pytest.raises(Conflict, match="r1:eth1 already carries link 1"):
        g.upsert_link(Link(id=2, a=r3e1, b=r1e1))
    assert g.counts()["links"] == 1  # nothing half-applied


def test_upsert_link_with_same_id_moves_it() -> None:
    g = build([("r1", "r2", 100)], extra_devices=("r3",))
    g.upsert_interface(Interface(device="r3", name="eth1"))
    moved = Link(
        id=1,
        a=Endpoint(device="r1", interface="eth1"),
        b=Endpoint(device="r3", interface="eth1"),
        latency_us=7,
    )
    g.upsert_link(moved)
    assert g.link(1) == moved
    assert g.link_at(Endpoint(device="r2", interface="eth1")) is None
    assert g.link_at(Endpoint(device="r3", interface="eth1")) == moved
    assert [n.device for n in g.neighbours("r1")] == ["r3"]
    assert g.neighbours("r2") == []


def test_remove_interface_refused_while_linked() -> None:
    g = build([("r1", "r2", 100)])
    with pytest.raises(Conflict, match="r1:eth1 still carries link 1"):
        g.remove_interface("r1", "eth1")
    g.remove_link(1)
    g.remove_interface("r1", "eth1")
    assert g.interfaces("r1") == []
    with pytest.raises(NotFound):
        g.remove_link(1)
    with pytest.raises(NotFound):
        g.remove_interface("r1", "eth1")


def test_remove_device_drops_its_interfaces_and_links() -> None:
    g = build([("r1", "r2", 100), ("r2", "r3", 100), ("r1", "r3", 100)])
    g.remove_device("r2")
    assert [d.name for d in g.devices()] == ["r1", "r3"]
    assert [lk.id for lk in g.links()] == [3]
    assert g.counts() == {"sites": 0, "devices": 2, "interfaces": 4, "links": 1}
    # the remote interface survives and is free again
    assert g.link_at(Endpoint(device="r1", interface="eth1")) is None
    with pytest.raises(NotFound):
        g.remove_device("r2")


def test_link_reads() -> None:
    g = build([("r1", "r2", 100), ("r2", "r3", 100)])
    assert [lk.id for lk in g.links()] == [1, 2]
    assert [lk.id for lk in g.links("r3")] == [2]
    assert g.link(2).b == Endpoint(device="r3", interface="eth1")
    assert g.link_at(Endpoint(device="r2", interface="eth2")) == g.link(2)
    assert g.link_at(Endpoint(device="r9", interface="eth1")) is None
    with pytest.raises(NotFound, match="link 9"):
        g.link(9)
    with pytest.raises(NotFound):
        g.links("r9")


def test_counts_and_clear() -> None:
    g = load("ring4.clab.yml")
    assert g.counts() == {"sites": 1, "devices": 4, "interfaces": 8, "links": 4}
    g.clear()
    assert g.counts() == {"sites": 0, "devices": 0, "interfaces": 0, "links": 0}
    assert g.devices() == [] and g.links() == []


def test_to_json_shape() -> None:
    g = load("ring4.clab.yml")
    data = g.to_json()
    assert set(data) == {"sites", "devices", "links"}
    assert data["sites"] == [{"name": "lab", "description": ""}]
    r1 = data["devices"][0]
    assert r1["name"] == "r1" and r1["state"] == "active" and r1["mgmt_address"] == "127.10.0.1"
    assert [i["name"] for i in r1["interfaces"]] == ["eth1", "eth2"]
    assert data["links"][0]["a"] == {"device": "r1", "interface": "eth1"}
    assert data["links"][0]["state"] == "up"


def test_returned_values_are_models_not_networkx() -> None:
    g = load("ring4.clab.yml")
    values: list[list[object]] = [
        list(g.devices()),
        list(g.links()),
        list(g.interfaces()),
        list(g.sites()),
        list(g.neighbours("r1")),
    ]
    for item in itertools.chain.from_iterable(values):
        assert isinstance(item, Device | Link | Interface | Site | Neighbour)
    assert json.loads(json.dumps(g.to_json())) == g.to_json()  # plain JSON, no graph objects


# ------------------------------------------------------------------------------------ neighbours


def test_neighbours_include_down_links_and_parallel_links() -> None:
    g = build([("r1", "r2", 100), ("r1", "r2", 50, G10, "down"), ("r3", "r1", 10, 10**9, "up")])
    assert g.neighbours("r1") == [
        Neighbour("r2", "eth1", "eth1", 1, LinkState.UP, 100, G10),
        Neighbour("r2", "eth2", "eth2", 2, LinkState.DOWN, 50, G10),
        Neighbour("r3", "eth3", "eth1", 3, LinkState.UP, 10, 10**9),
    ]
    assert g.neighbours("r1")[1].to_dict()["state"] == "down"
    with pytest.raises(NotFound):
        g.neighbours("r9")


# ----------------------------------------------------------------------------------------- paths


def test_shortest_path_on_ring4_avoids_the_slow_link() -> None:
    g = load("ring4.clab.yml")
    path = g.shortest_path("r1", "r4")
    assert path.devices == ["r1", "r2", "r3", "r4"]
    assert path.latency_us == 1500
    assert path.capacity_bps == G10
    assert path.hops == 3
    assert path.to_dict() == {
        "devices": ["r1", "r2", "r3", "r4"],
        "links": path.links,
        "latency_us": 1500,
        "capacity_bps": G10,
        "hops": 3,
    }
    assert [g.link(i).latency_us for i in path.links] == [500, 500, 500]


def test_path_capacity_is_the_bottleneck() -> None:
    g = build([("a", "b", 1, G10, "up"), ("b", "c", 1, 10**9, "up"), ("c", "d", 1, G10, "up")])
    path = g.shortest_path("a", "d")
    assert (path.links, path.latency_us, path.capacity_bps) == ([1, 2, 3], 3, 10**9)


def test_parallel_links_use_the_lowest_latency_up_link() -> None:
    g = build([("a", "b", 30), ("a", "b", 10), ("a", "b", 5, G10, "down"), ("b", "c", 1)])
    path = g.shortest_path("a", "c")
    assert path.links == [2, 4] and path.latency_us == 11
    # the down link is the fastest once down links count
    assert g.shortest_path("a", "c", include_down=True).links == [3, 4]


def test_down_links_are_ignored() -> None:
    g = build([("a", "b", 1, G10, "down"), ("a", "c", 5), ("c", "b", 5)])
    assert g.shortest_path("a", "b").devices == ["a", "c", "b"]
    g = build([("a", "b", 1, G10, "down")])
    with pytest.raises(NoPath, match=r"^no path from a to b over up links$"):
        g.shortest_path("a", "b")
    assert g.shortest_path("a", "b", include_down=True).links == [1]


def test_path_errors() -> None:
    g = build([("a", "b", 1)], extra_devices=("z",))
    with pytest.raises(NotFound, match="device 'x'"):
        g.shortest_path("a", "x")
    with pytest.raises(NotFound, match="device 'x'"):
        g.k_shortest_paths("x", "a", 2)
    with pytest.raises(InvalidInput):
        g.shortest_path("a", "a")
    with pytest.raises(NoPath, match="no path from a to z"):
        g.shortest_path("a", "z")
    with pytest.raises(NoPath, match="no path from a to z"):
        g.k_shortest_paths("a", "z", 3)
    with pytest.raises(InvalidInput, match="k must be"):
        g.k_shortest_paths("a", "b", 0)


def test_k_shortest_paths_ordered_and_loopless() -> None:
    g = load("ring4.clab.yml")
    paths = g.k_shortest_paths("r1", "r4", 5)
    assert [(p.devices, p.latency_us) for p in paths] == [
        (["r1", "r2", "r3", "r4"], 1500),
        (["r1", "r4"], 5000),
    ]
    assert [p.devices for p in g.k_shortest_paths("r1", "r4", 1)] == [["r1", "r2", "r3", "r4"]]


def test_k_shortest_paths_on_a_grid() -> None:
    # a - b - c
    # |   |   |
    # d - e - f     all latencies 1 except b-e 10
    g = build(
        [
            ("a", "b", 1),
            ("b", "c", 1),
            ("d", "e", 1),
            ("e", "f", 1),
            ("a", "d", 1),
            ("b", "e", 10),
            ("c", "f", 1),
        ]
    )
    paths = g.k_shortest_paths("a", "f", 4)
    assert [p.latency_us for p in paths] == [3, 3, 12, 14]  # a-b-e-f, a-d-e-b-c-f
    assert {tuple(p.devices) for p in paths[:2]} == {("a", "b", "c", "f"), ("a", "d", "e", "f")}
    for p in paths:
        assert len(set(p.devices)) == len(p.devices)


# ---------------------------------------------------------------------------------------- impact


def test_impact_of_a_ring_link_isolates_nothing() -> None:
    g = load("ring4.clab.yml")
    link = link_between(g, "r2", "r3")
    impact = g.impact(link_id=link.id)
    assert impact == Impact(
        target=f"link {link.id}",
        links=[link.id or 0],
        interfaces=["r2:eth2", "r3:eth1"],
        devices=["r2", "r3"],
        isolated_devices=[],
        partitioned=False,
        services=[],
        customers=[],
    )
    assert impact.to_dict()["target"] == f"link {link.id}"


def test_impact_of_a_device_in_a_chain() -> None:
    # r1 - r2 - r3 - r4, plus a separate island r8 - r9
    g = build([("r1", "r2", 1), ("r2", "r3", 1), ("r3", "r4", 1), ("r8", "r9", 1)])
    impact = g.impact(device="r2")
    assert impact.target == "device r2"
    assert impact.links == [1, 2]
    assert impact.interfaces == ["r1:eth1", "r2:eth1", "r2:eth2", "r3:eth1"]
    assert impact.devices == ["r1", "r2", "r3"]
    assert impact.isolated_devices == ["r1"]  # r3-r4 is the larger remaining part
    assert impact.partitioned is True
    assert impact.services == [] and impact.customers == []


def test_impact_of_a_bridge_link_isolates_the_smaller_side() -> None:
    g = build([("a", "b", 1), ("b", "c", 1), ("c", "a", 1), ("c", "d", 1), ("d", "e", 1)])
    impact = g.impact(link_id=4)
    assert impact.isolated_devices == ["d", "e"]
    assert impact.partitioned
    assert g.impact(link_id=5).isolated_devices == ["e"]


def test_impact_parallel_and_down_links() -> None:
    g = build([("a", "b", 1), ("a", "b", 2), ("b", "c", 1, G10, "down"), ("b", "c", 1)])
    assert g.impact(link_id=1).partitioned is False
    assert g.impact(link_id=3).isolated_devices == []  # already down: nothing changes
    assert g.impact(link_id=4).isolated_devices == ["c"]  # the down twin does not help
    impact = g.impact(device="b")
    assert impact.links == [1, 2, 3, 4]
    assert impact.devices == ["a", "b", "c"]
    # a and c are equal halves: the part with the first name counts as the main one
    assert impact.isolated_devices == ["c"]


def test_impact_on_metro_depends_on_dual_homing() -> None:
    g = load("metro.clab.yml")
    impact = g.impact(device="agg1")
    assert impact.isolated_devices == [] and not impact.partitioned
    assert "acc1" in impact.devices and "pe2" in impact.devices
    # take acc1's uplink to agg2 down: agg1 becomes its single point of failure
    uplink = link_between(g, "acc1", "agg2")
    g.upsert_link(uplink.model_copy(update={"state": LinkState.DOWN}))
    assert g.impact(device="agg1").isolated_devices == ["acc1"]


def test_impact_arguments() -> None:
    g = build([("a", "b", 1)])
    with pytest.raises(InvalidInput):
        g.impact()
    with pytest.raises(InvalidInput):
        g.impact(device="a", link_id=1)
    with pytest.raises(NotFound):
        g.impact(device="x")
    with pytest.raises(NotFound):
        g.impact(link_id=9)


def test_isolated_device_with_no_links() -> None:
    g = build([], extra_devices=("lonely",))
    impact = g.impact(device="lonely")
    assert impact == Impact("device lonely", [], [], ["lonely"], [], False, [], [])


def test_natural_key() -> None:
    assert sorted(["eth10", "eth2", "eth1/10", "eth1/9", "a"], key=natural_key) == [
        "a",
        "eth1/9",
        "eth1/10",
        "eth2",
        "eth10",
    ]


def test_path_is_frozen() -> None:
    path = Path(devices=["a", "b"], links=[1], latency_us=1, capacity_bps=1)
    with pytest.raises(AttributeError):
        path.latency_us = 2  # type: ignore[misc]


def test_derived_is_kept_until_devices_or_links_change() -> None:
    g = build([("a", "b", 1), ("b", "c", 1)])
    given: list[object] = []

    def index(last: int | None) -> int:
        given.append(last)
        return len(given)

    assert g.derived("k", index) == g.derived("k", index) == 1
    g.upsert_interface(Interface(device="a", name="eth9"))  # no path can change
    assert g.derived("k", index) == 1
    g.upsert_link(g.link(1).model_copy(update={"state": LinkState.DOWN}))
    assert g.derived("k", index) == 2  # rebuilt, offered the value from before the change
    g.remove_device("c")
    assert g.derived("k", index) == 3
    assert given == [None, 1, 2]
    assert g.derived("other", index) == 4  # keys are independent

"""`oss.inventory.remote.reconcile`: a graph brought to what the database has for the objects
another instance's change touched (or for everything, after missed notices), telling its
listeners each difference once, whatever order the kinds come in."""

from __future__ import annotations

import pytest

from oss.errors import OssError
from oss.inventory.remote import Touched, reconcile
from oss.inventory.rows import Snapshot
from topology.graph import GraphChange, InventoryGraph
from topology.model import Device, Endpoint, Interface, Link, OperState, Site


def link(link_id: int, a: str, b: str) -> Link:
    return Link(id=link_id, a=Endpoint.parse(a), b=Endpoint.parse(b))


def snapshot(graph: InventoryGraph) -> Snapshot:
    return Snapshot(graph.sites(), graph.devices(), graph.interfaces(), graph.links())


def built(*, sites: list[Site], devices: list[Device], links: list[Link]) -> InventoryGraph:
    g = InventoryGraph()
    for site in sites:
        g.upsert_site(site)
    for device in devices:
        g.upsert_device(device)
    for lk in links:
        for end in lk.ends():
            g.upsert_interface(Interface(device=end.device, name=end.interface))
        g.upsert_link(lk)
    return g


def heard(graph: InventoryGraph) -> list[tuple[str, str]]:
    changes: list[tuple[str, str]] = []

    def tell(change: GraphChange) -> None:
        changes.append((change.kind, change.op))

    graph.on_change = tell
    return changes


def test_a_whole_resync_applies_every_difference_once() -> None:
    here = built(
        sites=[Site(name="s1"), Site(name="s2")],
        devices=[Device(name="r1", site="s1"), Device(name="r2", site="s2"), Device(name="r3")],
        links=[link(1, "r1:eth1", "r2:eth1")],
    )
    # Elsewhere meanwhile: link 1 removed and link 2 put on one of its ends, r2 moved to s1
    # and s2 removed, r3 removed, r4 added.
    there = built(
        sites=[Site(name="s1")],
        devices=[Device(name="r1", site="s1"), Device(name="r2", site="s1"), Device(name="r4")],
        links=[link(2, "r1:eth1", "r4:eth1")],
    )
    there.upsert_interface(Interface(device="r2", name="eth1", oper_state=OperState.DOWN))
    found = snapshot(there)
    changes = heard(here)
    reconcile(here, found, Touched.everything(here, found))
    assert snapshot(here) == found
    assert changes.count(("link", "removed")) == 1
    assert changes.count(("link", "added")) == 1
    assert ("device", "removed") in changes and ("site", "removed") in changes
    assert ("interface", "changed") in changes  # r2:eth1's oper_state
    again = heard(here)
    reconcile(here, found, Touched.everything(here, found))
    assert again == []  # nothing differs: nothing told


def test_a_touched_scope_changes_only_its_objects() -> None:
    here = built(sites=[], devices=[Device(name="r1"), Device(name="r2")], links=[])
    there = built(sites=[], devices=[Device(name="r1", role="pe")], links=[])  # r2 removed too
    changes = heard(here)
    only_r1 = Touched(devices={"r1"})
    reconcile(here, Snapshot([], [there.device("r1")], [], []), only_r1)
    assert here.device("r1").role == "pe"
    assert here.device("r2") == Device(name="r2")  # not in the scope: its own notice follows
    assert changes == [("device", "changed")]


def test_a_scope_that_does_not_fit_the_graph_raises_for_a_whole_resync() -> None:
    here = built(sites=[], devices=[Device(name="r1"), Device(name="r2")], links=[])
    stranger = Interface(device="r9", name="eth1")  # its device's notice was missed
    with pytest.raises(OssError):
        reconcile(here, Snapshot([], [], [stranger], []), Touched(interfaces={("r9", "eth1")}))


def test_a_notice_round_trips_its_objects() -> None:
    touched = Touched(sites={"s1"}, devices={"r1"}, interfaces={("r1", "eth1")}, links={3})
    assert Touched.of_notice({"instance": "a", **touched.fields()}) == touched

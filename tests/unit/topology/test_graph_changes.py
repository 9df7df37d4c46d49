"""The graph tells its listener (`on_change`) of every change it applies, and moves its
`revision` on with each, an interface's oper_state included."""

from __future__ import annotations

from topology.graph import GraphChange, InventoryGraph
from topology.model import Device, Endpoint, Interface, Link, OperState, Site


def test_every_change_is_told_once_applied() -> None:
    graph = InventoryGraph()
    told: list[GraphChange] = []
    graph.on_change = told.append
    graph.upsert_site(Site(name="s"))
    for name in ("a", "b"):
        graph.upsert_device(Device(name=name, site="s"))
        graph.upsert_interface(Interface(device=name, name="e1"))
    link = Link(
        id=7, a=Endpoint(device="a", interface="e1"), b=Endpoint(device="b", interface="e1")
    )
    graph.upsert_link(link)
    before = graph.revision
    down = Interface(device="b", name="e1", oper_state=OperState.DOWN)
    graph.upsert_interface(down)
    assert graph.revision > before
    graph.remove_device("b")

    assert [(c.kind, c.op) for c in told] == [
        ("site", "added"),
        ("device", "added"),
        ("interface", "added"),
        ("device", "added"),
        ("interface", "added"),
        ("link", "added"),
        ("interface", "changed"),
        ("link", "removed"),  # the removed device's links before it
        ("device", "removed"),
    ]
    assert told[6].object == down
    assert told[7].object == link
    assert graph.counts()["links"] == 0


def test_a_graph_without_listener_changes_quietly() -> None:
    graph = InventoryGraph()
    graph.upsert_site(Site(name="s"))
    graph.remove_site("s")
    assert graph.counts()["sites"] == 0


def test_the_down_interfaces_are_kept_on_every_change() -> None:
    graph = InventoryGraph()
    graph.upsert_site(Site(name="s"))
    for name in ("a", "b"):
        graph.upsert_device(Device(name=name, site="s"))
        for port in ("e1", "e2"):
            graph.upsert_interface(Interface(device=name, name=port, oper_state=OperState.DOWN))
    graph.upsert_interface(Interface(device="a", name="e1", oper_state=OperState.UP))
    assert set(graph.oper_down()) == {("a", "e2"), ("b", "e1"), ("b", "e2")}
    graph.remove_interface("a", "e2")
    graph.remove_device("b")
    assert set(graph.oper_down()) == set()

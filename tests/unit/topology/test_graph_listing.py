"""The graph's listing order, kept on every change, and listings resumed after a name (the
REST API's cursors), compared with a sort of the same names done from scratch."""

from __future__ import annotations

import random

from topology.graph import InventoryGraph, listing_key
from topology.model import Device, Interface

NAMES = ["r10", "r2", "r1", "eth01", "eth1", "core-b", "r21", "core-a", "r3", "r20", "r9"]
IFNAMES = ["eth10", "eth2", "ge-0/0/1", "eth1", "eth01", "lo0", "ge-0/0/10"]


def sorted_names(names: list[str]) -> list[str]:
    return sorted(names, key=listing_key)


def filled(seed: int) -> tuple[InventoryGraph, dict[str, list[str]]]:
    rng = random.Random(seed)
    g = InventoryGraph()
    expected: dict[str, list[str]] = {}
    for name in rng.sample(NAMES, len(NAMES)):
        g.upsert_device(Device(name=name))
        expected[name] = rng.sample(IFNAMES, rng.randint(0, len(IFNAMES)))
        for ifname in expected[name]:
            g.upsert_interface(Interface(device=name, name=ifname))
    return g, expected


def all_interfaces(expected: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(d, i) for d in sorted_names(list(expected)) for i in sorted_names(expected[d])]


def test_listing_order_is_natural_and_total() -> None:
    assert sorted_names(["eth1", "eth01", "eth10", "eth2"]) == ["eth01", "eth1", "eth2", "eth10"]
    assert listing_key("eth01") != listing_key("eth1")  # distinct names never tie


def test_lists_follow_the_order_kept_on_every_change() -> None:
    for seed in range(5):
        g, expected = filled(seed)
        assert [d.name for d in g.devices()] == sorted_names(list(expected))
        assert [(i.device, i.name) for i in g.interfaces()] == all_interfaces(expected)
        # Changes: a device and an interface go, others come, a known one is replaced.
        g.remove_device("r3")
        del expected["r3"]
        g.upsert_device(Device(name="r15"))
        expected["r15"] = ["eth3"]
        g.upsert_interface(Interface(device="r15", name="eth3"))
        if expected["r1"]:
            g.remove_interface("r1", expected["r1"].pop())
        g.upsert_interface(Interface(device="r1", name="xe-1/0/0"))
        g.upsert_interface(Interface(device="r1", name="xe-1/0/0", description="again"))
        expected["r1"].append("xe-1/0/0")
        assert [d.name for d in g.devices()] == sorted_names(list(expected))
        assert [(i.device, i.name) for i in g.interfaces()] == all_interfaces(expected)
        assert g.interface_count() == g.counts()["interfaces"] == len(all_interfaces(expected))
        assert [i.name for i in g.interfaces("r1")] == sorted_names(expected["r1"])


def test_listings_resume_after_any_name_present_or_not() -> None:
    g, expected = filled(7)
    devices = sorted_names(list(expected))
    for after in [*devices, "a", "r0", "r11", "zz"]:
        want = [d for d in devices if listing_key(d) > listing_key(after)]
        assert [d.name for d in g.devices_after(after)] == want
    assert [d.name for d in g.devices_after(None)] == devices
    pairs = all_interfaces(expected)
    keys = [*pairs, ("r2", "a"), ("r11", "eth1"), ("a", "b"), ("zz", "eth1"), ("r9", "zz")]
    for resume in keys:
        wanted = [
            p
            for p in pairs
            if (listing_key(p[0]), listing_key(p[1]))
            > (listing_key(resume[0]), listing_key(resume[1]))
        ]
        assert [(i.device, i.name) for i in g.interfaces_after(resume)] == wanted
        for device in ("r2", "core-a"):
            mine = [p for p in wanted if p[0] == device]
            assert [(i.device, i.name) for i in g.interfaces_after(resume, device)] == mine

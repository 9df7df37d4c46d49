"""The containment check on routes as `ip -j route show table all` prints them (fake JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.netns import iproute, safety
from lab.netns.plan import plan_lab
from lab.netns.safety import LabUnsafe, assert_contained, route_problem
from topology.clab import parse_clab

TRIANGLE = Path(__file__).resolve().parents[3] / "tests" / "data" / "netns" / "triangle.clab.yml"
LAB = ("172.20.20.0/24", "10.254.0.0/16", "10.255.0.0/24")


@pytest.mark.parametrize(
    ("route", "family"),
    [
        ({"dst": "10.254.0.0/31", "dev": "eth1", "protocol": "kernel", "scope": "link"}, 4),
        ({"dst": "10.255.0.3", "gateway": "10.254.0.1", "dev": "eth1", "protocol": "ospf"}, 4),
        ({"dst": "172.20.20.0/24", "dev": "eth0", "protocol": "kernel"}, 4),
        ({"type": "local", "dst": "8.8.8.8", "dev": "lo", "table": "local"}, 4),
        ({"type": "broadcast", "dst": "127.255.255.255", "dev": "lo", "table": "local"}, 4),
        ({"type": "local", "dst": "127.0.0.0/8", "dev": "lo", "table": "local"}, 4),
        ({"dst": "224.0.0.0/4", "dev": "eth1"}, 4),
        ({"dst": "fe80::/64", "dev": "eth1", "protocol": "kernel"}, 6),
        ({"type": "multicast", "dst": "ff00::/8", "dev": "eth1", "table": "local"}, 6),
        ({"dst": "::1", "dev": "lo", "protocol": "kernel"}, 6),
    ],
)
def test_routes_inside_the_lab_or_for_the_host_itself_pass(
    route: dict[str, Any], family: int
) -> None:
    assert route_problem(route, LAB, family) is None


@pytest.mark.parametrize(
    ("route", "family", "why"),
    [
        ({"dst": "default", "gateway": "172.20.20.1", "dev": "eth0"}, 4, "a default route"),
        ({"dst": "0.0.0.0/0", "gateway": "10.254.0.1", "dev": "eth1"}, 4, "a default route"),
        ({"dst": "default", "gateway": "fe80::1", "dev": "eth0"}, 6, "a default route"),
        ({"dst": "192.168.1.0/24", "gateway": "10.254.0.1"}, 4, "outside the lab's prefixes"),
        ({"dst": "10.0.0.0/8", "dev": "eth1"}, 4, "outside the lab's prefixes"),
        ({"dst": "2001:db8::/32", "dev": "eth1"}, 6, "outside the lab's prefixes"),
        ({"dst": "8.8.8.8", "gateway": "10.254.0.1", "dev": "eth1"}, 4, "outside"),
    ],
)
def test_a_way_out_is_named(route: dict[str, Any], family: int, why: str) -> None:
    problem = route_problem(route, LAB, family)
    assert problem is not None and why in problem


def test_assert_contained_names_the_namespace_the_route_and_a_cable_to_the_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = plan_lab(parse_clab(TRIANGLE.read_text(), TRIANGLE.name), "oss-tunit")
    leaky = plan.node("r2").namespace

    def fake_ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
        if args[:2] == ("-4", "route") and netns == leaky:
            return [
                {"dst": "10.254.0.0/31", "dev": "eth1", "protocol": "kernel"},
                {"dst": "default", "gateway": "172.20.20.1", "dev": "eth0"},
            ]
        if args[:2] == ("netns", "list-id"):
            return [{"nsid": 0, "name": plan.mgmt_namespace}, {"nsid": 1}]
        if args[:2] == ("link", "show") and netns == leaky:
            return [{"ifname": "eth0", "link_netnsid": 0}, {"ifname": "eth9", "link_netnsid": 1}]
        return []

    monkeypatch.setattr(iproute, "ip_json", fake_ip_json)
    with pytest.raises(LabUnsafe) as caught:
        assert_contained(plan)
    message = str(caught.value)
    assert f"{leaky}: route default gateway 172.20.20.1 dev eth0: a default route" in message
    assert f"{leaky}: eth9 is a cable to a namespace outside the lab" in message
    assert "eth0 is a cable" not in message and "10.254.0.0/31" not in message
    assert safety.namespace_problems(plan, plan.node("r1").namespace) == []

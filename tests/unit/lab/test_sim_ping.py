"""The simulated lab's ping: the route it answers from (fewest hops, fixed costs, faults add
latency and loss without moving it, a cut moves it) and iputils' output the probes read."""

from __future__ import annotations

import asyncio
import re

import pytest

from lab.sim import ping
from lab.sim.paths import Route, RouteLink, route

SUMMARY = re.compile(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


def _square(*, ab_latency: int = 1000, ab_up: bool = True, ab_loss: float = 0.0) -> list[RouteLink]:
    """a-b-c and a-d-c: two routes of two hops, a-b-c the cheaper."""
    return [
        RouteLink("a", "b", ab_up, 1000, ab_latency, ab_loss),
        RouteLink("b", "c", True, 1000, 1000, 0.0),
        RouteLink("a", "d", True, 3000, 3000, 0.0),
        RouteLink("d", "c", True, 3000, 3000, 0.0),
    ]


def test_the_route_is_the_cheapest_of_the_fewest_hops_and_stays_under_a_latency_fault() -> None:
    assert route(_square(), "a", "c") == Route(("a", "b", "c"), 4000, 0.0)
    slow = route(_square(ab_latency=21000), "a", "c")
    assert slow is not None and slow.devices == ("a", "b", "c")
    assert slow.rtt_us == 2 * (21000 + 1000)


def test_a_cut_moves_the_route_and_an_island_has_none() -> None:
    moved = route(_square(ab_up=False), "a", "c")
    assert moved is not None and moved.devices == ("a", "d", "c")
    assert route([RouteLink("a", "b", False, 1, 1, 0.0)], "a", "b") is None


def test_loss_counts_both_ways() -> None:
    lossy = route(_square(ab_loss=0.5), "a", "c")
    assert lossy is not None and lossy.loss == pytest.approx(0.75)


def test_parse_refuses_with_pings_words() -> None:
    assert ping.parse(["-c", "3", "-i", "0.2", "10.0.0.1"]) == ping.PingRequest(
        "10.0.0.1", count=3, interval_s=0.2
    )
    assert ping.parse(["r2"]) == "ping: r2: Name or service not known\n"
    assert "count 0 out of range" in str(ping.parse(["-c", "0", "10.0.0.1"]))
    assert str(ping.parse(["-x", "10.0.0.1"])).startswith("ping: option -x not recognized")


def _run(answer: Route | str | None, count: int = 5) -> tuple[str, bool]:
    request = ping.PingRequest("10.255.0.3", count=count, interval_s=0.2, timeout_s=0.01)
    return asyncio.run(ping.ping(request, "127.0.0.11", lambda _: answer))  # type: ignore[arg-type,return-value]


def test_the_summary_carries_the_routes_round_trip() -> None:
    output, ok = _run(Route(("a", "b", "c"), 44000, 0.0), count=2)
    assert ok
    assert "2 packets transmitted, 2 received, 0% packet loss" in output
    summary = SUMMARY.search(output)
    assert summary is not None
    assert 44.0 <= float(summary.group(2)) <= 45.0  # 44 ms, plus forwarding and noise


def test_nothing_back_from_an_unreachable_node_or_an_unknown_address() -> None:
    output, ok = _run("unreachable", count=1)
    assert not ok
    assert "From 127.0.0.11 icmp_seq=1 Destination Host Unreachable" in output
    assert "1 packets transmitted, 0 received, +1 errors, 100% packet loss" in output
    assert SUMMARY.search(output) is None
    silent, _ = _run(None, count=1)
    assert "Unreachable" not in silent and "100% packet loss" in silent

"""The share planner (oss/cluster/shares.py): every device to one live instance, least-loaded
first, affinity as data, a dead member's devices first, no flapping when a member returns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from oss.cluster.shares import Affinity, DeviceFacts, plan

LEASE_S = 10.0
STABLE = LEASE_S * 2  # live for longer than a lease period
FRESH = 0.5  # just (re)joined


def devices(n: int, site: str | None = None, role: str | None = None) -> list[DeviceFacts]:
    prefix = site or "r"
    return [DeviceFacts(f"{prefix}{i:03}", site, role) for i in range(n)]


def apply(current: Mapping[str, str], moves: Mapping[str, str]) -> dict[str, str]:
    return {**current, **moves}


def loads(shares: Mapping[str, str]) -> Counter[str]:
    return Counter(shares.values())


def test_new_devices_spread_least_loaded_first() -> None:
    fleet = devices(10)
    result = plan(fleet, {}, {"a": STABLE, "b": STABLE, "c": STABLE}, lease_s=LEASE_S)
    assert set(result.moves) == {d.name for d in fleet}
    assert loads(result.moves) == Counter({"a": 4, "b": 3, "c": 3})
    (change,) = result.changes
    assert change.describe() == "shares: 10 unassigned devices to a, b, c"


def test_new_device_goes_to_the_least_loaded() -> None:
    fleet = devices(7)
    current = {d.name: "a" for d in fleet[:3]} | {d.name: "b" for d in fleet[3:6]}
    live = {"a": STABLE, "b": STABLE, "c": STABLE}
    result = plan(fleet, current, live, lease_s=LEASE_S)
    # c has none: it gets the new device, then one of a's (3-3-1 -> 2-3-2)
    assert result.moves == {"r006": "c", "r002": "c"}
    assert loads(apply(current, result.moves)) == Counter({"a": 2, "b": 3, "c": 2})


def test_dead_members_devices_go_first_to_the_least_loaded_and_say_why() -> None:
    fleet = devices(9)
    current = {d.name: i for d, i in zip(fleet, ["a", "b", "c"] * 3, strict=True)}
    extra = DeviceFacts("z-new")
    result = plan(
        [*fleet, extra],
        current,
        {"a": STABLE, "c": STABLE},
        lease_s=LEASE_S,
        gone={"b": "lease expired 0.4 s ago"},
    )
    orphans = {d for d, i in current.items() if i == "b"}
    assert set(result.moves) == orphans | {"z-new"}
    assert result.changes[0].describe() == (
        "shares: 3 devices from b (lease expired 0.4 s ago) to a, c"
    )
    # b's devices took the least-loaded places first; the new device came after them
    assert loads(apply(current, result.moves)) == Counter({"a": 5, "c": 5})
    assert result.changes[1].source is None


def test_every_device_exactly_one_live_owner_and_plan_is_stable() -> None:
    fleet = devices(50)
    live = {"a": STABLE, "b": STABLE, "c": STABLE}
    first = plan(fleet, {}, live, lease_s=LEASE_S)
    shares = apply({}, first.moves)
    assert set(shares) == {d.name for d in fleet}
    assert set(shares.values()) <= set(live)
    again = plan(fleet, shares, live, lease_s=LEASE_S)
    assert again.moves == {}  # a balanced cluster stays put


def test_a_returning_member_waits_a_lease_period_then_gets_an_even_share_once() -> None:
    fleet = devices(30)
    shares = {d.name: ("a" if i % 2 else "c") for i, d in enumerate(fleet)}  # b was dead
    # b just came back: nothing moves to it yet, however often the leader plans
    for _ in range(3):
        fresh = plan(fleet, shares, {"a": STABLE, "b": FRESH, "c": STABLE}, lease_s=LEASE_S)
        assert fresh.moves == {}
    settled = plan(fleet, shares, {"a": STABLE, "b": LEASE_S, "c": STABLE}, lease_s=LEASE_S)
    assert set(settled.moves.values()) == {"b"}
    assert len(settled.moves) == 10
    shares = apply(shares, settled.moves)
    assert loads(shares) == Counter({"a": 10, "b": 10, "c": 10})
    # no flapping: the next rounds move nothing, and a device moved once moves no more
    assert plan(fleet, shares, {"a": STABLE, "b": STABLE, "c": STABLE}, lease_s=LEASE_S).moves == {}
    assert {c.reason for c in settled.changes} == {"rebalance"}


def test_a_spread_of_one_is_balanced_enough() -> None:
    fleet = devices(7)
    shares = {d.name: ("a" if i < 4 else "b") for i, d in enumerate(fleet)}
    assert plan(fleet, shares, {"a": STABLE, "b": STABLE}, lease_s=LEASE_S).moves == {}


def test_a_member_that_flaps_moves_nothing_to_it() -> None:
    fleet = devices(12)
    shares = {d.name: ("a" if i % 2 else "c") for i, d in enumerate(fleet)}
    for live_s in (0.1, 3.0, 0.2, 9.9):  # b keeps coming back under a new token
        result = plan(fleet, shares, {"a": STABLE, "b": live_s, "c": STABLE}, lease_s=LEASE_S)
        assert result.moves == {}


def test_affinity_by_site_keeps_devices_on_their_instances() -> None:
    north = devices(6, site="north")
    south = devices(6, site="south")
    rules = [Affinity(("a",), site="north"), Affinity(("b", "c"), site="south")]
    live = {"a": STABLE, "b": STABLE, "c": STABLE}
    result = plan([*north, *south], {}, live, lease_s=LEASE_S, affinity=rules)
    assert {result.moves[d.name] for d in north} == {"a"}
    assert {result.moves[d.name] for d in south} == {"b", "c"}
    shares = apply({}, result.moves)
    # a holds 6 north devices, b and c 3 south each: pinned devices are not rebalanced away
    assert plan([*north, *south], shares, live, lease_s=LEASE_S, affinity=rules).moves == {}


def test_affinity_by_role_and_fallback_while_its_instances_are_dead() -> None:
    cores = devices(4, site="x", role="core")
    rules = [Affinity(("a",), role="core")]
    # a is dead: its core devices go to the live ones (collection before placement)
    shares = {d.name: "a" for d in cores}
    result = plan(cores, shares, {"b": STABLE, "c": STABLE}, lease_s=LEASE_S, affinity=rules)
    assert set(result.moves.values()) == {"b", "c"}
    shares = apply(shares, result.moves)
    # a returns: they go back only once it has been live a lease period
    live = {"a": FRESH, "b": STABLE, "c": STABLE}
    assert plan(cores, shares, live, lease_s=LEASE_S, affinity=rules).moves == {}
    live = {"a": STABLE, "b": STABLE, "c": STABLE}
    back = plan(cores, shares, live, lease_s=LEASE_S, affinity=rules)
    assert back.moves == {d.name: "a" for d in cores}
    assert "affinity: role core prefers a" in back.changes[0].describe()


def test_no_live_member_plans_nothing() -> None:
    assert plan(devices(3), {}, {}, lease_s=LEASE_S).moves == {}


def test_deterministic() -> None:
    fleet = devices(40, site="s")
    shares = {d.name: "a" for d in fleet}
    live = {"a": STABLE, "b": STABLE, "c": STABLE}
    first = plan(fleet, shares, live, lease_s=LEASE_S)
    second = plan(list(reversed(fleet)), dict(reversed(shares.items())), live, lease_s=LEASE_S)
    assert first.moves == second.moves
    assert first.changes == second.changes

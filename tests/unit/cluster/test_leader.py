"""The leader's component (oss/cluster/leader.py) against a fake database: a database outage is
ridden out (logged once, retried every round) while a write refused by its fence ends it, so
that the lease's holder steps down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from oss.cluster.leader import LEADER_LEASE, SharePlanner, _Facts
from oss.cluster.shares import Affinity, DeviceFacts
from oss.errors import Fenced
from oss.store.fencing import Fence, fenced
from oss.store.leases import Lease

LEASE_S = 0.3


class FakeDb:
    """Answers the leader's reads with `facts`, failing the first `down` calls."""

    def __init__(self, facts: _Facts, *, down: int = 0, refuse: bool = False) -> None:
        self.facts = facts
        self.down = down
        self.refuse = refuse
        self.calls = 0
        self.written: list[dict[str, str]] = []
        self.done = asyncio.Event()

    async def write(self, fn: Callable[[Any], Any], *, fenced: bool = True) -> Any:
        self.calls += 1
        if self.calls <= self.down:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database away"))
        if fenced:  # the moves
            if self.refuse:
                raise Fenced("write refused by the database: lease 'leader' token 3 ...")
            self.written.append(dict(self.facts.shares))
            self.done.set()
            return None
        return self.facts


def facts() -> _Facts:
    member = Lease("member:a", "a", 1, 0.1, 5.0)
    return _Facts([member], {}, [DeviceFacts("r1"), DeviceFacts("r2")])


async def test_an_outage_is_logged_once_and_the_next_rounds_plan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = FakeDb(facts(), down=3)
    planner = SharePlanner(db, instance="a", lease_s=LEASE_S)  # type: ignore[arg-type]
    stop = asyncio.Event()
    with (
        caplog.at_level(logging.WARNING, logger="oss.cluster.leader"),
        fenced(Fence(LEADER_LEASE, "a", 1)),
    ):
        task = asyncio.create_task(planner.run(stop))
        await asyncio.wait_for(db.done.wait(), 10)
        stop.set()
        await asyncio.wait_for(task, 5)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "cannot plan the shares (retrying)" in warnings[0]
    assert db.calls >= 5  # three failed rounds, then a read and the moves


async def test_a_write_refused_by_the_fence_ends_the_leaders_work() -> None:
    db = FakeDb(facts(), refuse=True)
    planner = SharePlanner(db, instance="a", lease_s=LEASE_S)  # type: ignore[arg-type]
    with fenced(Fence(LEADER_LEASE, "a", 3)), pytest.raises(Fenced, match="'leader' token 3"):
        await asyncio.wait_for(planner.run(asyncio.Event()), 5)


async def test_an_affinity_rule_with_none_of_its_instances_live_is_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    member = Lease("member:a", "a", 1, 0.1, 5.0)
    north = [DeviceFacts("n1", site="north"), DeviceFacts("n2", site="north")]
    db = FakeDb(_Facts([member], {}, north))
    rule = Affinity(("x", "y"), site="north")
    planner = SharePlanner(db, instance="a", lease_s=LEASE_S, affinity=[rule])  # type: ignore[arg-type]
    with (
        caplog.at_level(logging.INFO, logger="oss.cluster.leader"),
        fenced(Fence(LEADER_LEASE, "a", 1)),
    ):
        first = await planner.plan_once()
        await planner.plan_once()  # still stranded: nothing more said
        db.facts = _Facts([member, Lease("member:x", "x", 1, 0.1, 5.0)], {}, north)
        await planner.plan_once()
    assert first.moves == {"n1": "a", "n2": "a"}  # collected meanwhile, by whoever is live
    said = [r.getMessage() for r in caplog.records if "affinity" in r.getMessage()]
    assert said == [
        "cluster: affinity site north: none of x, y is live; its devices go to any live instance",
        "cluster: affinity site north: its instances are live again",
    ]

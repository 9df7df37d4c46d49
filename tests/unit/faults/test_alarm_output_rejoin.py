"""A batch of alarms refused because this instance's membership went stale (a pause past its
lease) is applied once the instance is a member again under a new token: traps are processed
where they arrive. Without a new membership within two lease periods the refusal stands."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from oss.errors import Fenced
from oss.faults.alarm_output import alarm_output
from oss.faults.reducer import Signal
from oss.store import Database
from oss.store.fencing import Fence
from tests.unit.faults.test_rules import iface

STALE = Fence("member:a", "a", 1)


class RefusingOnce:
    """An alarm manager whose first write is refused by the membership's fence."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.applied: list[list[str]] = []
        self.refusals = 1

    async def signals(self, batch: Sequence[Signal]) -> list[Any]:
        if self.refusals:
            self.refusals -= 1
            raise Fenced("write refused by the database: lease 'member:a' token 1 is stale")
        self.applied.append([s.reduction_key for s in batch])
        return []


def _db(lease_s: float) -> Database:
    db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none", idle_in_transaction_s=lease_s)
    db.member_fence = STALE
    return db


async def test_the_refused_batch_goes_in_once_the_instance_rejoins() -> None:
    db = _db(lease_s=1.0)
    manager = RefusingOnce(db)
    output = alarm_output([], manager)  # type: ignore[arg-type]

    async def rejoin() -> None:
        await asyncio.sleep(0.2)
        db.member_fence = Fence("member:a", "a", 2)

    rejoined = asyncio.create_task(rejoin())
    await output.offer([iface("down")])
    await rejoined
    assert manager.applied == [["linkDown:r1:eth1"]]
    await db.close()


async def test_without_a_new_membership_the_refusal_stands() -> None:
    db = _db(lease_s=0.1)
    manager = RefusingOnce(db)
    output = alarm_output([], manager)  # type: ignore[arg-type]
    with pytest.raises(Fenced, match="member:a"):
        await output.offer([iface("down")])
    assert manager.applied == []
    await db.close()

"""Two writers of one minute's roll-up (in a cluster, a device's old and new owner just after it
moved; two processes here, each with its own Database) add up in the database, on both
engines, instead of one of them failing on the primary key at every flush."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from oss.events import Event
from oss.outputs.rollup import MinuteRollup, query
from oss.store.database import Database

T0 = int(datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
S = 1_000_000_000


def kpi(at_s: int, bps: float) -> Event:
    tags = {"device": "r1", "interface": "eth1"}
    return Event("kpi.interface", T0 + at_s * S, tags, {"in-bps": bps})


async def test_two_writers_of_one_minute_add_up(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    try:
        await first.migrate()
        rounds = 20
        for n in range(rounds):
            a, b = MinuteRollup(first), MinuteRollup(second)
            a.add([kpi(n, 100.0 + n), kpi(n + 1, 300.0)])
            b.add([kpi(n + 2, 50.0), kpi(n + 3, 400.0 + n)])
            await asyncio.gather(a.flush(), b.flush())
            assert (a.written, b.written) == (1, 1)
        (row,) = await query(first, metric="in-bps")
        assert row["count"] == 4 * rounds
        assert row["min"] == 50.0
        assert row["max"] == 400.0 + rounds - 1
        assert row["avg"] == sum(100 + n + 300 + 50 + 400 + n for n in range(rounds)) / (4 * rounds)
    finally:
        await first.close()
        await second.close()

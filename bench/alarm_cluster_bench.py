"""The cost of cluster mode on the alarm path: `AlarmManager.signals` batches on one real
PostgreSQL as a single instance (no lock, no notices) and as one instance of a cluster (the
alarm lock, the fences checked after it, NOTIFY of the alarms and the outbox, the shared NOC
feed's check of its memory), another instance LISTENing, rounds alternating in the same run
on the same database; and the statements each batch sends in either mode.

    .venv/bin/python -m bench.alarm_cluster_bench [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import event

from oss.faults.alarms import AlarmManager
from oss.faults.noc_feed import NocFeed
from oss.outputs.mqtt_outbox import NocPublisher
from oss.settings import NocFeedSettings
from oss.store.database import Database
from oss.store.notify import ALARMS, OUTBOX, Notifications
from oss.store.outbox import Outbox
from tests.peers.postgres import create_database, running_postgres
from tests.unit.faults.conftest import FakeServices
from tests.unit.faults.test_alarm_batches import EverySignal
from tests.unit.faults.test_alarm_folding import storm
from topology.graph import InventoryGraph


async def _ignore(_notice: Mapping[str, Any]) -> None:
    return None


async def one_case(url: str, *, correlated: bool, batch: int, rounds: int) -> str:
    db = Database(url)
    await db.migrate()
    listener = Notifications(db.url, "b")  # the other instance: NOTIFY delivers to it
    listener.on(ALARMS, _ignore)
    listener.on(OUTBOX, _ignore)
    stop = asyncio.Event()
    listening = asyncio.create_task(listener.run(stop))
    await asyncio.wait_for(listener.listening.wait(), 10)
    notices = Notifications(db.url, "a")
    graph = InventoryGraph()
    settings = NocFeedSettings(prefix="noc")
    publisher = NocPublisher(db, settings)
    outbox = Outbox(publisher.offer)
    feed = NocFeed(settings, outbox)
    every = {"correlator": EverySignal(lambda: graph, FakeServices())} if correlated else {}
    manager = AlarmManager(db, lambda: graph, FakeServices(), feed, **every)
    signals = storm(pairs=max(batch // 4, 1), steps=60 if batch == 1 else 120)
    statements: list[object] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a))
    times: dict[bool, list[float]] = {False: [], True: []}
    sent: dict[bool, list[float]] = {False: [], True: []}
    try:
        for r in range(rounds):
            cluster = r % 2 == 1
            manager.notifications = outbox.notifications = notices if cluster else None
            feed.shared = publisher.shared = cluster
            statements.clear()
            started, batches = time.perf_counter(), 0
            for start in range(0, len(signals), batch):
                await manager.signals(signals[start : start + batch])
                batches += 1
            if r >= 2:  # the first two warm up
                times[cluster].append((time.perf_counter() - started) / batches * 1000)
                sent[cluster].append(len(statements) / batches)
    finally:
        stop.set()
        await listening
        await db.close()
    alone, clustered = statistics.median(times[False]), statistics.median(times[True])
    path = "ORM (correlated)" if correlated else "storm path"
    return (
        f"{path:17} batches of {batch:2}: {alone:6.2f} -> {clustered:6.2f} ms per batch "
        f"({clustered - alone:+.2f} ms, {100 * (clustered - alone) / alone:+.0f}%), "
        f"statements through SQLAlchemy {statistics.median(sent[False]):.0f} -> "
        f"{statistics.median(sent[True]):.0f} (medians of {len(times[True])} alternating rounds)"
    )


async def main(rounds: int) -> None:
    with running_postgres() as pg:
        number = 0
        for correlated in (False, True):
            for batch in (1, 50):
                number += 1
                url = create_database(pg, f"alarm_cluster_{number}")
                print(await one_case(url, correlated=correlated, batch=batch, rounds=rounds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    asyncio.run(main(parser.parse_args().rounds))

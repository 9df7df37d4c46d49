"""A trap storm's path on both backends (SQLite, a real PostgreSQL): the storm path's alarms end
as the ORM's one by one, and the outbox rows the NOC feed hands to the publisher are the rows
committed, ids and order included (SQLite numbers them in the transaction, PostgreSQL returns
them in order)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from oss.faults.alarms import AlarmManager
from oss.faults.noc_feed import NocFeed
from oss.outputs.mqtt_outbox import NocPublisher
from oss.settings import NocFeedSettings
from oss.store.database import Database
from oss.store.outbox import Outbox, OutboxMessage
from oss.store.tables import OutboxRow
from tests.unit.faults.conftest import FakeServices
from tests.unit.faults.test_alarm_batches import EverySignal, alarm_state
from tests.unit.faults.test_alarm_folding import storm
from topology.graph import InventoryGraph

SETTINGS = NocFeedSettings(prefix="noc")


class Offers(NocPublisher):
    """Keeps what is offered (not running: nothing is sent)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, SETTINGS)
        self._resync = False
        self.offered: list[OutboxMessage] = []

    def offer(self, rows: Sequence[OutboxMessage]) -> None:
        self.offered += rows


async def test_a_storm_on_both_backends(database_url: str, tmp_path: Path) -> None:
    signals = storm(pairs=20, steps=11)  # repeats, clears and re-raises of 20 keys
    db = Database(database_url)
    reference_db = Database(f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}")
    try:
        await db.migrate()
        await reference_db.migrate()
        graph = InventoryGraph()
        publisher = Offers(db)
        feed = NocFeed(SETTINGS, Outbox(publisher.offer))
        manager = AlarmManager(db, lambda: graph, FakeServices(), feed)
        reference = AlarmManager(
            reference_db,
            lambda: graph,
            FakeServices(),
            NocFeed(SETTINGS),
            correlator=EverySignal(lambda: graph, FakeServices()),
        )
        for s in signals:
            await reference.signal(s)
        for start in range(0, len(signals), 50):  # batches of 50, through the storm path
            await manager.signals(signals[start : start + 50])

        assert await alarm_state(db) == await alarm_state(reference_db)
        async with db.sessions() as session:
            rows = (await session.execute(select(OutboxRow).order_by(OutboxRow.id))).scalars()
            committed = [(r.id, r.topic, r.payload, r.retain, r.qos) for r in rows]
        assert publisher.offered == committed
        assert len(committed) > len(signals) / 2
    finally:
        await db.close()
        await reference_db.close()

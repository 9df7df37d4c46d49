"""The storm path's driver-level bulk writes (oss.store.driver_rows) store what SQLAlchemy's own
executemany stores, on SQLite and on a real PostgreSQL: the same alarm and outbox rows read
back, datetimes, JSON, booleans and NULLs included, and ids numbered in order."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from oss.store.alarm_rows import (
    _OPEN,
    CHILDREN,
    PlainAlarm,
    by_parent,
    children_of,
    insert_alarms,
    open_alarms,
    update_alarms,
)
from oss.store.database import Database
from oss.store.outbox import Message, Outbox
from oss.store.tables import AlarmRow, OutboxRow

T0 = datetime(2026, 12, 7, 6, 0, 0, 123456, tzinfo=UTC)


def _alarm(n: int, **columns: Any) -> PlainAlarm:
    values: dict[str, Any] = {
        "reduction_key": f"linkDown:r{n}:e1",
        "open": True,
        "alarm_type": "communicationsAlarm",
        "perceived_severity": "major",
        "probable_cause": "linkDown",
        "specific_problem": "interface down",
        "alarmed_object_type": "interface",
        "alarmed_object": f"r{n}:e1",
        "state": "raised",
        "ack_state": "unacknowledged",
        "raised_time": T0,
        "changed_time": T0 + timedelta(seconds=n),
        "details": {"ifIndex": n, "name": "é"} if n % 2 else None,
    }
    values.update(columns)
    return PlainAlarm(**values)


def _rows(conn: Connection, table: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]


async def test_driver_rows_store_what_core_stores(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate()

        def write(conn: Connection) -> None:
            alarms = [_alarm(n) for n in range(1, 5)]
            insert_alarms(conn, alarms)
            assert [a.id for a in alarms] == sorted(a.id for a in alarms if a.id is not None)
            alarms[0].open, alarms[0].state, alarms[0].cleared_time = False, "cleared", T0
            alarms[1].count, alarms[1].details = 5, {"ifIndex": 2, "more": [1, 2]}
            update_alarms(conn, alarms[:2])
            Outbox().write(conn, [Message("noc/a", "{}", retain=True), Message("noc/e", "")])

        def reference(conn: Connection) -> None:
            # The same rows through SQLAlchemy's executemany, at ids after the first ones, under
            # keys of their own (one open alarm per key: ux_alarms_open_key).
            alarms = [_alarm(n, reduction_key=f"ref:linkDown:r{n}:e1") for n in range(1, 5)]
            alarms[0].open, alarms[0].state, alarms[0].cleared_time = False, "cleared", T0
            alarms[1].count, alarms[1].details = 5, {"ifIndex": 2, "more": [1, 2]}
            rows = [{**_columns(a), "id": 100 + i} for i, a in enumerate(alarms)]
            conn.execute(insert(AlarmRow), rows)
            now = datetime.now(UTC)
            conn.execute(
                insert(OutboxRow),
                [
                    {"id": 100, "channel": "mqtt", "topic": "noc/a", "payload": "{}",
                     "retain": True, "qos": 1, "created_at": now},
                    {"id": 101, "channel": "mqtt", "topic": "noc/e", "payload": "",
                     "retain": False, "qos": 1, "created_at": now},
                ],
            )  # fmt: skip

        await db.write(write)
        await db.write(reference)

        def read(conn: Connection) -> tuple[list[Any], list[Any], dict[str, list[PlainAlarm]]]:
            keys = [f"linkDown:r{n}:e1" for n in range(1, 5)]
            return (
                _rows(conn, AlarmRow.__table__),
                _rows(conn, OutboxRow.__table__),
                open_alarms(conn, keys),
            )

        alarms, outbox, still_open = await db.write(read)
        # The open alarms read through the driver on SQLite are SQLAlchemy's own rows.
        keys = sorted(still_open)
        core = await db.write(lambda conn: list(conn.execute(_OPEN, {"keys": keys})))
        ours_read = sorted((a for key in keys for a in still_open[key]), key=lambda a: a.id or 0)
        assert ours_read == [PlainAlarm(*r) for r in core]
        ours, theirs = alarms[:4], alarms[4:]
        assert [r[1] for r in theirs] == [f"ref:{r[1]}" for r in ours]
        assert [r[2:] for r in ours] == [r[2:] for r in theirs]
        assert ours[0][0] + 3 == ours[3][0]  # numbered in order
        # The outbox rows: the same but for the creation time.
        assert [r[1:6] for r in outbox[:2]] == [r[1:6] for r in outbox[2:]]
        assert outbox[0][6].tzinfo is not None and outbox[0][7] is None
        # Read back as the storm path reads them: the cleared ones are no longer open.
        assert still_open["linkDown:r1:e1"] == []
        second = still_open["linkDown:r2:e1"]
        assert [a.id for a in second] == [ours[1][0]]
        assert second[0] == _alarm(
            2, id=ours[1][0], count=5, details={"ifIndex": 2, "more": [1, 2]}
        )
        assert second[0].details == {"ifIndex": 2, "more": [1, 2]}
        assert second[0].changed_time == T0 + timedelta(seconds=2)
    finally:
        await db.close()


def _columns(alarm: PlainAlarm) -> dict[str, Any]:
    values = asdict(alarm)
    values.pop("id")
    return values


async def test_children_read_through_the_driver_are_sqlalchemys(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate()

        def work(conn: Connection) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
            alarms = [_alarm(n) for n in range(1, 6)]
            insert_alarms(conn, alarms)
            ids = [a.id or 0 for a in alarms]
            for child in ids[1:4]:  # three under the first, one under the last
                conn.execute(update(AlarmRow).where(AlarmRow.id == child).values(parent_id=ids[0]))
            conn.execute(update(AlarmRow).where(AlarmRow.id == ids[4]).values(parent_id=ids[3]))
            core = by_parent(conn.execute(CHILDREN, {"ids": ids}))
            return children_of(conn, ids), core

        ours, core = await db.write(work)
        assert ours == core
        assert sorted(len(c) for c in ours.values()) == [1, 3]
    finally:
        await db.close()

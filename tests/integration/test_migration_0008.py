"""Migration 0008 on a database an older version wrote: two open alarms of one key (the state a
second writer could leave) become one open alarm, the newest, before the unique index."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from sqlalchemy import Connection, text

from oss.store import Database
from oss.store.database import alembic_config


def _to(revision: str) -> Callable[[Connection], None]:
    def upgrade(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), revision)

    return upgrade


async def test_duplicate_open_alarms_are_folded_into_the_newest(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to("0007"))
            for key in ("cpu:r1", "cpu:r1", "cpu:r1", "cpu:r2"):
                await conn.execute(
                    text(
                        "INSERT INTO alarms (reduction_key, open, alarm_type, perceived_severity,"
                        " probable_cause, specific_problem, alarmed_object_type, alarmed_object,"
                        " state, ack_state, raised_time, changed_time, service_affecting,"
                        " affected_services, is_root_cause, count, sequence) VALUES (:k, true,"
                        " 'x', 'major', 'c', '', 'device', 'r1', 'raised', 'unacknowledged',"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, false, '[]', false, 1, 1)"
                    ),
                    {"k": key},
                )
        await db.migrate()
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT id, reduction_key, open, state FROM alarms ORDER BY id")
                )
            ).all()
        assert [(r[0], r[1], bool(r[2]), r[3]) for r in rows] == [
            (1, "cpu:r1", False, "cleared"),
            (2, "cpu:r1", False, "cleared"),
            (3, "cpu:r1", True, "raised"),
            (4, "cpu:r2", True, "raised"),
        ]
    finally:
        await db.close()

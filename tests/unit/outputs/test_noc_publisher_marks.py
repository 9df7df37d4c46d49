"""The NOC publisher marks sent rows in a task of its own: a mark the database refuses because
this instance no longer holds the feed's lease (`Fenced`) is said in the log, not left as an
exception nobody retrieves; the rows stay unmarked for the next holder to send again."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from oss.errors import Fenced
from oss.outputs.mqtt_outbox import NocPublisher
from oss.settings import NocFeedSettings
from oss.store import Database


class RefusedMarks(NocPublisher):
    def __init__(self, database: Database) -> None:
        super().__init__(database, NocFeedSettings(enabled=True))
        self.tried: list[list[int]] = []

    async def _mark_sent(self, ids: list[int]) -> None:
        self.tried.append(ids)
        raise Fenced("write refused by the database: lease 'singleton:noc-feed' token 3 is stale")


async def test_a_refused_mark_is_logged_not_lost_in_a_task(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    publisher = RefusedMarks(db)
    loop = asyncio.get_running_loop()
    unretrieved: list[object] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    try:
        with caplog.at_level(logging.WARNING, logger="oss.outputs.mqtt_outbox"):
            publisher._mark_later([1, 2, 3])
            marker = publisher._marker
            assert marker is not None
            await marker
        assert marker.exception() is None
        assert publisher.tried == [[1, 2, 3]]
        assert any(
            "3 sent rows not marked" in r.getMessage() and "token 3" in r.getMessage()
            for r in caplog.records
        )
        assert unretrieved == []
    finally:
        loop.set_exception_handler(None)
        await db.close()

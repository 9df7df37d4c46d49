"""Device locks for the database the daemon runs on: in this process on SQLite (its one
instance), and on PostgreSQL also in the database (`oss.store.device_locks`), so that two
instances never change one device at once and a dead instance's locks go with its connection."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from oss.provisioning.engine import DeviceLocks
from oss.store.database import Database
from oss.store.device_locks import AdvisoryDeviceLocks


class ClusterDeviceLocks(DeviceLocks):
    """This process's locks first (its own transactions queue here without holding a database
    connection each), then the database's, within one wait."""

    def __init__(self, db: Database, instance: str | None) -> None:
        super().__init__()
        self.advisory = AdvisoryDeviceLocks(db.url, instance)

    @asynccontextmanager
    async def holding(
        self, devices: Iterable[str], *, wait_s: float | None = None
    ) -> AsyncIterator[None]:
        names = sorted(set(devices))
        started = time.monotonic()
        async with super().holding(names, wait_s=wait_s):
            left = None if wait_s is None else max(wait_s - (time.monotonic() - started), 0.0)
            async with self.advisory.holding(names, wait_s=left):
                yield

    async def close(self) -> None:
        await self.advisory.close()


def device_locks_for(db: Database, instance: str | None) -> DeviceLocks:
    """PostgreSQL: across instances; SQLite: in this process, as one instance needs."""
    if db.backend == "postgresql":
        return ClusterDeviceLocks(db, instance)
    return DeviceLocks()

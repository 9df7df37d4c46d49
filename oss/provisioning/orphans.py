"""`txn-recovery`: the transactions of instances that died, finished or rolled back by another.

A cluster runs this component on one instance at a time (a singleton under its own lease, so
its writes carry that lease's fence). Every `interval_s` it asks the database which instances
are live (their membership lease unexpired) and resolves, from the journal, every unfinished
transaction recorded by an instance that is not (or by none: a daemon not in cluster mode),
as start-up recovery does for an instance's own: confirmed when every device had verified,
undone from the pre-images otherwise, the service settled and audited.

The device locks come first: a paused instance (its lease expired, its process stopped) still
holds them on its database connection, and may go on pushing its change when it resumes; its
next journal write is then refused by its fence and it lets go. So a transaction whose devices
are busy is skipped (logged once) and tried again at the next round; once the locks are ours,
the journal is read again (its instance may have ended it, or come back: then it is its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from oss.backoff import Backoff
from oss.components import Stage
from oss.errors import Fenced, OssError, StorageError
from oss.provisioning.services import ServiceManager
from oss.store import leases
from oss.store.database import Database
from oss.store.device_locks import DevicesBusy
from oss.store.journal_rows import Unfinished

log = logging.getLogger(__name__)


class OrphanRecovery:
    """A component: every `interval_s`, resolve the open transactions of instances not live.
    `lock_wait_s`: how long one round waits for a transaction's device locks (0: skip at once
    when busy; the next round tries again)."""

    name = "txn-recovery"
    stage = Stage.WORKERS

    def __init__(
        self,
        services: ServiceManager,
        db: Database,
        instance: str,
        interval_s: float,
        *,
        lock_wait_s: float = 0.0,
    ) -> None:
        self.services = services
        self.db = db
        self.instance = instance
        self.interval_s = interval_s
        self.lock_wait_s = lock_wait_s
        self._busy_told: dict[int, str] = {}  # transaction -> the busy message last logged

    async def run(self, stop: asyncio.Event) -> None:
        pause = Backoff(self.interval_s, max(self.interval_s, 60.0))
        while not stop.is_set():
            wait_s = self.interval_s
            try:
                await self.sweep()
                if pause.succeeded():
                    log.info("txn-recovery: the database answers again")
            except Fenced:
                raise  # the lease is lost: the singleton's holder stops this component
            except (StorageError, SQLAlchemyError, OSError) as exc:  # the database is away
                if pause.failed():
                    log.warning("txn-recovery: cannot read the journal: %s; trying again", exc)
                wait_s = pause.pause()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait_s)

    async def sweep(self) -> list[dict[str, Any]]:
        """One round: every orphaned transaction resolved, or skipped while its devices are
        busy. What was resolved, each with why (`reason`)."""
        live, member_leases = await self._membership()
        resolved = []
        for entry in await self.services.journal.unfinished_elsewhere(live | {self.instance}):
            reason = _why_orphaned(entry, member_leases)
            outcome = await self._resolve(entry, reason)
            if outcome is not None:
                resolved.append({**outcome, "instance": entry.instance, "reason": reason})
        return resolved

    async def _resolve(self, entry: Unfinished, reason: str) -> dict[str, Any] | None:
        of = f"transaction {entry.id} of instance {entry.instance or '(none)'} ({reason})"

        async def still_orphaned() -> bool:
            live, _ = await self._membership()
            return entry.instance is None or entry.instance not in live | {self.instance}

        try:
            done = await self.services.resolve(
                entry,
                wait_s=self.lock_wait_s,
                why=f"by the loss of its instance ({reason})",
                still_open=still_orphaned,
            )
        except DevicesBusy as exc:
            if self._busy_told.get(entry.id) != str(exc):
                self._busy_told[entry.id] = str(exc)
                log.warning("%s: %s; trying again in %g s", of, exc, self.interval_s)
            return None
        except Fenced:
            raise
        except OssError as exc:  # this one cannot be resolved now; the others still can
            log.error("%s: cannot be resolved: %s", of, exc)
            return None
        self._busy_told.pop(entry.id, None)
        if done is None:
            log.info("%s: ended meanwhile or its instance is back; nothing to do", of)
            return None
        log.warning("%s resolved: %s", of, _outcome(done["state"]))
        return done

    async def _membership(self) -> tuple[set[str], dict[str, leases.Lease]]:
        """The live instances, and every membership lease by instance (for the log's why)."""
        async with self.db.engine.connect() as conn:
            live = await conn.run_sync(leases.live_members)
            every = await conn.run_sync(leases.all_leases)
        members = {
            lease.name.removeprefix(leases.MEMBER_PREFIX): lease
            for lease in every
            if lease.name.startswith(leases.MEMBER_PREFIX)
        }
        return live, members


def _why_orphaned(entry: Unfinished, member_leases: dict[str, leases.Lease]) -> str:
    if entry.instance is None:
        return "recorded by a daemon not in cluster mode"
    lease = member_leases.get(entry.instance)
    if lease is None:
        return "not a member"
    return f"lease expired {max(-lease.expires_in_s, 0.0):.1f} s ago"


def _outcome(state: str) -> str:
    return {"committed": "committed", "rolled-back": "rolled back"}.get(
        state, f"{state} (NOT every device restored: see the transaction)"
    )

"""The audit log: who changed what, when, with the object before and after.

`record()` adds the entry to the caller's session, so the entry commits or rolls back together
with the change it describes: there is never a change without its entry, nor the reverse.

Refused attempts are entries too, their action ending in `.refused` (`refused=true` on the list
finds them): a refused inventory change (`<kind>.<action>.refused`), and requests refused by
authentication or role (`unauthorized.refused`, `forbidden.refused`, object type `request`,
object id `<METHOD> <route>`). Those come in floods, so `RefusalLog` writes at most one entry per
(token, method, route, reason) per window, counting the refusals it stands for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oss.store import Database
from oss.store.tables import AuditRow

log = logging.getLogger(__name__)

REFUSED = ".refused"  # the suffix of every refusal's action
REFUSAL_WINDOW_S = 60.0
_REFUSAL_KEYS_MAX = 10_000  # entries kept before quiet ones are forgotten


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Any = None
    after: Any = None


def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Any = None,
    after: Any = None,
) -> None:
    session.add(
        AuditRow(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
        )
    )


@dataclass
class _Window:
    opened: float  # when the last entry for the key was written (the clock's seconds)
    suppressed: int = 0  # refusals since then, not written yet


@dataclass(frozen=True)
class Refusal:
    """A request refused before it could change anything. Never the token itself."""

    status: int  # 401 or 403
    reason: str  # a fixed phrase, never text from the request
    method: str
    route: str  # the route's template (/api/v1/devices/{name}), not the raw path
    token_id: int | None  # None: no token, or one that is not ours
    actor: str

    @property
    def action(self) -> str:
        return ("unauthorized" if self.status == 401 else "forbidden") + REFUSED


class RefusalLog:
    """Refused requests into the audit log, rate-limited: the first refusal of a (token,
    method, route, reason) writes an entry at once; the next ones within `window_s` only count,
    and the first one after the window writes an entry whose `count` includes them."""

    def __init__(
        self,
        db: Database,
        *,
        window_s: float = REFUSAL_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[tuple[int | None, str, str, str], _Window] = {}

    async def refused(self, refusal: Refusal) -> bool:
        """Note a refusal; True when it wrote an entry."""
        key = (refusal.token_id, refusal.method, refusal.route, refusal.reason)
        now = self._clock()
        window = self._windows.get(key)
        if window is not None and now - window.opened < self.window_s:
            window.suppressed += 1
            return False
        count = 1 + (window.suppressed if window is not None else 0)
        self._forget_quiet(now)
        self._windows[key] = _Window(now)
        try:
            async with self._db.transaction() as session:
                record(
                    session,
                    actor=refusal.actor,
                    action=refusal.action,
                    object_type="request",
                    object_id=f"{refusal.method} {refusal.route}",
                    after={
                        "status": refusal.status,
                        "reason": refusal.reason,
                        "method": refusal.method,
                        "route": refusal.route,
                        "token_id": refusal.token_id,
                        "count": count,
                        "window_s": self.window_s,
                    },
                )
        except Exception:  # the refusal stands; only its entry is lost (and said so)
            log.exception("a refused %s %s was not audited", refusal.method, refusal.route)
            return False
        return True

    def _forget_quiet(self, now: float) -> None:
        """Bound the memory: drop windows that are over and counted nothing since."""
        if len(self._windows) < _REFUSAL_KEYS_MAX:
            return
        for key, window in list(self._windows.items()):
            if window.suppressed == 0 and now - window.opened >= self.window_s:
                del self._windows[key]


async def list_entries(
    db: Database,
    *,
    limit: int,
    offset: int,
    actor: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    refused: bool | None = None,
) -> tuple[list[AuditEntry], int]:
    """Entries, newest first. `refused`: only refusals (True) or only changes (False)."""
    query: Select[tuple[AuditRow]] = select(AuditRow)
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    if object_type is not None:
        query = query.where(AuditRow.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditRow.object_id == object_id)
    if action is not None:
        query = query.where(AuditRow.action == action)
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if refused is not None:
        is_refusal = AuditRow.action.endswith(REFUSED, autoescape=True)
        query = query.where(is_refusal if refused else ~is_refusal)
    async with db.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await session.scalars(query.order_by(AuditRow.id.desc()).limit(limit).offset(offset))
        return [AuditEntry.model_validate(r) for r in rows], int(total or 0)

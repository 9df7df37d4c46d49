"""The audit log: who changed what, when, with the object before and after.

`record()` adds the entry to the caller's session, so the entry commits or rolls back together
with the change it describes: there is never a change without its entry, nor the reverse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oss.store import Database
from oss.store.tables import AuditRow


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
) -> tuple[list[AuditEntry], int]:
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
    async with db.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await session.scalars(query.order_by(AuditRow.id.desc()).limit(limit).offset(offset))
        return [AuditEntry.model_validate(r) for r in rows], int(total or 0)

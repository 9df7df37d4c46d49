"""The audit log, newest first: every change, and every refused attempt (actions ending in
`.refused`: `refused=true` lists only those, `refused=false` only the changes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from oss.api.deps import DaemonDep, PageDep, Viewer
from oss.api.schemas import Page
from oss.audit import AuditEntry, list_entries
from oss.bounds import Moment

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEntry])
async def audit_log(
    daemon: DaemonDep,
    _: Viewer,
    page: PageDep,
    actor: Annotated[str | None, Query()] = None,
    object_type: Annotated[str | None, Query()] = None,
    object_id: Annotated[str | None, Query()] = None,
    action: Annotated[str | None, Query()] = None,
    since: Annotated[Moment | None, Query()] = None,
    refused: Annotated[
        bool | None,
        Query(description="true: only refused attempts (401, 403, 409); false: only changes"),
    ] = None,
) -> Page[AuditEntry]:
    entries, total = await list_entries(
        daemon.db,
        limit=page.limit,
        offset=page.offset,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        action=action,
        since=since,
        refused=refused,
    )
    return Page(items=entries, total=total, limit=page.limit, offset=page.offset)

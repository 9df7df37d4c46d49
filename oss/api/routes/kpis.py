"""KPI minute roll-ups (`kpi_minutes`): per interface (`device:interface`) or service, per
metric, per minute: count, average, minimum, maximum and last value."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from oss.api.deps import DaemonDep, Viewer
from oss.bounds import Moment
from oss.outputs.rollup import query

router = APIRouter(prefix="/api/v1/kpis", tags=["kpis"])


@router.get("")
async def list_kpis(
    daemon: DaemonDep,
    _: Viewer,
    object_type: Annotated[str | None, Query(description="interface or service")] = None,
    object: Annotated[str | None, Query(description="e.g. r1:eth1, or a service name")] = None,
    metric: Annotated[str | None, Query(description="e.g. in-bps, in-utilisation")] = None,
    since: Annotated[Moment | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[Moment | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[dict[str, Any]]:
    rows = await query(
        daemon.db,
        object_type=object_type,
        object=object,
        metric=metric,
        since=since,
        until=until,
        limit=limit,
    )
    return list(rows)

"""`GET /api/v1/cluster`: the cluster as this instance reads it from the database (members,
roles, device shares, lease ages, singletons). Every instance answers the same document but
its own `instance`; a single instance answers `enabled: false`, owning every device."""

from __future__ import annotations

from fastapi import APIRouter

from oss.api.cluster_schemas import ClusterStatus
from oss.api.deps import DaemonDep, Viewer

router = APIRouter(prefix="/api/v1/cluster", tags=["cluster"])


@router.get("", summary="Instances, their roles, device shares and lease ages")
async def cluster_status(daemon: DaemonDep, _: Viewer) -> ClusterStatus:
    return ClusterStatus.model_validate(await daemon.cluster.status(), from_attributes=True)

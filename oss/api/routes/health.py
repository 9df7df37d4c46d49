"""Liveness, readiness and the Prometheus exposition: unauthenticated by design, so probes
and scrapers need no token; none of them shows inventory data."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from oss.api.deps import DaemonDep
from oss.errors import NotReady

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: storage open, inventory loaded, not stopping")
async def readyz(daemon: DaemonDep) -> dict[str, str]:
    if daemon.readiness.stopping:
        raise NotReady("shutting down")
    if not daemon.readiness.ready:
        raise NotReady("starting")
    return {"status": "ready"}


@router.get(
    "/metrics",
    summary="Prometheus metrics of the daemon itself",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(daemon: DaemonDep, request: Request) -> Response:
    return Response(daemon.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

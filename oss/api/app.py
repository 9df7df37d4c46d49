"""`create_app(daemon)`: the FastAPI application over the assembled daemon, built per daemon
(never at import time)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.routing import Match

from bss_bridge import api as bss_api
from bss_bridge.api.access import Access
from oss import __version__, console
from oss.api import contract, problems
from oss.api.deps import get_bss, require
from oss.api.limits import BodyLimit, Limit
from oss.api.map_document import MapState
from oss.api.routes import (
    alarms,
    audit,
    cluster,
    console_map,
    devices,
    health,
    interfaces,
    kpis,
    links,
    map_panels,
    map_views,
    me,
    services,
    sites,
    tokens,
    topology,
    topology_stream,
)
from oss.auth_roles import Role
from oss.daemon import Daemon

IMPORT_PATH = "/api/v1/topology/import"


def create_app(daemon: Daemon) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The runtime opens and closes the parts; the app only borrows them for its lifetime.
        yield

    app = FastAPI(
        title="OSS automation and assurance daemon",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.daemon = daemon
    app.state.map_state = MapState.of(daemon.db, daemon.alarms)  # the console's map, layouts
    problems.install(app)
    contract.install(app)
    api = daemon.settings.api
    app.add_middleware(
        BodyLimit,
        limit=Limit(api.max_body_bytes, "api.max_body_bytes"),
        per_path={IMPORT_PATH: Limit(api.max_import_bytes, "api.max_import_bytes")},
    )
    routers = (
        health,
        sites,
        devices,
        interfaces,
        links,
        topology,
        tokens,
        audit,
        services,
        alarms,
        kpis,
        me,
        console_map,
        map_views,
        map_panels,
        topology_stream,
        cluster,
    )
    for module in routers:
        app.include_router(module.router)
    # The BSS owns its routes (bss_bridge/api); they get the dependencies they cannot import.
    bss_access = Access(bss=get_bss, viewer=require(Role.VIEWER), operator=require(Role.OPERATOR))
    for router in bss_api.routers(bss_access):
        app.include_router(router)
    console.mount(app)  # the NOC console's static files at /ui/ (oss/console)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_template(app, request)
        daemon.metrics.http_requests.labels(request.method, route, response.status_code).inc()
        daemon.metrics.http_duration.labels(request.method, route).observe(
            time.perf_counter() - started
        )
        return response

    return app


def _route_template(app: FastAPI, request: Request) -> str:
    """The route's path template (/api/v1/devices/{name}), never the raw path: raw paths would
    give the metric one series per device."""
    route = request.scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    for candidate in app.router.routes:
        match, _ = candidate.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"

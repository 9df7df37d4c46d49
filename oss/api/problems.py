"""RFC 9457 problem documents for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from oss.errors import OssError, Unauthorized

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldProblem(BaseModel):
    field: str = Field(description="where in the request: body.name, query.offset, path.id")
    reason: str


class Problem(BaseModel):
    """An RFC 9457 problem document: how the API answers every error. Some carry more
    members (the services in the way of a change, the problems of a topology file)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="urn:oss:problem:<slug>, e.g. urn:oss:problem:not-found")
    title: str
    status: int
    detail: str = Field(description="what was wrong, naming the input or the object")
    instance: str = Field(description="the request's path")
    errors: list[FieldProblem] = Field(default=[], description="422: each field and why")


def problem(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"urn:oss:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> str:
    """The `Allow` header of a 405: every method some route serves at this path (FastAPI has
    one route per method, so the route that refused knows only its own)."""
    allowed = [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


_HTTP_PROBLEMS = {
    400: ("bad-request", "Bad request"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("too-large", "Content too large"),
}


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(OssError)
    async def _oss_error(request: Request, exc: OssError) -> JSONResponse:
        if exc.status >= 500:
            log.error("request failed: %s", exc, extra={"path": request.url.path})
        return problem(request, exc.status, exc.slug, exc.title, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem(request, 422, "invalid-input", "Invalid input", detail, errors=errors)

    @app.exception_handler(ValidationError)
    async def _invalid_model(request: Request, exc: ValidationError) -> JSONResponse:
        # A model built inside a handler (not the request body itself) refused the input.
        errors = [{"field": _field(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:5])
        return problem(request, 422, "invalid-input", "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_PROBLEMS.get(exc.status_code, ("http-error", str(exc.detail)))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(app.router.routes, request.scope)
        return problem(request, exc.status_code, slug, title, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(request, 500, "internal-error", "Internal error", "see the daemon's log")


__all__ = ["PROBLEM_JSON", "Problem", "Unauthorized", "install", "problem"]

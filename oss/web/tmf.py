"""The TM Forum Open API conventions every TMF route follows, written once.

- `fields=` (TMF630): a comma-separated list of the attributes to return; `id` and `href` are
  always returned, without them a document cannot be followed up (`select_fields`).
- Paging (TMF630): `offset` and `limit` query parameters; a list answers with the headers
  `X-Total-Count` (how many match) and `X-Result-Count` (how many in this page) (`paged`).
- Errors: the TMF `Error` document, carrying the members of the project's problem documents
  too (`tmf_error`, `answer`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse

from oss.bounds import Int64
from oss.errors import OssError

# Always sent, whatever `fields` selects: without them a document cannot be followed up.
ALWAYS = ("id", "href")

Offset = Annotated[Int64, Query()]
Limit = Annotated[int, Query(ge=1, le=1000)]
Fields = Annotated[str | None, Query(description="comma-separated attributes")]


def select_fields(doc: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """`doc` with only the attributes `fields` names (and `id`, `href`); all without `fields`."""
    if not fields:
        return doc
    wanted = {f.strip() for f in fields.split(",") if f.strip()} | set(ALWAYS)
    return {k: v for k, v in doc.items() if k in wanted}


def paged(
    response: Response, docs: list[dict[str, Any]], total: int, fields: str | None
) -> list[dict[str, Any]]:
    """One page of a list: sets the paging headers on `response`, returns the selected docs."""
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(docs))
    return [select_fields(d, fields) for d in docs]


def tmf_error(request: Request, exc: OssError) -> JSONResponse:
    """The TMF `Error` document (code, reason, message, status as a string), carrying the
    members of the project's problem documents too, except RFC 9457's numeric `status`."""
    body = {
        "code": exc.slug,
        "reason": exc.title,
        "message": exc.message,
        "status": str(exc.status),
        "@type": "Error",
        "type": f"urn:oss:problem:{exc.slug}",
        "title": exc.title,
        "detail": exc.message,
        "instance": request.url.path,
    }
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def answer(request: Request, work: Awaitable[Any], status: int = 200) -> JSONResponse:
    """`work`'s document as JSON (`status`), or its error as a TMF `Error` document."""
    try:
        return JSONResponse(await work, status_code=status)
    except OssError as exc:
        return tmf_error(request, exc)

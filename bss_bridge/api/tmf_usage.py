"""The TMF635 Usage Management `usage` resource at the spec's basePath: create (idempotent by
the record's key, see `bss_bridge.tmf_usage`), list and get.

Every document served is the spec's `Usage`; errors are TMF `Error` documents. A POST creating
a record answers 201; a POST replaying a stored key answers 200 with the stored record.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# run time, and they name the dependencies `router(access)` was handed (local names).

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from bss_bridge import tmf_usage
from bss_bridge.api.access import Access
from bss_bridge.bridge import Bss
from bss_bridge.usage import STATES, UsageFilter, UsageLedger
from oss.auth import Principal
from oss.bounds import Int64, Moment
from oss.errors import InvalidInput, OssError
from oss.web.tmf import Fields, Limit, Offset, answer, paged, select_fields, tmf_error

BASE_PATH = tmf_usage.BASE_PATH


def router(access: Access) -> APIRouter:
    BssDep = Annotated[Bss, Depends(access.bss)]
    Viewer = Annotated[Principal, Depends(access.viewer)]
    Operator = Annotated[Principal, Depends(access.operator)]

    router = APIRouter(prefix=BASE_PATH, tags=["usage (TMF635)"])

    def get_ledger(bss: BssDep) -> UsageLedger:
        return bss.usage

    Ledger = Annotated[UsageLedger, Depends(get_ledger)]

    @router.post(
        "/usage",
        summary="Creates a Usage (idempotent by its `key` characteristic)",
        status_code=201,
        responses={200: {"description": "a replayed key: the stored record"}},
    )
    async def create_usage(
        ledger: Ledger,
        principal: Operator,
        request: Request,
        body: Annotated[Any, Body(description="TMF635 Usage_Create")],
    ) -> JSONResponse:
        try:
            row, created = await ledger.record(tmf_usage.from_tmf(body), actor=principal.actor)
        except OssError as exc:
            return tmf_error(request, exc)
        doc = tmf_usage.to_tmf(row)
        return JSONResponse(
            doc, status_code=201 if created else 200, headers={"Location": doc["href"]}
        )

    @router.get("/usage", summary="List or find Usage objects")
    async def list_usage(
        ledger: Ledger,
        _: Viewer,
        request: Request,
        response: Response,
        product: Annotated[str | None, Query(alias="ratedProductUsage.productRef.id")] = None,
        account: Annotated[str | None, Query(alias="relatedParty.id")] = None,
        status: Annotated[str | None, Query()] = None,
        since: Annotated[Moment | None, Query(alias="usageDate.gte")] = None,
        until: Annotated[Moment | None, Query(alias="usageDate.lt")] = None,
        fields: Fields = None,
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> Any:
        try:
            if status is not None and status not in STATES:
                raise InvalidInput(f"status: one of {', '.join(STATES)}")
            for name, moment in (("usageDate.gte", since), ("usageDate.lt", until)):
                if moment is not None and moment.tzinfo is None:
                    raise InvalidInput(f"{name}: needs a UTC offset (e.g. Z)")
            where = UsageFilter(
                product_id=product, account_id=account, state=status, since=since, until=until
            )
            rows, total = await ledger.find(where, limit=limit, offset=offset)
        except OssError as exc:
            return tmf_error(request, exc)
        return paged(response, [tmf_usage.to_tmf(r) for r in rows], total, fields)

    @router.get("/usage/{usage_id}", summary="Retrieves a Usage by id")
    async def get_usage(
        usage_id: Int64,
        ledger: Ledger,
        _: Viewer,
        request: Request,
        fields: Fields = None,
    ) -> Any:
        async def work() -> dict[str, Any]:
            return select_fields(tmf_usage.to_tmf(await ledger.get(usage_id)), fields)

        return await answer(request, work())

    return router

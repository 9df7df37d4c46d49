"""TMF638 Service Inventory (`service`, read-only) at the spec's basePath: every provisioned
service with its state as ServiceStateType, its parameters as characteristics, the customer as
related party and the product and billing account when an order made it
(see bss_bridge.tmf_services). Filters: `state` (a ServiceStateType), `relatedParty.id` (the
customer), `serviceType`; `offset`, `limit`, `fields`; headers X-Total-Count, X-Result-Count."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# run time, and they name the dependencies `router(access)` was handed (local names).

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from bss_bridge.api.access import Access
from bss_bridge.bridge import Bss
from oss import tmf
from oss.auth import Principal
from oss.web.tmf import Fields, Limit, Offset, answer, paged, select_fields


def router(access: Access) -> APIRouter:
    BssDep = Annotated[Bss, Depends(access.bss)]
    Viewer = Annotated[Principal, Depends(access.viewer)]

    router = APIRouter(
        prefix=tmf.spec(tmf.SERVICE_INVENTORY).base_path, tags=["service inventory (TMF638)"]
    )

    @router.get("/service", summary="List or find Service objects")
    async def list_services(
        bss: BssDep,
        _: Viewer,
        response: Response,
        state: Annotated[str | None, Query()] = None,
        customer: Annotated[str | None, Query(alias="relatedParty.id")] = None,
        service_type: Annotated[str | None, Query(alias="serviceType")] = None,
        fields: Fields = None,
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> list[dict[str, Any]]:
        docs, total = await bss.inventory.find(
            state=state, customer=customer, service_type=service_type, limit=limit, offset=offset
        )
        return paged(response, docs, total, fields)

    @router.get("/service/{ref}", summary="Retrieve a Service by id (or name)")
    async def get_service(
        ref: str, bss: BssDep, _: Viewer, request: Request, fields: Fields = None
    ) -> JSONResponse:
        async def work() -> dict[str, Any]:
            return select_fields(await bss.inventory.get(ref), fields)

        return await answer(request, work())

    return router

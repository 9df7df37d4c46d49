"""TMF622 Product Ordering (`productOrder`, `cancelProductOrder`) and the TMF641 service orders
the product orders became (`serviceOrder`, read-only), each at its spec's basePath.

- `POST .../productOrder`: a `ProductOrder_Create` body; 201 with the order (`acknowledged`),
  provisioned in the background. Header `Idempotency-Key`: a retried create with the same key
  and body answers 200 with the same order (`Idempotent-Replayed: true`); another body with the
  key is 409.
- `GET .../productOrder` (filters `state`, `billingAccount.id`; `offset`, `limit`, `fields`;
  headers X-Total-Count and X-Result-Count), `GET .../productOrder/{id}`.
- `GET .../productOrder/{id}/events`: the order's state changes, oldest first (our extension;
  the same changes go to MQTT as ProductOrderStateChangeEvent when enabled).
- `POST .../cancelProductOrder`: a `CancelProductOrder_Create` body. An order not yet started
  is cancelled at once (state `done`); a running one becomes `pendingCancellation` (state
  `inProgress`): its device transaction in flight finishes, then what it added is removed.
  A finished order: 409. `GET .../cancelProductOrder/{id}` (the id is the order's).
- `GET .../serviceOrder`, `GET .../serviceOrder/{id}`: TMF641 ServiceOrder per order item.

Errors are TMF `Error` documents that also carry the problem-document members.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# run time, and they name the dependencies `router(access)` was handed (local names).

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from bss_bridge.api.access import Access
from bss_bridge.bridge import Bss
from oss import tmf
from oss.auth import Principal
from oss.errors import OssError
from oss.web.tmf import Fields, Limit, Offset, answer, paged, select_fields, tmf_error

PRODUCT_BASE = tmf.spec(tmf.PRODUCT_ORDERING).base_path

SERVICE_BASE = tmf.spec(tmf.SERVICE_ORDERING).base_path


def router(access: Access) -> APIRouter:
    BssDep = Annotated[Bss, Depends(access.bss)]
    Viewer = Annotated[Principal, Depends(access.viewer)]
    Operator = Annotated[Principal, Depends(access.operator)]

    products = APIRouter(prefix=PRODUCT_BASE, tags=["product ordering (TMF622)"])

    services = APIRouter(prefix=SERVICE_BASE, tags=["service ordering (TMF641)"])

    @products.post(
        "/productOrder",
        status_code=201,
        summary="Create a ProductOrder",
        responses={200: {"description": "a retried Idempotency-Key: the same order"}},
    )
    async def create_order(
        bss: BssDep,
        who: Operator,
        request: Request,
        body: Annotated[Any, Body(description="TMF622 ProductOrder_Create")],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        try:
            doc, created = await bss.orders.create(
                body, actor=who.actor, idempotency_key=idempotency_key
            )
        except OssError as exc:
            return tmf_error(request, exc)
        headers = {"Location": doc["href"]}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(doc, status_code=201 if created else 200, headers=headers)

    @products.get("/productOrder", summary="List or find ProductOrder objects")
    async def list_orders(
        bss: BssDep,
        _: Viewer,
        response: Response,
        state: Annotated[str | None, Query()] = None,
        account: Annotated[str | None, Query(alias="billingAccount.id")] = None,
        fields: Fields = None,
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> list[dict[str, Any]]:
        docs, total = await bss.orders.find(
            state=state, account=account, limit=limit, offset=offset
        )
        return paged(response, docs, total, fields)

    @products.get("/productOrder/{order_id}", summary="Retrieve a ProductOrder by id")
    async def get_order(
        order_id: str, bss: BssDep, _: Viewer, request: Request, fields: Fields = None
    ) -> JSONResponse:
        async def work() -> dict[str, Any]:
            return select_fields(await bss.orders.get(order_id), fields)

        return await answer(request, work())

    @products.get("/productOrder/{order_id}/events", summary="The order's state changes")
    async def order_events(order_id: str, bss: BssDep, _: Viewer, request: Request) -> JSONResponse:
        return await answer(request, bss.orders.events(order_id))

    @products.post("/cancelProductOrder", status_code=201, summary="Cancel a ProductOrder")
    async def cancel_order(
        bss: BssDep,
        who: Operator,
        request: Request,
        body: Annotated[Any, Body(description="TMF622 CancelProductOrder_Create")],
    ) -> JSONResponse:
        async def work() -> dict[str, Any]:
            tmf.spec(tmf.PRODUCT_ORDERING).validate(body, "CancelProductOrder_Create")
            return await bss.orders.cancel(
                str(body["productOrder"]["id"]),
                reason=body.get("cancellationReason"),
                actor=who.actor,
            )

        return await answer(request, work(), status=201)

    @products.get("/cancelProductOrder/{order_id}", summary="Retrieve a CancelProductOrder")
    async def get_cancellation(
        order_id: str, bss: BssDep, _: Viewer, request: Request
    ) -> JSONResponse:
        return await answer(request, bss.orders.cancellation(order_id))

    @services.get("/serviceOrder", summary="List or find ServiceOrder objects")
    async def list_service_orders(
        bss: BssDep,
        _: Viewer,
        response: Response,
        state: Annotated[str | None, Query()] = None,
        fields: Fields = None,
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> list[dict[str, Any]]:
        docs, total = await bss.orders.service_orders(state=state, limit=limit, offset=offset)
        return paged(response, docs, total, fields)

    @services.get("/serviceOrder/{service_order_id}", summary="Retrieve a ServiceOrder by id")
    async def get_service_order(
        service_order_id: str, bss: BssDep, _: Viewer, request: Request, fields: Fields = None
    ) -> JSONResponse:
        async def work() -> dict[str, Any]:
            return select_fields(await bss.orders.service_order(service_order_id), fields)

        return await answer(request, work())

    router = APIRouter()

    router.include_router(products)

    router.include_router(services)

    return router

"""TMF678 Customer Bill Management at the spec's basePath: `customerBill` (list, get, patch to
issue) and `appliedCustomerBillingRate` (a bill's charge lines); and the bill run,
`POST /api/v1/bill-runs` (operator).

PATCH takes a `CustomerBill_Update` and allows one state transition: `new` -> `sent` (issue:
the bill gets its number and becomes immutable), once the bill's period has ended and a bill run
recomputed it after that (409 otherwise, naming the period and when it ends). Every other
attribute of a bill is computed by the bill run; an issued bill refuses every change (409).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# run time, and they name the dependencies `router(access)` was handed (local names).

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bss_bridge.api.access import Access
from bss_bridge.billing import DRAFT, ISSUED, BillRun
from bss_bridge.bridge import Bss
from bss_bridge.rating import MONTH_PATTERN
from bss_bridge.tmf_bills import BASE_PATH, SPEC, applied_rate, customer_bill
from oss.auth import Principal
from oss.bounds import Int64
from oss.errors import Conflict, InvalidInput, OssError
from oss.web.tmf import Fields, Limit, Offset, answer, paged, select_fields, tmf_error


class BillRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern=f"^{MONTH_PATTERN}$", description="the month, e.g. 2026-11")
    account: str | None = Field(default=None, description="one billing account; default all")


def router(access: Access) -> APIRouter:
    BssDep = Annotated[Bss, Depends(access.bss)]
    Viewer = Annotated[Principal, Depends(access.viewer)]
    Operator = Annotated[Principal, Depends(access.operator)]

    router = APIRouter(tags=["bills (TMF678)"])

    def get_billing(bss: BssDep) -> BillRun:
        billing: BillRun = bss.billing
        return billing

    Billing = Annotated[BillRun, Depends(get_billing)]

    @router.get(f"{BASE_PATH}/customerBill", summary="List or find CustomerBill objects")
    async def list_bills(
        billing: Billing,
        _: Viewer,
        response: Response,
        account: Annotated[str | None, Query(alias="billingAccount.id")] = None,
        state: Annotated[str | None, Query()] = None,
        period: Annotated[
            str | None,
            Query(
                pattern=f"^{MONTH_PATTERN}$",
                description="bills whose period starts in this month, e.g. 2026-11",
            ),
        ] = None,
        fields: Fields = None,
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> list[dict[str, Any]]:
        views, total = await billing.find(
            account=account, state=state, period=period, limit=limit, offset=offset
        )
        return paged(response, [customer_bill(v) for v in views], total, fields)

    @router.get(f"{BASE_PATH}/customerBill/{{bill_id}}", summary="Retrieve a CustomerBill by id")
    async def get_bill(
        bill_id: Int64,
        billing: Billing,
        _: Viewer,
        request: Request,
        fields: Fields = None,
    ) -> Any:
        async def work() -> dict[str, Any]:
            return select_fields(customer_bill(await billing.get(bill_id)), fields)

        return await answer(request, work())

    @router.patch(f"{BASE_PATH}/customerBill/{{bill_id}}", summary="Issue a CustomerBill")
    async def patch_bill(
        bill_id: Int64,
        billing: Billing,
        principal: Operator,
        request: Request,
        body: Annotated[dict[str, Any], Body(description="TMF678 CustomerBill_Update")],
    ) -> Any:
        try:
            SPEC.validate(body, "CustomerBill_Update")
            changes = {k: v for k, v in body.items() if k != "@type"}
            if set(changes) != {"state"}:
                raise InvalidInput(
                    "only the state can be changed, and only to sent (issue the bill); "
                    f"given: {', '.join(sorted(changes)) or 'nothing'}"
                )
            current = await billing.get(bill_id)
            if changes["state"] != ISSUED:
                raise InvalidInput(
                    f"a bill's state can only be set to {ISSUED} (from {DRAFT}), "
                    f"not {changes['state']}"
                )
            if current.bill.state != DRAFT:
                raise Conflict(
                    f"bill {bill_id} is {current.bill.state} ({current.bill.bill_no}): "
                    "an issued bill cannot change"
                )
            await billing.issue(bill_id, actor=principal.actor)
            return customer_bill(await billing.get(bill_id))
        except OssError as exc:
            return tmf_error(request, exc)

    @router.get(
        f"{BASE_PATH}/appliedCustomerBillingRate",
        summary="List or find AppliedCustomerBillingRate objects (a bill's charge lines)",
    )
    async def list_rates(
        billing: Billing,
        _: Viewer,
        response: Response,
        bill: Annotated[Int64 | None, Query(alias="bill.id")] = None,
        fields: Fields = None,
        offset: Offset = 0,
        limit: Limit = 100,
    ) -> list[dict[str, Any]]:
        rows, total = await billing.lines(bill_id=bill, limit=limit, offset=offset)
        return paged(response, [applied_rate(line, b) for line, b in rows], total, fields)

    @router.get(
        f"{BASE_PATH}/appliedCustomerBillingRate/{{rate_id}}",
        summary="Retrieve an AppliedCustomerBillingRate by id",
    )
    async def get_rate(
        rate_id: Int64,
        billing: Billing,
        _: Viewer,
        request: Request,
        fields: Fields = None,
    ) -> Any:
        async def work() -> dict[str, Any]:
            line, bill = await billing.line(rate_id)
            return select_fields(applied_rate(line, bill), fields)

        return await answer(request, work())

    @router.post("/api/v1/bill-runs", summary="Run the bill run for a period (and account)")
    async def run_bills(
        billing: Billing, principal: Operator, body: BillRunRequest
    ) -> JSONResponse:
        summaries = await billing.run(body.period, body.account, actor=principal.actor)
        return JSONResponse(
            {
                "period": body.period,
                "account": body.account,
                "bills": [s.to_json() for s in summaries],
            }
        )

    return router

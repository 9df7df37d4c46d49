"""Services and slices (`/api/v1/services`, `/api/v1/slices`) and the transactions that change
them (`/api/v1/transactions/{id}`). Every change to the network is one transaction; `?dry_run`
returns the per-device diffs instead, and `?wait=false` answers 202 at once with the
transaction to follow (its per-device progress is live at `/api/v1/transactions/{id}`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from oss.api.deps import DaemonDep, Operator, Viewer
from oss.bounds import Int64
from oss.daemon import Daemon
from oss.provisioning.services import STATES, ServiceManager, Started

router = APIRouter(prefix="/api/v1", tags=["services"])

DryRun = Annotated[bool, Query(description="return the per-device diffs; change nothing")]
Wait = Annotated[bool, Query(description="false: answer 202 once the transaction is journaled")]
# What a change answers besides its own status: a dry run (200) or ?wait=false (202).
CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the dry run's per-device diffs, or the finished change"},
    202: {"description": "?wait=false: the transaction is journaled; Location follows it"},
}


class ServiceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="a service type from configs/services (l3vpn, l2vpn, slice)")
    name: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    params: dict[str, Any] = Field(description="the type's parameters")


class ServiceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(description="a merge patch of the parameters (null resets)")


class SliceCreate(BaseModel):
    """A slice's parameters at the top level (see configs/services/slice.yaml)."""

    model_config = ConfigDict(extra="allow")
    name: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


async def _change(
    response: Response,
    work: Callable[[Started | None], Coroutine[Any, Any, dict[str, Any]]],
    services: ServiceManager,
    *,
    wait: bool,
) -> dict[str, Any]:
    if wait:
        return await work(None)
    started: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    def on_started(txn_id: int, service_id: int) -> None:
        if not started.done():
            started.set_result((txn_id, service_id))

    task = services.spawn(work(on_started))
    await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        refused: dict[str, Any] = task.result()  # raises: bad input, no placement...
        return refused
    txn_id, service_id = started.result()
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/api/v1/transactions/{txn_id}"
    return {"transaction_id": txn_id, "service_id": service_id, "state": "running"}


async def _create(
    type_name: str,
    params: dict[str, Any],
    name: str | None,
    daemon: Daemon,
    actor: str,
    response: Response,
    *,
    dry_run: bool,
    wait: bool,
) -> dict[str, Any]:
    services = daemon.services
    if dry_run:
        response.status_code = status.HTTP_200_OK
        return await services.create(type_name, params, actor=actor, dry_run=True)
    return await _change(
        response,
        lambda started: services.create(
            type_name, params, name=name, actor=actor, on_started=started
        ),
        services,
        wait=wait,
    )


@router.post("/services", status_code=status.HTTP_201_CREATED, responses=CHANGE_RESPONSES)
async def create_service(
    body: ServiceCreate,
    daemon: DaemonDep,
    who: Operator,
    response: Response,
    dry_run: DryRun = False,
    wait: Wait = True,
) -> dict[str, Any]:
    return await _create(
        body.type, body.params, body.name, daemon, who.actor, response, dry_run=dry_run, wait=wait
    )


@router.post("/slices", status_code=status.HTTP_201_CREATED, responses=CHANGE_RESPONSES)
async def create_slice(
    body: SliceCreate,
    daemon: DaemonDep,
    who: Operator,
    response: Response,
    dry_run: DryRun = False,
    wait: Wait = True,
) -> dict[str, Any]:
    params = body.model_dump(exclude={"name"})
    return await _create(
        "slice", params, body.name, daemon, who.actor, response, dry_run=dry_run, wait=wait
    )


@router.get("/services")
async def list_services(
    daemon: DaemonDep,
    _: Viewer,
    type: Annotated[str | None, Query(description="service type")] = None,
    customer: Annotated[str | None, Query()] = None,
    state: Annotated[str | None, Query(description=f"one of {', '.join(STATES)}")] = None,
) -> list[dict[str, Any]]:
    return await daemon.services.find(type=type, customer=customer, state=state)


@router.get("/slices")
async def list_slices(
    daemon: DaemonDep,
    _: Viewer,
    customer: Annotated[str | None, Query()] = None,
    state: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    return await daemon.services.find(type="slice", customer=customer, state=state)


@router.get("/services/{ref}")
@router.get("/slices/{ref}")
async def get_service(ref: str, daemon: DaemonDep, _: Viewer) -> dict[str, Any]:
    return await daemon.services.get(ref)


@router.patch("/services/{ref}", responses=CHANGE_RESPONSES)
@router.patch("/slices/{ref}", responses=CHANGE_RESPONSES)
async def modify_service(
    ref: str,
    body: ServiceUpdate,
    daemon: DaemonDep,
    who: Operator,
    response: Response,
    dry_run: DryRun = False,
    wait: Wait = True,
) -> dict[str, Any]:
    services = daemon.services
    if dry_run:
        return await services.modify(ref, body.params, actor=who.actor, dry_run=True)
    return await _change(
        response,
        lambda started: services.modify(ref, body.params, actor=who.actor, on_started=started),
        services,
        wait=wait,
    )


@router.delete("/services/{ref}", responses=CHANGE_RESPONSES)
@router.delete("/slices/{ref}", responses=CHANGE_RESPONSES)
async def delete_service(
    ref: str,
    daemon: DaemonDep,
    who: Operator,
    response: Response,
    dry_run: DryRun = False,
    wait: Wait = True,
) -> dict[str, Any]:
    services = daemon.services
    if dry_run:
        return await services.delete(ref, actor=who.actor, dry_run=True)
    return await _change(
        response,
        lambda started: services.delete(ref, actor=who.actor, on_started=started),
        services,
        wait=wait,
    )


@router.get("/services/{ref}/diff")
@router.get("/slices/{ref}/diff")
async def service_diff(ref: str, daemon: DaemonDep, _: Viewer) -> dict[str, Any]:
    """Drift: the running configuration of the service's devices against what it renders."""
    return await daemon.services.drift(ref)


@router.post("/services/{ref}/reconcile", responses=CHANGE_RESPONSES)
@router.post("/slices/{ref}/reconcile", responses=CHANGE_RESPONSES)
async def reconcile_service(
    ref: str, daemon: DaemonDep, who: Operator, response: Response, wait: Wait = True
) -> dict[str, Any]:
    services = daemon.services
    return await _change(
        response,
        lambda started: services.reconcile(ref, actor=who.actor, on_started=started),
        services,
        wait=wait,
    )


@router.get("/transactions/{txn_id}")
async def get_transaction(txn_id: Int64, daemon: DaemonDep, _: Viewer) -> dict[str, Any]:
    """A transaction with every device's state, steps and timings (live while it runs)."""
    return await daemon.services.transaction(txn_id)

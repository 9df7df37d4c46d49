"""The TMF642 Alarm Management `alarm` resource (list, get, patch to acknowledge or clear) at the
spec's basePath, and a server-sent-events stream of alarm changes for live views.

Documents are the spec's `Alarm` (see `oss.faults.documents.to_tmf`); a PATCH body must be a valid
`Alarm_Update` and may only acknowledge (`ackState: acknowledged`) and/or clear
(`state: cleared`): every other attribute belongs to the alarm's source. The acknowledging
user is the token's principal, whatever the body says.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from oss.api.deps import DaemonDep, Operator, Viewer
from oss.api.sse import STREAM_RESPONSES, event_stream
from oss.bounds import Int64
from oss.errors import InvalidInput, OssError
from oss.faults import tmf_schema
from oss.faults.alarms import AlarmFilter, AlarmManager
from oss.faults.reducer import FeedEvent
from oss.web.tmf import Fields, Limit, Offset, paged, select_fields, tmf_error

BASE_PATH = "/tmf-api/alarm/v4"
_PATCHABLE = {"ackState": {"acknowledged"}, "state": {"cleared"}}

router = APIRouter(prefix=BASE_PATH, tags=["alarms (TMF642)"])


def get_alarms(daemon: DaemonDep) -> AlarmManager:
    return daemon.alarms


Alarms = Annotated[AlarmManager, Depends(get_alarms)]


@router.get("/alarm", summary="List or find Alarm objects")
async def list_alarms(
    alarms: Alarms,
    _: Viewer,
    response: Response,
    perceived_severity: Annotated[str | None, Query(alias="perceivedSeverity")] = None,
    state: Annotated[str | None, Query()] = None,
    ack_state: Annotated[str | None, Query(alias="ackState")] = None,
    alarmed_object: Annotated[str | None, Query(alias="alarmedObject.id")] = None,
    alarmed_object_type: Annotated[str | None, Query(alias="alarmedObjectType")] = None,
    is_root_cause: Annotated[bool | None, Query(alias="isRootCause")] = None,
    fields: Fields = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    where = AlarmFilter(
        perceived_severity=perceived_severity,
        state=state,
        ack_state=ack_state,
        alarmed_object=alarmed_object,
        alarmed_object_type=alarmed_object_type,
        is_root_cause=is_root_cause,
    )
    docs, total = await alarms.find(where, limit=limit, offset=offset)
    return paged(response, docs, total, fields)


@router.get(
    "/alarm/stream",
    summary="Alarm changes as server-sent events",
    response_class=StreamingResponse,
    responses=STREAM_RESPONSES,
)
async def stream_alarms(alarms: Alarms, _: Viewer, request: Request) -> StreamingResponse:
    return event_stream(alarms.broadcast, request, _event)


def _event(change: tuple[FeedEvent, dict[str, Any]]) -> str:
    event, doc = change
    data = json.dumps(doc, separators=(",", ":"))
    return f"id: {doc['id']}.{doc['sequence']}\nevent: {event}\ndata: {data}\n\n"


@router.get("/alarm/{alarm_id}", summary="Retrieve an Alarm by id")
async def get_alarm(
    alarm_id: Int64,
    alarms: Alarms,
    _: Viewer,
    request: Request,
    fields: Fields = None,
) -> Any:
    try:
        return select_fields(await alarms.get(alarm_id), fields)
    except OssError as exc:
        return tmf_error(request, exc)


@router.patch("/alarm/{alarm_id}", summary="Acknowledge or clear an Alarm")
async def patch_alarm(
    alarm_id: Int64,
    alarms: Alarms,
    who: Operator,
    request: Request,
    body: Annotated[dict[str, Any], Body(description="TMF642 Alarm_Update")],
) -> JSONResponse:
    try:
        return JSONResponse(await _patch(alarm_id, alarms, who.actor, body))
    except OssError as exc:
        return tmf_error(request, exc)


async def _patch(
    alarm_id: int, alarms: AlarmManager, actor: str, body: dict[str, Any]
) -> dict[str, Any]:
    tmf_schema.validate(body, "Alarm_Update")
    changes = {k: v for k, v in body.items() if k not in ("ackUserId", "@type")}
    if not changes:
        raise InvalidInput("nothing to change: give ackState=acknowledged or state=cleared")
    for key, value in changes.items():
        allowed = _PATCHABLE.get(key)
        if allowed is None:
            raise InvalidInput(f"{key} cannot be changed here; only ackState and state can")
        if value not in allowed:
            raise InvalidInput(f"{key} can only be set to {', '.join(sorted(allowed))}")
    if "ackState" in changes:
        await alarms.acknowledge(alarm_id, actor)
    if "state" in changes:
        await alarms.clear(alarm_id, actor)
    return await alarms.get(alarm_id)

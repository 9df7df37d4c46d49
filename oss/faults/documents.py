"""The TMF642 `Alarm` document of an alarm (an ORM row or a store `PlainAlarm`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

HREF_BASE = "/tmf-api/alarm/v4/alarm"

# Which object types the graph or the service inventory can point at (alarmedObject.href).
_OBJECT_HREFS = {
    "device": "/api/v1/devices/{}",
    "link": "/api/v1/links/{}",
    "service": "/api/v1/services/{}",
}


def to_tmf(row: Any, children: Sequence[int] = (), *, href_base: str = HREF_BASE) -> dict[str, Any]:
    """The TMF642 `Alarm` document of an alarm with the `alarms` columns as attributes (an
    `AlarmRow`, a `PlainAlarm`). `children`: ids of the alarms correlated under it.

    The spec's schemas allow additional properties; `count` and `sequence` (what consumers
    de-duplicate on) travel as such. Absent values are left out rather than sent as null,
    because the spec types them as plain strings.
    """
    alarm_id = row.id
    object_type = row.alarmed_object_type
    alarmed: dict[str, Any] = {"id": row.alarmed_object, "@referredType": object_type}
    template = _OBJECT_HREFS.get(object_type)
    if template is not None:
        alarmed["href"] = template.format(row.alarmed_object)
    parent = row.parent_id
    doc: dict[str, Any] = {
        "id": alarm_id,
        "href": f"{href_base}/{alarm_id}",
        "@type": "Alarm",
        "alarmType": row.alarm_type,
        "perceivedSeverity": row.perceived_severity,
        "probableCause": row.probable_cause,
        "specificProblem": row.specific_problem,
        "alarmedObject": alarmed,
        "alarmedObjectType": object_type,
        "state": row.state,
        "ackState": row.ack_state,
        "alarmRaisedTime": _iso(row.raised_time),
        "alarmChangedTime": _iso(row.changed_time),
        "serviceAffecting": bool(row.service_affecting),
        "affectedService": [_service_ref(s) for s in row.affected_services or []],
        "correlatedAlarm": [_alarm_ref(i, href_base) for i in children],
        "parentAlarm": [] if parent is None else [_alarm_ref(parent, href_base)],
        "isRootCause": bool(row.is_root_cause),
        "count": row.count,
        "sequence": row.sequence,
        "reductionKey": row.reduction_key,
    }
    if row.ack_user_id is not None:
        doc["ackUserId"] = row.ack_user_id
    if row.cleared_time is not None:
        doc["alarmClearedTime"] = _iso(row.cleared_time)
    if row.impact:
        doc["impact"] = row.impact
    details = dict(row.details or {})
    clear_user = details.pop("clearUserId", None)
    if clear_user is not None:
        doc["clearUserId"] = str(clear_user)
    if details:
        doc["alarmDetails"] = ", ".join(f"{k}={v}" for k, v in sorted(details.items()))
    return doc


def _alarm_ref(alarm_id: int, href_base: str) -> dict[str, str]:
    return {"id": str(alarm_id), "href": f"{href_base}/{alarm_id}", "@referredType": "Alarm"}


def _service_ref(service: Mapping[str, Any]) -> dict[str, Any]:
    ref: dict[str, Any] = {"id": str(service.get("name", service.get("id"))), "@type": "Service"}
    if "id" in service:
        ref["href"] = f"/api/v1/services/{service['id']}"
    return ref


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

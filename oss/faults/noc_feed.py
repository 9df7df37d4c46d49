"""The NOC feed: alarm changes as MQTT messages in the outbox, written in the alarm's transaction.

`NocFeed` turns alarm changes into outbox messages inside the caller's transaction, so the
alarm and its messages commit (or roll back) together; `oss.store.outbox.Outbox` writes them
and hands them to the publisher once committed (`oss.outputs.mqtt_outbox.NocPublisher`, which
sends them in id order with QoS 1). Consumers de-duplicate by alarm `id` and `sequence`, both
in every payload. Topics (`oss.outputs.mqtt_topics`):

    <prefix>/alarms/<severity>/<device>/<alarm-id>   the alarm's current TMF642 JSON, retained
    <prefix>/events/<event>/<device>/<alarm-id>      the same JSON for raised|changed|cleared

The device is `alarm["device"]` when the alarm carries that key, otherwise the part of
`alarm["alarmedObject"]["id"]` before the first ":" ("r1:eth1" -> "r1"). Exactly one retained
message exists per open alarm: a severity change deletes the retained message at the old
severity's topic (zero-length retained publish); a cleared alarm is closed, so its retained
message is deleted and only the "cleared" event carries its final state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import Connection

from oss.errors import InvalidInput
from oss.outputs.mqtt_topics import alarm_topics
from oss.settings import NocFeedSettings
from oss.store.outbox import Message, Outbox, OutboxMessage, last_retained

AlarmEvent = Literal["raised", "changed", "cleared"]


def alarm_device(alarm: Mapping[str, Any]) -> str:
    device = alarm.get("device")
    if device:
        return str(device)
    alarmed = alarm.get("alarmedObject") or {}
    object_id = str(alarmed.get("id", "")) if isinstance(alarmed, Mapping) else ""
    if not object_id:
        raise InvalidInput("alarm has neither 'device' nor 'alarmedObject.id'")
    return object_id.split(":", 1)[0]


class NocFeed:
    """Writes the MQTT messages of alarm changes into the outbox (the alarm manager's side).
    `outbox` hands them to the publisher once committed (without one they wait in the table
    for the publisher's next read)."""

    def __init__(self, settings: NocFeedSettings, outbox: Outbox | None = None) -> None:
        self.prefix = settings.prefix
        self.outbox = outbox or Outbox()

    def write_changes(
        self, conn: Connection, changes: Sequence[tuple[Mapping[str, Any], AlarmEvent]]
    ) -> list[OutboxMessage]:
        """The messages of many alarm changes, in order, written in the connection's
        transaction (the alarm manager's: `Database.write` on the storm path, the session's
        connection when the correlator acts), which calls `committed` with the result once
        that transaction committed. One look-up of the alarms' last retained topics (chunked)
        and one bulk insert: a batch costs a few statements, not a few per alarm; the rows
        are inserted at once, so a later call in the same transaction sees them."""
        return self.outbox.write(conn, self._messages(conn, changes))

    def committed(self, written: Sequence[OutboxMessage]) -> None:
        """After `write_changes` committed: the rows go to the publisher."""
        self.outbox.committed(written)

    def _messages(
        self, conn: Connection, changes: Sequence[tuple[Mapping[str, Any], AlarmEvent]]
    ) -> list[Message]:
        planned = [self._plan(alarm, event) for alarm, event in changes]  # all valid, or none
        if not planned:
            return []
        found = last_retained(conn, sorted(_lookup_topics(planned)))
        return _outbox_rows(planned, found)

    def _plan(self, alarm: Mapping[str, Any], event: AlarmEvent) -> _Planned:
        try:
            alarm_id = str(alarm["id"])
            severity = str(alarm["perceivedSeverity"]).lower()
            int(alarm["sequence"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"alarm for the NOC feed lacks a valid {exc}") from None
        device = alarm_device(alarm)
        topics = alarm_topics(self.prefix, severity, event, device, alarm_id)
        return _Planned(
            device=device,
            alarm_id=alarm_id,
            state_topic=topics.state,
            event_topic=topics.event,
            candidates=topics.retained,
            payload=payload(alarm),
            closed=event == "cleared" or str(alarm.get("state", "")).lower() == "cleared",
            # Sequence 1: never published before (it moves on with each change sent), so
            # nothing of it is retained, even when its first message is a "cleared".
            new=event == "raised" or int(alarm["sequence"]) == 1,
        )


# Sorted keys, no blanks, str() of what JSON has no type for: `json.dumps(alarm, sort_keys=True,
# separators=(",", ":"), default=str)`'s text (non-ASCII as UTF-8 rather than \u escapes), in a
# tenth of its time (orjson: ~6 us against ~60 us per alarm here; a storm batch has hundreds).
_PAYLOAD = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def payload(alarm: Mapping[str, Any]) -> str:
    """An alarm's message payload: its JSON, keys sorted."""
    return orjson.dumps(alarm, default=str, option=_PAYLOAD).decode()


class NoFeed:
    """No NOC feed configured: alarms are kept and served, nothing is queued for MQTT."""

    def write_changes(self, conn: Connection, changes: Sequence[Any]) -> None:
        return None

    def committed(self, written: None) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Planned:
    """One alarm change, ready for the outbox."""

    device: str
    alarm_id: str
    state_topic: str
    event_topic: str
    candidates: frozenset[str]  # every topic a retained message of this alarm can live at
    payload: str
    closed: bool
    new: bool


def _stale_topics(p: _Planned, last: tuple[str, str] | None) -> list[str]:
    """Retained topics of this alarm that must be emptied before (or instead of) its new
    state. The outbox is the memory of what was retained last (`last`: its newest retained row
    among the alarm's topics, this transaction's own rows included)."""
    if last is None:
        # No history: a new alarm has nothing retained; for an older one the rows were
        # pruned, so empty every other severity's topic rather than leave a stale one.
        if p.new:
            return []
        return sorted(t for t in p.candidates if p.closed or t != p.state_topic)
    topic, last_payload = last
    if last_payload == "":
        return []
    return [topic] if p.closed or topic != p.state_topic else []


def _lookup_topics(planned: Sequence[_Planned]) -> set[str]:
    """The topics whose last retained message matters: a new alarm has nothing retained."""
    return {t for p in planned if not p.new for t in p.candidates}


def _outbox_rows(
    planned: Sequence[_Planned], last: Mapping[str, tuple[int, str, str]]
) -> list[Message]:
    """The rows of the planned changes, in order, given the last retained row of each looked
    up topic (`last`)."""
    # The last retained message (topic, payload) of each alarm, carried through the changes
    # (an alarm may change more than once in one call).
    latest: dict[tuple[str, str], tuple[str, str] | None] = {}
    rows: list[Message] = []
    for p in planned:
        key = (p.device, p.alarm_id)
        if key not in latest:
            found = [last[t] for t in p.candidates if t in last]
            latest[key] = max(found)[1:] if found else None  # the newest row: highest id
        stale = _stale_topics(p, latest[key])
        retained = [Message(t, "", retain=True) for t in stale]
        if not p.closed:
            retained.append(Message(p.state_topic, p.payload, retain=True))
        if retained:
            latest[key] = (retained[-1].topic, retained[-1].payload)
        rows += retained
        rows.append(Message(p.event_topic, p.payload))
    return rows

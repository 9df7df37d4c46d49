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
from typing import Any, Literal, NamedTuple

import orjson
from sqlalchemy import Connection

from oss.errors import InvalidInput
from oss.outputs.mqtt_topics import alarm_topics
from oss.settings import NocFeedSettings
from oss.store.outbox import Message, Outbox, OutboxMessage, last_retained, newest_id

AlarmEvent = Literal["raised", "changed", "cleared"]
AlarmKey = tuple[str, str]  # (device, alarm id)
Retained = tuple[str, bool]  # an alarm's last retained message: (topic, deleted)
REMEMBERED_ALARMS = 100_000  # the feed's memory of open alarms' retained topics, at most


class FeedWrite(NamedTuple):
    """What `write_changes` wrote (handed to `committed` once its transaction committed): the
    outbox rows, and each alarm's last retained message with whether it closed."""

    rows: list[OutboxMessage]
    retained: dict[AlarmKey, tuple[Retained | None, bool]]


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

    def __init__(
        self, settings: NocFeedSettings, outbox: Outbox | None = None, *, shared: bool = False
    ) -> None:
        self.prefix = settings.prefix
        self.outbox = outbox or Outbox()
        # Cluster mode: other instances write alarm changes too, so the memory below holds only
        # while the newest outbox row is still this feed's last one (checked under the alarm
        # lock, which orders every instance's alarm transactions; see `_check_memory`).
        self.shared = shared
        self._newest_written = -1
        # The outbox's last retained message of each open alarm this feed wrote, as committed:
        # a storm's next change of the alarm needs no look-up (the look-up reads every retained
        # row of the alarm's topics). Only what committed; an alarm written by a transaction
        # not known to have committed (`_unsettled`: it rolled back, or is still open) is read
        # from the outbox, which is the truth.
        self._retained: dict[AlarmKey, Retained] = {}
        self._unsettled: set[AlarmKey] = set()

    def write_changes(
        self, conn: Connection, changes: Sequence[tuple[Mapping[str, Any], AlarmEvent]]
    ) -> FeedWrite:
        """The messages of many alarm changes, in order, written in the connection's
        transaction (the alarm manager's: `Database.write` on the storm path, the session's
        connection when the correlator acts), which calls `committed` with the result once
        that transaction committed. One look-up of the last retained topics of the alarms
        not remembered (chunked) and one bulk insert: a batch costs a few statements, not a
        few per alarm; the rows are inserted at once, so a later call in the same
        transaction sees them."""
        planned = [self._plan(alarm, event) for alarm, event in changes]  # all valid, or none
        if not planned:
            return FeedWrite([], {})
        newest = self._check_memory(conn)
        known = {
            key: last
            for p in planned
            if (key := (p.device, p.alarm_id)) not in self._unsettled
            and (last := self._retained.get(key)) is not None
        }
        found = last_retained(conn, sorted(_lookup_topics(planned, known)))
        messages, retained = _outbox_rows(planned, found, known)
        written = FeedWrite(self.outbox.write(conn, messages), retained)
        self._unsettled.update(retained)
        if self.shared:
            self._newest_written = written.rows[-1][0] if written.rows else newest
        return written

    def _check_memory(self, conn: Connection) -> int:
        """Cluster mode: forget the remembered retained topics when a row this feed did not
        write came after its last one (another instance changed alarms: their retained
        topics may have moved). The caller holds the alarm lock, so no other instance's alarm
        rows can appear until it commits. Returns the newest id seen (-1: not shared)."""
        if not self.shared:
            return -1
        newest = newest_id(conn)
        if newest != self._newest_written:
            self._retained.clear()
        return newest

    def committed(self, written: FeedWrite) -> None:
        """After `write_changes` committed: the rows go to the publisher."""
        remembered = self._retained
        if len(remembered) > REMEMBERED_ALARMS:
            remembered.clear()  # read from the outbox again
        for key, (last, closed) in written.retained.items():
            self._unsettled.discard(key)
            if closed:
                remembered.pop(key, None)  # a closed alarm rarely changes again
            elif last is not None:
                remembered[key] = last
        self.outbox.committed(written.rows)

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


def _stale_topics(p: _Planned, last: Retained | None) -> list[str]:
    """Retained topics of this alarm that must be emptied before (or instead of) its new
    state. The outbox is the memory of what was retained last (`last`: its newest retained row
    among the alarm's topics, this transaction's own rows included)."""
    if last is None:
        # No history: a new alarm has nothing retained; for an older one the rows were
        # pruned, so empty every other severity's topic rather than leave a stale one.
        if p.new:
            return []
        return sorted(t for t in p.candidates if p.closed or t != p.state_topic)
    topic, deleted = last
    if deleted:
        return []
    return [topic] if p.closed or topic != p.state_topic else []


def _lookup_topics(planned: Sequence[_Planned], known: Mapping[AlarmKey, Retained]) -> set[str]:
    """The topics whose last retained message matters and is not `known`: a new alarm has
    nothing retained."""
    return {
        t
        for p in planned
        if not p.new and (p.device, p.alarm_id) not in known
        for t in p.candidates
    }


def _outbox_rows(
    planned: Sequence[_Planned],
    last: Mapping[str, tuple[int, str, str]],
    known: Mapping[AlarmKey, Retained],
) -> tuple[list[Message], dict[AlarmKey, tuple[Retained | None, bool]]]:
    """The rows of the planned changes, in order, given the last retained row of each looked
    up topic (`last`) and of the alarms `known`; and each alarm's last retained message after
    them, with whether its last change closed it."""
    # The last retained message (topic, deleted) of each alarm, carried through the changes
    # (an alarm may change more than once in one call).
    latest: dict[AlarmKey, Retained | None] = {}
    closed: dict[AlarmKey, bool] = {}
    rows: list[Message] = []
    for p in planned:
        key = (p.device, p.alarm_id)
        if key not in latest:
            if key in known:
                latest[key] = known[key]
            else:
                found = [last[t] for t in p.candidates if t in last]
                newest = max(found) if found else None  # the newest row: highest id
                latest[key] = None if newest is None else (newest[1], newest[2] == "")
        stale = _stale_topics(p, latest[key])
        retained = [Message(t, "", retain=True) for t in stale]
        if not p.closed:
            retained.append(Message(p.state_topic, p.payload, retain=True))
        if retained:
            latest[key] = (retained[-1].topic, retained[-1].payload == "")
        closed[key] = p.closed
        rows += retained
        rows.append(Message(p.event_topic, p.payload))
    return rows, {key: (latest[key], closed[key]) for key in latest}

"""Alarm changes of a batch no correlation acts on, on plain rows with Core statements.

A trap storm is mostly signals the correlator leaves alone (no link or device in the inventory
to attach them to). For such a batch the alarm manager skips the ORM: the open alarms of the
batch's keys are read as plain rows, the folded runs (`oss.faults.alarms._Runs`) change them in
memory, and the transaction ends in a few statements whatever the batch's size: one look-up
per 500 keys, one insert of the new alarms, one update of the others, the children of the
changed ones, then the NOC feed's rows. It runs on a synchronous connection
(`Database.write`: on SQLite one hand-over to a worker thread for the whole transaction). The
alarms end exactly as `AlarmTx` would leave them, and the feed hears each changed alarm once,
in its final state (tests compare both paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update

from oss.faults.alarms import (
    CHILDREN,
    FeedEvent,
    PlainLaneFeed,
    Run,
    by_parent,
    moment,
    stronger,
    tmf_document,
)
from oss.store.base import IN_CHUNK
from oss.store.numbering import insert_numbered
from oss.store.tables import AlarmRow

_TABLE = cast(Table, AlarmRow.__table__)
# What a change of an existing alarm can touch here (an UPDATE sets them all).
_CHANGING = (
    "open",
    "state",
    "perceived_severity",
    "changed_time",
    "cleared_time",
    "count",
    "sequence",
    "details",
)
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values({name: bindparam(f"new_{name}") for name in _CHANGING})
)

Row = dict[str, Any]


def apply_uncorrelated(
    conn: Connection, runs: Sequence[Run], feed: PlainLaneFeed, href_base: str
) -> tuple[list[tuple[FeedEvent, dict[str, Any]]], Any]:
    """Apply the runs (in order) in the caller's transaction: the alarm changes, as sent to
    the feed, and what the feed wrote (for its `committed`)."""
    if not runs:
        return [], feed.write_changes(conn, [])
    open_rows = _open_rows(conn, {run.last.reduction_key for run in runs})
    changed: dict[int, tuple[Row, FeedEvent]] = {}  # by id() of the row dict
    new: list[Row] = []

    def mark(row: Row, event: FeedEvent) -> None:
        previous = changed.get(id(row))
        changed[id(row)] = (row, event if previous is None else stronger(previous[1], event))

    for run in runs:
        s = run.last
        stack = open_rows.setdefault(s.reduction_key, [])  # open alarms of the key, oldest first
        row = stack[-1] if stack else None
        when = moment(s.time_ns)
        if run.kind == "raise":
            details = s.details if run.details is None else run.details
            if row is not None:
                row["count"] += run.count
                row["perceived_severity"] = s.severity
                row["changed_time"] = when
                row["state"] = "updated"
                if details:
                    row["details"] = {**(row["details"] or {}), **details}
                mark(row, "changed")
                continue
            row = {
                "reduction_key": s.reduction_key,
                "open": True,
                "alarm_type": s.alarm_type,
                "perceived_severity": s.severity,
                "probable_cause": s.probable_cause,
                "specific_problem": s.specific_problem,
                "alarmed_object_type": s.object_type,
                "alarmed_object": s.object,
                "state": "raised" if run.count == 1 else "updated",
                "ack_state": "unacknowledged",
                "ack_user_id": None,
                "raised_time": moment(run.first_ns),
                "changed_time": when,
                "cleared_time": None,
                "service_affecting": False,
                "affected_services": [],
                "impact": None,
                "parent_id": None,
                "is_root_cause": False,
                "count": run.count,
                "sequence": 1,
                "details": dict(details) or None,
            }
            new.append(row)
            stack.append(row)
            mark(row, "raised")
        elif row is not None:
            stack.pop()  # the newest open alarm of the key; an older one stays open
            row["open"] = False
            row["state"] = "cleared"
            row["perceived_severity"] = "cleared"
            row["cleared_time"] = when
            row["changed_time"] = when
            mark(row, "cleared")

    ids = insert_numbered(conn, AlarmRow, new)
    for row, row_id in zip(new, ids, strict=True):
        row["id"] = row_id
    created = {id(row) for row in new}
    updated = [row for key, (row, _) in changed.items() if key not in created]
    for row in updated:
        row["sequence"] += 1  # a new alarm goes out with sequence 1
    if updated:
        conn.execute(
            _UPDATE,
            [
                {"row_id": row["id"], **{f"new_{name}": row[name] for name in _CHANGING}}
                for row in updated
            ],
        )
    children: dict[int, list[int]] = {}
    if updated:
        children = by_parent(conn.execute(CHILDREN, {"ids": [row["id"] for row in updated]}))
    published = [
        (event, tmf_document(row, children.get(row["id"], ()), href_base))
        for row, event in changed.values()
    ]
    return published, feed.write_changes(conn, [(doc, event) for event, doc in published])


# Built once: a statement made per batch costs more to construct and key than to run.
_OPEN_ROWS = (
    select(_TABLE)
    .where(_TABLE.c.reduction_key.in_(bindparam("keys", expanding=True)), _TABLE.c.open)
    .order_by(_TABLE.c.id)
)


def _open_rows(conn: Connection, keys: set[str]) -> dict[str, list[Row]]:
    """The open alarms of each key, oldest first (normally one at most)."""
    ordered = sorted(keys)
    found: dict[str, list[Row]] = {}
    for start in range(0, len(ordered), IN_CHUNK):
        chunk = ordered[start : start + IN_CHUNK]
        for row in conn.execute(_OPEN_ROWS, {"keys": chunk}).mappings():
            found.setdefault(row["reduction_key"], []).append(dict(row))
    return found

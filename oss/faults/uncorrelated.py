"""Alarm changes of a batch no correlation acts on: the storm path, on plain rows.

A trap storm is mostly signals the correlator leaves alone (no link or device in the inventory
to attach them to). For such a batch the alarm manager skips the ORM: the open alarms of the
batch's keys are read as plain rows, the folded runs change them with the same state machine
as the correlated path (`oss.faults.reducer`), and the store writes them back in a few
statements whatever the batch's size (`oss.store.alarm_rows`). It runs on a synchronous
connection (`Database.write`: on SQLite one hand-over to a worker thread for the whole
transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from oss.faults.documents import to_tmf
from oss.faults.reducer import FeedEvent, Reduction, Run
from oss.store.alarm_rows import (
    PlainAlarm,
    children_of,
    insert_alarms,
    open_alarms,
    update_alarms,
)


def apply_uncorrelated(
    conn: Connection, runs: Sequence[Run], href_base: str
) -> list[tuple[FeedEvent, dict[str, Any]]]:
    """Apply the runs (in order) in the caller's transaction; the alarm changes, rendered."""
    if not runs:
        return []
    reduction = Reduction(lambda columns: PlainAlarm(**columns))
    reduction.open = open_alarms(conn, {run.last.reduction_key for run in runs})
    for run in runs:
        reduction.apply(run)
    settled = reduction.settle()
    # Updates first: a cleared alarm leaves its reduction key before a new one of the same key
    # is inserted (one open alarm per key is a unique index, ux_alarms_open_key).
    updated = [c.alarm for c in settled if not c.new]
    update_alarms(conn, updated)
    insert_alarms(conn, [c.alarm for c in settled if c.new])
    children = children_of(conn, [a.id for a in updated if a.id is not None])
    return [
        (c.event, to_tmf(c.alarm, children.get(c.alarm.id or 0, ()), href_base=href_base))
        for c in settled
    ]

"""Cluster-wide locks for the alarms, behind a named function (PostgreSQL advisory locks).

Several instances write alarms into one database. The partial unique index
`ux_alarms_open_key` is the database's guarantee of one open alarm per reduction key; the lock
here makes the alarm transactions of every instance take turns, so that reduction (read the
key's open alarm, then raise, count or clear it) and correlation (root cause, children) see
one order across the cluster, as they do within one process under `AlarmManager`'s lock.

A transaction-level lock: released by the server at commit or rollback, and with the session
if the instance dies. SQLite has one writer at a time already: nothing to take there.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# The advisory lock's key (one bigint, the bytes of "oss:alrm"): each lock module of the store
# names its own keys; PostgreSQL's one-bigint and two-int4 key spaces do not overlap.
ALARMS_KEY = int.from_bytes(b"oss:alrm", "big") >> 1  # shifted: a positive bigint

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def lock_alarms(conn: Connection) -> None:
    """Wait for the alarms' turn, held until the caller's transaction ends (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"key": ALARMS_KEY})

"""Leases, members and device shares (cluster mode, PostgreSQL): every statement the cluster's
coordination makes, as named functions on a Core connection.

A lease is one row of `cluster_leases`; its times are the database's clock
(`clock_timestamp()`), so instances never compare their own clocks. Acquiring moves the token
on; renewing keeps it; a holder's writes carry it (`oss.store.fencing`). These functions run
through `Database.write(fn, fenced=False)`: the bookkeeping of a lease is not fenced by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Table, delete, select, text

from oss.store.base import in_chunks
from oss.store.tables import ClusterMemberRow, DeviceShareRow

MEMBER_PREFIX = "member:"

# The same holder re-acquiring (a restart under the same instance name) gets a new token at
# once: whatever its previous incarnation still holds is stale from that moment.
_ACQUIRE = text(
    """
    INSERT INTO cluster_leases (name, holder, token, acquired_at, renewed_at, expires_at)
    VALUES (:name, :holder, 1, clock_timestamp(), clock_timestamp(),
            clock_timestamp() + make_interval(secs => :lease_s))
    ON CONFLICT (name) DO UPDATE SET
        holder = excluded.holder,
        token = cluster_leases.token + 1,
        acquired_at = excluded.acquired_at,
        renewed_at = excluded.renewed_at,
        expires_at = excluded.expires_at
    WHERE cluster_leases.expires_at <= clock_timestamp()
       OR cluster_leases.holder = excluded.holder
    RETURNING token
    """
)
# A takeover waits for the transactions still fenced by the lease (oss_fence holds the row FOR
# KEY SHARE until they end); a renewal, an UPDATE of no key, does not.
_LOCK = text("SELECT 1 FROM cluster_leases WHERE name = :name FOR UPDATE")
_RENEW = text(
    """
    UPDATE cluster_leases
       SET renewed_at = clock_timestamp(),
           expires_at = clock_timestamp() + make_interval(secs => :lease_s)
     WHERE name = :name AND holder = :holder AND token = :token
       AND expires_at > clock_timestamp()
    """
)
_RELEASE = text(
    """
    UPDATE cluster_leases SET expires_at = clock_timestamp()
     WHERE name = :name AND holder = :holder AND token = :token
    """
)
_ALL = text(
    """
    SELECT name, holder, token,
           EXTRACT(EPOCH FROM clock_timestamp() - renewed_at) AS age_s,
           EXTRACT(EPOCH FROM expires_at - clock_timestamp()) AS expires_in_s
      FROM cluster_leases ORDER BY name
    """
)
_LIVE_MEMBERS = text(
    """
    SELECT holder FROM cluster_leases
     WHERE name LIKE 'member:%' AND expires_at > clock_timestamp()
    """
)
_REGISTER = text(
    """
    INSERT INTO cluster_members (instance, api_url, pid, version, started_at)
    VALUES (:instance, :api_url, :pid, :version, clock_timestamp())
    ON CONFLICT (instance) DO UPDATE SET
        api_url = excluded.api_url, pid = excluded.pid, version = excluded.version,
        started_at = excluded.started_at
    """
)
_ASSIGN = text(
    """
    INSERT INTO device_shares (device, instance, assigned_at, leader_token)
    VALUES (:device, :instance, clock_timestamp(), :leader_token)
    ON CONFLICT (device) DO UPDATE SET
        instance = excluded.instance, assigned_at = excluded.assigned_at,
        leader_token = excluded.leader_token
    """
)


@dataclass(frozen=True)
class Lease:
    """A lease as the database sees it now."""

    name: str
    holder: str
    token: int
    age_s: float  # since it was last renewed (or acquired)
    expires_in_s: float  # negative: expired that long ago

    @property
    def live(self) -> bool:
        return self.expires_in_s > 0


@dataclass(frozen=True)
class Member:
    instance: str
    api_url: str | None
    pid: int
    version: str
    started_at: datetime


def member_lease(instance: str) -> str:
    return f"{MEMBER_PREFIX}{instance}"


def acquire(conn: Connection, name: str, holder: str, lease_s: float) -> int | None:
    """Take the lease `name` for `holder` for `lease_s` seconds: its new token, or None while
    another holder's lease has not expired. Waits for the transactions still fenced by it."""
    conn.execute(_LOCK, {"name": name})
    row = conn.execute(_ACQUIRE, {"name": name, "holder": holder, "lease_s": lease_s}).first()
    return None if row is None else int(row[0])


def renew(conn: Connection, name: str, holder: str, token: int, lease_s: float) -> bool:
    """Extend a held lease; False when it is lost (expired, or taken with a newer token)."""
    params = {"name": name, "holder": holder, "token": token, "lease_s": lease_s}
    return conn.execute(_RENEW, params).rowcount == 1


def release(conn: Connection, name: str, holder: str, token: int) -> None:
    """Give a lease up at once (an orderly stop): a successor need not wait for it to expire."""
    conn.execute(_RELEASE, {"name": name, "holder": holder, "token": token})


def all_leases(conn: Connection) -> list[Lease]:
    return [
        Lease(str(r[0]), str(r[1]), int(r[2]), float(r[3]), float(r[4])) for r in conn.execute(_ALL)
    ]


def live_members(conn: Connection) -> set[str]:
    """The instances whose membership lease has not expired."""
    return {str(r[0]) for r in conn.execute(_LIVE_MEMBERS)}


def register_member(
    conn: Connection, instance: str, api_url: str | None, pid: int, version: str
) -> None:
    params = {"instance": instance, "api_url": api_url, "pid": pid, "version": version}
    conn.execute(_REGISTER, params)


def members(conn: Connection) -> list[Member]:
    table = ClusterMemberRow.__table__
    rows = conn.execute(select(table).order_by(table.c.instance))
    return [Member(r.instance, r.api_url, int(r.pid), str(r.version), r.started_at) for r in rows]


def shares(conn: Connection) -> dict[str, str]:
    """Every device's assigned instance."""
    table = DeviceShareRow.__table__
    return {str(d): str(i) for d, i in conn.execute(select(table.c.device, table.c.instance))}


def owned_by(conn: Connection, instance: str) -> set[str]:
    table = DeviceShareRow.__table__
    query = select(table.c.device).where(table.c.instance == instance)
    return {str(d) for d in conn.execute(query).scalars()}


def assign_shares(conn: Connection, moves: Mapping[str, str], leader_token: int) -> None:
    """Give each device in `moves` to its instance (the leader's writes: the caller's
    transaction carries the leader's fence). Devices no longer in the inventory go with their
    row (ON DELETE CASCADE)."""
    if moves:
        conn.execute(
            _ASSIGN,
            [{"device": d, "instance": i, "leader_token": leader_token} for d, i in moves.items()],
        )


def forget_shares(conn: Connection, devices: list[str]) -> None:
    """Unassign devices (the leader's, fenced like `assign_shares`)."""
    table = cast(Table, DeviceShareRow.__table__)
    for chunk in in_chunks(devices):
        conn.execute(delete(table).where(table.c.device.in_(chunk)))

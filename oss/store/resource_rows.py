"""A service's resource rows written in bulk: one INSERT of all of them when the service is
reserved, instead of one ORM insert per row (devices, interfaces and links: a few per device,
each a round trip to fetch its id back, which nothing reads), and one UPDATE when its change
settles, instead of loading and flushing each row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from oss.store.tables import ServiceResourceRow

_RESOURCES = cast(Table, ServiceResourceRow.__table__)
_INSERT_RESOURCES = insert(_RESOURCES)
_SET_RESERVED = (
    update(_RESOURCES)
    .where(_RESOURCES.c.service_id == bindparam("b_service_id"))
    .values(reserved=bindparam("b_reserved"))
)


async def insert_resources(session: AsyncSession, rows: Sequence[ServiceResourceRow]) -> None:
    """Store `rows` (new, not added to the session) in one statement, in the caller's
    transaction; the columns' defaults apply to what a row leaves unset."""
    if not rows:
        return
    await session.execute(
        _INSERT_RESOURCES,
        [
            {
                "service_id": r.service_id,
                "kind": r.kind,
                "device": r.device,
                "interface": r.interface,
                "link_id": r.link_id,
                "role": r.role,
                "bandwidth_bps": r.bandwidth_bps if r.bandwidth_bps is not None else 0,
                "reserved": bool(r.reserved),
            }
            for r in rows
        ],
    )


async def set_reserved(session: AsyncSession, service_id: int, reserved: bool) -> None:
    """Every resource row of a service held (its change committed) or released, in one
    statement."""
    await session.execute(_SET_RESERVED, {"b_service_id": service_id, "b_reserved": reserved})

"""A service's resource rows written in bulk: one INSERT of all of them when the service is
reserved, instead of one ORM insert per row (devices, interfaces and links: a few per device,
each a round trip to fetch its id back, which nothing reads)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from oss.store.tables import ServiceResourceRow

_RESOURCES = cast(Table, ServiceResourceRow.__table__)
_INSERT_RESOURCES = insert(_RESOURCES)


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

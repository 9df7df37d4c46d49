"""The console's saved map layouts (`map_views`, `map_positions`): named views and where each
device sits in them. Reads take a session; changes run in the caller's transaction (with its
audit entry). A device's positions go with the device (the foreign key cascades)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from oss.store.base import in_chunks, utcnow
from oss.store.tables import MapPositionRow, MapViewRow

Point = tuple[float, float]


@dataclass(frozen=True)
class ViewSummary:
    name: str
    positions: int
    updated_at: datetime | None
    updated_by: str | None


async def view_summaries(session: AsyncSession) -> list[ViewSummary]:
    """Every stored view with its number of positions, by name."""
    counted = (
        select(MapPositionRow.view, func.count().label("n"))
        .group_by(MapPositionRow.view)
        .subquery()
    )
    query = (
        select(MapViewRow.name, counted.c.n, MapViewRow.updated_at, MapViewRow.updated_by)
        .outerjoin(counted, counted.c.view == MapViewRow.name)
        .order_by(MapViewRow.name)
    )
    return [
        ViewSummary(name, int(n or 0), at, by) for name, n, at, by in await session.execute(query)
    ]


async def view_exists(session: AsyncSession, view: str) -> bool:
    found = await session.scalar(select(MapViewRow.name).where(MapViewRow.name == view))
    return found is not None


async def position_count(session: AsyncSession, view: str) -> int:
    counted = select(func.count()).where(MapPositionRow.view == view)
    return int(await session.scalar(counted) or 0)


async def positions_of(
    session: AsyncSession, view: str, devices: Collection[str] | None = None
) -> dict[str, Point]:
    """device -> (x, y) in the view; only these devices' when given."""
    base = select(MapPositionRow.device, MapPositionRow.x, MapPositionRow.y).where(
        MapPositionRow.view == view
    )
    if devices is None:
        return {d: (x, y) for d, x, y in await session.execute(base)}
    found: dict[str, Point] = {}
    for chunk in in_chunks(sorted(devices)):
        rows = await session.execute(base.where(MapPositionRow.device.in_(chunk)))
        found.update((d, (x, y)) for d, x, y in rows)
    return found


async def merge_positions(
    session: AsyncSession, view: str, positions: Mapping[str, Point], actor: str
) -> dict[str, Point]:
    """Set these devices' positions in the view (creating the view), keeping the others';
    returns the positions they had before."""
    before = await positions_of(session, view, positions.keys())
    await _touch(session, view, actor)
    for chunk in in_chunks(sorted(before)):
        await session.execute(
            delete(MapPositionRow).where(
                MapPositionRow.view == view, MapPositionRow.device.in_(chunk)
            )
        )
    rows = [{"view": view, "device": d, "x": x, "y": y} for d, (x, y) in positions.items()]
    if rows:
        await session.execute(insert(MapPositionRow), rows)
    return before


async def delete_position(session: AsyncSession, view: str, device: str, actor: str) -> None:
    await session.execute(
        delete(MapPositionRow).where(MapPositionRow.view == view, MapPositionRow.device == device)
    )
    await _touch(session, view, actor)


async def delete_view(session: AsyncSession, view: str) -> dict[str, Point]:
    """Remove the view and its positions; returns the positions it had."""
    before = await positions_of(session, view)
    await session.execute(delete(MapPositionRow).where(MapPositionRow.view == view))
    await session.execute(delete(MapViewRow).where(MapViewRow.name == view))
    return before


async def _touch(session: AsyncSession, view: str, actor: str) -> None:
    """The view's row, created or marked as changed now by `actor`."""
    row = await session.get(MapViewRow, view)
    if row is None:
        session.add(MapViewRow(name=view, updated_at=utcnow(), updated_by=actor))
    else:
        row.updated_at = utcnow()
        row.updated_by = actor
    await session.flush()

"""Saved map layouts (named views of device positions) for the console: each change is written
with its audit entry in one transaction (`oss.store.map_views`), then counted in `revision`,
which the map's cache (`oss.api.map_document.MapCache`) keys on. `default` exists before its
first save, empty. Cluster mode: each change NOTIFYs the other instances, whose `revision`
moves on when they hear it (`remote_changed`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oss import audit
from oss.errors import Conflict, NotFound
from oss.store import Database
from oss.store import map_views as store
from oss.store.map_views import Point, ViewSummary
from oss.store.notify import MAP_VIEWS, Notifications

DEFAULT_VIEW = "default"
VIEW_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
OBJECT_TYPE = "map_view"


def _points(positions: Mapping[str, Point]) -> dict[str, dict[str, float]]:
    return {device: {"x": x, "y": y} for device, (x, y) in sorted(positions.items())}


class Layouts:
    def __init__(self, db: Database, notifications: Notifications | None = None) -> None:
        self._db = db
        self._notifications = notifications
        self.revision = 0  # moves on after every committed change, here or elsewhere
        if notifications is not None:
            notifications.on(MAP_VIEWS, self.remote_changed, self.remote_resync)

    async def remote_changed(self, _notice: Mapping[str, Any]) -> None:
        """Another instance committed a layout change: what was read of the views is stale."""
        self.revision += 1

    async def remote_resync(self) -> None:
        self.revision += 1

    async def _announce(self, session: AsyncSession, view: str) -> None:
        notifications = self._notifications
        if notifications is not None:
            await session.run_sync(
                lambda sync: notifications.send(sync.connection(), MAP_VIEWS, view=view)
            )

    async def summaries(self) -> list[ViewSummary]:
        """Every view, `default` included even before its first save, by name."""
        async with self._db.read() as session:
            found = await store.view_summaries(session)
        if all(v.name != DEFAULT_VIEW for v in found):
            found.append(ViewSummary(DEFAULT_VIEW, 0, None, None))
            found.sort(key=lambda v: v.name)
        return found

    async def positions(self, view: str) -> dict[str, Point]:
        """The view's positions; NotFound for a view never saved (but `default`)."""
        async with self._db.read() as session:
            if view != DEFAULT_VIEW and not await store.view_exists(session, view):
                raise NotFound(f"map view '{view}' not found")
            return await store.positions_of(session, view)

    async def merge(self, view: str, positions: Mapping[str, Point], actor: str) -> int:
        """Sets these devices' positions (the view's others stay); returns how many the view
        holds now. The caller checked that the devices exist."""
        try:
            async with self._db.transaction() as session:
                before = await store.merge_positions(session, view, positions, actor)
                audit.record(
                    session,
                    actor=actor,
                    action="positions.update",
                    object_type=OBJECT_TYPE,
                    object_id=view,
                    before=_points(before),
                    after=_points(positions),
                )
                held = await store.position_count(session, view)
                await self._announce(session, view)
        except IntegrityError as exc:
            # A device removed since the caller checked, or a concurrent save of the same
            # position: the transaction rolled back whole.
            raise Conflict(
                f"map view '{view}': the positions collided with a concurrent change "
                f"(a device removed meanwhile?); nothing was saved: {exc.orig}"
            ) from exc
        self.revision += 1
        return held

    async def delete(self, view: str, actor: str) -> None:
        async with self._db.transaction() as session:
            if not await store.view_exists(session, view):
                if view == DEFAULT_VIEW:
                    return  # never saved: already as deleting would leave it
                raise NotFound(f"map view '{view}' not found")
            before = await store.delete_view(session, view)
            audit.record(
                session,
                actor=actor,
                action="delete",
                object_type=OBJECT_TYPE,
                object_id=view,
                before={"positions": _points(before)},
            )
            await self._announce(session, view)
        self.revision += 1

    async def delete_position(self, view: str, device: str, actor: str) -> None:
        async with self._db.transaction() as session:
            found = await store.positions_of(session, view, [device])
            if device not in found:
                raise NotFound(f"device '{device}' has no position in map view '{view}'")
            await store.delete_position(session, view, device, actor)
            audit.record(
                session,
                actor=actor,
                action="position.delete",
                object_type=OBJECT_TYPE,
                object_id=view,
                before=_points(found),
            )
            await self._announce(session, view)
        self.revision += 1


def summary_document(summary: ViewSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "positions": summary.positions,
        "updated_at": summary.updated_at.isoformat() if summary.updated_at else None,
        "updated_by": summary.updated_by,
    }

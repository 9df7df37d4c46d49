"""The console's saved layouts: named views of device positions, shared by every operator
(`oss.api.map_layouts`). Positions merge: a save names only the devices it moves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from oss.api.console_schemas import (
    MapPoint,
    MapView,
    MapViewSummary,
    PositionsSaved,
    PositionsUpdate,
)
from oss.api.deps import DaemonDep, Operator, Viewer
from oss.api.map_layouts import VIEW_NAME_PATTERN, summary_document
from oss.api.routes.console_map import MapStateDep
from oss.daemon import Daemon
from oss.errors import InvalidInput

router = APIRouter(prefix="/api/v1/map/views", tags=["console"])

ViewPath = Annotated[str, Path(pattern=VIEW_NAME_PATTERN, description="1-64 of A-Z a-z 0-9 _ . -")]
_NAMED_MAX = 10  # unknown devices named in the detail (all of them are in `errors`)


@router.get("", summary="The saved map views (default included)")
async def list_views(_: Viewer, state: MapStateDep) -> list[MapViewSummary]:
    return [
        MapViewSummary.model_validate(summary_document(s)) for s in await state.layouts.summaries()
    ]


@router.get("/{view}", summary="A map view's device positions")
async def get_view(view: ViewPath, _: Viewer, state: MapStateDep) -> MapView:
    positions = await state.layouts.positions(view)
    return MapView(
        name=view,
        positions={device: MapPoint(x=x, y=y) for device, (x, y) in sorted(positions.items())},
    )


@router.put(
    "/{view}/positions",
    summary="Save device positions in a view (merged: other devices keep theirs)",
)
async def put_positions(
    view: ViewPath,
    body: PositionsUpdate,
    daemon: DaemonDep,
    who: Operator,
    state: MapStateDep,
) -> PositionsSaved:
    unknown = sorted(name for name in body.positions if not _has_device(daemon, name))
    if unknown:
        shown = ", ".join(unknown[:_NAMED_MAX]) + (" ..." if len(unknown) > _NAMED_MAX else "")
        raise InvalidInput(
            f"body.positions: not in the inventory: {shown}; nothing was saved",
            errors=[
                {"field": f"body.positions.{name}", "reason": "no such device"} for name in unknown
            ],
        )
    points = {name: (p.x, p.y) for name, p in body.positions.items()}
    held = await state.layouts.merge(view, points, who.actor)
    return PositionsSaved(name=view, saved=len(points), positions=held)


@router.delete(
    "/{view}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a map view and its positions",
)
async def delete_view(view: ViewPath, who: Operator, state: MapStateDep) -> None:
    await state.layouts.delete(view, who.actor)


@router.delete(
    "/{view}/positions/{device}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Forget one device's position in a view (it is placed anew)",
)
async def delete_position(
    view: ViewPath,
    device: Annotated[str, Path(max_length=64)],
    who: Operator,
    state: MapStateDep,
) -> None:
    await state.layouts.delete_position(view, device, who.actor)


def _has_device(daemon: Daemon, name: str) -> bool:
    try:
        daemon.inventory.graph.device(name)
    except LookupError:
        return False
    return True

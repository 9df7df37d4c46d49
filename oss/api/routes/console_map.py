"""The console's map: the whole inventory graph with its alarms, positions and utilisation in
one call (`oss.api.map_document`), and the link utilisation's light refresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from oss.api.console_schemas import LinkUtilisation, MapDocument
from oss.api.deps import DaemonDep, Viewer
from oss.api.map_document import (
    Built,
    MapShape,
    MapState,
    Severities,
    now_text,
    render_map,
    serialise,
)
from oss.api.map_layouts import DEFAULT_VIEW, VIEW_NAME_PATTERN
from oss.errors import InvalidInput

router = APIRouter(prefix="/api/v1/map", tags=["console"])

HOPS_MAX = 10


def get_map_state(request: Request) -> MapState:
    state: MapState = request.app.state.map_state
    return state


MapStateDep = Annotated[MapState, Depends(get_map_state)]
ViewName = Annotated[
    str, Query(pattern=VIEW_NAME_PATTERN, description="the saved layout whose positions to use")
]


@router.get(
    "",
    summary="The map: sites, devices and links with severities, positions and utilisation",
    response_model=MapDocument,
)
async def get_map(
    daemon: DaemonDep,
    _: Viewer,
    state: MapStateDep,
    view: ViewName = DEFAULT_VIEW,
    around: Annotated[
        str | None, Query(max_length=64, description="only the devices near this one")
    ] = None,
    hops: Annotated[
        int | None, Query(ge=1, le=HOPS_MAX, description="how near, with `around` (default 1)")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=64, description="device names containing this, any case")
    ] = None,
) -> Response:
    if hops is not None and around is None:
        raise InvalidInput("hops needs around (the device to count the hops from)")
    graph = daemon.inventory.graph
    if around is not None:
        graph.device(around)  # 404 naming it
    shape = MapShape(view=view, around=around, hops=hops or 1, q=q or None)
    utilisation = await state.utilisation.get(daemon.db)
    # Read before anything they count is read: see MapCache for why a hit is then current.
    layer = (graph, graph.revision, state.layouts.revision)
    structure = (graph, graph.structure_revision, layer[2])
    built = state.cache.get(shape)
    same_rest = (
        built is not None and built.layer == layer and built.utilisation_at == utilisation.taken_at
    )
    if built is not None and same_rest and built.alarm_revision == daemon.alarms.revision:
        return _json(built.body)
    revision, alarms = await state.open_alarms(lambda: daemon.alarms.revision)
    if built is not None and same_rest and built.alarms == alarms:
        state.cache.put(shape, replace(built, alarm_revision=revision))
        return _json(built.body)
    fragments = await state.fragments(graph, structure, view)
    body = render_map(
        graph,
        fragments,
        shape,
        shape.visible(graph),
        Severities.of(alarms, graph),
        utilisation,
        datetime.now(UTC),
    )
    state.cache.put(shape, Built(layer, utilisation.taken_at, revision, alarms, body))
    return _json(body)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get(
    "/utilisation",
    summary="Each link's latest utilisation (the map's colouring, refreshed)",
    response_model=LinkUtilisation,
)
async def get_utilisation(daemon: DaemonDep, _: Viewer, state: MapStateDep) -> Response:
    utilisation = await state.utilisation.get(daemon.db)
    links = utilisation.by_link(daemon.inventory.graph.links())
    document = {
        "links": {str(link_id): value for link_id, value in links.items()},
        "generated_at": now_text(utilisation.taken_at),
    }
    return Response(serialise(document), media_type="application/json")

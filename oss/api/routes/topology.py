"""The graph as a whole: JSON view, containerlab import/export, neighbours, paths, impact."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from drivers.credentials import check_reference
from oss.api.deps import DaemonDep, Operator, Viewer
from oss.api.impact import impact_of
from oss.api.schemas import ImportResult
from oss.bounds import Int64
from oss.errors import InvalidInput
from topology.clab import export_clab, parse_clab
from topology.placement import disjoint_pair

router = APIRouter(prefix="/api/v1/topology", tags=["topology"])

MAX_IMPORT_BYTES = 8 * 1024 * 1024


@router.get("", summary="The whole inventory graph as JSON")
async def graph(daemon: DaemonDep, _: Viewer) -> dict[str, Any]:
    return daemon.inventory.graph.to_json()


@router.post(
    "/import",
    summary="Merge a containerlab topology file (request body: the YAML text)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def import_topology(
    request: Request,
    daemon: DaemonDep,
    who: Operator,
    filename: Annotated[str, Query(description="shown in error messages")] = "request-body",
) -> ImportResult:
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise InvalidInput(f"{filename}: larger than {MAX_IMPORT_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{filename}: not UTF-8 text (byte {exc.start})") from None
    topo = parse_clab(text, filename)
    for device in topo.devices:  # as at POST /devices: nothing is merged if one is refused
        if device.credentials_ref is not None:
            where = f"{filename}: node {device.name}: oss.credentials-ref"
            check_reference(device.credentials_ref, daemon.settings.drivers.credentials_dirs, where)
    report = await daemon.inventory.import_topology(topo, actor=who.actor, source=filename)
    return ImportResult(
        source=report.source,
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
    )


@router.get(
    "/export",
    summary="The inventory as a containerlab topology file",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {"schema": {"type": "object"}}}}},
)
async def export_topology(
    daemon: DaemonDep,
    _: Viewer,
    name: Annotated[str, Query(description="the lab name written into the file")] = "oss",
) -> Response:
    g = daemon.inventory.graph
    text = export_clab(name, g.devices(), g.links(), g.sites())
    return Response(text, media_type="application/yaml")


@router.get("/neighbours/{device}", summary="Devices one link away")
async def neighbours(device: str, daemon: DaemonDep, _: Viewer) -> list[dict[str, Any]]:
    return [n.to_dict() for n in daemon.inventory.graph.neighbours(device)]


@router.get("/path", summary="Shortest path by latency, k shortest, or a disjoint pair")
async def path(
    daemon: DaemonDep,
    _: Viewer,
    src: Annotated[str, Query(description="source device")],
    dst: Annotated[str, Query(description="destination device")],
    k: Annotated[int, Query(ge=1, le=32, description="how many paths")] = 1,
    disjoint: Annotated[Literal["link", "node"] | None, Query()] = None,
) -> dict[str, Any]:
    g = daemon.inventory.graph
    if disjoint is not None:
        if k != 1:
            raise InvalidInput("k and disjoint do not combine: a disjoint pair is two paths")
        primary, backup = disjoint_pair(g, src, dst, disjoint)
        return {
            "src": src,
            "dst": dst,
            "disjoint": disjoint,
            "paths": [primary.to_dict(), backup.to_dict()],
        }
    paths = g.k_shortest_paths(src, dst, k) if k > 1 else [g.shortest_path(src, dst)]
    return {"src": src, "dst": dst, "paths": [p.to_dict() for p in paths]}


@router.get("/impact", summary="What depends on a device or a link")
async def impact(
    daemon: DaemonDep,
    _: Viewer,
    device: Annotated[str | None, Query()] = None,
    link: Annotated[Int64 | None, Query(description="link id")] = None,
) -> dict[str, Any]:
    """Links, interfaces and devices that fail with it, devices cut off, and the services,
    slices and customers that hold resources on any of them."""
    return await impact_of(daemon, device=device, link=link)

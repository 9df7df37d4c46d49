"""`oss topology`: the graph: import, export, paths, impact."""

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from oss.cli.main import app, emit, get_context, read_file
from oss.cli.output import Format

topology_app = typer.Typer(help="The graph: import, export, paths, impact.", no_args_is_help=True)
app.add_typer(topology_app, name="topology")


class DisjointBy(StrEnum):
    LINK = "link"
    NODE = "node"


@topology_app.command("import")
def topology_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a containerlab *.clab.yml file")],
) -> None:
    """Merge a containerlab topology into the inventory; a bad file changes nothing."""
    text = read_file(file)
    with get_context(ctx).client() as api:
        result = api.post(
            "/api/v1/topology/import",
            content=text.encode(),
            headers={"Content-Type": "application/yaml"},
            params={"filename": str(file)},
        )
    emit(ctx, result)


@topology_app.command("export")
def topology_export(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="lab name in the file")] = "oss",
    file: Annotated[
        Path | None, typer.Option("-f", "--file", help="write here, not stdout")
    ] = None,
) -> None:
    with get_context(ctx).client() as api:
        text = api.request("GET", "/api/v1/topology/export", params={"name": name}).text
    if file is None:
        sys.stdout.write(text)
    else:
        file.write_text(text, encoding="utf-8")


def _path_rows(paths: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "#": i + 1,
            "devices": " > ".join(p["devices"]),
            "hops": p["hops"],
            "latency_us": p["latency_us"],
            "capacity_bps": p["capacity_bps"],
            "links": ",".join(str(x) for x in p["links"]),
        }
        for i, p in enumerate(paths)
    ]


@topology_app.command("path")
def topology_path(
    ctx: typer.Context,
    src: str,
    dst: str,
    k: Annotated[int, typer.Option("--k", min=1, max=32, help="the k shortest paths")] = 1,
    disjoint: Annotated[
        bool, typer.Option("--disjoint", help="a disjoint primary/backup pair")
    ] = False,
    by: Annotated[
        DisjointBy, typer.Option("--by", help="with --disjoint: share no link, or no node")
    ] = DisjointBy.LINK,
) -> None:
    """Shortest path by latency over links that are up."""
    with get_context(ctx).client() as api:
        result = api.get(
            "/api/v1/topology/path",
            src=src,
            dst=dst,
            k=k,
            disjoint=by.value if disjoint else None,
        )
    if get_context(ctx).output is Format.JSON:
        emit(ctx, result)
    else:
        emit(ctx, _path_rows(result["paths"]), title=f"{src} -> {dst}")


@topology_app.command("neighbours")
def topology_neighbours(ctx: typer.Context, device: str) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get(f"/api/v1/topology/neighbours/{quote(device, safe='')}"))


@topology_app.command("impact")
def topology_impact(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option(help="a device that fails")] = None,
    link: Annotated[int | None, typer.Option(help="a link id that fails")] = None,
) -> None:
    """What depends on a device or link: links, interfaces, devices cut off."""
    with get_context(ctx).client() as api:
        emit(ctx, api.get("/api/v1/topology/impact", device=device, link=link))

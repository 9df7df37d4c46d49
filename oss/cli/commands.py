"""Client commands: inventory, topology and audit, each one REST call (or a few) away."""

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from oss.cli.client import ClientError
from oss.cli.main import app, emit, get_context, read_file
from oss.cli.output import Format
from topology.units import parse_latency_us, parse_rate

site_app = typer.Typer(help="Sites.", no_args_is_help=True)
device_app = typer.Typer(help="Devices.", no_args_is_help=True)
interface_app = typer.Typer(help="Interfaces.", no_args_is_help=True)
link_app = typer.Typer(help="Links.", no_args_is_help=True)
topology_app = typer.Typer(help="The graph: import, export, paths, impact.", no_args_is_help=True)
app.add_typer(site_app, name="site")
app.add_typer(device_app, name="device")
app.add_typer(interface_app, name="interface")
app.add_typer(link_app, name="link")
app.add_typer(topology_app, name="topology")

DEVICE_COLUMNS = ["name", "role", "platform", "site", "mgmt_address", "state"]
LINK_COLUMNS = ["id", "a", "b", "capacity_bps", "latency_us", "state"]
INTERFACE_COLUMNS = ["device", "name", "speed_bps", "admin_state", "oper_state", "description"]


class DisjointBy(StrEnum):
    LINK = "link"
    NODE = "node"


Limit = Annotated[int | None, typer.Option("--limit", min=1, help="at most this many rows")]


def _confirm(what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ClientError(f"refusing to {what} without --yes (no terminal to ask on)", exit_code=2)
    typer.confirm(f"{what}?", abort=True)


# --- sites ---------------------------------------------------------------------------------


@site_app.command("list")
def site_list(ctx: typer.Context, limit: Limit = None) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get_all("/api/v1/sites", limit=limit), ["name", "description"])


@site_app.command("add")
def site_add(
    ctx: typer.Context,
    name: str,
    description: Annotated[str, typer.Option(help="free text")] = "",
) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.post("/api/v1/sites", {"name": name, "description": description}))


@site_app.command("rm")
def site_rm(
    ctx: typer.Context, name: str, yes: Annotated[bool, typer.Option("--yes")] = False
) -> None:
    _confirm(f"remove site {name}", yes)
    with get_context(ctx).client() as api:
        api.delete(f"/api/v1/sites/{quote(name, safe='')}")


# --- devices -------------------------------------------------------------------------------


@device_app.command("list")
def device_list(
    ctx: typer.Context,
    role: Annotated[str | None, typer.Option(help="only this role")] = None,
    site: Annotated[str | None, typer.Option(help="only this site")] = None,
    platform: Annotated[str | None, typer.Option(help="only this platform")] = None,
    state: Annotated[
        str | None, typer.Option(help="planned, active, maintenance, decommissioned")
    ] = None,
    limit: Limit = None,
) -> None:
    with get_context(ctx).client() as api:
        rows = api.get_all(
            "/api/v1/devices", limit=limit, role=role, site=site, platform=platform, state=state
        )
    emit(ctx, rows, DEVICE_COLUMNS)


@device_app.command("show")
def device_show(ctx: typer.Context, name: str) -> None:
    with get_context(ctx).client() as api:
        device = api.get(f"/api/v1/devices/{quote(name, safe='')}")
        interfaces = api.get_all("/api/v1/interfaces", device=name)
        links = api.get_all("/api/v1/links", device=name)
    if get_context(ctx).output is Format.JSON:
        emit(ctx, {**device, "interfaces": interfaces, "links": links})
        return
    emit(ctx, device, title=f"device {name}")
    emit(ctx, interfaces, INTERFACE_COLUMNS[1:], title="interfaces")
    emit(ctx, links, LINK_COLUMNS, title="links")


@device_app.command("add")
def device_add(
    ctx: typer.Context,
    name: str,
    role: Annotated[str, typer.Option(help="core, aggregation, pe, access, ...")] = "router",
    platform: Annotated[str, typer.Option(help="configs/platforms/<platform>.yaml")] = "linux",
    site: Annotated[str | None, typer.Option()] = None,
    mgmt_address: Annotated[str | None, typer.Option("--mgmt-address")] = None,
    credentials_ref: Annotated[
        str | None, typer.Option("--credentials-ref", help="env:VAR, file:/path or vault:path")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="containerlab kind")] = None,
    image: Annotated[str | None, typer.Option()] = None,
    state: Annotated[str, typer.Option()] = "active",
) -> None:
    body: dict[str, Any] = {"name": name, "role": role, "platform": platform, "state": state}
    optional = {
        "site": site,
        "mgmt_address": mgmt_address,
        "credentials_ref": credentials_ref,
        "kind": kind,
        "image": image,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    with get_context(ctx).client() as api:
        emit(ctx, api.post("/api/v1/devices", body))


@device_app.command("set")
def device_set(
    ctx: typer.Context,
    name: str,
    field: Annotated[list[str], typer.Argument(help="key=value pairs, e.g. state=maintenance")],
) -> None:
    changes: dict[str, Any] = {}
    for pair in field:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ClientError(f"{pair!r}: expected key=value", exit_code=2)
        changes[key] = None if value == "" else value
    with get_context(ctx).client() as api:
        emit(ctx, api.patch(f"/api/v1/devices/{quote(name, safe='')}", changes))


@device_app.command("rm")
def device_rm(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Remove a device with its interfaces and links."""
    _confirm(f"remove device {name} with its interfaces and links", yes)
    with get_context(ctx).client() as api:
        api.delete(f"/api/v1/devices/{quote(name, safe='')}")


# --- interfaces ----------------------------------------------------------------------------


@interface_app.command("list")
def interface_list(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option(help="only this device")] = None,
    limit: Limit = None,
) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get_all("/api/v1/interfaces", limit=limit, device=device), INTERFACE_COLUMNS)


# --- links ---------------------------------------------------------------------------------


@link_app.command("list")
def link_list(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option(help="links with an end on this device")] = None,
    state: Annotated[str | None, typer.Option(help="up or down")] = None,
    limit: Limit = None,
) -> None:
    with get_context(ctx).client() as api:
        emit(
            ctx, api.get_all("/api/v1/links", limit=limit, device=device, state=state), LINK_COLUMNS
        )


def _endpoint(text: str) -> dict[str, str]:
    device, sep, interface = text.partition(":")
    if not sep or not device or not interface:
        raise ClientError(f"{text!r}: an endpoint is device:interface", exit_code=2)
    return {"device": device, "interface": interface}


@link_app.command("add")
def link_add(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="device:interface")],
    b: Annotated[str, typer.Argument(help="device:interface")],
    capacity: Annotated[str, typer.Option(help="10G, 100M, bit/s")] = "10G",
    latency: Annotated[str, typer.Option(help="500us, 2ms, µs")] = "100us",
) -> None:
    try:
        body = {
            "a": _endpoint(a),
            "b": _endpoint(b),
            "capacity_bps": parse_rate(capacity),
            "latency_us": parse_latency_us(latency),
        }
    except ValueError as exc:
        raise ClientError(str(exc), exit_code=2) from None
    with get_context(ctx).client() as api:
        emit(ctx, api.post("/api/v1/links", body))


@link_app.command("set")
def link_set(
    ctx: typer.Context,
    link_id: int,
    state: Annotated[str | None, typer.Option(help="up or down")] = None,
    capacity: Annotated[str | None, typer.Option(help="10G, 100M, bit/s")] = None,
    latency: Annotated[str | None, typer.Option(help="500us, 2ms, µs")] = None,
) -> None:
    try:
        changes: dict[str, Any] = {}
        if state is not None:
            changes["state"] = state
        if capacity is not None:
            changes["capacity_bps"] = parse_rate(capacity)
        if latency is not None:
            changes["latency_us"] = parse_latency_us(latency)
    except ValueError as exc:
        raise ClientError(str(exc), exit_code=2) from None
    with get_context(ctx).client() as api:
        emit(ctx, api.patch(f"/api/v1/links/{link_id}", changes))


@link_app.command("rm")
def link_rm(
    ctx: typer.Context, link_id: int, yes: Annotated[bool, typer.Option("--yes")] = False
) -> None:
    _confirm(f"remove link {link_id}", yes)
    with get_context(ctx).client() as api:
        api.delete(f"/api/v1/links/{link_id}")


# --- topology ------------------------------------------------------------------------------


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


# --- audit ---------------------------------------------------------------------------------


@app.command("audit")
def audit(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option()] = None,
    object_type: Annotated[
        str | None, typer.Option("--type", help="device, link, token, ...")
    ] = None,
    object_id: Annotated[str | None, typer.Option("--id")] = None,
    action: Annotated[str | None, typer.Option(help="create, update, delete, import, ...")] = None,
    refused: Annotated[
        bool | None,
        typer.Option(
            "--refused/--changes",
            help="only refused attempts (401, 403, 409 ...), or only changes (default: both)",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """The audit log, newest first."""
    with get_context(ctx).client() as api:
        page = api.get(
            "/api/v1/audit",
            limit=limit,
            actor=actor,
            object_type=object_type,
            object_id=object_id,
            action=action,
            refused=None if refused is None else str(refused).lower(),
        )
    emit(ctx, page["items"], ["id", "at", "actor", "action", "object_type", "object_id"])

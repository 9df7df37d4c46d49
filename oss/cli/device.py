"""`oss device`: the inventory's devices."""

from typing import Annotated, Any
from urllib.parse import quote

import typer

from oss.cli.client import ClientError
from oss.cli.inventory import DEVICE_COLUMNS, INTERFACE_COLUMNS, LINK_COLUMNS, Limit
from oss.cli.main import app, confirm, emit, get_context
from oss.cli.output import Format

device_app = typer.Typer(help="Devices.", no_args_is_help=True)
app.add_typer(device_app, name="device")


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
    loopback: Annotated[
        str | None, typer.Option(help="the address latency probes measure to (else mgmt)")
    ] = None,
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
        "loopback": loopback,
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
    confirm(f"remove device {name} with its interfaces and links", yes)
    with get_context(ctx).client() as api:
        api.delete(f"/api/v1/devices/{quote(name, safe='')}")

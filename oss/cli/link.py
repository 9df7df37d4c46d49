"""`oss link`: the inventory's links."""

from typing import Annotated, Any

import typer

from oss.cli.client import ClientError
from oss.cli.inventory import LINK_COLUMNS, Limit
from oss.cli.main import app, confirm, emit, get_context
from topology.units import parse_latency_us, parse_rate

link_app = typer.Typer(help="Links.", no_args_is_help=True)
app.add_typer(link_app, name="link")


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
    confirm(f"remove link {link_id}", yes)
    with get_context(ctx).client() as api:
        api.delete(f"/api/v1/links/{link_id}")

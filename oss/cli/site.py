"""`oss site`: the inventory's sites."""

from typing import Annotated
from urllib.parse import quote

import typer

from oss.cli.inventory import Limit
from oss.cli.main import app, confirm, emit, get_context

site_app = typer.Typer(help="Sites.", no_args_is_help=True)
app.add_typer(site_app, name="site")


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
    confirm(f"remove site {name}", yes)
    with get_context(ctx).client() as api:
        api.delete(f"/api/v1/sites/{quote(name, safe='')}")

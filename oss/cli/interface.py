"""`oss interface`: the inventory's interfaces."""

from typing import Annotated

import typer

from oss.cli.inventory import INTERFACE_COLUMNS, Limit
from oss.cli.main import app, emit, get_context

interface_app = typer.Typer(help="Interfaces.", no_args_is_help=True)
app.add_typer(interface_app, name="interface")


@interface_app.command("list")
def interface_list(
    ctx: typer.Context,
    device: Annotated[str | None, typer.Option(help="only this device")] = None,
    limit: Limit = None,
) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.get_all("/api/v1/interfaces", limit=limit, device=device), INTERFACE_COLUMNS)

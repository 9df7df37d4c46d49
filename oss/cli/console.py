"""`oss console`: where the web console is, and the token to sign in with."""

from typing import Annotated

import typer

from oss.cli.main import app, get_context
from oss.cli.output import console as plain_console
from oss.cli.output import error

CONSOLE_PATH = "/ui/"


@app.command("console")
def console(
    ctx: typer.Context,
    show_token: Annotated[
        bool,
        typer.Option(
            "--show-token", help="also print the token to paste into the console's sign-in form"
        ),
    ] = False,
) -> None:
    """The web console's address (the daemon's own /ui/), and who the token signs in as."""
    context = get_context(ctx)
    out = plain_console(soft_wrap=True)  # no markup: names are data
    out.print(f"console: {context.url.rstrip('/')}{CONSOLE_PATH}")
    if context.token is None:
        error("no token: create one with `oss token create --role viewer --save`")
        raise typer.Exit(1)
    with context.client() as api:
        me = api.get("/api/v1/me")  # the token works before anyone pastes it
    out.print(f"signs in as: {me['name']} ({me['role']})")
    out.print(f"token: {context.token}" if show_token else "token: oss console --show-token")

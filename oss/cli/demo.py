"""`oss demo`: the showcase on the embedded default — a customer orders a slice on the simulated
metro lab, a link on its path fails long enough to break the SLA, and the bill shows the credit
with its evidence. See oss/demo.py for the steps. Exit codes: 0 done; 1 a step failed (the
message names it and the daemon's log); 2 a bad option or precondition."""

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from oss.cli.client import ClientError
from oss.cli.main import app, get_context
from oss.cli.output import Format, emit_json


@app.command("demo")
def demo(
    ctx: typer.Context,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="where the demo's daemon and lab keep their state [default: a new temporary "
            "directory]",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="the daemon's port on 127.0.0.1 [default: a free one]"),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="leave the daemon and the lab running at the end")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL (postgresql+asyncpg://...) instead of SQLite in the state directory",
            show_default=False,
        ),
    ] = None,
    outage: Annotated[float, typer.Option(min=5, help="seconds the link stays down")] = 30.0,
    subnet: Annotated[
        str | None,
        typer.Option(
            help="put the lab's devices in this loopback /24 (e.g. 127.10.200.0/24) [default: "
            "the topology's own addresses, or a free 127.10.N.0/24 when they are taken]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Order a slice, break its SLA with a link failure, and print the bill with the credit."""
    from oss.demo import Demo, DemoError, DemoOptions

    as_json = get_context(ctx).output is Format.JSON
    directory = (state_dir or Path(tempfile.mkdtemp(prefix="oss-demo-"))).expanduser().resolve()
    options = DemoOptions(
        state_dir=directory,
        port=port,
        keep=keep,
        database_url=database_url,
        outage_s=outage,
        subnet=subnet,
    )
    # With -o json the story goes to stderr and stdout carries only the result.
    console = Console(stderr=as_json, soft_wrap=True, emoji=False)
    if not console.is_terminal:
        console.width = 150  # piped: wide enough that the invoice's tables do not truncate
    try:
        facts = Demo(options, console).run()
    except DemoError as exc:
        raise ClientError(str(exc), exit_code=exc.exit_code) from None
    if as_json:
        emit_json(facts)

"""`oss audit`: the audit log."""

from typing import Annotated

import typer

from oss.cli.main import app, emit, get_context


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

"""`oss token ...`: API tokens. `create` writes straight into the daemon's database by default,
so the first admin token is made on the daemon's host and no default password ever exists."""

import getpass
import sys
from typing import Annotated, Any

import typer

from oss.auth_roles import Role
from oss.cli.config import CliConfig, save_cli_config
from oss.cli.main import app, emit, get_context
from oss.cli.output import Format, emit_json
from oss.cli.serve import ConfigOpt, StateDirOpt, settings_from_options

token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[Role, typer.Option(help="viewer, operator or admin")],
    name: Annotated[
        str | None, typer.Option(help="a label for the token [default: the role]")
    ] = None,
    replace: Annotated[bool, typer.Option(help="revoke live tokens of the same name")] = False,
    save: Annotated[
        bool, typer.Option(help="write URL and token into the CLI config file (mode 0600)")
    ] = False,
    via_api: Annotated[
        bool, typer.Option("--via-api", help="ask the daemon (needs an admin token) instead")
    ] = False,
    config: ConfigOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Create a token and print it once; only its hash is stored."""
    label = name or role.value
    obj = get_context(ctx)
    if via_api:
        with obj.client() as api:
            result = api.post(
                "/api/v1/tokens", {"name": label, "role": role.value, "replace": replace}
            )
        token, info = result["token"], result["info"]
    else:
        import asyncio  # the local path opens the database: see oss/cli/main.py

        settings = settings_from_options(config, state_dir)
        token, info = asyncio.run(
            _create_local(settings.resolved_database_url(), label, role, replace)
        )
    saved = save_cli_config(CliConfig(url=obj.url, token=token)) if save else None
    if obj.output is Format.JSON:
        emit_json({"token": token, "info": info})
        return
    what = f"{label} ({role.value}) token #{info['id']}"
    # Saved, the token need not be seen: say where it is (`make run` sends stdout nowhere).
    typer.echo(f"{what} saved to {saved}" if saved else f"{what}, shown once:", err=True)
    sys.stdout.write(token + "\n")


async def _create_local(
    url: str, name: str, role: Role, replace: bool
) -> tuple[str, dict[str, Any]]:
    from oss.auth import TokenStore  # database stack only for the local path
    from oss.store import Database

    db = Database(url)
    try:
        await db.migrate()
        token, info = await TokenStore(db).create(
            name=name, role=role, actor=f"local:{getpass.getuser()}", replace=replace
        )
    finally:
        await db.close()
    return token, info.model_dump(mode="json")


@token_app.command("list")
def list_tokens(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="revoked ones too")] = False,
) -> None:
    with get_context(ctx).client() as api:
        rows = api.get("/api/v1/tokens", include_revoked=include_revoked)
    emit(ctx, rows, ["id", "name", "role", "prefix", "created_by", "last_used_at", "revoked_at"])


@token_app.command("revoke")
def revoke(ctx: typer.Context, token_id: int) -> None:
    with get_context(ctx).client() as api:
        emit(ctx, api.request("DELETE", f"/api/v1/tokens/{token_id}").json())

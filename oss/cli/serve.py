"""`oss serve`: run the daemon in the foreground."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from oss.cli.main import app
from oss.errors import ConfigError, InvalidInput, OssError
from oss.logs import configure_logging
from oss.paths import use_configs_dir

if TYPE_CHECKING:
    from oss.settings import Settings

log = logging.getLogger("oss")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="OSS_CONFIG", help="settings YAML (configs/oss.example.yaml)"
    ),
]
StateDirOpt = Annotated[
    Path | None, typer.Option("--state-dir", help="where the SQLite database and state live")
]


def settings_from_options(config: Path | None, state_dir: Path | None, **more: Any) -> Settings:
    from oss.settings import load_settings  # the daemon's modules: see oss/cli/main.py

    overrides: dict[str, Any] = {"state_dir": state_dir}
    overrides.update(more)
    return load_settings(config, **overrides)


@app.command()
def serve(
    config: ConfigOpt = None,
    state_dir: StateDirOpt = None,
    host: Annotated[str | None, typer.Option(help="listen address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="listen port [default: 8080]")] = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="text or json")] = None,
    log_level: Annotated[str | None, typer.Option("--log-level")] = None,
    topology: Annotated[
        Path | None, typer.Option("--topology", help="containerlab file to merge at start-up")
    ] = None,
) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    api = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    logs = {k: v for k, v in {"format": log_format, "level": log_level}.items() if v is not None}
    more: dict[str, Any] = {"api": api or None, "log": logs or None}
    if topology is not None:
        more["topology"] = {"import_file": topology}
    settings = settings_from_options(config, state_dir, **more)
    # Chosen before the daemon's modules load: the API's TMF route prefixes come from the specs
    # in configs/tmf when oss.api is imported (build() makes the same choice for the loaders).
    use_configs_dir(settings.configs_dir)
    configure_logging(settings.log.format, settings.log.level)
    import asyncio  # the daemon's modules load only here: see oss/cli/main.py

    sys.exit(asyncio.run(_serve(settings)))


async def _serve(settings: Settings) -> int:
    from oss.app import build  # the server stack loads only for `serve`: client commands stay quick

    parts, api = build(settings)

    async def on_ready() -> None:
        source = settings.topology.import_file
        if source is not None:
            await _import(parts.daemon, source)
        log.info(
            "serving the REST API",
            extra={
                "url": f"http://{settings.api.host}:{api.port}",
                "database": parts.daemon.db.safe_url,
            },
        )

    try:
        return await parts.runtime.run(on_ready=on_ready)
    except (ConfigError, InvalidInput) as exc:
        log.error("%s", exc)
        return 2
    except OssError as exc:
        log.error("%s", exc)
        return 1


async def _import(daemon: Any, source: Path) -> None:
    import asyncio

    from topology.clab import parse_clab

    try:
        text = await asyncio.to_thread(source.read_text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read topology file: {exc.strerror}") from None
    report = await daemon.inventory.import_topology(
        parse_clab(text, str(source)), actor="system:startup-import", source=str(source)
    )
    log.info(
        "topology merged",
        extra={"source": str(source), "added": report.created, "changed": report.updated},
    )

"""Where the CLI finds the daemon and its token: flags, then OSS_URL/OSS_TOKEN, then the CLI
config file (`$OSS_CLI_CONFIG`, default ~/.config/oss/cli.yaml, kept mode 0600)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from oss.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8080"


def cli_config_path() -> Path:
    env = os.environ.get("OSS_CLI_CONFIG")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("oss", appauthor=False)) / "cli.yaml"


@dataclass(frozen=True)
class CliConfig:
    url: str = DEFAULT_URL
    token: str | None = None


def load_cli_config(path: Path | None = None) -> CliConfig:
    path = path or cli_config_path()
    if not path.exists():
        return CliConfig()
    import yaml  # only when there is a file to read: `oss --help` never needs it

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read CLI config: {exc}") from None
    if not isinstance(data, dict) or not set(data) <= {"url", "token"}:
        raise ConfigError(f"{path}: expected a mapping with the keys url and token")
    return CliConfig(url=str(data.get("url") or DEFAULT_URL), token=data.get("token"))


def save_cli_config(config: CliConfig, path: Path | None = None) -> Path:
    import yaml

    path = path or cli_config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Create with 0600 from the start: the token must never be readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump({"url": config.url, "token": config.token}, fh)
    os.chmod(path, 0o600)
    return path

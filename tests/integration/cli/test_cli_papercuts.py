"""CLI papercuts of issue 14, each against the real thing: the token `make run` saves is
reported accurately (its stdout goes to /dev/null)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from tests.peers.daemon import OSS


def test_a_saved_token_says_where_it_is_not_shown_once(tmp_path: Path) -> None:
    config = tmp_path / "cli.yaml"
    env = {**os.environ, "OSS_CLI_CONFIG": str(config)}
    args = ["token", "create", "--role", "operator", "--name", "make-run", "--save"]
    created = subprocess.run(
        [OSS, *args, "--state-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.DEVNULL,  # as `make run` does
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    assert "shown once" not in created.stderr
    assert created.stderr.strip() == f"make-run (operator) token #1 saved to {config}"
    assert yaml.safe_load(config.read_text())["token"].startswith("oss_")

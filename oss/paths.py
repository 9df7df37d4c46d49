"""Where the data folders are: `configs/` (platforms, service types, templates, catalogue, TMF
specs) and the lab's topologies.

Both are package data, read through importlib.resources: an installed wheel carries
`oss/configs/` and `lab/topologies/`; in a checkout `oss/configs` is a symlink to the top-level
`configs/`, so a checkout and an install take the same path. An operator's own folder replaces
the shipped one with the `configs_dir` setting (`OSS_CONFIGS_DIR`).

This module imports nothing of the project: every module that reads configs/ imports it.
"""

from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path

CONFIGS_ENV = "OSS_CONFIGS_DIR"


def packaged_configs_dir() -> Path:
    """The configs/ folder shipped with the package."""
    return Path(str(files("oss") / "configs"))


def configs_dir() -> Path:
    """The configs/ folder in use: `OSS_CONFIGS_DIR`, else the shipped one. Modules bind their
    folders from it when imported, so a choice made later (the settings file's `configs_dir`)
    needs a fresh process: see `restart_args`."""
    override = os.environ.get(CONFIGS_ENV)
    return Path(override) if override else packaged_configs_dir()


def restart_args(chosen: Path | None) -> tuple[list[str], dict[str, str]] | None:
    """When the settings chose a configs/ folder other than the one this process bound: the
    arguments and environment that run the same command again with it (None: no need)."""
    if chosen is None or chosen == configs_dir():
        return None
    return list(sys.orig_argv), {**os.environ, CONFIGS_ENV: str(chosen)}


def lab_topologies_dir() -> Path:
    """The containerlab topologies shipped with the lab (metro, ring4, ...)."""
    return Path(str(files("lab") / "topologies"))

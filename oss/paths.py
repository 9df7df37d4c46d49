"""Where the data folders are: `configs/` (platforms, service types, templates, catalogue, TMF
specs) and the lab's topologies.

Both are package data, read through importlib.resources: an installed wheel carries
`oss/configs/` and `lab/topologies/`; in a checkout `oss/configs` is a symlink to the top-level
`configs/`, so a checkout and an install take the same path. An operator's own folder replaces
the shipped one with the `configs_dir` setting (`OSS_CONFIGS_DIR`, or the settings file): the
composition root (`oss.app.build`) hands the settings' choice to `use_configs_dir`.

Every loader asks `configs_dir()` when it loads, never at import, and keys its cache by the
folder it read, so a choice made after the imports takes effect and another folder never
returns stale data.

This module imports nothing of the project: every module that reads configs/ imports it.
"""

from __future__ import annotations

import os
from functools import cache
from importlib.resources import files
from pathlib import Path

CONFIGS_ENV = "OSS_CONFIGS_DIR"

# The settings' choice for this process (None: none made; the environment or the shipped one).
_chosen: Path | None = None


@cache  # where the package lies does not change while it runs (and resources cost ~45 µs)
def packaged_configs_dir() -> Path:
    """The configs/ folder shipped with the package."""
    return Path(str(files("oss") / "configs"))


def use_configs_dir(folder: Path | None) -> None:
    """The settings' `configs_dir` becomes the folder every loader reads from now on (None:
    `OSS_CONFIGS_DIR`, else the shipped one). Settings already give the environment precedence
    over the file, so their choice is the final word."""
    global _chosen
    _chosen = folder


def configs_dir() -> Path:
    """The configs/ folder in use: the settings' choice, else `OSS_CONFIGS_DIR`, else the
    shipped one. Looked up at each call: call it when loading, not at import."""
    if _chosen is not None:
        return _chosen
    override = os.environ.get(CONFIGS_ENV)
    return Path(override) if override else packaged_configs_dir()


def lab_topologies_dir() -> Path:
    """The containerlab topologies shipped with the lab (metro, ring4, ...)."""
    return Path(str(files("lab") / "topologies"))

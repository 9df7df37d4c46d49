"""Where the data folders are: `configs/` (platforms, service types, templates, catalogue, TMF
specs) and the lab's topologies.

Both are package data, read through importlib.resources: an installed wheel carries
`oss/configs/` and `lab/topologies/`; in a checkout `oss/configs` is a symlink to the top-level
`configs/`, so a checkout and an install take the same path. An operator's own folder replaces
the shipped one with the `configs_dir` setting (`OSS_CONFIGS_DIR`).

This module imports nothing of the project: the modules that read configs/ bind their folder
constants when imported, so the folder is settled before (`use_configs_dir` at `oss serve`).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

CONFIGS_ENV = "OSS_CONFIGS_DIR"

_chosen: Path | None = None
_read: Path | None = None  # the folder handed out so far; it can no longer change


def packaged_configs_dir() -> Path:
    """The configs/ folder shipped with the package."""
    return Path(str(files("oss") / "configs"))


def configs_dir() -> Path:
    """The configs/ folder in use: the chosen one, else `OSS_CONFIGS_DIR`, else the shipped one."""
    global _read
    if _chosen is not None:
        _read = _chosen
    else:
        override = os.environ.get(CONFIGS_ENV)
        _read = Path(override).expanduser() if override else packaged_configs_dir()
    return _read


def use_configs_dir(directory: Path | None) -> None:
    """Choose the configs/ folder from the settings, before any module reads it (None: keep
    the default). Choosing another after modules bound theirs would leave them split between
    two folders, so that is a programming error."""
    global _chosen
    if directory is None:
        return
    if _read is not None and _read != directory:
        raise RuntimeError(
            f"configs folder {_read} is already in use; cannot switch to {directory}"
        )
    _chosen = directory


def lab_topologies_dir() -> Path:
    """The containerlab topologies shipped with the lab (metro, ring4, ...)."""
    return Path(str(files("lab") / "topologies"))

"""Files the labs keep secrets and state in: private from the first byte, replaced whole."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: str | bytes) -> None:
    """Write a file that only its owner can read, from its first byte on; readers see the old
    content or the new, never half of it (the file is renamed into place)."""
    raw = data.encode() if isinstance(data, str) else data
    staging = path.with_name(path.name + ".new")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    os.chmod(staging, 0o600)
    os.replace(staging, path)

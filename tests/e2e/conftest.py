"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.lab_process import lab_state_dir


@pytest.fixture
def lab_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory for `oss lab up`; a lab still running there at the end is stopped."""
    with lab_state_dir(tmp_path / "lab") as directory:
        yield directory

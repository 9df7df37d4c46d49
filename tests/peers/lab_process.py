"""Cleanup for `oss lab up` background processes started by a test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from lab.sim.lab import read_state
from tests.peers.daemon import OSS


@contextlib.contextmanager
def lab_state_dir(directory: Path) -> Iterator[Path]:
    """A lab state directory; a lab still running there at the end (a test failed half-way)
    is stopped: `oss lab down`, then SIGTERM to the process the lab recorded."""
    try:
        yield directory
    finally:
        state = read_state(directory)
        if state is not None:
            subprocess.run([OSS, "lab", "down", "--state-dir", str(directory)], timeout=60)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(state["pid"]), signal.SIGTERM)

"""The daemon's log keeps its own lines: libraries that narrate every message at INFO are held
to warnings."""

from __future__ import annotations

import logging

import pytest

from oss.logs import configure_logging


@pytest.mark.parametrize("library", ["ncclient.transport.ssh", "paramiko.transport", "alembic"])
def test_chatty_libraries_log_warnings_only(
    library: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("text", "INFO")
        logging.getLogger(library).info("Received message from host")
        logging.getLogger(library).warning("session dropped")
        logging.getLogger("oss.runtime").info("daemon started")
        err = capsys.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "Received message from host" not in err
    assert "session dropped" in err and "daemon started" in err

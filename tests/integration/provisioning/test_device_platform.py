"""`oss device add --platform nosuch` against a real daemon: refused as bad input (422 from the
API, exit code 2 from the CLI) naming the field and the known platforms; `device set` too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.platforms import platform_names
from tests.peers.daemon import Daemon

pytestmark = pytest.mark.integration


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    d.start()
    try:
        d.token = d.create_token("operator")
        yield d
    finally:
        d.kill()


def test_an_unknown_platform_is_refused_naming_the_known_ones(daemon: Daemon) -> None:
    known = ", ".join(platform_names())
    refused = daemon.cli("device", "add", "edge1", "--platform", "nosuch")
    assert refused.returncode == 2, refused
    assert f"platform: unknown platform 'nosuch' (known: {known})" in refused.stderr
    assert daemon.cli_json("device", "list") == []  # nothing half-written

    added = daemon.cli("device", "add", "edge1", "--platform", "lab-sim")
    assert added.returncode == 0, added
    refused = daemon.cli("device", "set", "edge1", "platform=nosuch")
    assert refused.returncode == 2 and "unknown platform 'nosuch'" in refused.stderr, refused
    assert daemon.cli_json("device", "show", "edge1")["platform"] == "lab-sim"

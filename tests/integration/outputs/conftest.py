"""A real VictoriaMetrics (it accepts the InfluxDB v2 write API) for the output tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.victoria import VictoriaMetrics, running_victoria


@pytest.fixture(scope="session")
def victoria_server() -> Iterator[VictoriaMetrics]:
    with running_victoria() as server:
        yield server


@pytest.fixture
def victoria(victoria_server: VictoriaMetrics) -> Iterator[VictoriaMetrics]:
    """The session's server, running; a test that stops it gets it started again after."""
    victoria_server.start()
    yield victoria_server
    victoria_server.start()

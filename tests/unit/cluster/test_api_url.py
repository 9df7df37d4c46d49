"""The API address an instance advertises in the cluster's status when `cluster.api_url` is not
set: its listen address, the host name for a wildcard one, nothing for a port picked at bind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from oss.app import _api_url
from oss.settings import ApiSettings, Settings


@pytest.mark.parametrize(
    ("host", "port", "advertised"),
    [
        ("127.0.0.1", 8081, "http://127.0.0.1:8081"),
        ("::1", 8081, "http://[::1]:8081"),
        ("0.0.0.0", 8080, f"http://{socket.gethostname()}:8080"),
        ("127.0.0.1", 0, None),
    ],
)
def test_advertised_api_url(tmp_path: Path, host: str, port: int, advertised: str | None) -> None:
    settings = Settings(state_dir=tmp_path, api=ApiSettings(host=host, port=port))
    assert _api_url(settings) == advertised

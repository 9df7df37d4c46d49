"""CLI papercuts of issue 14, each against the real thing: the token `make run` saves is
reported accurately (its stdout goes to /dev/null); the catalogue's offerings are listed by the
API and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from oss.api import create_app
from oss.auth_roles import Role
from tests.integration.cli.test_cli_hostile_text import oss
from tests.integration.conftest import Api
from tests.peers.app_server import serving
from tests.peers.daemon import OSS


def test_a_saved_token_says_where_it_is_not_shown_once(tmp_path: Path) -> None:
    config = tmp_path / "cli.yaml"
    env = {**os.environ, "OSS_CLI_CONFIG": str(config)}
    args = ["token", "create", "--role", "operator", "--name", "make-run", "--save"]
    created = subprocess.run(
        [OSS, *args, "--state-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.DEVNULL,  # as `make run` does
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    assert "shown once" not in created.stderr
    assert created.stderr.strip() == f"make-run (operator) token #1 saved to {config}"
    assert yaml.safe_load(config.read_text())["token"].startswith("oss_")


# --- the catalogue: listed by the API (viewer role, in OpenAPI) and by the CLI ---------------


async def test_the_api_lists_and_shows_offerings_to_viewers(api: Api) -> None:
    listed = await api.viewer.get("/api/v1/catalog/offerings")
    assert listed.status_code == 200, listed.text
    page = listed.json()
    ids = [o["id"] for o in page["items"]]
    assert page["total"] == len(ids) == len(api.daemon.bss.catalog)
    assert ids == sorted(ids) and "metro-slice-200" in ids
    shown = (await api.viewer.get("/api/v1/catalog/offerings/metro-slice-200")).json()
    assert shown["service_type"] == "slice" and shown["recurring_price"] == "500.00"
    assert shown["usage"]["tiers"][-1] == {"up_to": None, "price": "0.01"}
    assert shown["sla"]["availability_target_percent"] == "99.9"

    missing = await api.viewer.get("/api/v1/catalog/offerings/nosuch")
    assert missing.status_code == 404 and "nosuch" in missing.json()["detail"]
    assert (await api.anonymous.get("/api/v1/catalog/offerings")).status_code == 401
    paths = (await api.viewer.get("/api/v1/openapi.json")).json()["paths"]
    assert {"/api/v1/catalog/offerings", "/api/v1/catalog/offerings/{offering_id}"} <= set(paths)


async def test_the_cli_lists_and_shows_offerings(api: Api) -> None:
    async with serving(create_app(api.daemon)) as url:
        listed = await oss(url, api.tokens[Role.VIEWER], "catalog", "list")
        shown = await oss(url, api.tokens[Role.VIEWER], "catalog", "show", "metro-slice-200")
        raw = await oss(
            url, api.tokens[Role.VIEWER], "catalog", "show", "metro-slice-200", "-o", "json"
        )
    assert listed.returncode == 0, listed.stderr
    assert "metro-slice-200" in listed.stdout and "500.00 EUR/month" in listed.stdout
    assert shown.returncode == 0, shown.stderr
    assert "up to 1000 at 0.00" in shown.stdout and "availability 99.9 %" in shown.stdout
    assert json.loads(raw.stdout)["tax_rate"] == "0.19"

"""GET /api/v1/sla/{service} and `oss sla show` over a real daemon on SQLite: the running
compliance of the current billing period, terms from the catalogue, outage evidence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

import oss.cli.sla  # noqa: F401  (attaches `oss sla` to the CLI app)
from bss_bridge.api.sla import current_period
from oss.api import create_app
from oss.app import assemble
from oss.auth_roles import Role
from oss.cli.main import app as cli_app
from oss.daemon import Daemon
from oss.settings import load_settings
from tests.bss_rows import add_account, alarm_row, product_row
from tests.peers.app_server import serving

SLA = "/api/v1/sla"


@dataclass
class SlaApi:
    daemon: Daemon
    app: FastAPI
    viewer: httpx.AsyncClient
    token: str
    period_start: datetime


@pytest.fixture
async def sla_api(tmp_path: Path) -> AsyncIterator[SlaApi]:
    parts = assemble(load_settings(None, state_dir=tmp_path))
    period = current_period(datetime.now(UTC), 1)
    async with parts as daemon:
        async with daemon.db.transaction() as s:
            await add_account(s)
            s.add(product_row(period.start - timedelta(days=3)))
        app = create_app(daemon)
        token, _ = await daemon.tokens.create(name="sla", role=Role.VIEWER, actor="test")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://oss.test",
            headers={"Authorization": f"Bearer {token}"},
        ) as viewer:
            yield SlaApi(daemon, app, viewer, token, period.start)


async def outage(api: SlaApi, *, still_open: bool = False) -> tuple[int, int, datetime]:
    """A link failure at the period's start with the service's alarm under it."""
    start = api.period_start
    elapsed = datetime.now(UTC) - start
    end = None if still_open else start + min(timedelta(hours=1), elapsed / 2)
    async with api.daemon.db.transaction() as s:
        root = alarm_row(start, end, object_type="link", obj="3")
        s.add(root)
        await s.flush()
        child = alarm_row(start, end, parent=root.id)
        s.add(child)
        await s.flush()
        return root.id, child.id, start


async def test_the_running_compliance_shows_the_outage(sla_api: SlaApi) -> None:
    r = await sla_api.viewer.get(f"{SLA}/svc-a")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["availability"]["measuredPercent"] == "100.000" and doc["met"] is True
    assert doc["availability"]["targetPercent"] == "99.9"  # the offering's terms
    assert doc["latency"]["measured"] is False  # the lab has no delay probes
    # the current period has not ended: measured over its elapsed time, and labelled so
    assert doc["partial"] is True and doc["measuredUntil"] < doc["period"]["end"]
    assert "partial" in doc["note"]

    root, child, start = await outage(sla_api)
    doc = (await sla_api.viewer.get(f"{SLA}/svc-a")).json()
    assert doc["product"] == "p-1" and doc["offering"] == "metro-slice-200"
    assert doc["period"]["start"] == start.isoformat().replace("+00:00", "Z")
    (window,) = doc["availability"]["outageWindows"]
    assert window["serviceAlarmIds"] == [child] and window["rootAlarmIds"] == [root]
    assert window["cause"] == "link 3"
    avail = doc["availability"]
    measured, down = Decimal(avail["measuredSeconds"]), Decimal(avail["outageSeconds"])
    assert down == Decimal(window["durationSeconds"]) > 0
    expected = (100 * (1 - down / measured)).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
    assert Decimal(avail["measuredPercent"]) == expected < Decimal("100")


async def test_a_still_open_outage_runs_until_the_measurement(sla_api: SlaApi) -> None:
    await outage(sla_api, still_open=True)
    doc = (await sla_api.viewer.get(f"{SLA}/svc-a")).json()
    (window,) = doc["availability"]["outageWindows"]
    assert window["end"] == doc["measuredUntil"]
    assert doc["availability"]["outageSeconds"] == doc["availability"]["measuredSeconds"]
    assert doc["availability"]["measuredPercent"] == "0.000" and doc["met"] is False


async def test_unknown_services_and_missing_tokens(sla_api: SlaApi) -> None:
    r = await sla_api.viewer.get(f"{SLA}/nobody")
    assert r.status_code == 404 and r.json()["type"] == "urn:oss:problem:not-found"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sla_api.app), base_url="http://oss.test"
    ) as anonymous:
        assert (await anonymous.get(f"{SLA}/svc-a")).status_code == 401


def test_current_period_follows_the_billing_day() -> None:
    assert current_period(datetime(2026, 11, 20, tzinfo=UTC), 15).start == datetime(
        2026, 11, 15, tzinfo=UTC
    )
    early = current_period(datetime(2026, 1, 10, tzinfo=UTC), 15)
    assert (early.start, early.end) == (
        datetime(2025, 12, 15, tzinfo=UTC),
        datetime(2026, 1, 15, tzinfo=UTC),
    )


@pytest.fixture
async def sla_server(sla_api: SlaApi) -> AsyncIterator[str]:
    async with serving(sla_api.app) as url:
        yield url


async def test_oss_sla_show(sla_api: SlaApi, sla_server: str) -> None:
    root, child, _ = await outage(sla_api)
    base = ["--url", sla_server, "--token", sla_api.token]
    runner = CliRunner(env={"COLUMNS": "200"})
    result = await asyncio.to_thread(
        runner.invoke, cli_app, [*base, "-o", "json", "sla", "show", "svc-a"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.output)
    assert doc["availability"]["outageWindows"][0]["alarmIds"] == sorted([root, child])

    result = await asyncio.to_thread(runner.invoke, cli_app, [*base, "sla", "show", "svc-a"])
    assert result.exit_code == 0, (result.output, result.exception)
    text = result.output
    assert "SLA of svc-a" in text and "MISSED" in text and "99.9 %" in text
    assert "latency       not measured" in text
    assert "PARTIAL: the period has not ended" in text
    assert "link 3" in text and str(child) in text

    result = await asyncio.to_thread(runner.invoke, cli_app, [*base, "sla", "show", "nobody"])
    assert result.exit_code == 1

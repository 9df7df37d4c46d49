"""What the latency-probe tests share (the simulated lab's and the namespace lab's): an active
service between two devices with a product whose SLA has a 10 ms latency target, its SLA report
through the API, and its open alarms."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from bss_bridge.api.sla import current_period
from oss.api import create_app
from oss.auth_roles import Role
from oss.daemon import Daemon
from oss.store.tables import AlarmRow, ServiceRow
from tests.bss_rows import add_account, product_row

SLA_OFFERING = "metro-slice-200"  # slices.yaml: latency_target_ms 10 (round trip), 5 min


async def add_active_service(daemon: Daemon, name: str, path: list[str]) -> None:
    """Service `name` active on `path` (its A-end first), sold on a product of SLA_OFFERING
    that started three days before the current billing period."""
    period = current_period(datetime.now(UTC), 1)
    async with daemon.db.transaction() as s:
        await add_account(s)
        s.add(product_row(period.start - timedelta(days=3), service=name, offering=SLA_OFFERING))
        s.add(
            ServiceRow(
                name=name,
                type="slice",
                customer="acme",
                state="active",
                params={},
                placement={"primary": {"devices": path, "links": []}},
            )
        )


async def sla_report(daemon: Daemon, service: str) -> dict[str, Any]:
    """GET /api/v1/sla/{service}, as a viewer."""
    token, _ = await daemon.tokens.create(name=f"sla-{id(object())}", role=Role.VIEWER, actor="t")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(daemon)),
        base_url="http://oss.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        response = await client.get(f"/api/v1/sla/{service}")
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


async def alarm_open(daemon: Daemon, key: str) -> bool:
    async with daemon.db.read() as s:
        query = select(AlarmRow.id).where(AlarmRow.reduction_key == key, AlarmRow.open)
        return await s.scalar(query) is not None


async def until_alarm(daemon: Daemon, key: str, wanted: bool, timeout_s: float = 20) -> None:
    """Wait (bounded) until the alarm of `key` is open (`wanted`) or not."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await alarm_open(daemon, key) is wanted:
                return
            await asyncio.sleep(0.1)

"""The TMF635 usage API over a real daemon on SQLite: create/list/get validate against the
official schema, a replayed batch stores each record once, and the collector service writes each
closed hour once however often it runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bss_bridge.api import tmf_usage as usage_routes
from bss_bridge.tables import UsageRow
from bss_bridge.usage_collector import UsageCollector
from oss import tmf
from oss.api import create_app
from oss.app import assemble
from oss.auth_roles import Role
from oss.daemon import Daemon
from oss.settings import load_settings
from oss.store.tables import KpiMinuteRow, ServiceResourceRow, ServiceRow
from tests.bss_rows import add_account, product_row

SPEC = tmf.spec(tmf.USAGE)
BASE = "/tmf-api/usageManagement/v4/usage"


@dataclass
class UsageApi:
    daemon: Daemon
    viewer: httpx.AsyncClient
    operator: httpx.AsyncClient
    activated: datetime


@pytest.fixture
async def usage_api(tmp_path: Path) -> AsyncIterator[UsageApi]:
    parts = assemble(load_settings(None, state_dir=tmp_path))
    activated = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    async with parts as daemon:
        async with daemon.db.transaction() as s:
            await add_account(s)
            s.add(product_row(activated))
            service = ServiceRow(
                name="svc-a", type="slice", customer="acme", state="active", params={}
            )
            s.add(service)
            await s.flush()
            s.add(
                ServiceResourceRow(
                    service_id=service.id,
                    kind="interface",
                    device="r1",
                    interface="eth1",
                    role="attachment",
                )
            )
        app = create_app(daemon)
        transport = httpx.ASGITransport(app=app)
        tokens = {}
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[role], _ = await daemon.tokens.create(
                name=f"usage-{role.value}", role=role, actor="test"
            )

        def client(token: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=transport,
                base_url="http://oss.test",
                headers={"Authorization": f"Bearer {token}"},
            )

        async with client(tokens[Role.VIEWER]) as viewer, client(tokens[Role.OPERATOR]) as op:
            yield UsageApi(daemon, viewer, op, activated)


def valid(doc: Any) -> Any:
    assert SPEC.errors(doc, "Usage") == [], doc
    return doc


def body(key: str, start: datetime, quantity: str = "1.5") -> dict[str, Any]:
    return {
        "usageDate": start.isoformat(),
        "usageType": "data",
        "usageCharacteristic": [
            {"name": "key", "value": key},
            {"name": "productId", "value": "p-1"},
            {"name": "quantity", "value": quantity},
            {"name": "unit", "value": "GB"},
        ],
    }


async def count(api: UsageApi) -> int:
    async with api.daemon.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(UsageRow)) or 0)


def test_the_router_sits_at_the_spec_base_path() -> None:
    assert usage_routes.BASE_PATH == SPEC.base_path == "/tmf-api/usageManagement/v4"


async def test_a_replayed_batch_stores_each_record_once(usage_api: UsageApi) -> None:
    start = usage_api.activated + timedelta(hours=1)
    batch = [body(f"ext-{n}", start + timedelta(hours=n), f"{n}.25") for n in range(3)]
    first = []
    for item in batch:
        r = await usage_api.operator.post(BASE, json=item)
        assert r.status_code == 201, r.text
        assert r.headers["Location"] == valid(r.json())["href"]
        first.append(r.json())
    for item, created in zip(batch, first, strict=True):
        r = await usage_api.operator.post(BASE, json=item)
        assert r.status_code == 200, r.text
        assert valid(r.json()) == created
    assert await count(usage_api) == 3

    # The same key with other values is not a replay.
    r = await usage_api.operator.post(BASE, json=body("ext-0", start, "9"))
    assert r.status_code == 409
    assert SPEC.errors(r.json(), "Error") == []
    assert await count(usage_api) == 3


async def test_a_new_record_is_audited_and_a_replay_or_refusal_is_not(usage_api: UsageApi) -> None:
    """Issue 14, defect 8: a usage record posted by an outside system is a change (audited with
    who and the record); its replay and a refused record change nothing."""
    from oss.audit import list_entries

    start = usage_api.activated + timedelta(hours=1)
    r = await usage_api.operator.post(BASE, json=body("au-1", start, "2.5"))
    assert r.status_code == 201, r.text
    assert (await usage_api.operator.post(BASE, json=body("au-1", start, "2.5"))).status_code == 200
    assert (await usage_api.operator.post(BASE, json=body("au-1", start, "9"))).status_code == 409
    entries, total = await list_entries(
        usage_api.daemon.db, limit=10, offset=0, object_type="usage"
    )
    assert total == 1
    (entry,) = entries
    assert entry.action == "create" and entry.object_id == r.json()["id"]
    assert entry.actor.startswith("token:") and entry.before is None
    assert entry.after["key"] == "au-1" and entry.after["quantity"] == "2.5"


async def test_create_refuses_bad_input_with_tmf_errors(usage_api: UsageApi) -> None:
    start = usage_api.activated + timedelta(hours=1)
    cases = [
        ([body("b-1", start)], 422),  # a list: the spec's POST takes one Usage
        ({"usageType": "data"}, 422),  # no date, no key
        (body("b-2", usage_api.activated - timedelta(hours=1)), 422),  # not active yet
    ]
    for payload, status in cases:
        r = await usage_api.operator.post(BASE, json=payload)
        assert r.status_code == status, r.text
        assert SPEC.errors(r.json(), "Error") == []
    missing = body("b-3", start)
    missing["usageCharacteristic"][1]["value"] = "p-nope"
    r = await usage_api.operator.post(BASE, json=missing)
    assert r.status_code == 404
    r = await usage_api.viewer.post(BASE, json=body("b-4", start))
    assert r.status_code == 403  # creating usage needs the operator role
    assert await count(usage_api) == 0


async def test_list_filters_and_get(usage_api: UsageApi) -> None:
    start = usage_api.activated + timedelta(hours=1)
    ids = []
    for n in range(3):
        r = await usage_api.operator.post(BASE, json=body(f"l-{n}", start + timedelta(hours=n)))
        ids.append(r.json()["id"])

    r = await usage_api.viewer.get(BASE)
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "3"
    assert [valid(d)["id"] for d in r.json()] == ids
    r = await usage_api.viewer.get(
        BASE,
        params={
            "ratedProductUsage.productRef.id": "p-1",
            "status": "received",
            "usageDate.gte": (start + timedelta(hours=1)).isoformat(),
            "usageDate.lt": (start + timedelta(hours=2)).isoformat(),
        },
    )
    assert [d["id"] for d in r.json()] == [ids[1]]
    assert r.headers["X-Result-Count"] == "1"
    r = await usage_api.viewer.get(BASE, params={"limit": 1, "offset": 2, "fields": "status"})
    assert r.json() == [{"id": ids[2], "href": f"{BASE}/{ids[2]}", "status": "received"}]
    r = await usage_api.viewer.get(BASE, params={"status": "billed"})
    assert r.json() == [] and r.headers["X-Total-Count"] == "0"
    r = await usage_api.viewer.get(BASE, params={"status": "nonsense"})
    assert r.status_code == 422

    r = await usage_api.viewer.get(f"{BASE}/{ids[0]}")
    assert r.status_code == 200
    doc = valid(r.json())
    chars = {c["name"]: c["value"] for c in doc["usageCharacteristic"]}
    assert chars["key"] == "l-0" and Decimal(chars["quantity"]) == Decimal("1.5")
    r = await usage_api.viewer.get(f"{BASE}/999999")
    assert r.status_code == 404 and SPEC.errors(r.json(), "Error") == []


async def test_the_collector_writes_each_closed_hour_once(usage_api: UsageApi) -> None:
    hour = usage_api.activated + timedelta(hours=1)
    async with usage_api.daemon.db.transaction() as s:
        for h in range(3):
            for m in range(0, 60, 10):
                s.add(
                    KpiMinuteRow(
                        object_type="interface",
                        object="r1:eth1",
                        metric="in-octets",
                        minute=hour + timedelta(hours=h, minutes=m),
                        count=1,
                        sum=250_000_000.0,
                        min=0.0,
                        max=0.0,
                        last=0.0,
                    )
                )
    collector = UsageCollector(usage_api.daemon.bss.usage, interval_s=3600)
    stop = asyncio.Event()
    running = asyncio.create_task(collector.run(stop))
    for _ in range(500):  # until its first pass is done (bounded)
        if collector.ledger.collected:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(running, 10)
    assert collector.passes == 1 and collector.ledger.collected == 3
    assert await collector.collect_once() == 0  # the same hours again
    assert await collector.collect_once() == 0
    assert await count(usage_api) == 3

    r = await usage_api.viewer.get(BASE, params={"ratedProductUsage.productRef.id": "p-1"})
    docs = [valid(d) for d in r.json()]
    assert [d["usageDate"] for d in docs] == [
        (hour + timedelta(hours=h)).isoformat().replace("+00:00", "Z") for h in range(3)
    ]
    quantities = [
        next(c["value"] for c in d["usageCharacteristic"] if c["name"] == "quantity") for d in docs
    ]
    assert quantities == ["1.500000000"] * 3  # 6 minutes x 250 MB per hour

"""TMF638 services through the service-lookup port the OSS fills (oss.bss_ports over a real
SQLite database): by id and by name, filters and paging, the product a service realises, and a
terminated service's end taken from its last update (the services table keeps no end time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bss_bridge.tmf_services import ServiceInventory
from oss import tmf
from oss.bss_ports import records_for
from oss.errors import NotFound
from oss.store import Database
from oss.store.tables import ServiceRow
from tests.bss_rows import add_account, product_row

CREATED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ENDED = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
STARTED = datetime(2026, 11, 2, 9, 5, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    await database.migrate()
    async with database.transaction() as s:
        await add_account(s)
        for name, state, customer in (
            ("svc-a", "active", "acme"),
            ("svc-b", "terminated", "acme"),
            ("svc-c", "failed", "other"),
        ):
            s.add(
                ServiceRow(
                    name=name,
                    type="slice",
                    customer=customer,
                    state=state,
                    params={"bandwidth": "200M"},
                    vlan=101,
                    error="device pe2 refused" if state == "failed" else None,
                    created_at=CREATED,
                    updated_at=ENDED,
                )
            )
        s.add(product_row(STARTED, service="svc-a"))
    yield database
    await database.close()


def inventory(db: Database) -> ServiceInventory:
    return ServiceInventory(db, records_for(db).services)


async def test_a_service_by_name_and_by_id_is_the_same_document(db: Database) -> None:
    by_name = await inventory(db).get("svc-a")
    assert await inventory(db).get(by_name["id"]) == by_name
    assert tmf.spec(tmf.SERVICE_INVENTORY).errors(by_name, "Service") == []
    assert by_name["state"] == "active" and by_name["isServiceEnabled"] is True
    assert by_name["startDate"] == STARTED.isoformat()  # the product's start, not the row's
    assert "endDate" not in by_name
    chars = {c["name"]: c["value"] for c in by_name["serviceCharacteristic"]}
    assert chars["bandwidth"] == "200M" and chars["vlan"] == 101
    assert [e["role"] for e in by_name["relatedEntity"]] == ["product", "billingAccount"]


async def test_a_terminated_service_ends_at_its_last_update(db: Database) -> None:
    doc = await inventory(db).get("svc-b")
    assert doc["state"] == "terminated" and doc["endDate"] == ENDED.isoformat()
    assert doc["startDate"] == CREATED.isoformat()  # no product: from the service's creation
    live = await inventory(db).get("svc-a")
    assert "endDate" not in live


async def test_a_failed_service_carries_its_error(db: Database) -> None:
    doc = await inventory(db).get("svc-c")
    assert doc["state"] == "inactive"
    assert doc["note"] == [{"text": "device pe2 refused", "author": "oss", "@type": "Note"}]


async def test_unknown_services_are_not_found(db: Database) -> None:
    for ref in ("nobody", "999"):
        with pytest.raises(NotFound, match=f"no service {ref}"):
            await inventory(db).get(ref)


async def test_filters_and_pages(db: Database) -> None:
    docs, total = await inventory(db).find(limit=2, offset=0)
    assert total == 3 and [d["name"] for d in docs] == ["svc-a", "svc-b"]
    docs, total = await inventory(db).find(limit=2, offset=2)
    assert total == 3 and [d["name"] for d in docs] == ["svc-c"]
    docs, total = await inventory(db).find(state="inactive", limit=10)
    assert total == 1 and [d["name"] for d in docs] == ["svc-c"]
    docs, total = await inventory(db).find(customer="acme", service_type="slice", limit=10)
    assert total == 2 and [d["name"] for d in docs] == ["svc-a", "svc-b"]
    docs, total = await inventory(db).find(service_type="l3vpn", limit=10)
    assert (docs, total) == ([], 0)

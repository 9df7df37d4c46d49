"""Customers and billing accounts: the rules (ids, currency, billing day), duplicates,
unknown references, and paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bss_bridge.customers import Customers
from oss.errors import Conflict, InvalidInput, NotFound
from oss.store.database import Database


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[Customers]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    await db.migrate()
    yield Customers(db)
    await db.close()


async def test_customers_and_accounts(crm: Customers) -> None:
    acme = await crm.create_customer("acme", "Acme Ltd", email="noc@acme.example")
    assert acme["id"] == "acme" and acme["email"] == "noc@acme.example"
    with pytest.raises(Conflict):
        await crm.create_customer("acme", "again")
    with pytest.raises(InvalidInput, match=r"^id:"):
        await crm.create_customer("-bad", "x")
    with pytest.raises(InvalidInput, match=r"^email:"):
        await crm.create_customer("b", "B", email="not-an-address")
    account = await crm.create_account("acme", "main", "JPY", billing_day=15)
    assert account["id"].startswith("ba-") and account["billing_day"] == 15
    assert await crm.get_account(account["id"]) == account
    for currency in ("eur", "XXX", "EURO"):
        with pytest.raises(InvalidInput, match=r"^currency:"):
            await crm.create_account("acme", "x", currency)
    for day in (0, 29, True):
        with pytest.raises(InvalidInput, match=r"^billing_day:"):
            await crm.create_account("acme", "x", "EUR", billing_day=day)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no customer ghost"):
        await crm.create_account("ghost", "x", "EUR")
    await crm.create_account("acme", "second", "EUR", id="acme-2")
    with pytest.raises(Conflict):
        await crm.create_account("acme", "again", "EUR", id="acme-2")
    with pytest.raises(NotFound):
        await crm.get_customer("ghost")
    await crm.create_customer("zeta", "Zeta")
    page, total = await crm.list_customers(limit=1, offset=1)
    assert total == 2 and [c["id"] for c in page] == ["zeta"]
    accounts, total = await crm.list_accounts(customer="acme")
    assert total == 2 and {a["currency"] for a in accounts} == {"JPY", "EUR"}
    assert await crm.list_accounts(customer="zeta") == ([], 0)

"""TMF678 over a real daemon and app, on SQLite and PostgreSQL: every customerBill and
appliedCustomerBillingRate response validates against the official schema; the bill run is an
operator's; PATCH issues a bill once and refuses everything else. And `oss bill` over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

import oss.cli.bill  # noqa: F401  (attaches `oss bill` to the CLI app)
from oss import tmf
from oss.api import create_app
from oss.app import assemble
from oss.auth_roles import Role
from oss.cli.client import ClientError
from oss.cli.main import app as cli_app
from oss.daemon import Daemon
from oss.settings import load_settings
from tests.integration.bss.bill_fixtures import (
    SLICE,
    VPN,
    add_account,
    add_outage,
    add_product,
    add_usage,
    at,
)
from tests.peers.app_server import serving

SPEC = tmf.spec(tmf.CUSTOMER_BILL)
BILLS = f"{SPEC.base_path}/customerBill"
RATES = f"{SPEC.base_path}/appliedCustomerBillingRate"


@dataclass
class BillApi:
    daemon: Daemon
    app: FastAPI
    viewer: httpx.AsyncClient
    operator: httpx.AsyncClient
    tokens: dict[Role, str]


@pytest.fixture
async def bill_api(tmp_path: Path, database_url: str) -> AsyncIterator[BillApi]:
    async with assemble(
        load_settings(None, state_dir=tmp_path, database_url=database_url)
    ) as daemon:
        app = create_app(daemon)
        transport = httpx.ASGITransport(app=app)
        tokens = {}
        for role in (Role.VIEWER, Role.OPERATOR):
            tokens[role], _ = await daemon.tokens.create(
                name=f"bill-{role.value}", role=role, actor="test"
            )

        def client(token: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=transport,
                base_url="http://oss.test",
                headers={"Authorization": f"Bearer {token}"},
            )

        async with client(tokens[Role.VIEWER]) as viewer, client(tokens[Role.OPERATOR]) as op:
            yield BillApi(daemon, app, viewer, op, tokens)


def bill_doc(doc: Any) -> Any:
    assert SPEC.errors(doc, "CustomerBill") == [], doc
    return doc


def rate_doc(doc: Any) -> Any:
    assert SPEC.errors(doc, "AppliedCustomerBillingRate") == [], doc
    return doc


async def seed(api: BillApi) -> None:
    db = api.daemon.db
    await add_account(db, "acme")
    await add_product(db, "p-slice", "acme", SLICE, at(1, month=9), service="slice-acme")
    await add_usage(db, "u1", "p-slice", "acme", "1500", at(3, month=10))
    await add_outage(db, "slice-acme", at(10, 8, month=10), at(10, 10, month=10))
    await add_account(db, "beta")
    await add_product(db, "p-vpn", "beta", VPN, at(16, month=10))


def test_the_routes_sit_at_the_spec_base_path() -> None:
    assert SPEC.base_path == "/tmf-api/customerBillManagement/v4"


async def test_bill_run_list_get_rates_and_issue(bill_api: BillApi) -> None:
    await seed(bill_api)
    refused = await bill_api.viewer.post("/api/v1/bill-runs", json={"period": "2025-10"})
    assert refused.status_code == 403
    r = await bill_api.operator.post("/api/v1/bill-runs", json={"period": "2026-10"})
    assert r.status_code == 200, r.text
    run = r.json()
    assert [b["account"] for b in run["bills"]] == ["acme", "beta"]
    acme_id = run["bills"][0]["billId"]

    r = await bill_api.viewer.get(BILLS)
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "2"
    docs = [bill_doc(d) for d in r.json()]
    assert {d["state"] for d in docs} == {"new"}
    r = await bill_api.viewer.get(BILLS, params={"billingAccount.id": "acme", "period": "2026-10"})
    (acme,) = [bill_doc(d) for d in r.json()]
    assert acme["id"] == str(acme_id)
    assert acme["billingPeriod"] == {
        "startDateTime": "2026-10-01T00:00:00Z",
        "endDateTime": "2026-11-01T00:00:00Z",
    }
    # 500.00 + 500 GB at 0.02 = 10.00 - 10 % credit (2 h of 744 h: 99.731 %) = 460.00; 19 %
    assert acme["taxExcludedAmount"] == {"unit": "EUR", "value": 460.0}
    assert acme["taxIncludedAmount"] == {"unit": "EUR", "value": 547.4}
    assert acme["taxItem"][0]["taxAmount"] == {"unit": "EUR", "value": 87.4}
    assert "billNo" not in acme
    r = await bill_api.viewer.get(BILLS, params={"state": "sent"})
    assert r.json() == [] and r.headers["X-Total-Count"] == "0"

    r = await bill_api.viewer.get(f"{BILLS}/{acme_id}")
    assert bill_doc(r.json()) == acme
    r = await bill_api.viewer.get(f"{BILLS}/{acme_id}", params={"fields": "state"})
    assert r.json() == {"id": str(acme_id), "href": acme["href"], "state": "new"}

    r = await bill_api.viewer.get(RATES, params={"bill.id": acme_id})
    rates = [rate_doc(d) for d in r.json()]
    assert [d["name"] for d in rates] == ["recurring", "usage", "sla_credit"]
    credit = rates[2]
    assert credit["type"] == "appliedBillingCredit"
    assert credit["taxExcludedAmount"] == {"unit": "EUR", "value": -50.0}
    evidence = {c["name"]: c["value"] for c in credit["characteristic"]}["evidence"]
    assert evidence["sla"]["availability"]["outageWindows"][0]["cause"] == "link 3"
    r = await bill_api.viewer.get(f"{RATES}/{credit['id']}")
    assert rate_doc(r.json()) == credit

    # PATCH: only new -> sent, by an operator, once
    r = await bill_api.viewer.patch(f"{BILLS}/{acme_id}", json={"state": "sent"})
    assert r.status_code == 403
    r = await bill_api.operator.patch(f"{BILLS}/{acme_id}", json={"state": "settled"})
    assert r.status_code == 422
    r = await bill_api.operator.patch(f"{BILLS}/{acme_id}", json={"billNo": "x"})
    assert r.status_code == 422
    r = await bill_api.operator.patch(f"{BILLS}/{acme_id}", json={"state": "sent"})
    assert r.status_code == 200, r.text
    sent = bill_doc(r.json())
    assert sent["state"] == "sent" and sent["billNo"].endswith("-000001")
    r = await bill_api.operator.patch(f"{BILLS}/{acme_id}", json={"state": "sent"})
    assert r.status_code == 409
    assert SPEC.errors(r.json(), "Error") == []
    # a re-run leaves the issued bill as it is
    r = await bill_api.operator.post(
        "/api/v1/bill-runs", json={"period": "2026-10", "account": "acme"}
    )
    (again,) = r.json()["bills"]
    assert again["recomputed"] is False and again["state"] == "sent"
    r = await bill_api.viewer.get(f"{BILLS}/{acme_id}")
    assert bill_doc(r.json())["taxIncludedAmount"] == sent["taxIncludedAmount"]


async def test_unknown_ids_are_tmf_errors(bill_api: BillApi) -> None:
    for path in (f"{BILLS}/999", f"{RATES}/999"):
        r = await bill_api.viewer.get(path)
        assert r.status_code == 404
        assert SPEC.errors(r.json(), "Error") == []
    r = await bill_api.operator.post("/api/v1/bill-runs", json={"period": "2026-10", "x": 1})
    assert r.status_code == 422
    r = await bill_api.operator.post(
        "/api/v1/bill-runs", json={"period": "2026-10", "account": "ghost"}
    )
    assert r.status_code == 404


@pytest.fixture
async def bill_server(bill_api: BillApi) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a loopback port, for the (synchronous) CLI."""
    async with serving(bill_api.app) as url:
        yield url


def oss_cli(url: str, token: str, *args: str) -> str:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli_app, ["--url", url, "--token", token, *args]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


async def test_the_cli_runs_lists_shows_and_issues(bill_api: BillApi, bill_server: str) -> None:
    await seed(bill_api)
    token = bill_api.tokens[Role.OPERATOR]

    async def cli(*args: str) -> str:
        return await asyncio.to_thread(oss_cli, bill_server, token, *args)

    ran = json.loads(await cli("-o", "json", "bill", "run", "--period", "2026-10"))
    acme = ran["bills"][0]
    assert (acme["account"], acme["total"]) == ("acme", "547.40")
    table = await cli("bill", "run", "--period", "2026-10", "--account", "beta")
    assert "beta" in table and "184.26 EUR" in table  # 154.84 + 29.42

    listed = json.loads(await cli("-o", "json", "bill", "list", "--account", "acme"))
    assert [bill_doc(d)["id"] for d in listed] == [str(acme["billId"])]

    shown = await cli("bill", "show", str(acme["billId"]))
    for expected in (
        "DRAFT bill",
        "Account acme (acme)",
        "2026-10-01 00:00 - 2026-11-01 00:00",
        "Recurring charges",
        "500.00",
        "1000 - 10000 GB: 500 x 0.02 = 10.00",  # the tier breakdown
        "SLA credits",
        "-50.00",
        "measured 99.731 % vs target 99.9 %",
        "outage 2026-10-10 08:00 - 2026-10-10 10:00 (2h 00m)",
        "cause: link 3",
        "VAT 19 %",
        "87.40",
        "547.40",
    ):
        assert expected in shown, (expected, shown)
    alarm_ids = await _alarm_ids(bill_api)
    assert f"alarms {', '.join(f'#{i}' for i in alarm_ids)}" in shown

    as_json = json.loads(await cli("-o", "json", "bill", "show", str(acme["billId"])))
    assert bill_doc(as_json["customerBill"])["state"] == "new"
    assert [rate_doc(r)["name"] for r in as_json["appliedCustomerBillingRate"]] == [
        "recurring",
        "usage",
        "sla_credit",
    ]

    issued = json.loads(await cli("-o", "json", "bill", "issue", str(acme["billId"])))
    assert bill_doc(issued)["state"] == "sent"
    shown = await cli("bill", "show", str(acme["billId"]))
    assert f"Bill {issued['billNo']}" in shown
    again = await asyncio.to_thread(
        CliRunner().invoke,
        cli_app,
        ["--url", bill_server, "--token", token, "bill", "issue", str(acme["billId"])],
    )
    assert isinstance(again.exception, ClientError) and again.exception.exit_code == 1
    assert "an issued bill cannot change" in str(again.exception)


async def _alarm_ids(api: BillApi) -> list[int]:
    from sqlalchemy import select

    from oss.store.tables import AlarmRow

    async with api.daemon.db.sessions() as s:
        return sorted((await s.scalars(select(AlarmRow.id))).all())


async def test_a_bill_of_the_open_period_is_a_marked_draft_that_cannot_be_issued(
    bill_api: BillApi, bill_server: str
) -> None:
    """Issue 14, defect 3: `oss bill run --period <this month>` then `oss bill issue` made an
    immutable bill from a partial period. Now the draft says so and issuing is a 409."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    month = f"{now.year:04d}-{now.month:02d}"
    await add_account(bill_api.daemon.db, "acme")
    await add_product(
        bill_api.daemon.db, "p-vpn", "acme", VPN, at(1, month=now.month, year=now.year)
    )
    r = await bill_api.operator.post("/api/v1/bill-runs", json={"period": month})
    assert r.status_code == 200, r.text
    (summary,) = r.json()["bills"]
    assert summary["periodClosed"] is False
    bill_id = summary["billId"]

    doc = bill_doc((await bill_api.viewer.get(f"{BILLS}/{bill_id}")).json())
    assert doc["periodClosed"] is False and "partial" in doc["periodNote"]
    refused = await bill_api.operator.patch(f"{BILLS}/{bill_id}", json={"state": "sent"})
    assert refused.status_code == 409, refused.text
    end = doc["billingPeriod"]["endDateTime"][:10]
    assert "has not ended" in refused.json()["message"] and end in refused.json()["message"]
    assert bill_doc((await bill_api.viewer.get(f"{BILLS}/{bill_id}")).json())["state"] == "new"

    token = bill_api.tokens[Role.OPERATOR]
    listed = await asyncio.to_thread(oss_cli, bill_server, token, "bill", "list")
    assert "new (period open)" in listed
    shown = await asyncio.to_thread(oss_cli, bill_server, token, "bill", "show", str(bill_id))
    assert "PERIOD OPEN" in shown
    issue = await asyncio.to_thread(
        CliRunner().invoke,
        cli_app,
        ["--url", bill_server, "--token", token, "bill", "issue", str(bill_id)],
    )
    assert isinstance(issue.exception, ClientError) and issue.exception.exit_code == 1
    assert "has not ended" in str(issue.exception)

"""The showcase, `oss demo`, as a user runs it: one command that starts its own daemon and the
metro lab, orders a slice, breaks a link on its path, restores it and bills the month. Run with
`--keep` so the test can check what it left behind through the API (not the demo's own
narration): the order completed, every alarm cleared, and a draft bill with the recurring charge
and an SLA credit whose evidence names the outage (the alarm ids, the faulted link). Once on
SQLite in the demo's state directory, once on a real PostgreSQL (`--database-url`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from oss.cli.config import load_cli_config
from oss.demo import PreconditionError, check_lab_subnet, metro_topology
from tests.peers.daemon import OSS
from tests.peers.lab_process import lab_state_dir
from tests.peers.ports import worker_share
from tests.peers.postgres import PostgresServer, create_database

pytestmark = pytest.mark.integration

ALARMS = "/tmf-api/alarm/v4/alarm"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"
BILLS = "/tmf-api/customerBillManagement/v4/customerBill"
RATES = "/tmf-api/customerBillManagement/v4/appliedCustomerBillingRate"
DEMO_TIMEOUT_S = 300


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"


@contextlib.contextmanager
def demo_leftovers(state_dir: Path) -> Iterator[None]:
    """Whatever the demo left running (by --keep, or a killed demo): the lab is stopped and
    the daemon the demo recorded in its state directory gets SIGTERM."""
    with lab_state_dir(state_dir / "lab"):
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                recorded = json.loads((state_dir / "demo.json").read_text())
                pid = int(recorded["daemon_pid"])
                if _alive(pid):
                    os.kill(pid, signal.SIGTERM)
                    deadline = time.monotonic() + 30
                    while _alive(pid) and time.monotonic() < deadline:
                        time.sleep(0.2)


def free_test_subnet() -> str:
    """A free 127.10.N.0/24 (N in 100..250) for the demo's lab: never the metro file's own
    addresses, which a user's `make run` lab may hold."""
    share = worker_share(range(100, 251))  # this xdist worker's: never another's lab
    for n in random.sample(share, min(40, len(share))):
        subnet = f"127.10.{n}.0/24"
        try:
            check_lab_subnet(metro_topology(), subnet)
        except PreconditionError:
            continue
        return subnet
    raise AssertionError("no free 127.10.N.0/24 for the demo's lab")


def run_demo(state_dir: Path, *extra: str) -> dict[str, Any]:
    subnet = ["--subnet", free_test_subnet()]
    done = subprocess.run(
        [OSS, "-o", "json", "demo", "--keep", "--state-dir", str(state_dir), *subnet, *extra],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # the story goes to stderr with -o json; each step is narrated
    for heading in ("Ordering", "Breaking a link", "Restoring the link", "Running the bill"):
        assert heading in done.stderr, done.stderr
    facts: dict[str, Any] = json.loads(done.stdout)
    return facts


def chars(rate: dict[str, Any]) -> dict[str, Any]:
    return {c["name"]: c["value"] for c in rate.get("characteristic") or []}


def check_outcome(facts: dict[str, Any], state_dir: Path) -> None:
    saved = load_cli_config(state_dir / "cli.yaml")
    assert saved.url == facts["url"]
    api = httpx.Client(
        base_url=facts["url"], headers={"Authorization": f"Bearer {saved.token}"}, timeout=30
    )
    with api:
        order = api.get(f"{ORDERS}/{facts['order']}").json()
        assert order["state"] == "completed", order
        [item] = order["productOrderItem"]
        assert item["product"]["realizingService"][0]["name"] == facts["service"]

        alarms = api.get(ALARMS, params={"limit": 1000}).json()
        raised_by_fault = [a for a in alarms if int(a["id"]) in set(facts["alarms"])]
        assert raised_by_fault and all(a["state"] == "cleared" for a in raised_by_fault), alarms
        assert [a for a in alarms if a["state"] != "cleared"] == [], alarms
        [root] = [a for a in raised_by_fault if a["isRootCause"]]
        assert root["alarmedObject"]["id"] == facts["link"], root
        [service_alarm] = [a for a in raised_by_fault if a["alarmedObjectType"] == "service"]
        assert service_alarm["alarmedObject"]["id"] == facts["service"]

        bill_id = facts["bill"]["customerBill"]["id"]
        bill = api.get(f"{BILLS}/{bill_id}").json()
        assert bill["billingAccount"]["id"] == facts["account"]
        rates = api.get(RATES, params={"bill.id": bill_id, "limit": 1000}).json()

    by_kind: dict[str, list[dict[str, Any]]] = {}
    for rate in rates:
        by_kind.setdefault(chars(rate)["kind"], []).append(rate)
    [recurring] = by_kind["recurring"]
    assert Decimal(str(recurring["taxExcludedAmount"]["value"])) > 0, recurring
    [credit] = by_kind["sla_credit"]
    assert Decimal(str(credit["taxExcludedAmount"]["value"])) < 0, credit

    availability = chars(credit)["evidence"]["sla"]["availability"]
    assert Decimal(availability["measuredPercent"]) < Decimal("99.9"), availability
    windows = availability["outageWindows"]
    assert len(windows) == 1, windows
    [window] = windows
    assert {int(service_alarm["id"]), int(root["id"])} <= set(window["alarmIds"]), window
    assert f"link {facts['link']}" in window["cause"], window
    total = Decimal(str(bill["taxExcludedAmount"]["value"]))
    assert total == sum(Decimal(str(r["taxExcludedAmount"]["value"])) for r in rates)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_demo_bills_the_sla_credit_of_the_injected_outage(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    extra: list[str] = []
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        extra = ["--database-url", create_database(server, f"oss_demo_{uuid.uuid4().hex[:12]}")]
    state_dir = tmp_path / "demo"
    with demo_leftovers(state_dir):
        facts = run_demo(state_dir, *extra)
        assert facts["state_dir"] == str(state_dir)
        check_outcome(facts, state_dir)


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [OSS, "demo", "--state-dir", str(tmp_path / "demo"), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {port}" in done.stderr and "in use" in done.stderr, done.stderr
    assert not (tmp_path / "demo" / "daemon.log").exists()


@pytest.mark.parametrize(
    ("subnet", "reason"),
    [("10.1.2.0/24", "outside 127.0.0.0/8"), ("127.10.200.0/29", "has room for 6 of 10")],
)
def test_a_bad_subnet_is_refused_before_anything_starts(
    tmp_path: Path, subnet: str, reason: str
) -> None:
    done = subprocess.run(
        [OSS, "demo", "--state-dir", str(tmp_path / "demo"), "--subnet", subnet],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--subnet" in done.stderr and reason in done.stderr, done.stderr
    assert not (tmp_path / "demo" / "daemon.log").exists()

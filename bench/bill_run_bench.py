"""The bill run over generated accounts (goal: 100k accounts under 60 s on one core).

Generated from a fixed seed: N billing accounts (EUR, billing day 1), each with 1-3 products
(metro slices with usage tiers and SLA terms, business VPNs with SLA terms, some activated or
terminated mid-month so they prorate), two usage records per slice in the period, and for ~5 %
of the slices a service outage (a link root-cause alarm with a service alarm under it) long
enough to miss the SLA: those bills get a credit line with its evidence.

Timed, on the same database in the same run:
- floor: plain SQL that reads and sums the same rows the bill run reads (accounts, products,
  usage grouped by product, the service alarms) without rating or writing anything;
- the first bill run (creates every draft bill and its lines, claims every usage record);
- a re-run (recomputes every draft in place: deletes and rewrites its lines).
The ratio run / floor says what rating and posting cost over merely reading the data. Each
run's CPU time (the process's, so SQLite's driver thread counts too) says whether it fits one
core: on a loaded machine the wall time also holds the time the process waited for a CPU. Peak
memory is the process's ru_maxrss after generation and after the runs (generation is done
batch by batch, so the growth is the bill run's), plus the bill run's Python heap peak from
tracemalloc in a separate, smaller run (tracemalloc slows everything down).

Bounded: at most 200k accounts; the backend is SQLite in a temporary directory by default, or
a PostgreSQL started like the tests' (initdb in a temp dir, loopback port) with --postgres.

    .venv/bin/python -m bench.bill_run_bench [--accounts 100000] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bss_bridge.billing import BillRun
from bss_bridge.catalog import Catalog
from bss_bridge.sla import compliance_many
from bss_bridge.tables import (
    BillingAccountRow,
    BillLineRow,
    BillRow,
    CustomerRow,
    ProductRow,
    UsageRow,
)
from oss.bss_ports import records_for
from oss.store import Database
from oss.store.tables import AlarmRow

MAX_ACCOUNTS = 200_000
SEED = 678
PERIOD = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)
RUN_AT = datetime(2026, 12, 2, tzinfo=UTC)
OUTAGE_SHARE = 0.05
GEN_BATCH = 5_000


def _maxrss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rows(first: int, count: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """The rows of accounts [first, first + count)."""
    out: dict[str, list[dict[str, Any]]] = {
        "customers": [],
        "accounts": [],
        "products": [],
        "usage": [],
        "alarms": [],
    }
    for n in range(first, first + count):
        account = f"acct-{n:06d}"
        out["customers"].append({"id": f"cust-{n:06d}", "name": f"Customer {n}"})
        out["accounts"].append(
            {
                "id": account,
                "customer_id": f"cust-{n:06d}",
                "name": f"Account {n}",
                "currency": "EUR",
                "billing_day": 1,
            }
        )
        for k in range(rng.randint(1, 3)):
            product = f"p-{n:06d}-{k}"
            service = f"svc-{n:06d}-{k}"
            is_slice = rng.random() < 0.7
            start = START - timedelta(days=40)
            end = None
            shape = rng.random()
            if shape < 0.1:
                start = START + timedelta(days=rng.randint(1, 27), hours=rng.randint(0, 23))
            elif shape < 0.15:
                end = START + timedelta(days=rng.randint(1, 27))
            out["products"].append(
                {
                    "id": product,
                    "account_id": account,
                    "customer_id": f"cust-{n:06d}",
                    "offering_id": "metro-slice-200" if is_slice else "business-vpn",
                    "service_name": service,
                    "state": "terminated" if end else "active",
                    "params": {},
                    "start_at": start,
                    "end_at": end,
                    "created_at": start,
                }
            )
            if not is_slice:
                continue
            for half in range(2):
                begin = max(start, START) + timedelta(hours=1 + half)  # inside the period
                out["usage"].append(
                    {
                        "key": f"data:{product}:{half}",
                        "product_id": product,
                        "account_id": account,
                        "service_name": service,
                        "usage_type": "data",
                        "unit": "GB",
                        "quantity": Decimal(rng.randint(0, 4000)) + Decimal("0.125"),
                        "start_at": begin,
                        "end_at": begin + timedelta(hours=1),
                        "state": "rated",
                    }
                )
            if rng.random() < OUTAGE_SHARE:
                down = START + timedelta(days=rng.randint(2, 25), hours=rng.randint(0, 20))
                up = down + timedelta(minutes=rng.randint(60, 600))
                out["alarms"].append(
                    {"service": service, "raised": down, "cleared": up, "link": rng.randint(1, 99)}
                )
    return out


def _alarm(kind: str, obj: str, raised: datetime, cleared: datetime) -> dict[str, Any]:
    return {
        "reduction_key": f"{kind}:{obj}:{raised.isoformat()}",
        "open": False,
        "alarm_type": "communicationsAlarm",
        "perceived_severity": "major",
        "probable_cause": "lossOfSignal",
        "specific_problem": f"{kind} {obj} down",
        "alarmed_object_type": kind,
        "alarmed_object": obj,
        "state": "cleared",
        "raised_time": raised,
        "changed_time": cleared,
        "cleared_time": cleared,
        "service_affecting": True,
        "is_root_cause": kind == "link",
        "affected_services": [],
    }


async def generate(db: Database, accounts: int) -> dict[str, int]:
    rng = random.Random(SEED)
    counts = dict.fromkeys(("products", "usage", "outages"), 0)
    for first in range(0, accounts, GEN_BATCH):
        rows = _rows(first, min(GEN_BATCH, accounts - first), rng)
        async with db.transaction() as s:
            await s.execute(insert(CustomerRow), rows["customers"])
            await s.execute(insert(BillingAccountRow), rows["accounts"])
            await s.execute(insert(ProductRow), rows["products"])
            if rows["usage"]:
                await s.execute(insert(UsageRow), rows["usage"])
            for outage in rows["alarms"]:
                link = _alarm("link", str(outage["link"]), outage["raised"], outage["cleared"])
                root_id = (await s.execute(insert(AlarmRow).returning(AlarmRow.id), link)).scalar()
                service = _alarm("service", outage["service"], outage["raised"], outage["cleared"])
                service["parent_id"] = root_id
                await s.execute(insert(AlarmRow), service)
        counts["products"] += len(rows["products"])
        counts["usage"] += len(rows["usage"])
        counts["outages"] += len(rows["alarms"])
    return counts


async def floor(db: Database) -> float:
    """Read and sum what the bill run reads, with plain SQL and nothing else."""
    started = time.perf_counter()
    async with db.sessions() as s:
        accounts = (await s.execute(select(BillingAccountRow.id, BillingAccountRow.currency))).all()
        products = (
            await s.execute(
                select(ProductRow.id, ProductRow.account_id, ProductRow.offering_id).where(
                    ProductRow.start_at.is_not(None)
                )
            )
        ).all()
        usage: dict[str, Decimal] = {}
        for product_id, quantity in await s.execute(select(UsageRow.product_id, UsageRow.quantity)):
            usage[product_id] = usage.get(product_id, Decimal(0)) + quantity
        alarmed = (
            await s.execute(
                select(AlarmRow.alarmed_object, func.count()).group_by(AlarmRow.alarmed_object)
            )
        ).all()
    assert accounts and products and usage is not None and alarmed is not None
    return time.perf_counter() - started


async def bill(db: Database) -> tuple[float, list[Any]]:
    records = records_for(db)
    sla = partial(compliance_many, records=records)
    run = BillRun(
        db,
        Catalog.load(),
        sla=sla,
        alarms=records.alarms,
        clock=lambda: RUN_AT,
        batch_size=1000,
    )
    started = time.perf_counter()
    summaries = await run.run(PERIOD)
    return time.perf_counter() - started, summaries


async def timed_bill(db: Database) -> tuple[float, float, list[Any]]:
    """(wall s, CPU s of the whole process, summaries) of one bill run."""
    cpu = time.process_time()
    wall, summaries = await bill(db)
    return wall, time.process_time() - cpu, summaries


async def totals(db: Database) -> dict[str, int]:
    async with db.sessions() as s:
        lines = dict(
            (kind, n)
            for kind, n in await s.execute(
                select(BillLineRow.kind, func.count()).group_by(BillLineRow.kind)
            )
        )
        bills = int(await s.scalar(select(func.count()).select_from(BillRow)) or 0)
        unbilled = int(
            await s.scalar(
                select(func.count()).select_from(UsageRow).where(UsageRow.bill_id.is_(None))
            )
            or 0
        )
    return {"bills": bills, "unbilled usage": unbilled, **lines}


@contextmanager
def database_url(postgres: bool) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="oss-bill-bench-") as tmp:
        if not postgres:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            return
        from tests.peers.postgres import create_database, running_postgres

        with running_postgres() as server:
            yield create_database(server, "bill_bench")


async def heap_peak(url: str, accounts: int) -> float:
    """The bill run's Python heap peak (MiB) on a fresh database of `accounts` accounts."""
    db = Database(url)
    try:
        await db.migrate()
        await generate(db, accounts)
        tracemalloc.start()
        await bill(db)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        await db.close()
    return peak / 2**20


async def main_async(args: argparse.Namespace) -> None:
    backend = "postgresql" if args.postgres else "sqlite"
    print(f"bill run bench: {args.accounts} accounts on {backend}")
    print(f"python {platform.python_version()} on {platform.machine()}, one event loop (one core)")
    with database_url(args.postgres) as url:
        db = Database(url)
        try:
            await db.migrate()
            started = time.perf_counter()
            counts = await generate(db, args.accounts)
            print(
                f"generated in {time.perf_counter() - started:.1f} s: {counts['products']} "
                f"products, {counts['usage']} usage records, {counts['outages']} outages"
            )
            rss_before = _maxrss_mb()
            floor_s = await floor(db)
            run_s, run_cpu, summaries = await timed_bill(db)
            rerun_s, rerun_cpu, _ = await timed_bill(db)
            rss_after = _maxrss_mb()
            result = await totals(db)
        finally:
            await db.close()
    total = sum((s.total for s in summaries), Decimal(0))
    print(f"bills: {result}")
    print(f"sum of all bills: {total} EUR")
    print(f"floor (plain SQL read + sum):  {floor_s:7.2f} s")
    print(
        f"bill run (first):              {run_s:7.2f} s  = {run_s / floor_s:5.1f} x floor"
        f"  (CPU {run_cpu:.1f} s)"
    )
    print(
        f"bill run (re-run, in place):   {rerun_s:7.2f} s  = {rerun_s / floor_s:5.1f} x floor"
        f"  (CPU {rerun_cpu:.1f} s)"
    )
    goal = "met" if run_s < 60 else "NOT met"
    print(f"goal (< 60 s for the first run): {goal}")
    print(f"peak RSS: {rss_before:.0f} MiB after generation, {rss_after:.0f} MiB after the runs")
    if args.heap_accounts:
        with database_url(args.postgres) as url:
            peak = await heap_peak(url, args.heap_accounts)
        print(
            f"bill run Python heap peak (tracemalloc, {args.heap_accounts} accounts): "
            f"{peak:.1f} MiB"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--heap-accounts",
        type=int,
        default=10_000,
        help="accounts for the tracemalloc run (0: skip)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.accounts <= MAX_ACCOUNTS:
        parser.error(f"--accounts must be 1..{MAX_ACCOUNTS}")
    if not 0 <= args.heap_accounts <= MAX_ACCOUNTS:
        parser.error(f"--heap-accounts must be 0..{MAX_ACCOUNTS}")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

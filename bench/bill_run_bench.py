"""The bill run over generated accounts, on SQLite and PostgreSQL (goal, issue 16: the first
run within 8x a plain-SQL read of the same rows, the bills unchanged to the cent).

Generated from a fixed seed: N billing accounts (EUR, billing day 1), each with 1-3 products
(metro slices with usage tiers and SLA terms, business VPNs with SLA terms, some activated or
terminated mid-month so they prorate), two usage records per slice in the period, and for ~5 %
of the slices a service outage (a link root-cause alarm with a service alarm under it) long
enough to miss the SLA: those bills get a credit line with its evidence.

Timed per engine, on the same database in the same run:
- floor: plain SQL that reads and sums the same rows the bill run reads (accounts, products,
  usage grouped by product, the service alarms) without rating or writing anything;
- the first bill run (creates every draft bill and its lines, claims every usage record);
- a re-run (recomputes every draft in place: deletes and rewrites its lines).
The ratio run / floor says what rating and posting cost over merely reading the data: by wall
time, and by CPU time (the process's, SQLite's driver thread included, plus on PostgreSQL the
CPU of the server's backends for the bench's database), which a loaded machine disturbs less.
Peak memory is the process's ru_maxrss after generation and after the runs, plus the bill
run's Python heap peak from tracemalloc in a separate, smaller run.

Checked, not only timed: every account's bill (subtotal, tax, total, line count) is the same
on both engines, after the re-run as after the first run, and for the sizes in KNOWN the same
as before issue 16's changes (a digest of every account's figures). Exit status 1 otherwise.

Bounded: at most 200k accounts. SQLite in a temporary directory; PostgreSQL started like the
tests' (initdb in a temp dir, loopback port). Both by default where PostgreSQL is installed.

    .venv/bin/python -m bench.bill_run_bench [--accounts 100000] [--engines sqlite postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
GOAL_RATIO = 8  # issue 16: the first run within 8x the floor
SQLITE, POSTGRES = "sqlite", "postgresql"
PG_DATABASE = "bill_bench"
# The bills of before issue 16 (the same generated rows): the sum, and a digest of every
# account's subtotal, tax, total and line count (`digest`). A change of the run must keep both.
KNOWN = {
    20_000: ("21531912.02", "7aabcfe042e23c5af54ad6e91a53656f6ecc6874c95f8b444a667db8acee6531"),
    100_000: ("106506696.97", "951180b58dddcc01bead450847ae8c14d230b87548c20b1d8c77b52c1707ff4a"),
}


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
def database_url(engine: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="oss-bill-bench-") as tmp:
        if engine == SQLITE:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            return
        from tests.peers.postgres import create_database, running_postgres

        with running_postgres() as server:
            yield create_database(server, PG_DATABASE)


def server_cpu(engine: str) -> float:
    """CPU seconds of the PostgreSQL backends serving the bench's database (0 on SQLite, whose
    work is in this process): the server's share of a run, which the process's CPU misses."""
    if engine == SQLITE:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if not title.startswith("postgres:") or f" {PG_DATABASE} " not in title:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a backend that ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class Timed:
    wall: float
    cpu: float  # this process, driver threads included
    server: float  # PostgreSQL's backends (0 on SQLite)

    @property
    def all_cpu(self) -> float:
        return self.cpu + self.server


@contextmanager
def timing(engine: str) -> Iterator[list[Timed]]:
    out: list[Timed] = []
    wall, cpu, server = time.perf_counter(), time.process_time(), server_cpu(engine)
    yield out
    out.append(
        Timed(time.perf_counter() - wall, time.process_time() - cpu, server_cpu(engine) - server)
    )


def per_account(summaries: list[Any]) -> dict[str, tuple[str, str, str, int]]:
    """Every account's (subtotal, tax, total, lines) as text: what must not change."""
    return {s.account_id: (str(s.subtotal), str(s.tax), str(s.total), s.lines) for s in summaries}


def digest(accounts: dict[str, tuple[str, str, str, int]]) -> str:
    text = "".join(f"{a} {' '.join(map(str, v))}\n" for a, v in sorted(accounts.items()))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class EngineRun:
    engine: str
    counts: dict[str, int]
    floor: Timed
    first: Timed
    rerun: Timed
    accounts: dict[str, tuple[str, str, str, int]]
    rerun_same: bool
    result: dict[str, int]
    rss: tuple[float, float]

    @property
    def total(self) -> Decimal:
        return sum((Decimal(v[2]) for v in self.accounts.values()), Decimal(0))


async def run_engine(engine: str, accounts: int) -> EngineRun:
    with database_url(engine) as url:
        db = Database(url)
        try:
            await db.migrate()
            started = time.perf_counter()
            counts = await generate(db, accounts)
            print(
                f"[{engine}] generated in {time.perf_counter() - started:.1f} s: "
                f"{counts['products']} products, {counts['usage']} usage records, "
                f"{counts['outages']} outages"
            )
            rss_before = _maxrss_mb()
            with timing(engine) as floor_t:
                await floor(db)
            with timing(engine) as first_t:
                _, first = await bill(db)
            with timing(engine) as rerun_t:
                _, again = await bill(db)
            rss_after = _maxrss_mb()
            result = await totals(db)
        finally:
            await db.close()
    once = per_account(first)
    return EngineRun(
        engine, counts, floor_t[0], first_t[0], rerun_t[0], once, per_account(again) == once,
        result, (rss_before, rss_after),
    )  # fmt: skip


def report(run: EngineRun) -> None:
    e, fl = run.engine, run.floor
    print(f"[{e}] bills: {run.result}")
    print(f"[{e}] sum of all bills: {run.total} EUR; per-account digest {digest(run.accounts)}")
    print(
        f"[{e}] floor (plain SQL read + sum):  {fl.wall:7.2f} s  (CPU {fl.cpu:.2f} s"
        + (f" + server {fl.server:.2f} s)" if e == POSTGRES else ")")
    )
    for label, t in (("first", run.first), ("re-run, in place", run.rerun)):
        server = f" + server {t.server:.1f} s" if e == POSTGRES else ""
        print(
            f"[{e}] bill run ({label}): {t.wall:7.2f} s = {t.wall / fl.wall:5.1f} x floor (wall);"
            f"  CPU {t.cpu:.1f} s{server} = {t.all_cpu / fl.all_cpu:5.1f} x the floor's CPU"
        )
    goal = "met" if run.first.wall <= GOAL_RATIO * fl.wall else "NOT met"
    print(f"[{e}] goal (first run <= {GOAL_RATIO}x the floor, wall): {goal}")
    print(f"[{e}] re-run left every account's bill as the first run made it: {run.rerun_same}")
    print(f"[{e}] peak RSS: {run.rss[0]:.0f} MiB after generation, {run.rss[1]:.0f} MiB after")


def checks(runs: list[EngineRun], accounts: int) -> list[str]:
    """What went wrong: totals that differ between engines, from today's figures (the bill
    run before issue 16, per account), or between a run and its re-run."""
    failed = [f"{r.engine}: the re-run changed a bill" for r in runs if not r.rerun_same]
    for r in runs[1:]:
        if r.accounts != runs[0].accounts:
            diff = [a for a in runs[0].accounts if r.accounts.get(a) != runs[0].accounts[a]]
            failed.append(f"{r.engine} differs from {runs[0].engine} on {len(diff)} accounts")
    known = KNOWN.get(accounts)
    for r in runs:
        if known is not None and (str(r.total), digest(r.accounts)) != known:
            failed.append(f"{r.engine}: not the bills of before (total {r.total}, {known[0]})")
    return failed


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


async def main_async(args: argparse.Namespace) -> int:
    engines = args.engines
    print(f"bill run bench: {args.accounts} accounts on {', '.join(engines)}")
    print(f"python {platform.python_version()} on {platform.machine()}, one event loop (one core)")
    runs = []
    for engine in engines:
        runs.append(await run_engine(engine, args.accounts))
        report(runs[-1])
    failed = checks(runs, args.accounts)
    known = " and today's per-account bills" if args.accounts in KNOWN else ""
    print("totals: " + ("; ".join(failed) if failed else f"equal between engines{known}"))
    if args.heap_accounts:
        with database_url(engines[0]) as url:
            peak = await heap_peak(url, args.heap_accounts)
        print(
            f"bill run Python heap peak (tracemalloc, {args.heap_accounts} accounts, "
            f"{engines[0]}): {peak:.1f} MiB"
        )
    return 1 if failed else 0


def default_engines() -> list[str]:
    """SQLite, and PostgreSQL too where its peer (initdb, pg_ctl) is installed."""
    from tests.peers.postgres import pg_bindir

    return [SQLITE, POSTGRES] if pg_bindir() is not None else [SQLITE]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=(SQLITE, POSTGRES),
        help="default: both where PostgreSQL is installed, else sqlite",
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL only")
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
    args.engines = [POSTGRES] if args.postgres else (args.engines or default_engines())
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

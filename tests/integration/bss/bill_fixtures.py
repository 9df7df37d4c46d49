"""Seeding for the bill run tests: accounts, products, usage records and service outages
written as rows (what orders, the usage collector and the alarm manager leave behind)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

from sqlalchemy import func, select

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

SLICE = "metro-slice-200"  # 500.00 EUR/month, 1000 GB free then 0.02, SLA 99.9 %
VPN = "business-vpn"  # 300.00 EUR/month, no usage, SLA 99.5 %


def at(day: int, hour: int = 0, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def fixed_clock(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def bill_run(db: Database, now: datetime, batch_size: int = 500) -> BillRun:
    records = records_for(db)
    return BillRun(
        db,
        Catalog.load(),
        sla=partial(compliance_many, records=records),
        alarms=records.alarms,
        clock=fixed_clock(now),
        batch_size=batch_size,
    )


async def add_account(
    db: Database, account: str, *, currency: str = "EUR", billing_day: int = 1
) -> None:
    async with db.transaction() as s:
        s.add(CustomerRow(id=f"cust-{account}", name=f"Customer {account}"))
        await s.flush()
        s.add(
            BillingAccountRow(
                id=account,
                customer_id=f"cust-{account}",
                name=f"Account {account}",
                currency=currency,
                billing_day=billing_day,
            )
        )


async def add_product(
    db: Database,
    product: str,
    account: str,
    offering: str,
    start: datetime,
    end: datetime | None = None,
    service: str | None = None,
) -> None:
    async with db.transaction() as s:
        s.add(
            ProductRow(
                id=product,
                account_id=account,
                customer_id=f"cust-{account}",
                offering_id=offering,
                service_name=service or f"svc-{product}",
                state="terminated" if end is not None else "active",
                params={},
                start_at=start,
                end_at=end,
                created_at=start,
            )
        )


async def add_usage(
    db: Database, key: str, product: str, account: str, gb: str, start: datetime
) -> None:
    async with db.transaction() as s:
        s.add(
            UsageRow(
                key=key,
                product_id=product,
                account_id=account,
                service_name=f"svc-{product}",
                usage_type="data",
                unit="GB",
                quantity=Decimal(gb),
                start_at=start,
                end_at=start + timedelta(hours=1),
                state="rated",
            )
        )


async def add_outage(
    db: Database, service: str, start: datetime, end: datetime, cause: str = "3"
) -> tuple[int, int]:
    """A link root-cause alarm and the service alarm under it, both cleared at `end`."""
    async with db.transaction() as s:
        root = AlarmRow(
            reduction_key=f"linkDown:{cause}:{start.isoformat()}",
            open=False,
            alarm_type="communicationsAlarm",
            perceived_severity="major",
            probable_cause="lossOfSignal",
            specific_problem=f"link {cause} down",
            alarmed_object_type="link",
            alarmed_object=cause,
            state="cleared",
            raised_time=start,
            changed_time=end,
            cleared_time=end,
            service_affecting=True,
            is_root_cause=True,
        )
        s.add(root)
        await s.flush()
        svc = AlarmRow(
            reduction_key=f"serviceDown:{service}:{start.isoformat()}",
            open=False,
            alarm_type="qualityOfServiceAlarm",
            perceived_severity="major",
            probable_cause="serviceUnavailable",
            specific_problem=f"service {service} down",
            alarmed_object_type="service",
            alarmed_object=service,
            state="cleared",
            raised_time=start,
            changed_time=end,
            cleared_time=end,
            service_affecting=True,
            parent_id=root.id,
        )
        s.add(svc)
        await s.flush()
        return root.id, svc.id


async def lines_of(db: Database, bill_id: int) -> list[tuple[str, str, Decimal, str]]:
    async with db.sessions() as s:
        rows = await s.scalars(
            select(BillLineRow).where(BillLineRow.bill_id == bill_id).order_by(BillLineRow.key)
        )
        return [(r.key, r.kind, r.amount, r.description) for r in rows]


async def bill_of(db: Database, bill_id: int) -> BillRow:
    async with db.sessions() as s:
        bill = await s.get(BillRow, bill_id)
        assert bill is not None
        return bill


async def usage_rows(db: Database) -> list[UsageRow]:
    async with db.sessions() as s:
        return list((await s.scalars(select(UsageRow).order_by(UsageRow.id))).all())


async def count(db: Database, table: type) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)

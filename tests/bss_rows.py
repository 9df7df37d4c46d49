"""Rows the BSS tests start from: a customer with a billing account, products on it, and the
alarms SLA compliance reads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bss_bridge.tables import BillingAccountRow, CustomerRow, ProductRow
from oss.store.tables import AlarmRow


async def add_account(
    s: AsyncSession, customer: str = "acme", account: str = "acme-1", billing_day: int = 1
) -> None:
    s.add(CustomerRow(id=customer, name=customer.upper()))
    await s.flush()  # no ORM relationship orders the inserts: the account refers to it
    s.add(
        BillingAccountRow(
            id=account,
            customer_id=customer,
            name=customer.upper(),
            currency="EUR",
            billing_day=billing_day,
        )
    )
    await s.flush()


def product_row(
    start: datetime | None,
    end: datetime | None = None,
    *,
    pid: str = "p-1",
    service: str = "svc-a",
    account: str = "acme-1",
    customer: str = "acme",
    offering: str = "metro-slice-200",
) -> ProductRow:
    return ProductRow(
        id=pid,
        account_id=account,
        customer_id=customer,
        offering_id=offering,
        service_name=service,
        state="active" if end is None else "terminated",
        params={},
        start_at=start,
        end_at=end,
    )


def alarm_row(
    raised: datetime,
    cleared: datetime | None,
    *,
    object_type: str = "service",
    obj: str = "svc-a",
    parent: int | None = None,
    affecting: bool = True,
    causes: list[int] | None = None,
) -> AlarmRow:
    """An alarm as the correlator leaves it: a service alarm under its root cause (`parent`)."""
    return AlarmRow(
        reduction_key=f"k:{object_type}:{obj}",
        open=cleared is None,
        alarm_type="qualityOfServiceAlarm",
        perceived_severity="major" if cleared is None else "cleared",
        probable_cause="serviceAffected",
        specific_problem="",
        alarmed_object_type=object_type,
        alarmed_object=obj,
        state="raised" if cleared is None else "cleared",
        raised_time=raised,
        changed_time=cleared or raised,
        cleared_time=cleared,
        service_affecting=affecting,
        affected_services=[],
        parent_id=parent,
        is_root_cause=parent is None and object_type != "service",
        details={"causes": causes} if causes else None,
    )

"""The BSS tables: customers and billing accounts, product orders and their items, products
(what a customer has), usage records, and bills with their lines.

Money and quantities are `Decimal`, stored exactly (`DecimalText`). Every charge carries a unique
`key` saying what it charges for, so a repeated bill run, a replayed usage batch or a retried
request cannot charge twice: the database refuses the second row.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oss.store.base import Base, DecimalText, UtcDateTime, utcnow


class CustomerRow(Base):
    """A customer (minimal CRM). `id` is the name services carry in `services.customer`."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BillingAccountRow(Base):
    __tablename__ = "billing_accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))  # ISO 4217
    billing_day: Mapped[int] = mapped_column(Integer, default=1)  # 1..28: a period starts then
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ProductOrderRow(Base):
    """A TMF622 product order; `request` keeps the create body as received."""

    __tablename__ = "product_orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    account_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("billing_accounts.id", ondelete="RESTRICT"), index=True
    )
    state: Mapped[str] = mapped_column(String(24), index=True)  # TMF622 ProductOrderStateType
    description: Mapped[str | None] = mapped_column(Text)
    request: Mapped[Any] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OrderItemRow(Base):
    """One item of an order; it becomes one service order (TMF641 shape) and one transaction."""

    __tablename__ = "product_order_items"

    order_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("product_orders.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))  # add | modify | delete
    offering_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[Any] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(24))  # TMF622 ProductOrderItemStateType
    product_id: Mapped[str | None] = mapped_column(String(36), index=True)
    service_name: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class OrderEventRow(Base):
    """Every state change of an order, kept for the API (and published on MQTT via the outbox)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("product_orders.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(24))
    item_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[Any] = mapped_column(JSON, nullable=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ProductRow(Base):
    """What a customer has: an offering realised by one service, active between two moments."""

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4
    account_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("billing_accounts.id", ondelete="RESTRICT"), index=True
    )
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    offering_id: Mapped[str] = mapped_column(String(64))
    service_name: Mapped[str | None] = mapped_column(String(64), index=True)
    order_id: Mapped[str | None] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(24), index=True)  # TMF ProductStatusType
    params: Mapped[Any] = mapped_column(JSON)
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # activation: charging starts
    end_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # termination: charging ends
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class UsageRow(Base):
    """A TMF635 usage record: a quantity a product used in an interval. `key` is unique (e.g.
    `octets-in:<service>:<interval start>`), so a replayed batch is stored, and charged, once."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_records_product_period", "product_id", "start_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    product_id: Mapped[str] = mapped_column(String(36))
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    service_name: Mapped[str | None] = mapped_column(String(64))
    usage_type: Mapped[str] = mapped_column(String(32))  # e.g. data
    unit: Mapped[str] = mapped_column(String(16))  # e.g. GB, hour
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    start_at: Mapped[datetime] = mapped_column(UtcDateTime)
    end_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16), index=True)  # TMF635: received|rated|billed
    bill_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BillRow(Base):
    """A TMF678 customer bill for one account and period: `new` (a draft, re-computed by a bill
    run) until issued, then immutable; corrections go on the next bill as adjustment lines."""

    __tablename__ = "customer_bills"
    __table_args__ = (UniqueConstraint("account_id", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bill_no: Mapped[str | None] = mapped_column(String(32), unique=True)  # given when issued
    account_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("billing_accounts.id", ondelete="RESTRICT"), index=True
    )
    period_start: Mapped[datetime] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16), index=True)  # TMF678 StateValues: new|sent
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(DecimalText)  # before tax
    tax: Mapped[Decimal] = mapped_column(DecimalText)
    total: Mapped[Decimal] = mapped_column(DecimalText)
    bill_date: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class BillLineRow(Base):
    """One line of a bill: recurring, usage, tax, sla_credit or adjustment. `key` names what it
    charges (`recurring:<product>:<period>`), unique across all bills: one charge per thing."""

    __tablename__ = "bill_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bill_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("customer_bills.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[str | None] = mapped_column(String(36), index=True)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal | None] = mapped_column(DecimalText)
    unit: Mapped[str | None] = mapped_column(String(16))
    unit_price: Mapped[Decimal | None] = mapped_column(DecimalText)
    amount: Mapped[Decimal] = mapped_column(DecimalText)  # in the bill's currency, rounded
    tax_rate: Mapped[Decimal | None] = mapped_column(DecimalText)
    evidence: Mapped[Any] = mapped_column(JSON, nullable=True)  # SLA credits: windows, alarms
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

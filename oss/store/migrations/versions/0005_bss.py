"""BSS: customers, billing accounts, product orders, products, usage records, bills

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("service_name", sa.String(length=64), nullable=True),
        sa.Column("usage_type", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint("key", name=op.f("uq_usage_records_key")),
    )
    op.create_index(
        op.f("ix_usage_records_account_id"), "usage_records", ["account_id"], unique=False
    )
    op.create_index(op.f("ix_usage_records_bill_id"), "usage_records", ["bill_id"], unique=False)
    op.create_index(
        "ix_usage_records_product_period", "usage_records", ["product_id", "start_at"], unique=False
    )
    op.create_index(op.f("ix_usage_records_state"), "usage_records", ["state"], unique=False)
    op.create_table(
        "billing_accounts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("billing_day", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_billing_accounts_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_accounts")),
    )
    op.create_index(
        op.f("ix_billing_accounts_customer_id"), "billing_accounts", ["customer_id"], unique=False
    )
    op.create_table(
        "customer_bills",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bill_no", sa.String(length=32), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.String(length=40), nullable=False),
        sa.Column("tax", sa.String(length=40), nullable=False),
        sa.Column("total", sa.String(length=40), nullable=False),
        sa.Column("bill_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["billing_accounts.id"],
            name=op.f("fk_customer_bills_account_id_billing_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_bills")),
        sa.UniqueConstraint(
            "account_id", "period_start", name=op.f("uq_customer_bills_account_id_period_start")
        ),
        sa.UniqueConstraint("bill_no", name=op.f("uq_customer_bills_bill_no")),
    )
    op.create_index(
        op.f("ix_customer_bills_account_id"), "customer_bills", ["account_id"], unique=False
    )
    op.create_index(op.f("ix_customer_bills_state"), "customer_bills", ["state"], unique=False)
    op.create_table(
        "product_orders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["billing_accounts.id"],
            name=op.f("fk_product_orders_account_id_billing_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_orders")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_product_orders_idempotency_key")),
    )
    op.create_index(
        op.f("ix_product_orders_account_id"), "product_orders", ["account_id"], unique=False
    )
    op.create_index(op.f("ix_product_orders_state"), "product_orders", ["state"], unique=False)
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("offering_id", sa.String(length=64), nullable=False),
        sa.Column("service_name", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["billing_accounts.id"],
            name=op.f("fk_products_account_id_billing_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
    )
    op.create_index(op.f("ix_products_account_id"), "products", ["account_id"], unique=False)
    op.create_index(op.f("ix_products_customer_id"), "products", ["customer_id"], unique=False)
    op.create_index(op.f("ix_products_service_name"), "products", ["service_name"], unique=False)
    op.create_index(op.f("ix_products_state"), "products", ["state"], unique=False)
    op.create_table(
        "bill_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("unit_price", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("tax_rate", sa.String(length=40), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bill_id"],
            ["customer_bills.id"],
            name=op.f("fk_bill_lines_bill_id_customer_bills"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bill_lines")),
        sa.UniqueConstraint("key", name=op.f("uq_bill_lines_key")),
    )
    op.create_index(op.f("ix_bill_lines_bill_id"), "bill_lines", ["bill_id"], unique=False)
    op.create_index(op.f("ix_bill_lines_product_id"), "bill_lines", ["product_id"], unique=False)
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["product_orders.id"],
            name=op.f("fk_order_events_order_id_product_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(op.f("ix_order_events_order_id"), "order_events", ["order_id"], unique=False)
    op.create_table(
        "product_order_items",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("offering_id", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=True),
        sa.Column("service_name", sa.String(length=64), nullable=True),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["product_orders.id"],
            name=op.f("fk_product_order_items_order_id_product_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "item_id", name=op.f("pk_product_order_items")),
    )
    op.create_index(
        op.f("ix_product_order_items_product_id"),
        "product_order_items",
        ["product_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_product_order_items_product_id"), table_name="product_order_items")
    op.drop_table("product_order_items")
    op.drop_index(op.f("ix_order_events_order_id"), table_name="order_events")
    op.drop_table("order_events")
    op.drop_index(op.f("ix_bill_lines_product_id"), table_name="bill_lines")
    op.drop_index(op.f("ix_bill_lines_bill_id"), table_name="bill_lines")
    op.drop_table("bill_lines")
    op.drop_index(op.f("ix_products_state"), table_name="products")
    op.drop_index(op.f("ix_products_service_name"), table_name="products")
    op.drop_index(op.f("ix_products_customer_id"), table_name="products")
    op.drop_index(op.f("ix_products_account_id"), table_name="products")
    op.drop_table("products")
    op.drop_index(op.f("ix_product_orders_state"), table_name="product_orders")
    op.drop_index(op.f("ix_product_orders_account_id"), table_name="product_orders")
    op.drop_table("product_orders")
    op.drop_index(op.f("ix_customer_bills_state"), table_name="customer_bills")
    op.drop_index(op.f("ix_customer_bills_account_id"), table_name="customer_bills")
    op.drop_table("customer_bills")
    op.drop_index(op.f("ix_billing_accounts_customer_id"), table_name="billing_accounts")
    op.drop_table("billing_accounts")
    op.drop_index(op.f("ix_usage_records_state"), table_name="usage_records")
    op.drop_index("ix_usage_records_product_period", table_name="usage_records")
    op.drop_index(op.f("ix_usage_records_bill_id"), table_name="usage_records")
    op.drop_index(op.f("ix_usage_records_account_id"), table_name="usage_records")
    op.drop_table("usage_records")
    op.drop_table("customers")

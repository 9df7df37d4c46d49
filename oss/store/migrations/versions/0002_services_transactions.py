"""services, their graph resources, and the transaction journal

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "services",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("customer", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("vlan", sa.Integer(), nullable=True),
        sa.Column("vrf", sa.String(length=64), nullable=True),
        sa.Column("rd", sa.String(length=32), nullable=True),
        sa.Column("placement", sa.JSON(), nullable=True),
        sa.Column("sla", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_services")),
        sa.UniqueConstraint("name", name=op.f("uq_services_name")),
    )
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_services_customer"), ["customer"], unique=False)
        batch_op.create_index(batch_op.f("ix_services_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_services_type"), ["type"], unique=False)

    op.create_table(
        "service_resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("interface", sa.String(length=64), nullable=True),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("bandwidth_bps", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_service_resources_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_resources")),
    )
    with op.batch_alter_table("service_resources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_resources_device"), ["device"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_resources_link_id"), ["link_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_service_resources_service_id"), ["service_id"], unique=False
        )

    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_transactions_service_id_services"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transactions_service_id"), ["service_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_transactions_state"), ["state"], unique=False)

    op.create_table(
        "transaction_devices",
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("intent", sa.JSON(), nullable=False),
        sa.Column("owned", sa.JSON(), nullable=False),
        sa.Column("pre_image", sa.JSON(), nullable=True),
        sa.Column("persist_id", sa.String(length=64), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_transaction_devices_transaction_id_transactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("transaction_id", "device", name=op.f("pk_transaction_devices")),
    )


def downgrade() -> None:
    op.drop_table("transaction_devices")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_state"))
        batch_op.drop_index(batch_op.f("ix_transactions_service_id"))

    op.drop_table("transactions")
    with op.batch_alter_table("service_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_resources_service_id"))
        batch_op.drop_index(batch_op.f("ix_service_resources_link_id"))
        batch_op.drop_index(batch_op.f("ix_service_resources_device"))

    op.drop_table("service_resources")
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_services_type"))
        batch_op.drop_index(batch_op.f("ix_services_state"))
        batch_op.drop_index(batch_op.f("ix_services_customer"))

    op.drop_table("services")

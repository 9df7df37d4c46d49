"""alarms, the outbox for outside feeds, KPI minute roll-ups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reduction_key", sa.String(length=255), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("alarm_type", sa.String(length=48), nullable=False),
        sa.Column("perceived_severity", sa.String(length=16), nullable=False),
        sa.Column("probable_cause", sa.String(length=64), nullable=False),
        sa.Column("specific_problem", sa.Text(), nullable=False),
        sa.Column("alarmed_object_type", sa.String(length=32), nullable=False),
        sa.Column("alarmed_object", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ack_state", sa.String(length=16), nullable=False),
        sa.Column("ack_user_id", sa.String(length=128), nullable=True),
        sa.Column("raised_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("service_affecting", sa.Boolean(), nullable=False),
        sa.Column("affected_services", sa.JSON(), nullable=False),
        sa.Column("impact", sa.JSON(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("is_root_cause", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alarms_alarmed_object"), ["alarmed_object"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alarms_open"), ["open"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alarms_perceived_severity"), ["perceived_severity"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_alarms_reduction_key"), ["reduction_key"], unique=False
        )

    op.create_table(
        "kpi_minutes",
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=255), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "object_type", "object", "metric", "minute", name=op.f("pk_kpi_minutes")
        ),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=512), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("retain", sa.Boolean(), nullable=False),
        sa.Column("qos", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_sent_at"), ["sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_sent_at"))
        batch_op.drop_index(batch_op.f("ix_outbox_channel"))

    op.drop_table("outbox")
    op.drop_table("kpi_minutes")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarms_reduction_key"))
        batch_op.drop_index(batch_op.f("ix_alarms_perceived_severity"))
        batch_op.drop_index(batch_op.f("ix_alarms_parent_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_open"))
        batch_op.drop_index(batch_op.f("ix_alarms_alarmed_object"))

    op.drop_table("alarms")

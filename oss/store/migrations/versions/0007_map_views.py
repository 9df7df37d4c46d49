"""map views: the console's saved layouts (named views and device positions, which go with
their device)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "map_views",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_map_views")),
    )
    op.create_table(
        "map_positions",
        sa.Column("view", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device"],
            ["devices.name"],
            name=op.f("fk_map_positions_device_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["view"],
            ["map_views.name"],
            name=op.f("fk_map_positions_view_map_views"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("view", "device", name=op.f("pk_map_positions")),
    )
    with op.batch_alter_table("map_positions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_map_positions_device"), ["device"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("map_positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_map_positions_device"))
    op.drop_table("map_positions")
    op.drop_table("map_views")

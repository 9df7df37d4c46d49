"""cluster: leases with fencing tokens, members, device shares, the instance of a transaction,
one open alarm per reduction key; on PostgreSQL the function oss_fence that refuses a stale
lease holder's write

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The fence a lease holder's transaction starts with. FOR KEY SHARE keeps the lease row from
# being taken over (acquire locks it FOR UPDATE first) until this transaction ends, so the check
# holds to the commit, while the holder's own renewals (an UPDATE of no key: FOR NO KEY UPDATE)
# go through: a long write must not cost its holder the lease. A process paused inside the
# transaction loses it to the server's idle_in_transaction_session_timeout, and its lock with
# it. SQLSTATE OF001: oss.errors.Fenced.
FENCE_FUNCTION = """
CREATE OR REPLACE FUNCTION oss_fence(lease_name text, lease_holder text, lease_token bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    row cluster_leases%ROWTYPE;
BEGIN
    SELECT * INTO row FROM cluster_leases WHERE name = lease_name FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease % does not exist', lease_name USING ERRCODE = 'OF001';
    END IF;
    IF row.holder <> lease_holder OR row.token <> lease_token THEN
        RAISE EXCEPTION 'lease % token % of % is stale: now token % of %',
            lease_name, lease_token, lease_holder, row.token, row.holder
            USING ERRCODE = 'OF001';
    END IF;
    IF row.expires_at <= clock_timestamp() THEN
        RAISE EXCEPTION 'lease % token % of % expired % ago',
            lease_name, lease_token, lease_holder, clock_timestamp() - row.expires_at
            USING ERRCODE = 'OF001';
    END IF;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "cluster_leases",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cluster_leases")),
    )
    op.create_table(
        "cluster_members",
        sa.Column("instance", sa.String(length=128), nullable=False),
        sa.Column("api_url", sa.String(length=512), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance", name=op.f("pk_cluster_members")),
    )
    op.create_table(
        "device_shares",
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("instance", sa.String(length=128), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leader_token", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device"],
            ["devices.name"],
            name=op.f("fk_device_shares_device_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device", name=op.f("pk_device_shares")),
    )
    with op.batch_alter_table("device_shares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_shares_instance"), ["instance"], unique=False)
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instance", sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f("ix_transactions_instance"), ["instance"], unique=False)
    # An older database may hold two open alarms of one key (a second writer, an old bug):
    # repeats counted on the newest, which stays open; the older ones are closed as cleared.
    op.execute(
        "UPDATE alarms SET open = false, state = 'cleared', cleared_time = CURRENT_TIMESTAMP "
        "WHERE open AND id NOT IN (SELECT max(id) FROM alarms WHERE open GROUP BY reduction_key)"
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(
            "ux_alarms_open_key",
            ["reduction_key"],
            unique=True,
            postgresql_where=sa.text("open"),
            sqlite_where=sa.text("open"),
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FENCE_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS oss_fence(text, text, bigint)")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("ux_alarms_open_key")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transactions_instance"))
        batch_op.drop_column("instance")
    with op.batch_alter_table("device_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_shares_instance"))
    op.drop_table("device_shares")
    op.drop_table("cluster_members")
    op.drop_table("cluster_leases")

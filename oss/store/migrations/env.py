"""Alembic environment: the daemon hands over an open connection (see Database.migrate)."""

from alembic import context

from bss_bridge import tables as bss_tables  # noqa: F401  (registers the BSS tables)
from oss.store import tables  # noqa: F401  (registers every table on the metadata)
from oss.store.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through oss (Database.migrate), which supplies a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

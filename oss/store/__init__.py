"""Persistence: SQLAlchemy tables, Alembic migrations and the async database handle."""

from oss.store.database import Database

__all__ = ["Database"]

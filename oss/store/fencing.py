"""Fencing tokens: the leases a write is made under, checked by the database in the write's own
transaction (`oss_fence`, migration 0008), so that a paused or partitioned lease holder can
never write over its successor.

A write carries the process's membership lease (`Database.member_fence`, set once the instance
registered) and the leases of the code it runs in (`fenced(...)`, a context variable: the tasks
and threads that code starts inherit it). SQLite is single-instance: it carries none.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from oss.errors import Fenced

FENCED_SQLSTATE = "OF001"  # raised by oss_fence (migration 0008)
_CHECK = text("SELECT oss_fence(:lease, :holder, :token)")


@dataclass(frozen=True)
class Fence:
    """A lease as held: its name, its holder and the token it was acquired with."""

    lease: str
    holder: str
    token: int

    def __str__(self) -> str:
        return f"lease {self.lease!r} token {self.token} held by {self.holder!r}"


_fences: contextvars.ContextVar[tuple[Fence, ...]] = contextvars.ContextVar(
    "oss_fences", default=()
)


@contextmanager
def fenced(*fences: Fence) -> Iterator[None]:
    """Writes made inside (and in tasks started inside) carry these fences too."""
    reset = _fences.set((*_fences.get(), *fences))
    try:
        yield
    finally:
        _fences.reset(reset)


def current_fences() -> tuple[Fence, ...]:
    """The fences of the code running now (without the process's membership)."""
    return _fences.get()


def check_fences(conn: Connection, fences: Sequence[Fence]) -> None:
    """At the start of a write transaction: the database checks each fence and holds its lease
    row until the transaction ends; a stale one raises `Fenced`."""
    for fence in fences:
        try:
            conn.execute(
                _CHECK, {"lease": fence.lease, "holder": fence.holder, "token": fence.token}
            )
        except DBAPIError as exc:
            refused = as_fenced(exc, fence)
            if refused is None:
                raise
            raise refused from exc


def as_fenced(exc: BaseException, fence: Fence | None = None) -> Fenced | None:
    """`Fenced` if `exc` is the database refusing a stale fence, else None."""
    if not _is_fenced(exc):
        return None
    reason = _message(exc)
    what = f"{fence}: " if fence is not None else ""
    return Fenced(f"write refused by the database: {what}{reason}")


def _is_fenced(exc: BaseException) -> bool:
    # SQLAlchemy's asyncpg adapter keeps the server's SQLSTATE on the error it raises.
    return getattr(getattr(exc, "orig", exc), "sqlstate", None) == FENCED_SQLSTATE


def _message(exc: BaseException) -> str:
    orig: Any = getattr(exc, "orig", exc)
    cause = getattr(orig, "__cause__", None)
    text_ = str(cause if cause is not None else orig)
    # asyncpg's message is the RAISE text; SQLAlchemy's adapter prefixes the class name.
    return text_.split(": ", 1)[-1].strip() if text_.startswith("<class") else text_.strip()

"""The provisioning journal's rows, written in bulk: a transaction's device rows inserted in one
statement when it is journaled, and each later phase stored as one UPDATE of the transaction and
one executemany UPDATE of its device rows (only the columns a phase changes), whatever the
number of devices. Compiled Core statements on the caller's session: no ORM objects to load,
track and flush per device per phase (the engine journals every phase of every transaction)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oss.store.tables import TransactionDeviceRow, TransactionRow

_DEVICES = cast(Table, TransactionDeviceRow.__table__)
_TRANSACTIONS = cast(Table, TransactionRow.__table__)
# The journal's ends (the engine's TERMINAL): every other state is a transaction left open.
ENDED = ("committed", "rolled-back", "failed")

_INSERT_DEVICES = insert(_DEVICES)
_UPDATE_TRANSACTION = (
    update(_TRANSACTIONS)
    .where(_TRANSACTIONS.c.id == bindparam("b_id"))
    .values(state=bindparam("b_state"), error=bindparam("b_error"))
)
_UPDATE_DEVICES = (
    update(_DEVICES)
    .where(
        _DEVICES.c.transaction_id == bindparam("b_transaction_id"),
        _DEVICES.c.device == bindparam("b_device"),
    )
    .values(
        state=bindparam("b_state"),
        step=bindparam("b_step"),
        error=bindparam("b_error"),
        pre_image=bindparam("b_pre_image"),
        persist_id=bindparam("b_persist_id"),
        steps=bindparam("b_steps"),
    )
)


@dataclass(frozen=True)
class DeviceRecord:
    """One device's part as journaled: what it gets (written once) and how far it got."""

    device: str
    position: int
    protocol: str
    payload: str
    intent: dict[str, Any]
    owned: list[str]
    state: str
    step: str | None
    error: str | None
    pre_image: dict[str, Any] | None
    persist_id: str | None
    steps: list[dict[str, Any]]


async def insert_device_rows(
    session: AsyncSession, transaction_id: int, devices: Sequence[DeviceRecord]
) -> None:
    """Every device row of a new transaction, in one statement."""
    if not devices:
        return
    await session.execute(
        _INSERT_DEVICES,
        [
            {
                "transaction_id": transaction_id,
                "device": d.device,
                "position": d.position,
                "protocol": d.protocol,
                "payload": d.payload,
                "intent": d.intent,
                "owned": d.owned,
                "state": d.state,
                "step": d.step,
                "error": d.error,
                "pre_image": d.pre_image,
                "persist_id": d.persist_id,
                "steps": d.steps,
            }
            for d in devices
        ],
    )


async def update_progress(
    session: AsyncSession,
    transaction_id: int,
    *,
    state: str,
    error: str | None,
    finished_at: datetime | None,
    devices: Sequence[DeviceRecord],
) -> bool:
    """A transaction's state and each device's progress (state, step, error, pre-image,
    persist id, step timings), in two statements; False when the journal has no such
    transaction."""
    values: dict[str, Any] = {"b_id": transaction_id, "b_state": state, "b_error": error}
    statement = _UPDATE_TRANSACTION
    if finished_at is not None:
        statement = statement.values(finished_at=bindparam("b_finished_at"))
        values["b_finished_at"] = finished_at
    result: Any = await session.execute(statement, values)
    if result.rowcount == 0:
        return False
    if devices:
        await session.execute(
            _UPDATE_DEVICES,
            [
                {
                    "b_transaction_id": transaction_id,
                    "b_device": d.device,
                    "b_state": d.state,
                    "b_step": d.step,
                    "b_error": d.error,
                    "b_pre_image": d.pre_image,
                    "b_persist_id": d.persist_id,
                    "b_steps": d.steps,
                }
                for d in devices
            ],
        )
    return True


@dataclass(frozen=True)
class Unfinished:
    """A transaction the journal holds open, and the instance that ran it (None: a daemon not
    in cluster mode)."""

    id: int
    kind: str
    service_id: int | None
    instance: str | None


_UNFINISHED = select(
    _TRANSACTIONS.c.id,
    _TRANSACTIONS.c.kind,
    _TRANSACTIONS.c.service_id,
    _TRANSACTIONS.c.instance,
).where(_TRANSACTIONS.c.state.not_in(ENDED))


async def unfinished(session: AsyncSession, *, instance: str | None) -> list[Unfinished]:
    """The open transactions of `instance`, oldest first (None: every one, as a single daemon
    owns them all)."""
    query = _UNFINISHED
    if instance is not None:
        query = query.where(_TRANSACTIONS.c.instance == instance)
    return [Unfinished(*row) for row in await session.execute(query.order_by(_TRANSACTIONS.c.id))]


async def unfinished_elsewhere(session: AsyncSession, live: Collection[str]) -> list[Unfinished]:
    """The open transactions of no live instance (dead, expired, or recorded by a daemon not in
    cluster mode), oldest first."""
    column = _TRANSACTIONS.c.instance
    orphaned = column.is_(None) if not live else or_(column.is_(None), column.not_in(sorted(live)))
    query = _UNFINISHED.where(orphaned).order_by(_TRANSACTIONS.c.id)
    return [Unfinished(*row) for row in await session.execute(query)]


async def claim(session: AsyncSession, transaction_id: int, instance: str | None) -> bool:
    """`instance` takes an open transaction over to resolve it (its row names the resolver
    from now on: should that one die too, the next finds it); False when it has ended."""
    result: Any = await session.execute(
        update(_TRANSACTIONS)
        .where(_TRANSACTIONS.c.id == transaction_id, _TRANSACTIONS.c.state.not_in(ENDED))
        .values(instance=instance)
    )
    return bool(result.rowcount)

"""The transaction journal in the database: written before a device is touched and at every
phase, so a daemon that dies mid-transaction finds it on restart (ServiceManager.recover)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from drivers.platforms import load_platform
from oss.errors import NotFound
from oss.provisioning.engine import TERMINAL, DeviceTxn, Transaction
from oss.provisioning.leaves import Intent
from oss.provisioning.plan import DevicePlan
from oss.store import journal_rows
from oss.store.database import Database
from oss.store.tables import TransactionDeviceRow, TransactionRow

# A device state says how far it got, which decides how it is undone after a crash.
REACHED_BY_STATE: dict[str, str] = {
    "prepared": "prepared",
    "committed": "committed",
    "verified": "committed",
    "confirmed": "confirmed",
    # an undo that failed: its progress is unknown, so undo everything (idempotent)
    "undo-failed": "confirmed",
}


class DbJournal:
    def __init__(self, db: Database, *, instance: str | None = None) -> None:
        self.db = db
        self.instance = instance  # cluster mode: whose transactions this journal opens

    async def open(self, kind: str, service_id: int | None, actor: str) -> int:
        async with self.db.transaction() as session:
            return await self.add(session, kind, service_id, actor)

    async def add(
        self, session: AsyncSession, kind: str, service_id: int | None, actor: str
    ) -> int:
        """A new pending transaction in `session` (a service change opens it together with the
        service's own state); its id."""
        row = TransactionRow(
            kind=kind, service_id=service_id, state="pending", actor=actor, instance=self.instance
        )
        session.add(row)
        await session.flush()
        return row.id

    async def record(self, txn: Transaction, *, state: str | None = None) -> None:
        """Store the transaction; `state` overrides the one written for the whole (a service
        change writes the final state itself, together with the service's)."""
        async with self.db.transaction() as session:
            await self.write(session, txn, state=state)

    async def begin(self, session: AsyncSession, txn: Transaction) -> None:
        """A new transaction's device rows, each with its whole plan (one statement), in the
        caller's session: the change is journaled before any device is touched."""
        await journal_rows.insert_device_rows(session, txn.id, [_record(d) for d in txn.devices])

    async def write(
        self, session: AsyncSession, txn: Transaction, *, state: str | None = None
    ) -> None:
        """A journaled transaction's progress: its state and every device's (two statements,
        whatever the number of devices)."""
        state = state or txn.state
        stored = await journal_rows.update_progress(
            session,
            txn.id,
            state=state,
            error=txn.error,
            finished_at=datetime.now(UTC) if state in TERMINAL else None,
            devices=[_record(d) for d in txn.devices],
        )
        if not stored:
            raise NotFound(f"transaction {txn.id} is not in the journal")

    async def show(self, txn_id: int) -> dict[str, Any]:
        async with self.db.read() as session:
            row = await session.get(TransactionRow, txn_id)
            if row is None:
                raise NotFound(f"no transaction {txn_id}")
            devices = await _device_rows(session, txn_id)
            return {
                "id": row.id,
                "kind": row.kind,
                "service_id": row.service_id,
                "state": row.state,
                "actor": row.actor,
                "instance": row.instance,  # cluster mode: who runs it (or resolved it)
                "error": row.error,
                "created_at": row.created_at.isoformat(),
                "finished_at": row.finished_at.isoformat() if row.finished_at else None,
                "devices": [
                    {
                        "device": d.device,
                        "position": d.position,
                        "protocol": d.protocol,
                        "state": d.state,
                        "step": d.step,
                        "error": d.error,
                        "steps": d.steps,
                    }
                    for d in devices
                ],
            }

    async def unfinished(self) -> list[journal_rows.Unfinished]:
        """Every transaction a crash left open that is this journal's instance's to resolve
        (no instance: a single daemon's, every one), oldest first."""
        async with self.db.read() as session:
            return await journal_rows.unfinished(session, instance=self.instance)

    async def claim(self, txn_id: int) -> bool:
        """This journal's instance takes the open transaction over to resolve it, in a write
        of its own (carrying the instance's fences: a stale instance is refused here, before
        it touches a device); False when the transaction has ended meanwhile."""
        async with self.db.transaction() as session:
            return await journal_rows.claim(session, txn_id, self.instance)

    async def unfinished_elsewhere(self, live: Collection[str]) -> list[journal_rows.Unfinished]:
        """The open transactions of instances not in `live` (and of no instance), oldest
        first: what a dead instance left for the others."""
        async with self.db.read() as session:
            return await journal_rows.unfinished_elsewhere(session, live)

    async def load(self, txn_id: int) -> Transaction:
        """A journaled transaction, rebuilt with each device's plan, pre-image and progress."""
        async with self.db.read() as session:
            row = await session.get(TransactionRow, txn_id)
            if row is None:
                raise NotFound(f"no transaction {txn_id}")
            device_rows = await _device_rows(session, txn_id)
            devices = []
            for r in device_rows:
                plan = DevicePlan(
                    device=r.device,
                    platform=load_platform(r.intent["platform"]),
                    payload=r.payload,
                    intent=Intent(dict(r.intent["leaves"]), tuple(r.intent["removals"])),
                    owned=tuple(r.owned),
                    pre_image=r.pre_image,
                    steps=list(r.steps or []),
                )
                d = DeviceTxn(plan, r.position, state=r.state, error=r.error)
                d.step = r.step  # type: ignore[assignment]
                d.persist_id = r.persist_id or ""
                d.reached = REACHED_BY_STATE.get(r.state, "none")  # type: ignore[assignment]
                devices.append(d)
            return Transaction(
                id=row.id,
                kind=row.kind,
                devices=devices,
                state=row.state,  # type: ignore[arg-type]
                error=row.error,
            )


def _record(d: DeviceTxn) -> journal_rows.DeviceRecord:
    return journal_rows.DeviceRecord(
        device=d.device,
        position=d.position,
        protocol=d.plan.protocol,
        payload=d.plan.payload,
        intent={
            "platform": d.plan.platform.name,
            "leaves": d.plan.intent.leaves,
            "removals": list(d.plan.intent.removals),
        },
        owned=list(d.plan.owned),
        state=d.state,
        step=d.step,
        error=d.error,
        pre_image=d.plan.pre_image,
        persist_id=d.persist_id or None,
        steps=list(d.plan.steps),
    )


async def _device_rows(session: AsyncSession, txn_id: int) -> Sequence[TransactionDeviceRow]:
    return (
        await session.scalars(
            select(TransactionDeviceRow)
            .where(TransactionDeviceRow.transaction_id == txn_id)
            .order_by(TransactionDeviceRow.position)
        )
    ).all()

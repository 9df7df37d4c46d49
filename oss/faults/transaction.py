"""The alarm changes of one database transaction on ORM rows: the correlated path.

`AlarmTx` applies signals with the state machine (`oss.faults.reducer`) to `AlarmRow`s of its
session, and gives the correlator (`oss.faults.correlate`) what it needs beyond it: look-ups,
ids at once, parent and child links, clearing a tree. `flush()` renders each changed alarm
once, for the alarm manager to hand to the NOC feed in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oss.errors import NotFound
from oss.faults.documents import to_tmf
from oss.faults.reducer import FeedEvent, Reduction, Run, Signal
from oss.store.alarm_rows import CHILDREN, by_parent
from oss.store.base import IN_CHUNK
from oss.store.numbering import reserve_ids
from oss.store.tables import AlarmRow


class AlarmTx:
    """The alarm changes of one database transaction; `flush()` renders each changed alarm
    once, with its sequence number moved on once, however many times it changed."""

    def __init__(self, session: AsyncSession, href_base: str) -> None:
        self.session = session
        self._href_base = href_base
        # The open alarms of the keys this transaction looked up, oldest first. Every change of
        # `open` in a transaction goes through the reduction, which keeps them exact, so a
        # batch's repeated look-ups cost no database round trips.
        self._reduction = Reduction(self._add)
        self._unflushed: list[AlarmRow] = []  # new alarms added without their id yet

    def _add(self, columns: dict[str, Any]) -> AlarmRow:
        row = AlarmRow(**columns)
        self.session.add(row)
        self._unflushed.append(row)
        return row

    async def prefetch(self, reduction_keys: Iterable[str]) -> None:
        """Look the open alarms of many keys up at once (a batch's, before applying it)."""
        keys = sorted({k for k in reduction_keys if not self._reduction.knows(k)})
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            query = select(AlarmRow).where(AlarmRow.reduction_key.in_(chunk), AlarmRow.open)
            rows: dict[str, list[AlarmRow]] = {k: [] for k in chunk}
            for row in (await self.session.scalars(query.order_by(AlarmRow.id))).all():
                rows[row.reduction_key].append(row)
            for key, open_rows in rows.items():
                self._reduction.know(key, open_rows)

    async def open_by_key(self, reduction_key: str) -> AlarmRow | None:
        """The key's newest open alarm."""
        if not self._reduction.knows(reduction_key):
            await self.prefetch([reduction_key])
        return self._reduction.newest(reduction_key)

    async def open_where(self, *conditions: Any) -> list[AlarmRow]:
        query = select(AlarmRow).where(AlarmRow.open, *conditions).order_by(AlarmRow.id)
        return list((await self.session.scalars(query)).all())

    async def get(self, alarm_id: int) -> AlarmRow:
        row = await self.session.get(AlarmRow, alarm_id)
        if row is None:
            raise NotFound(f"alarm {alarm_id} not found")
        return row

    async def raise_(
        self,
        s: Signal,
        *,
        defer_id: bool = False,
        repeats: int = 1,
        first_ns: int | None = None,
        service_affecting: bool = False,
        affected_services: Sequence[Any] = (),
        impact: Any = None,
        parent_id: int | None = None,
        is_root_cause: bool = False,
    ) -> AlarmRow:
        """A new alarm (with the correlation fields given), or the open one of the same key
        counted once more (`repeats` more: a folded run, see `reducer.Run`).

        A new alarm gets its id at once (an INSERT), unless `defer_id`: then its insert waits
        for the next `ensure_ids()` or query, so a batch's new alarms go in together. Only a
        caller that reads no id before calling `ensure_ids()` may defer."""
        if await self.open_by_key(s.reduction_key) is not None:
            return self._reduction.raise_(s, repeats=repeats, first_ns=first_ns)
        row = self._reduction.raise_(
            s,
            repeats=repeats,
            first_ns=first_ns,
            service_affecting=bool(service_affecting),
            affected_services=list(affected_services),
            impact=impact,
            parent_id=parent_id,
            is_root_cause=bool(is_root_cause),
        )
        if not defer_id:
            await self.ensure_ids()  # the id, for children and the feed
        return row

    async def apply(self, run: Run) -> None:
        """A folded run of signals the correlator leaves alone (their ids may wait)."""
        await self.open_by_key(run.last.reduction_key)
        self._reduction.apply(run)

    async def ensure_ids(self) -> None:
        """Insert the new alarms still waiting for their ids (all in one flush)."""
        if not self._unflushed:
            return
        # Numbered by the store as its bulk inserts are (SQLite: in this transaction, so the
        # flush becomes one executemany; PostgreSQL's sequence numbers them itself). Rows an
        # autoflush already inserted have their ids: only the pending ones count.
        new = self.session.new  # a fresh set per call: taken once
        pending = [row for row in self._unflushed if row in new]
        if pending:
            ids = await self.session.run_sync(
                lambda sync: reserve_ids(sync.connection(), AlarmRow, len(pending))
            )
            for row, row_id in zip(pending, ids or (), strict=False):
                row.id = row_id
        self._unflushed.clear()
        await self.session.flush()

    def clear(self, row: AlarmRow, when: datetime) -> None:
        self._reduction.clear(row, when)

    async def clear_tree(self, root: AlarmRow, when: datetime) -> None:
        """Clear an alarm and every open alarm correlated under it (the ones it explains).

        A child that another open failure explains as well (its `causes`, see `add_cause`)
        moves under that one instead: a service cut by two failures is down until both end."""
        await self.ensure_ids()  # the children are found by the root's id
        self.clear(root, when)
        for child in await self.open_where(AlarmRow.parent_id == root.id):
            other = await self.other_open_cause(child, root.id)
            if other is not None:
                self.adopt(other, child)
            else:
                await self.clear_tree(child, when)

    def add_cause(self, child: AlarmRow, cause: AlarmRow) -> None:
        """Note that `cause` explains `child` too (it stays under its first parent)."""
        _need_ids(child, cause)
        causes = list((child.details or {}).get("causes", []))
        if child.parent_id is not None and child.parent_id not in causes:
            causes.append(child.parent_id)
        if cause.id in causes:
            return
        causes.append(cause.id)
        child.details = {**(child.details or {}), "causes": causes}
        self.changed(child, "changed")

    async def other_open_cause(self, child: AlarmRow, cleared: int) -> AlarmRow | None:
        """An open alarm among `child`'s causes other than `cleared` (0: any)."""
        for cause_id in (child.details or {}).get("causes", []):
            if cause_id == cleared:
                continue
            cause = await self.session.get(AlarmRow, cause_id)
            if cause is not None and cause.open:
                return cause
        return None

    def adopt(self, parent: AlarmRow, child: AlarmRow) -> None:
        """Correlate `child` under `parent`; a former root cause stops being one."""
        _need_ids(parent, child)
        if child.id == parent.id or child.parent_id == parent.id:
            return
        child.parent_id = parent.id
        child.is_root_cause = False
        child.changed_time = max(child.changed_time, parent.changed_time)
        self.changed(child, "changed")
        self.changed(parent, "changed")

    def changed(self, row: AlarmRow, event: FeedEvent) -> None:
        self._reduction.changed(row, event)

    async def flush(self) -> list[tuple[FeedEvent, dict[str, Any]]]:
        """Number and render every changed alarm (children as they are now), once each."""
        if not self._reduction.pending:
            return []
        await self.ensure_ids()
        settled = self._reduction.settle()
        rows = [change.alarm for change in settled]
        children = await children_in(self.session, [row.id for row in rows])
        return [
            (c.event, to_tmf(c.alarm, children.get(c.alarm.id, ()), href_base=self._href_base))
            for c in settled
        ]


def _need_ids(*rows: AlarmRow) -> None:
    if any(row.id is None for row in rows):
        raise RuntimeError("alarm without its id yet: call AlarmTx.ensure_ids() first")


async def children_in(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[int]]:
    # Through the session (not the store's connection-level `children_of`): its autoflush
    # writes this transaction's pending parent links first.
    return by_parent((await session.execute(CHILDREN, {"ids": list(ids)})).all())

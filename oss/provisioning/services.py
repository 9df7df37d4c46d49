"""Services and slices: intent in, transactions out, lifecycle and graph resources kept.

Lifecycle: designed -> reserved (placed, bandwidth held) -> provisioning (transaction running)
-> active; a failed create ends `failed` (nothing on the devices, nothing reserved); delete goes
terminating -> terminated. Every change to the network is one engine transaction, journaled in
the database transaction that stores the service's in-flight state (`_start`) and ended in the
one that stores its settled state (`_settle`): readers never see one without the other.

Audit: each create, modify, delete and reconcile is one audit entry (object type `service`,
action the change's kind), written when it settles, in the transaction that writes the
service's final state: who asked, the service before the change and after it (its state says
whether the transaction committed). Dry runs and refusals before anything is stored write none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from drivers.platforms import load_platform
from oss import audit
from oss.backoff import Backoff
from oss.bounds import int64_of
from oss.errors import Conflict, InvalidInput, NotFound, StorageError
from oss.inventory import Inventory
from oss.provisioning.engine import (
    DeviceTxn,
    Engine,
    Observer,
    Transaction,
    TransactionFailed,
)
from oss.provisioning.journal import DbJournal
from oss.provisioning.leaves import Intent, in_scope
from oss.provisioning.plan import DevicePlan, Mode, template_context
from oss.provisioning.protocols import config_protocol, render_device
from oss.provisioning.realise import Realisation, ServiceNames, realise, service_names
from oss.provisioning.render import Renderer
from oss.provisioning.service_types import ServiceType, load_service_types
from oss.store.base import in_chunks
from oss.store.database import Database
from oss.store.device_locks import DevicesBusy, lock_placement
from oss.store.in_use import unavailable
from oss.store.journal_rows import Unfinished
from oss.store.resource_rows import insert_resources, set_reserved
from oss.store.tables import ServiceResourceRow, ServiceRow
from topology.graph import Path
from topology.placement import Placement

log = logging.getLogger(__name__)

STATES = (
    "designed",
    "reserved",
    "provisioning",
    "active",
    "failed",
    "terminating",
    "terminated",
)
HOLDS_RESOURCES = ("reserved", "provisioning", "active", "terminating")
IN_FLIGHT = {"create": "provisioning", "modify": "provisioning", "delete": "terminating"}
Started = Callable[[int, int], None]  # (transaction id, service id), once it is journaled


@dataclass(frozen=True)
class Options:
    asn: int = 65000  # route distinguishers of slices: <asn>:<service id>
    vlan_pool: tuple[int, int] = (100, 3999)


class ServiceManager:
    def __init__(
        self,
        db: Database,
        inventory: Inventory,
        engine: Engine,
        *,
        renderer: Renderer | None = None,
        types: Mapping[str, ServiceType] | None = None,
        options: Options = Options(),
        journal: DbJournal | None = None,
        instance: str | None = None,
    ) -> None:
        self.db = db
        self.inventory = inventory
        self.engine = engine
        self.instance = instance  # cluster mode: journaled on its transactions
        self.journal = journal or DbJournal(db, instance=instance)
        self.renderer = renderer or Renderer()
        self.types = dict(types) if types is not None else load_service_types()
        self.options = options
        # Placement and reservation are one step: two creates must not both take the last 100M.
        self._placing = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- background changes (the API's wait=false) -----------------------------------------

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, TransactionFailed):  # those are logged by the engine
                log.error("background service change failed: %s", exc, exc_info=exc)

    async def close(self) -> None:
        """Stop background changes: the journal keeps them for recovery at the next start."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.engine.locks.close()

    async def transaction(self, txn_id: int) -> dict[str, Any]:
        stored = await self.journal.show(txn_id)
        live = self.engine.live.get(txn_id)
        if live is not None:
            # The final state is the journal's: written with the service's, never before it.
            return {**stored, **live.to_dict(), "state": stored["state"], "live": True}
        return {**stored, "live": False}

    # --- queries ---------------------------------------------------------------------------

    async def get(self, ref: str | int) -> dict[str, Any]:
        async with self.db.read() as s:
            row = await self._row(s, ref)
            return await _public(s, row)

    async def find(
        self, *, type: str | None = None, customer: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            query = select(ServiceRow).order_by(ServiceRow.id)
            if type:
                query = query.where(ServiceRow.type == type)
            if customer:
                query = query.where(ServiceRow.customer == customer)
            if state:
                query = query.where(ServiceRow.state == state)
            rows = (await s.scalars(query)).all()
            held = await _held(s, [row.id for row in rows])  # one query, not one per service
            return [_document(row, held.get(row.id, [])) for row in rows]

    async def reserved(self, *, excluding: int | None = None) -> dict[int, int]:
        """Bandwidth held per link by services that hold resources."""
        async with self.db.transaction() as s:
            query = (
                select(ServiceResourceRow.link_id, func.sum(ServiceResourceRow.bandwidth_bps))
                .join(ServiceRow, ServiceRow.id == ServiceResourceRow.service_id)
                .where(ServiceResourceRow.kind == "link", ServiceResourceRow.reserved.is_(True))
                .where(ServiceRow.state.in_(HOLDS_RESOURCES))
                .group_by(ServiceResourceRow.link_id)
            )
            if excluding is not None:
                query = query.where(ServiceRow.id != excluding)
            rows = (await s.execute(query)).all()
            return {int(link): int(bps) for link, bps in rows if link is not None}

    async def services_on(
        self, *, link_id: int | None = None, device: str | None = None
    ) -> list[dict[str, Any]]:
        """Services holding resources on a link or device (impact queries)."""
        async with self.db.transaction() as s:
            # only plain columns: PostgreSQL has no equality for json, so no DISTINCT on rows
            query = (
                select(
                    ServiceRow.id,
                    ServiceRow.name,
                    ServiceRow.type,
                    ServiceRow.customer,
                    ServiceRow.state,
                )
                .join(ServiceResourceRow, ServiceRow.id == ServiceResourceRow.service_id)
                .where(ServiceRow.state.in_(HOLDS_RESOURCES))
                .distinct()
            )
            if link_id is not None:
                query = query.where(ServiceResourceRow.link_id == link_id)
            if device is not None:
                query = query.where(ServiceResourceRow.device == device)
            rows = (await s.execute(query.order_by(ServiceRow.id))).all()
            return [
                {
                    "id": r.id,
                    "name": r.name,
                    "type": r.type,
                    "customer": r.customer,
                    "state": r.state,
                }
                for r in rows
            ]

    # --- create ----------------------------------------------------------------------------

    async def create(
        self,
        type_name: str,
        params: Mapping[str, Any],
        *,
        name: str | None = None,
        actor: str,
        dry_run: bool = False,
        observer: Observer | None = None,
        on_started: Started | None = None,
    ) -> dict[str, Any]:
        stype = self._type(type_name)
        values = stype.validate(params)
        customer = stype.customer_of(values)
        if dry_run:
            return await self._preview_create(stype, values)
        async with self._placing:
            # Placed (or refused) before anything is stored, then stored, reserved and
            # journaled together: a refusal, or a daemon stopped on the way, leaves no record.
            probe_names, probe = await self._probe(stype, values)
            await self._check_vrf_free(None, probe_names.vrf, list(probe.devices))
            async with self.db.transaction() as s:
                # Other instances place too: reserve under the cluster's placement lock, the
                # VLAN picked again and the links' room checked again under it.
                await lock_placement(s)
                vlan = await self._free_vlan(s, stype, values) if stype.needs_vlan else None
                row, names = await self._insert(s, stype, values, customer, name, vlan)
                real = await self._reserve(s, row, stype, values, names, probe.placement)
                plans = _new(stype, self._plans(stype, values, names, real, "merge"))
                txn = await self._start(s, row, "create", plans, actor)
        return await self._drive(txn, row.id, actor, observer, on_started)

    async def _probe(
        self, stype: ServiceType, values: dict[str, Any]
    ) -> tuple[ServiceNames, Realisation]:
        """Where a new service would go, named with the id it would most likely get."""
        async with self.db.transaction() as s:
            next_id = ((await s.scalar(select(func.max(ServiceRow.id)))) or 0) + 1
            vlan = await self._free_vlan(s, stype, values) if stype.needs_vlan else None
        names = self._names(stype, values, next_id, vlan)
        reserved = await self.reserved()
        async with self.inventory.frozen() as graph:
            # off the event loop: the API, collectors and alarms go on meanwhile
            real = await asyncio.to_thread(realise, graph, stype, values, names, reserved)
        return names, real

    async def _preview_create(self, stype: ServiceType, values: dict[str, Any]) -> dict[str, Any]:
        names, real = await self._probe(stype, values)
        plans = _new(stype, self._plans(stype, values, names, real, "merge"))
        return {
            "dry_run": True,
            "service": {
                "type": stype.name,
                "params": values,
                "vlan": names.vlan,
                "vrf": names.vrf,
                "rd": names.rd,
                "placement": real.placement.to_dict() if real.placement else None,
            },
            "devices": await self._preview(plans),
        }

    async def _insert(
        self,
        s: AsyncSession,
        stype: ServiceType,
        values: dict[str, Any],
        customer: str,
        name: str | None,
        vlan: int | None,
    ) -> tuple[ServiceRow, ServiceNames]:
        if name and await s.scalar(select(ServiceRow.id).where(ServiceRow.name == name)):
            raise Conflict(f"a service named {name} exists")
        row = ServiceRow(
            name=name or f"pending-{id(values)}",
            type=stype.name,
            customer=customer,
            state="designed",
            params=values,
            vlan=vlan,
            sla=stype.sla_profile(values),
        )
        s.add(row)
        await s.flush()
        names = self._names(stype, values, row.id, vlan)
        row.name = name or f"{stype.name}-{row.id}"
        row.vrf, row.rd = names.vrf, names.rd
        return row, names

    async def _check_vrf_free(self, row_id: int | None, vrf: str, devices: list[str]) -> None:
        """A VRF belongs to one service per device: deleting one must not remove another's."""
        async with self.db.transaction() as s:
            other = await s.scalar(
                select(ServiceRow.name)
                .join(ServiceResourceRow, ServiceRow.id == ServiceResourceRow.service_id)
                .where(ServiceRow.id != (row_id or 0), ServiceRow.vrf == vrf)
                .where(ServiceRow.state.in_(HOLDS_RESOURCES))
                .where(ServiceResourceRow.kind == "device", ServiceResourceRow.device.in_(devices))
                .limit(1)
            )
        if other is not None:
            raise Conflict(f"VRF {vrf} is service {other}'s on a shared device")

    async def _free_vlan(
        self, s: AsyncSession, stype: ServiceType, values: Mapping[str, Any]
    ) -> int:
        given = stype.value_of("vlan", values)
        if given:
            return int(given)
        used = set(
            (
                await s.scalars(
                    select(ServiceRow.vlan).where(
                        ServiceRow.state != "terminated", ServiceRow.vlan.is_not(None)
                    )
                )
            ).all()
        )
        low, high = self.options.vlan_pool
        for vlan in range(low, high + 1):
            if vlan not in used:
                return vlan
        raise Conflict(f"no free VLAN left in the pool {low}..{high}")

    def _names(
        self, stype: ServiceType, values: Mapping[str, Any], service_id: int, vlan: int | None
    ) -> ServiceNames:
        return service_names(stype, values, service_id, vlan, self.options.asn)

    async def _reserve(
        self,
        s: AsyncSession,
        row: ServiceRow,
        stype: ServiceType,
        values: Mapping[str, Any],
        names: ServiceNames,
        placement: Placement | None,
    ) -> Realisation:
        """The service's resources stored where it was placed, unless the inventory lost them
        (or the room on a link) since: checked with the rows locked, in this transaction, so no
        removal lands between the check and the reservation (a refusal rolls it back)."""
        try:
            real = realise(self.inventory.graph, stype, values, names, {}, placement)
            held = _resources(row.id, real)
            missing = await unavailable(s, held, service_id=row.id)
        except NotFound as exc:  # gone from the graph already
            missing = [str(exc)]
        if missing:
            raise _inventory_changed(missing)
        row.state = "reserved"
        row.placement = real.placement.to_dict() if real.placement else None
        await insert_resources(s, held)
        return real

    # --- modify, delete, reconcile, diff ----------------------------------------------------

    async def modify(
        self,
        ref: str | int,
        changes: Mapping[str, Any],
        *,
        actor: str,
        dry_run: bool = False,
        observer: Observer | None = None,
        on_started: Started | None = None,
    ) -> dict[str, Any]:
        svc = await self._load(ref, ("active", "failed"), "modify")
        stype, old_values, row_id = svc.stype, svc.values, svc.row_id
        names = old_names = svc.names
        old_placement = svc.placement
        values = stype.merge(old_values, changes)
        if stype.customer_of(values) != stype.customer_of(old_values):
            raise InvalidInput(
                f"parameters.{stype.uses['customer']}: a service cannot move to another customer"
            )
        vlan = stype.value_of("vlan", values)
        if vlan and names.vlan != vlan:
            names = ServiceNames(names.id, int(vlan), names.vrf, names.rd, names.description)
        async with self._placing:
            others = await self.reserved(excluding=row_id)
            async with self.inventory.frozen() as graph:
                old_real = realise(graph, stype, old_values, old_names, others, old_placement)
                real = await asyncio.to_thread(realise, graph, stype, values, names, others)
            old = {
                p.device: p for p in self._plans(stype, old_values, old_names, old_real, "merge")
            }
            gone = {
                p.device: p for p in self._plans(stype, old_values, old_names, old_real, "delete")
            }
            new = {p.device: p for p in self._plans(stype, values, names, real, "merge")}
            plans = [
                _change_plan(old.get(d), gone.get(d), new.get(d))
                for d in dict.fromkeys([*new, *old])
            ]
            if dry_run:
                return {"dry_run": True, "params": values, "devices": await self._preview(plans)}
            before = await self.get(row_id)
            # The new parameters and resources are stored with the journal entry, or (refused:
            # the inventory lost them since; a daemon stopped) neither is: the old ones stay.
            async with self.db.transaction() as s:
                await lock_placement(s)  # the links' room is checked below, as other instances
                row = await self._row(s, row_id)
                row.params = values
                row.vlan = names.vlan
                row.sla = stype.sla_profile(values)
                row.placement = real.placement.to_dict() if real.placement else None
                old_rows = (
                    await s.scalars(
                        select(ServiceResourceRow).where(ServiceResourceRow.service_id == row_id)
                    )
                ).all()
                for r in old_rows:
                    await s.delete(r)
                held = _resources(row_id, real)
                missing = await unavailable(s, held, service_id=row_id)
                if missing:
                    raise _inventory_changed(missing)
                s.add_all(held)
                txn = await self._start(s, row, "modify", plans, actor)
        return await self._drive(
            txn,
            row_id,
            actor,
            observer,
            on_started,
            undo_params=old_values,
            undo_real=old_real,
            before=before,
        )

    async def delete(
        self,
        ref: str | int,
        *,
        actor: str,
        dry_run: bool = False,
        observer: Observer | None = None,
        on_started: Started | None = None,
    ) -> dict[str, Any]:
        svc = await self._load(ref, ("active", "failed", "reserved"), "delete")
        plans = self._plans(svc.stype, svc.values, svc.names, self._current(svc), "delete")
        if dry_run:
            return {"dry_run": True, "devices": await self._preview(plans)}
        before = await self.get(svc.row_id)
        return await self._transact(
            svc.row_id, "delete", plans, actor, observer, on_started, before=before
        )

    async def drift(self, ref: str | int) -> dict[str, Any]:
        """What differs between the devices and what the service should have rendered."""
        svc = await self._load(ref, ("active", "failed", "provisioning", "reserved"), "diff")
        real = self._current(svc)
        devices = await self._preview(self._plans(svc.stype, svc.values, svc.names, real, "merge"))
        drifted = [d for d in devices if d["state"] != "unchanged"]
        return {"service": svc.row_id, "in_sync": not drifted, "devices": devices}

    async def reconcile(
        self,
        ref: str | int,
        *,
        actor: str,
        observer: Observer | None = None,
        on_started: Started | None = None,
    ) -> dict[str, Any]:
        svc = await self._load(ref, ("active", "failed"), "reconcile")
        plans = self._plans(svc.stype, svc.values, svc.names, self._current(svc), "merge")
        before = await self.get(svc.row_id)
        return await self._transact(
            svc.row_id, "reconcile", plans, actor, observer, on_started, before=before
        )

    # --- transactions ----------------------------------------------------------------------

    async def _transact(
        self,
        row_id: int,
        kind: str,
        plans: Sequence[DevicePlan],
        actor: str,
        observer: Observer | None,
        on_started: Started | None = None,
        *,
        before: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        async with self.db.transaction() as s:
            txn = await self._start(s, await self._row(s, row_id), kind, plans, actor)
        return await self._drive(txn, row_id, actor, observer, on_started, before=before)

    async def _drive(
        self,
        txn: Transaction,
        row_id: int,
        actor: str,
        observer: Observer | None,
        on_started: Started | None,
        *,
        undo_params: Mapping[str, Any] | None = None,
        undo_real: Realisation | None = None,
        before: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a journaled change on the devices and settle its service."""
        if on_started is not None:
            on_started(txn.id, row_id)
        try:
            return await self._run_and_settle(
                txn,
                row_id,
                actor,
                observer,
                undo_params=undo_params,
                undo_real=undo_real,
                before=before,
            )
        except (StorageError, SQLAlchemyError) as exc:
            # The journal could not follow (the database is away, or refused this instance's
            # stale lease): the change is resolved again from the journal once it can be.
            self._resolve_later(Unfinished(txn.id, txn.kind, row_id, self.instance), exc)
            raise

    async def _run_and_settle(
        self,
        txn: Transaction,
        row_id: int,
        actor: str,
        observer: Observer | None,
        *,
        undo_params: Mapping[str, Any] | None,
        undo_real: Realisation | None,
        before: dict[str, Any] | None,
    ) -> dict[str, Any]:
        try:
            # The journal holds the end back: `_settle` writes it with the service's state, so
            # whoever sees the transaction ended sees the service settled (and a daemon stopped
            # in between leaves the transaction open, for recovery to settle).
            await self.engine.run(txn, _Deferring(self.journal), observer)
        except TransactionFailed as exc:
            await self._settle(
                row_id,
                txn.kind,
                ok=False,
                error=exc.transaction.error,
                txn=exc.transaction,
                undo_params=undo_params,
                undo_real=undo_real,
                actor=actor,
                before=before,
            )
            raise
        await self._settle(row_id, txn.kind, ok=True, txn=txn, actor=actor, before=before)
        return {"service": await self.get(row_id), "transaction": txn.to_dict()}

    async def _start(
        self, s: AsyncSession, row: ServiceRow, kind: str, plans: Sequence[DevicePlan], actor: str
    ) -> Transaction:
        """The change journaled with its whole plan (durable before any device is touched), in
        the caller's database transaction that writes the service: in flight and naming the
        transaction, so whoever is told its id finds the service following it, and a daemon
        stopped before finds the service as it was."""
        if row.state in IN_FLIGHT.values():  # another change started since it was loaded
            raise Conflict(f"service {row.name} is {row.state}: another change is running")
        txn_id = await self.journal.add(s, kind, row.id, actor)
        txn = Transaction(txn_id, kind, [DeviceTxn(p, i) for i, p in enumerate(plans)])
        await self.journal.begin(s, txn)
        row.transaction_id = txn_id
        if kind in IN_FLIGHT:
            row.state, row.error = IN_FLIGHT[kind], None
        return txn

    async def _settle(
        self,
        row_id: int,
        kind: str,
        *,
        ok: bool,
        error: str | None = None,
        txn: Transaction | None = None,
        undo_params: Mapping[str, Any] | None = None,
        undo_real: Realisation | None = None,
        actor: str,
        before: dict[str, Any] | None = None,
        recovered: dict[str, Any] | None = None,
    ) -> None:
        """The service's state and resources after a transaction ended, written together with
        the transaction's final state and the change's audit entry (and, `recovered`, the
        recovery's): nobody sees one without the others."""
        async with self.db.transaction() as s:
            if txn is not None:
                await self.journal.write(s, txn)
            row = await s.get(ServiceRow, row_id)
            if row is None:
                return
            if kind == "create":
                row.state = "active" if ok else "failed"
                await set_reserved(s, row_id, ok)
            elif kind == "delete":
                row.state = "terminated" if ok else "active"
                if ok:
                    await set_reserved(s, row_id, False)
            elif kind == "modify" and not ok and undo_params is not None:
                # The devices kept the old service: so does the record.
                row.params = dict(undo_params)
                resources = (
                    await s.scalars(
                        select(ServiceResourceRow).where(ServiceResourceRow.service_id == row_id)
                    )
                ).all()
                for r in resources:
                    await s.delete(r)
                if undo_real is not None:
                    s.add_all(_resources(row_id, undo_real))
                row.state = "active"
            else:
                row.state = "active" if ok or row.state != "provisioning" else "failed"
            row.error = None if ok else error
            await s.flush()
            audit.record(
                s,
                actor=actor,
                action=kind,
                object_type="service",
                object_id=row.name,
                before=before,
                after=await _public(s, row),
            )
            if recovered is not None:
                _audit_recovery(s, recovered)

    async def recover(self) -> list[dict[str, Any]]:
        """Resolve every transaction a previous run left open (see Engine.resolve_held): in
        cluster mode this instance's own; those of instances that died are `txn-recovery`'s
        (`oss.provisioning.orphans`)."""
        results = []
        for entry in await self.journal.unfinished():
            log.warning("transaction %s (%s) was interrupted; resolving it", entry.id, entry.kind)
            try:
                done = await self.resolve(entry, wait_s=0)
            except DevicesBusy as exc:  # another instance's resolver or change has them now
                log.warning("transaction %s: %s; resolved once they are free", entry.id, exc)
                self.spawn(self._resolve_when_possible(entry))  # the start goes on meanwhile
                continue
            if done is not None:
                log.warning("transaction %s resolved: %s", entry.id, done["state"])
                results.append(done)
        return results

    async def resolve(
        self,
        entry: Unfinished,
        *,
        wait_s: float | None,
        why: str = "by a daemon restart",
        still_open: Callable[[], Awaitable[bool]] | None = None,
    ) -> dict[str, Any] | None:
        """Finish or roll back one open transaction from its journal, under its device locks
        (waiting at most `wait_s`: `DevicesBusy` if a live or paused holder keeps them), and
        settle its service as the change of whoever started it. None when it needs nothing
        any more: ended by another resolver meanwhile, or `still_open()` says it is not ours
        to resolve now. Audited (object `transaction`, action `recover`) with who resolved it."""
        devices = [d.device for d in (await self.journal.load(entry.id)).devices]
        async with self.engine.locks.holding(devices, wait_s=wait_s):
            if still_open is not None and not await still_open():
                return None
            # Ours from here on, or refused (a stale lease) before any device is touched.
            if not await self.journal.claim(entry.id):
                return None  # ended meanwhile, by whoever held the locks before
            txn = await self.journal.load(entry.id)  # as it is now that nobody works on it
            done = await self.engine.resolve_held(txn, _Deferring(self.journal), why=why)
            recovered = {
                "transaction": entry.id,
                "kind": entry.kind,
                "service_id": entry.service_id,
                "instance": entry.instance,
                "resolved_by": self.instance,
                "reason": why,
                "state": done.state,
                "error": done.error,
            }
            if entry.service_id is not None:
                # Audited as the change of whoever started it (the journal keeps who).
                actor = str((await self.journal.show(entry.id)).get("actor") or "recovery")
                await self._settle(
                    entry.service_id,
                    entry.kind,
                    ok=done.state == "committed",
                    error=done.error,
                    txn=done,
                    actor=actor,
                    recovered=recovered,
                )
            else:
                async with self.db.transaction() as s:
                    await self.journal.write(s, done)
                    _audit_recovery(s, recovered)
        return {"id": entry.id, "kind": entry.kind, "state": done.state}

    def _resolve_later(self, entry: Unfinished, exc: BaseException) -> None:
        log.warning(
            "transaction %s: its journal could not be written (%s); it will be resolved from"
            " the journal once the database takes this instance's writes again",
            entry.id,
            exc,
        )
        self.spawn(self._resolve_when_possible(entry))

    async def _resolve_when_possible(self, entry: Unfinished) -> None:
        """Resolve `entry` as soon as the database lets this instance (or finds it ended: an
        instance that took over resolved it)."""
        pause = Backoff(1.0, 30.0)
        while True:
            try:
                done = await self.resolve(
                    entry, wait_s=self.engine.lock_wait_s, why="after a database failure"
                )
            except (StorageError, SQLAlchemyError, OSError, DevicesBusy) as exc:
                if pause.failed():
                    log.warning("transaction %s: not resolved yet: %s", entry.id, exc)
                await asyncio.sleep(pause.pause())
                continue
            state = done["state"] if done is not None else "ended by another instance"
            log.warning("transaction %s resolved: %s", entry.id, state)
            return

    # --- helpers ---------------------------------------------------------------------------

    def _type(self, name: str) -> ServiceType:
        try:
            return self.types[name]
        except KeyError:
            known = ", ".join(sorted(self.types))
            raise InvalidInput(f"type: unknown service type {name!r} (known: {known})") from None

    async def _row(self, s: AsyncSession, ref: str | int) -> ServiceRow:
        query = select(ServiceRow)
        row_id = ref if isinstance(ref, int) else int64_of(ref)
        if row_id is not None:
            query = query.where(ServiceRow.id == row_id)
        else:
            query = query.where(ServiceRow.name == str(ref))
        row = await s.scalar(query)
        if row is None:
            raise NotFound(f"no service {ref}")
        return row

    def _stored_names(self, row: ServiceRow) -> ServiceNames:
        stype = self._type(row.type)
        names = self._names(stype, row.params, row.id, row.vlan)
        return ServiceNames(row.id, row.vlan, row.vrf or names.vrf, row.rd, names.description)

    async def _load(self, ref: str | int, states: tuple[str, ...], what: str) -> _Stored:
        async with self.db.transaction() as s:
            row = await self._row(s, ref)
            _require(row, states, what)
            return _Stored(
                row_id=row.id,
                stype=self._type(row.type),
                values=dict(row.params),
                names=self._stored_names(row),
                placement=_placement_of(row.placement),
            )

    def _current(self, svc: _Stored) -> Realisation:
        """Where the service IS: its stored paths, not a new placement (the network may have
        changed since; removing or checking it must touch the devices it was put on)."""
        return realise(self.inventory.graph, svc.stype, svc.values, svc.names, {}, svc.placement)

    def _plans(
        self,
        stype: ServiceType,
        values: Mapping[str, Any],
        names: ServiceNames,
        real: Realisation,
        mode: Mode,
    ) -> list[DevicePlan]:
        plans = []
        for name, role in real.devices.items():
            platform = load_platform(role.device.platform)
            context = template_context(stype, values, names, role, platform)
            kind = config_protocol(platform).template_kind
            template = stype.template(role.role, platform.template_dir, kind)
            plans.append(
                render_device(self.renderer, platform, template, context, mode=mode, device=name)
            )
        return plans

    async def _preview(self, plans: Sequence[DevicePlan]) -> list[dict[str, Any]]:
        return [
            {
                "device": d.device,
                "protocol": d.plan.protocol,
                "state": d.state,
                "error": d.error,
                "diff": [c.line() for c in d.changes],
                "payload": d.plan.payload,
            }
            for d in await self.engine.preview(plans)
        ]


@dataclass(frozen=True)
class _Stored:
    row_id: int
    stype: ServiceType
    values: dict[str, Any]
    names: ServiceNames
    placement: Placement | None


def _placement_of(data: Mapping[str, Any] | None) -> Placement | None:
    if not data:
        return None

    def path(p: Mapping[str, Any]) -> Path:
        return Path(list(p["devices"]), list(p["links"]), p["latency_us"], p["capacity_bps"])

    protection = data.get("protection")
    return Placement(path(data["primary"]), path(protection) if protection else None)


class _Deferring:
    """The journal as the engine sees it during a service change (and its recovery): every
    step is recorded, but an end is held back as the step before it (`confirming`,
    `rolling-back`), which recovery resolves again; `_settle` writes the end itself, in the
    database transaction that writes the service's state and the change's audit entry."""

    def __init__(self, journal: DbJournal) -> None:
        self.journal = journal

    async def record(self, txn: Transaction) -> None:
        held = {"committed": "confirming", "rolled-back": "rolling-back", "failed": "rolling-back"}
        await self.journal.record(txn, state=held.get(txn.state))


async def _public(s: AsyncSession, row: ServiceRow) -> dict[str, Any]:
    return _document(row, (await _held(s, [row.id])).get(row.id, []))


async def _held(s: AsyncSession, service_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Each service's resource rows, in the order they were stored: plain rows, not ORM
    objects (a few per device, read at every settle)."""
    r = ServiceResourceRow
    held: dict[int, list[Any]] = {}
    for chunk in in_chunks(sorted(service_ids)):
        rows = await s.execute(
            select(
                r.service_id, r.kind, r.device, r.interface, r.role, r.link_id,
                r.bandwidth_bps, r.reserved,
            )
            .where(r.service_id.in_(chunk))
            .order_by(r.id)
        )  # fmt: skip
        for found in rows:
            held.setdefault(found.service_id, []).append(found)
    return held


def _document(row: ServiceRow, resources: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "customer": row.customer,
        "state": row.state,
        "params": row.params,
        "sla": row.sla,
        "vlan": row.vlan,
        "vrf": row.vrf,
        "rd": row.rd,
        "placement": row.placement,
        "error": row.error,
        "transaction_id": row.transaction_id,
        # the transaction running on it, else its last one (the console follows it)
        "last_transaction_id": row.transaction_id,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "resources": {
            "devices": [
                {"device": r.device, "role": r.role} for r in resources if r.kind == "device"
            ],
            "interfaces": [
                {"device": r.device, "interface": r.interface}
                for r in resources
                if r.kind == "interface"
            ],
            "links": [
                {
                    "id": r.link_id,
                    "role": r.role,
                    "bandwidth_bps": r.bandwidth_bps,
                    "reserved": r.reserved,
                }
                for r in resources
                if r.kind == "link"
            ],
        },
    }


def _audit_recovery(s: AsyncSession, recovered: dict[str, Any]) -> None:
    by = recovered["resolved_by"]
    audit.record(
        s,
        actor=f"txn-recovery@{by}" if by else "recovery",
        action="recover",
        object_type="transaction",
        object_id=str(recovered["transaction"]),
        after=recovered,
    )


def _inventory_changed(missing: list[str]) -> Conflict:
    return Conflict(
        "the inventory changed (or another instance reserved the room) while the service was"
        " being placed: " + "; ".join(missing) + "; nothing was reserved, try again"
    )


def _require(row: ServiceRow, states: tuple[str, ...], what: str) -> None:
    if row.state not in states:
        raise Conflict(f"service {row.name} is {row.state}; {what} needs it {' or '.join(states)}")


def _resources(row_id: int, real: Realisation) -> list[ServiceResourceRow]:
    rows = [
        ServiceResourceRow(service_id=row_id, kind="device", device=name, role=role.role)
        for name, role in real.devices.items()
    ]
    rows += [
        ServiceResourceRow(
            service_id=row_id,
            kind="interface",
            device=device,
            interface=interface,
            role="attachment",
        )
        for device, interface in real.interfaces()
    ]
    if real.placement is not None:
        primary = set(real.placement.primary.links)
        rows += [
            ServiceResourceRow(
                service_id=row_id,
                kind="link",
                link_id=link,
                role="primary" if link in primary else "protection",
                bandwidth_bps=bps,
                reserved=True,
            )
            for link, bps in real.reservations.items()
        ]
    return rows


def _new(stype: ServiceType, plans: list[DevicePlan]) -> list[DevicePlan]:
    """A create's plans: an exclusive type's must find what they would own absent."""
    for plan in plans:
        plan.exclusive = stype.exclusive
    return plans


def _change_plan(
    old: DevicePlan | None, gone: DevicePlan | None, new: DevicePlan | None
) -> DevicePlan:
    """One device's plan for a modification: the new rendering, plus removal of what only the
    old one had; a device that leaves the service gets the old delete rendering."""
    if new is None:
        assert gone is not None
        return gone
    if old is None:
        return new
    stale = [e for e in old.owned if not in_scope(e, new.owned)]
    stale += [
        path
        for path in old.intent.leaves
        if in_scope(path, new.owned) and path not in new.intent.leaves
    ]
    if not stale:
        return new
    intent = Intent(dict(new.intent.leaves), tuple(dict.fromkeys([*stale, *new.intent.removals])))
    return DevicePlan(
        device=new.device,
        platform=new.platform,
        payload=config_protocol(new.platform).write(intent, new.platform),
        intent=intent,
        owned=new.owned,
    )

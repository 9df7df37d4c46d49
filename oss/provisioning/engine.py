"""The multi-device transaction: all devices get their change, or none keeps any of it.

Phases, each run on every device in parallel (bounded), each journaled before it starts:

    read -> prepare -> commit -> verify -> confirm
    any failure on any device: undo on every device that got as far as prepare

Devices whose running configuration already matches are left alone ("unchanged"). Devices are
serialized across transactions by per-device locks taken in one order (no deadlock), held in
this process or, on PostgreSQL, across instances (`cluster_locks`); two transactions on
disjoint devices run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from oss.errors import ConnectError, DeviceTimeout, DriverError, OssError
from oss.provisioning.access import DeviceAccess
from oss.provisioning.adapters import Adapter, Reached, as_text
from oss.provisioning.leaves import Change, diff, restrict, under
from oss.provisioning.plan import DevicePlan
from oss.provisioning.protocols import config_protocol
from oss.store.device_locks import DevicesBusy

log = logging.getLogger(__name__)

Step = Literal["read", "prepare", "commit", "verify", "confirm", "undo"]
StepEvent = Literal["start", "done", "failed"]
TxnState = Literal[
    "pending",
    "reading",
    "preparing",
    "committing",
    "verifying",
    "confirming",
    "committed",
    "rolling-back",
    "rolled-back",
    "failed",
]
TERMINAL: frozenset[str] = frozenset({"committed", "rolled-back", "failed"})


class Observer(Protocol):
    """Told before and after every step on every device (progress display, fault tests)."""

    async def __call__(
        self, device: str, step: Step, event: StepEvent, error: str | None
    ) -> None: ...


class Journal(Protocol):
    """Durable record of a transaction; `record` returns once the state is stored."""

    async def record(self, txn: Transaction) -> None: ...


@dataclass
class DeviceTxn:
    plan: DevicePlan
    position: int
    state: str = "pending"
    step: Step | None = None
    error: str | None = None
    reached: Reached = "none"
    persist_id: str = ""
    changes: list[Change] = field(default_factory=list)
    adapter: Adapter | None = None

    @property
    def device(self) -> str:
        return self.plan.device

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "position": self.position,
            "protocol": self.plan.protocol,
            "state": self.state,
            "step": self.step,
            "error": self.error,
            "diff": [c.line() for c in self.changes],
            "steps": self.plan.steps,
        }


@dataclass
class Transaction:
    id: int
    kind: str
    devices: list[DeviceTxn]
    state: TxnState = "pending"
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "error": self.error,
            "devices": [d.to_dict() for d in self.devices],
        }


class TransactionFailed(OssError, RuntimeError):
    """The change did not happen; `transaction` says where and why (and what was undone)."""

    status = 409
    slug = "transaction-failed"
    title = "Transaction failed"

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(transaction.error or "transaction failed", transaction=transaction.id)
        self.transaction = transaction


class DeviceLocks:
    """One lock per device, held for a whole transaction: in this process (SQLite's one
    instance; on PostgreSQL, `oss.provisioning.cluster_locks` adds the database's)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def holding(
        self, devices: Iterable[str], *, wait_s: float | None = None
    ) -> AsyncIterator[None]:
        """Every device's lock, in name order, waiting at most `wait_s` in all (None: as long
        as it takes); `DevicesBusy` names the device that stayed busy."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        async with AsyncExitStack() as stack:
            for name in sorted(set(devices)):
                lock = self._locks.setdefault(name, asyncio.Lock())
                left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                try:
                    if left is None or (left == 0 and not lock.locked()):
                        await lock.acquire()  # a free one at once, even with no wait left
                    else:
                        await asyncio.wait_for(lock.acquire(), left)
                except TimeoutError:
                    raise DevicesBusy(
                        f"device {name} is being changed by another transaction; waited"
                        f" {wait_s:g} s",
                        device=name,
                    ) from None
                stack.callback(lock.release)
            yield

    async def close(self) -> None:
        """Nothing to let go of in this process (the database's locks keep connections)."""


class NoJournal:
    async def record(self, txn: Transaction) -> None:
        """Dry runs and tests that do not need durability."""


class Engine:
    def __init__(
        self,
        access: DeviceAccess,
        *,
        max_parallel: int = 64,
        hold_before_confirm_s: float = 0.0,
        locks: DeviceLocks | None = None,
        lock_wait_s: float | None = None,
    ) -> None:
        self.access = access
        self.locks = locks or DeviceLocks()
        self.lock_wait_s = lock_wait_s  # a transaction waits this long for busy devices
        self._parallel = asyncio.Semaphore(max_parallel)
        self._hold_s = hold_before_confirm_s
        self.live: dict[int, Transaction] = {}  # running now, with per-device progress

    # --- read-only ------------------------------------------------------------------------

    async def preview(self, plans: Sequence[DevicePlan]) -> list[DeviceTxn]:
        """Per-device diffs against the running configuration; nothing is changed."""
        txns = [DeviceTxn(plan, i) for i, plan in enumerate(plans)]

        async def one(d: DeviceTxn) -> None:
            try:
                async with self._parallel, self.access.adapter(d.device) as adapter:
                    running = as_text(await adapter.read(d.plan))
                _refuse_taken(d.plan, running)
                d.changes = diff(d.plan.intent, d.plan.owned, running)
                d.state = "unchanged" if not d.changes else "differs"
            except (DriverError, OssError) as exc:
                d.state, d.error = "failed", str(exc)

        await asyncio.gather(*(one(d) for d in txns))
        return txns

    # --- the transaction ------------------------------------------------------------------

    async def run(
        self,
        txn: Transaction,
        journal: Journal,
        observer: Observer | None = None,
    ) -> Transaction:
        """Apply `txn`; returns it committed, or raises TransactionFailed once every device
        is back where it was (or says which one could not be put back)."""
        self.live[txn.id] = txn
        try:
            return await self._run(txn, journal, observer or _silent)
        finally:
            self.live.pop(txn.id, None)

    async def _run(self, txn: Transaction, journal: Journal, notify: Observer) -> Transaction:
        async with AsyncExitStack() as held:
            devices = [d.device for d in txn.devices]
            try:
                await held.enter_async_context(self.locks.holding(devices, wait_s=self.lock_wait_s))
            except DevicesBusy as exc:  # before any device was touched: nothing to undo
                txn.error, txn.state = f"{exc}; nothing was changed", "rolled-back"
                await journal.record(txn)
                raise TransactionFailed(txn) from exc
            return await self._locked_run(txn, journal, notify)

    async def _locked_run(
        self, txn: Transaction, journal: Journal, notify: Observer
    ) -> Transaction:
        await self._journal(txn, journal, "reading")
        async with AsyncExitStack() as sessions:
            ok = await self._phases(txn, journal, notify, sessions)
            if not ok:
                await self._undo_all(txn, journal, notify, fresh=False)
        if not ok:
            await self._undo_all(txn, journal, notify, fresh=True)
            stuck = [d.device for d in txn.devices if d.state == "undo-failed"]
            reverting = [d.device for d in txn.devices if d.state == "auto-revert"]
            txn.state = "failed" if stuck else "rolled-back"
            if reverting:
                txn.error = (
                    f"{txn.error}; unreachable for undo, reverting by its own confirmed-commit"
                    f" timer: {', '.join(reverting)}"
                )
            if stuck:
                txn.error = f"{txn.error}; NOT restored on {', '.join(stuck)} (needs attention)"
            await journal.record(txn)
            raise TransactionFailed(txn)
        return txn

    async def resolve(self, txn: Transaction, journal: Journal) -> Transaction:
        """`resolve_held` under the transaction's device locks."""
        async with self.locks.holding(d.device for d in txn.devices):
            return await self.resolve_held(txn, journal)

    async def resolve_held(
        self, txn: Transaction, journal: Journal, *, why: str = "by a daemon restart"
    ) -> Transaction:
        """Finish a transaction a dead daemon left open, its device locks held by the caller.
        Verified everywhere and only the confirmation missing: confirm (by persist id, from
        fresh sessions). Anything else, or a confirmation that no longer works (the device's
        timer already reverted it): undo everywhere from the journaled pre-images."""
        done = ("verified", "confirmed", "unchanged", "read", "pending")
        if txn.state == "confirming" and all(d.state in done for d in txn.devices):

            async def finish(d: DeviceTxn) -> None:
                async with self.access.adapter(d.device) as adapter:
                    await adapter.confirm(d.plan, d.persist_id)
                d.reached, d.state = "confirmed", "confirmed"

            todo = [d for d in txn.devices if d.state == "verified"]
            if await self._phase(txn, "confirm", todo, finish, _silent):
                txn.error = None
                await self._journal(txn, journal, "committed")
                return txn
        reason = txn.error or f"interrupted in state {txn.state} {why}"
        if txn.state == "confirming":
            # The confirmation may have landed on any verified device after the journal was
            # written (a paused instance resuming, a crash mid-phase): a device that says no
            # confirmation is pending may hold the change for good, so undo as if it did.
            for d in txn.devices:
                if d.state == "verified":
                    d.reached = "confirmed"
        await self._undo_all(txn, journal, _silent, fresh=True)
        stuck = [d.device for d in txn.devices if d.state == "undo-failed"]
        txn.error = reason + ("" if not stuck else f"; NOT restored on {', '.join(stuck)}")
        txn.state = "failed" if stuck else "rolled-back"
        await journal.record(txn)
        return txn

    async def _phases(
        self,
        txn: Transaction,
        journal: Journal,
        notify: Observer,
        sessions: AsyncExitStack,
    ) -> bool:
        async def read(d: DeviceTxn) -> None:
            d.adapter = await sessions.enter_async_context(self.access.adapter(d.device))
            running = await d.adapter.read(d.plan)
            _refuse_taken(d.plan, running)
            d.plan.pre_image = restrict(running, d.plan.intent, d.plan.owned)
            d.changes = diff(d.plan.intent, d.plan.owned, as_text(running))
            d.state = "read" if d.changes else "unchanged"

        if not await self._phase(txn, "read", txn.devices, read, notify):
            return False
        active = [d for d in txn.devices if d.state != "unchanged"]
        for d in active:
            d.persist_id = f"oss-{txn.id}-{secrets.token_hex(8)}"

        async def prepare(d: DeviceTxn) -> None:
            d.reached = "prepared"  # from here on, undo applies (a lock may be held)
            await _adapter(d).prepare(d.plan)
            d.state = "prepared"

        async def commit(d: DeviceTxn) -> None:
            d.reached = "committed"  # a failed commit may still have changed something
            await _adapter(d).commit(d.plan, d.persist_id)
            d.state = "committed"

        async def verify(d: DeviceTxn) -> None:
            running = as_text(await _adapter(d).read(d.plan))
            left = diff(d.plan.intent, d.plan.owned, running)
            if left:
                shown = "; ".join(c.line() for c in left[:3])
                raise DriverError(
                    f"verify: the device does not hold the change ({shown})",
                    device=d.device,
                    protocol=d.plan.protocol,
                )
            if d.plan.checks:
                await _adapter(d).check(d.plan)
            d.state = "verified"

        async def confirm(d: DeviceTxn) -> None:
            # A confirmation that times out may still have landed: undo as if it had.
            d.reached = "confirmed"
            await _adapter(d).confirm(d.plan, d.persist_id)
            d.state = "confirmed"

        await self._journal(txn, journal, "preparing")  # pre-images are durable from here
        if not await self._phase(txn, "prepare", active, prepare, notify):
            return False
        await self._journal(txn, journal, "committing")
        if not await self._phase(txn, "commit", active, commit, notify):
            return False
        await self._journal(txn, journal, "verifying")
        if not await self._phase(txn, "verify", active, verify, notify):
            return False
        await self._journal(txn, journal, "confirming")
        if self._hold_s:
            log.warning("transaction %s: holding %.1f s before confirm", txn.id, self._hold_s)
            await asyncio.sleep(self._hold_s)
        if not await self._phase(txn, "confirm", active, confirm, notify):
            return False
        await self._journal(txn, journal, "committed")
        return True

    async def _phase(
        self,
        txn: Transaction,
        step: Step,
        devices: Sequence[DeviceTxn],
        work: Callable[[DeviceTxn], Awaitable[None]],
        notify: Observer,
    ) -> bool:
        async def one(d: DeviceTxn) -> None:
            async with self._parallel:
                await self._timed(d, step, work, notify)

        results = await asyncio.gather(*(one(d) for d in devices), return_exceptions=True)
        failures = [(d, r) for d, r in zip(devices, results, strict=True) if r is not None]
        for _, exc in failures:
            if not isinstance(exc, Exception):
                raise exc  # cancellation and the like: not a device failure
        if not failures:
            return True
        first, exc = min(failures, key=lambda f: f[0].position)
        txn.error = f"device {first.device}, step {step}: {exc}"
        if len(failures) > 1:
            others = ", ".join(d.device for d, _ in failures if d is not first)
            txn.error += f" (also failed: {others})"
        log.warning("transaction %s failed: %s", txn.id, txn.error)
        return False

    async def _timed(
        self,
        d: DeviceTxn,
        step: Step,
        work: Callable[[DeviceTxn], Awaitable[None]],
        notify: Observer,
    ) -> None:
        d.step = step
        await notify(d.device, step, "start", None)
        started = time.perf_counter()
        try:
            await work(d)
        except (OssError, OSError) as exc:
            d.error = str(exc)
            if d.state in ("pending", "read"):
                d.state = "failed"
            d.plan.steps.append(_timing(step, started, str(exc)))
            await notify(d.device, step, "failed", str(exc))
            raise
        d.plan.steps.append(_timing(step, started, None))
        await notify(d.device, step, "done", None)

    async def _undo_all(
        self, txn: Transaction, journal: Journal, notify: Observer, *, fresh: bool
    ) -> None:
        """First on the transaction's own sessions; then, for devices whose session broke,
        on fresh sessions (after the old ones are closed: a device lends one at a time)."""
        pending = [
            d
            for d in txn.devices
            if d.reached != "none" and d.state not in ("rolled-back", "auto-revert")
        ]
        if not pending:
            return
        if txn.state != "rolling-back":
            await self._journal(txn, journal, "rolling-back")

        async def undo(d: DeviceTxn) -> None:
            if fresh:
                async with self.access.adapter(d.device) as adapter:
                    await adapter.recover(d.plan, d.reached, d.persist_id)
            elif d.adapter is None:
                raise ConnectError("no session", device=d.device, protocol=d.plan.protocol)
            else:
                await d.adapter.undo(d.plan, d.reached, d.persist_id)
            d.state = "rolled-back"

        async def one(d: DeviceTxn) -> None:
            try:
                async with self._parallel:
                    await self._timed(d, "undo", undo, notify)
            except (ConnectError, DeviceTimeout, OSError) as exc:
                if fresh:
                    # A confirmed commit nobody confirms reverts on the device itself.
                    reverts = config_protocol(d.plan.platform).reverts_unconfirmed
                    pending_revert = reverts and d.reached == "committed"
                    d.state = "auto-revert" if pending_revert else "undo-failed"
                log.warning("undo on %s: %s", d.device, exc)
            except OssError as exc:
                d.state = "undo-failed"
                log.error("undo on %s failed: %s", d.device, exc)

        await asyncio.gather(*(one(d) for d in pending))
        await journal.record(txn)

    async def _journal(self, txn: Transaction, journal: Journal, state: TxnState) -> None:
        txn.state = state
        await journal.record(txn)


def _refuse_taken(plan: DevicePlan, running: Mapping[str, Any]) -> None:
    """An exclusive create finding what it would own already there refuses, before anything
    is sent: taking it over would make another service's (or a person's) configuration its
    own, and remove it on delete."""
    if not plan.exclusive:
        return
    taken = [entry for entry in plan.owned if any(under(path, entry) for path in running)]
    if taken:
        raise DriverError(
            f"{', '.join(taken)}: already configured (another service's, or by hand); a new"
            " service does not take it over",
            device=plan.device,
            protocol=plan.protocol,
        )


def _adapter(d: DeviceTxn) -> Adapter:
    assert d.adapter is not None, "read opens the session"
    return d.adapter


def _timing(step: Step, started: float, error: str | None) -> dict[str, Any]:
    return {
        "step": step,
        "ms": round((time.perf_counter() - started) * 1000, 1),
        "ok": error is None,
        **({"error": error} if error else {}),
    }


async def _silent(device: str, step: Step, event: StepEvent, error: str | None) -> None:
    return None

"""The daemon's runtime: shared resources, and the supervised services that use them.

`Runtime.run()` opens the resources (database, inventory), starts every service in one
`asyncio.TaskGroup` and waits. A stop request (SIGTERM, SIGINT) shuts services down stage by
stage, each stage within its time budget; a service that crashes, or returns while nobody asked
it to stop, takes the whole daemon down with its traceback logged, so it is never half alive.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.ext.asyncio import AsyncSession

from bss_bridge.bridge import Bss
from drivers.cli import CliDriver
from drivers.gnmi import GnmiDriver
from drivers.netconf import NetconfDriver
from oss.auth import TokenStore
from oss.components import Component, Stage
from oss.faults.alarms import AlarmFeed, AlarmManager
from oss.faults.noc_feed import NocFeed, NocPublisher, OutboxMessage
from oss.inventory import Inventory
from oss.metrics import Metrics
from oss.provisioning.access import DeviceAccess
from oss.provisioning.engine import Engine
from oss.provisioning.services import Options, ServiceManager
from oss.settings import Settings
from oss.store import Database
from topology.targets import parse_networks

log = logging.getLogger(__name__)


class _NoFeed:
    """No NOC feed configured: alarms are kept and served, nothing is queued for MQTT."""

    async def enqueue(self, session: AsyncSession, alarm: dict[str, Any], event: str) -> None:
        return None

    def write_changes(self, conn: Connection, changes: Sequence[Any]) -> None:
        return None

    def committed(self, written: None) -> None:
        return None


class _WakingFeed:
    """The NOC feed, plus the hand-over of its rows to the publisher once they are committed
    (the publisher then sends them without reading them back)."""

    def __init__(self, feed: NocFeed, publisher: NocPublisher) -> None:
        self.feed = feed
        self.publisher = publisher

    async def enqueue(self, session: AsyncSession, alarm: dict[str, Any], event: Any) -> None:
        await self.enqueue_many(session, [(alarm, event)])

    async def enqueue_many(self, session: AsyncSession, changes: Sequence[Any]) -> None:
        rows = await self.feed.enqueue_many(session, changes)
        sync = session.sync_session
        sync.info.setdefault(_OFFERED, []).extend(rows)
        # Offered only once committed: a rolled-back row must never reach the broker.
        if not sqlalchemy_event.contains(sync, "after_commit", self._committed):
            sqlalchemy_event.listen(sync, "after_commit", self._committed, once=True)
            sqlalchemy_event.listen(sync, "after_soft_rollback", self._rolled_back, once=True)

    def write_changes(self, conn: Connection, changes: Sequence[Any]) -> list[OutboxMessage]:
        return self.feed.write_changes(conn, changes)

    def committed(self, written: Sequence[OutboxMessage]) -> None:
        self.publisher.offer(written)

    def _committed(self, session: Any) -> None:
        self.publisher.offer(session.info.pop(_OFFERED, []))

    @staticmethod
    def _rolled_back(session: Any, _previous: Any) -> None:
        session.info.pop(_OFFERED, None)


_OFFERED = "noc_feed_offered"  # Session.info key: outbox rows of the open transaction


class ServiceExited(RuntimeError):
    """A service returned although no stop was requested."""


@dataclass
class _Running:
    service: Component
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.db = Database(settings.resolved_database_url())
        self.inventory = Inventory(self.db)
        self.tokens = TokenStore(self.db)
        nets = settings.drivers.allowed_networks
        prov = settings.provisioning
        # Blocking drivers hold a worker thread per call in flight: as many as a transaction
        # phase works on at once, or a slow device set goes in waves.
        workers = prov.max_parallel
        self.access = DeviceAccess(
            device_of=lambda name: self.inventory.graph.device(name),
            allowed=parse_networks(nets) if nets is not None else None,
            credentials_dirs=settings.drivers.credentials_dirs,
            ports={str(k): v for k, v in settings.drivers.ports.items()},
            timeout_s=settings.drivers.timeout_s,
            netconf=NetconfDriver(max_workers=workers),
            gnmi=GnmiDriver(max_workers=workers),
            cli=CliDriver(max_workers=workers),
        )
        self.engine = Engine(
            self.access,
            max_parallel=prov.max_parallel,
            hold_before_confirm_s=prov.hold_before_confirm_s,
        )
        self.services = ServiceManager(
            self.db,
            self.inventory,
            self.engine,
            options=Options(asn=prov.asn, vlan_pool=prov.vlan_pool),
        )
        # Faults: alarms, fed to the NOC over MQTT through the database outbox when enabled.
        self.noc_publisher: NocPublisher | None = None
        feed: AlarmFeed = _NoFeed()
        if settings.mqtt.enabled:
            self.noc_publisher = NocPublisher(self.db, settings.mqtt)
            feed = _WakingFeed(NocFeed(settings.mqtt), self.noc_publisher)
        self.alarms = AlarmManager(self.db, lambda: self.inventory.graph, self.services, feed)
        self.bss = Bss(self.db, self.services, settings.bss, settings.mqtt, self.noc_publisher)
        self._services: list[Component] = []
        self._stop_requested = asyncio.Event()
        self._resources = AsyncExitStack()
        self.ready = False
        self.stopping = False
        self.metrics.watch_counts(
            "oss_inventory_objects",
            "Objects in the inventory graph",
            "kind",
            lambda: self.inventory.graph.counts(),
        )

    def add_service(self, service: Component) -> None:
        self._services.append(service)

    # --- resources -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the shared resources: migrate the database and load the inventory."""
        self._resources.push_async_callback(self.db.close)
        await self.db.migrate()
        await self.inventory.load()
        self._resources.push_async_callback(self.access.close)
        self._resources.push_async_callback(self.services.close)
        self._resources.callback(self.alarms.close)
        # A transaction a previous run left open is resolved before anything new starts.
        await self.services.recover()
        await self.bss.orders.recover()  # orders resume from their services' outcome

    async def close(self) -> None:
        self.ready = False
        await self._resources.aclose()

    async def __aenter__(self) -> Runtime:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- supervision -----------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        if self._stop_requested.is_set():
            return
        log.info("shutdown requested", extra={"reason": reason})
        self._stop_requested.set()

    async def run(self, *, on_ready: Callable[[], Awaitable[None]] | None = None) -> int:
        """Run until stopped. Returns the process exit code: 0 after an orderly stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        running = [_Running(s) for s in self._services]
        failed = False
        try:
            async with self:
                if on_ready is not None:
                    await on_ready()
                try:
                    async with asyncio.TaskGroup() as tg:
                        for r in running:
                            r.task = tg.create_task(self._supervise(r), name=r.service.name)
                        tg.create_task(self._shutdown(running), name="shutdown")
                        self.ready = True
                        self.metrics.ready.set(1)
                except* Exception as group:  # noqa: BLE001  (logged below, exits 1)
                    # Crashes were logged with their traceback where they happened.
                    for exc in group.exceptions:
                        log.error("daemon stopping after a failure: %s", exc)
                    failed = True
                finally:
                    self.ready = False
                    self.metrics.ready.set(0)
                await self._close_storage()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        if failed:
            return 1
        log.info("daemon stopped")
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop_requested.is_set():
            log.warning("second %s: shutting down now", sig.name)
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            return
        self.request_stop(sig.name)

    async def _supervise(self, r: _Running) -> None:
        name = r.service.name
        self.metrics.service_up.labels(name).set(1)
        try:
            await r.service.run(r.stop)
        except asyncio.CancelledError:
            if not self._stop_requested.is_set():
                raise
            return
        except Exception:
            log.exception("service %s crashed", name)  # with its traceback, then re-raised
            raise
        finally:
            self.metrics.service_up.labels(name).set(0)
        if not r.stop.is_set():
            raise ServiceExited(f"service {name} returned without being asked to stop")

    async def _shutdown(self, running: list[_Running]) -> None:
        await self._stop_requested.wait()
        self.stopping = True
        self.ready = False
        budgets = {
            Stage.INGRESS: self.settings.shutdown.ingress_s,
            Stage.WORKERS: self.settings.shutdown.workers_s,
        }
        for stage in Stage:
            members = [r for r in running if r.service.stage is stage and r.task is not None]
            await self._stop_stage(stage, members, budgets[stage])

    async def _stop_stage(self, stage: Stage, members: list[_Running], budget: float) -> None:
        if not members:
            return
        started = time.monotonic()
        for r in members:
            r.stop.set()
        tasks = [r.task for r in members if r.task is not None]
        _, late = await asyncio.wait(tasks, timeout=budget)
        for task in late:
            log.warning(
                "service %s overran the %s stage budget (%.1fs): cancelled",
                task.get_name(),
                stage.value,
                budget,
            )
            task.cancel()
        if late:
            await asyncio.wait(late)
        log.info(
            "shutdown stage done",
            extra={"stage": stage.value, "seconds": round(time.monotonic() - started, 3)},
        )

    async def _close_storage(self) -> None:
        budget = self.settings.shutdown.storage_s
        try:
            await asyncio.wait_for(self._resources.aclose(), timeout=budget)
        except TimeoutError:
            log.warning("storage did not close within %.1fs", budget)

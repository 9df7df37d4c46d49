"""The composition root: every component of the daemon is built here, from the settings, and
handed to the runtime, which only supervises them.

`assemble(settings)` builds the shared parts (database, inventory, tokens, drivers and device
access, engine, services, alarms and the NOC feed, the BSS) as a `Daemon`, and registers the
runtime's open and close hooks; `build(settings)` adds the components that run (the API, the
outputs, the NOC publisher, assurance, the usage collector). Tests open the parts alone with
`async with assemble(settings) as daemon`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from bss_bridge.bridge import Bss
from bss_bridge.usage_collector import UsageCollector
from oss.api import create_app
from oss.api.server import ApiServer
from oss.assurance.pipeline import AssurancePipeline
from oss.auth import TokenStore
from oss.bss_ports import ports_for
from oss.cluster import build_cluster
from oss.components import Stage
from oss.daemon import Daemon
from oss.errors import ConfigError
from oss.faults import alarm_output
from oss.faults.alarms import AlarmFeed, AlarmManager
from oss.faults.noc_feed import NocFeed, NoFeed
from oss.inventory import Inventory
from oss.metrics import Metrics
from oss.outputs import influx, mqtt_telemetry, prometheus, rollup
from oss.outputs.mqtt_outbox import NocPublisher, OrderEventsOutbox
from oss.outputs.registry import Output, OutputContext, RunningOutput, build_outputs
from oss.paths import use_configs_dir
from oss.provisioning.access import DeviceAccess
from oss.provisioning.cluster_locks import device_locks_for
from oss.provisioning.engine import Engine
from oss.provisioning.orphans import OrphanRecovery
from oss.provisioning.protocols import build_drivers
from oss.provisioning.services import Options, ServiceManager
from oss.runtime import Runtime
from oss.settings import Settings
from oss.store import Database
from oss.store.notify import ALARMS, INVENTORY, OUTBOX, SHARES, Notifications
from oss.store.outbox import Outbox
from oss.store.service_queries import active_service_ends
from topology.targets import parse_networks

# The outputs' modules: each registers itself when imported (a new output: its module here).
OUTPUT_MODULES: tuple[ModuleType, ...] = (prometheus, rollup, influx, alarm_output, mqtt_telemetry)


class _Background:
    """A coroutine that runs until it is cancelled, as a runtime component."""

    def __init__(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self.stage = Stage.WORKERS
        self._work = work

    async def run(self, stop: asyncio.Event) -> None:
        task = asyncio.create_task(self._work())
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # stopped, or cancelled itself (a singleton whose lease was lost): the work too
            waiter.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not task.cancelled():
            task.result()  # a crash shows; an early return is the runtime's to report


@dataclass(frozen=True)
class Assembly:
    """The daemon's parts and the runtime that opens, supervises and closes them. As an async
    context manager it opens the parts (migrations, inventory, recovery) and closes them in
    reverse, without running any component."""

    daemon: Daemon
    runtime: Runtime
    # Cluster mode: the change notices between instances (`build` runs the listener).
    notifications: Notifications | None = None

    async def __aenter__(self) -> Daemon:
        await self.runtime.open()
        return self.daemon

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.close()


def assemble(settings: Settings) -> Assembly:
    """The shared parts, built from the settings, and the runtime's open and close hooks."""
    use_configs_dir(settings.configs_dir)  # first: every loader below reads the chosen folder
    metrics = Metrics()
    runtime = Runtime(settings.shutdown, metrics)
    problem = settings.cluster_problem()  # settings built without load_settings (tests)
    if problem is not None:
        raise ConfigError(problem)
    db = Database(
        settings.resolved_database_url(),
        # a paused instance cannot hold a lease row (or any lock) inside a transaction past its
        # lease: the server ends that session (oss.store.fencing)
        idle_in_transaction_s=settings.cluster.lease_s if settings.cluster.enabled else None,
    )
    notifications = _notifications(settings, db)
    inventory = Inventory(db, notifications)
    tokens = TokenStore(db)
    access = _device_access(settings, inventory)
    services = _service_manager(settings, db, inventory, access)
    publisher, feed, order_events = _noc_feed(settings, db, notifications)
    alarms = AlarmManager(db, lambda: inventory.graph, services, feed, notifications=notifications)
    # who owns which device, the leases (Solo unless cluster.enabled)
    cluster = build_cluster(
        settings.cluster, db, lambda: inventory.graph.devices(), api_url=_api_url(settings)
    )
    bss = Bss(db, ports_for(db, services, cluster), settings.bss.catalog_dir, order_events)
    metrics.watch_counts(
        "oss_inventory_objects",
        "Objects in the inventory graph",
        "kind",
        lambda: inventory.graph.counts(),
    )
    daemon = Daemon(
        settings=settings,
        metrics=metrics,
        db=db,
        inventory=inventory,
        tokens=tokens,
        services=services,
        alarms=alarms,
        bss=bss,
        readiness=runtime,
        noc_publisher=publisher,
        cluster=cluster,
    )
    _open_and_close(runtime, daemon, access)
    if notifications is not None:
        _hear_other_instances(notifications, daemon)
    return Assembly(daemon, runtime, notifications)


def _notifications(settings: Settings, db: Database) -> Notifications | None:
    """Cluster mode (PostgreSQL): the other instances' change notices and ours to them."""
    if not settings.cluster.enabled or db.backend != "postgresql":
        return None
    return Notifications(db.url, settings.cluster.instance)


def _hear_other_instances(notifications: Notifications, daemon: Daemon) -> None:
    """Other instances' committed changes reach this one's alarms (and through them the live
    stream and the map's index), graph and NOC publisher, and the leader's share moves its
    membership (read at once, not at the next renewal); the map's layouts register in
    `create_app`."""
    notifications.on(ALARMS, daemon.alarms.remote_changed, daemon.alarms.remote_resync)
    notifications.on(INVENTORY, daemon.inventory.remote_changed, daemon.inventory.remote_resync)
    if daemon.noc_publisher is not None:
        notifications.on(OUTBOX, daemon.noc_publisher.heard, daemon.noc_publisher.resync)
    notifications.on(SHARES, daemon.cluster.shares_moved, daemon.cluster.shares_moved)
    daemon.metrics.watch_counters(
        "oss_cluster_notices",
        "Change notices heard from other instances, by channel",
        "channel",
        lambda: notifications.heard,
    )
    daemon.metrics.watch_counts(
        "oss_cluster_listener",
        "The change-notice listener: listening (1/0; 0: other instances' changes go unseen)",
        "state",
        lambda: {"listening": int(notifications.listening.is_set())},
    )
    daemon.metrics.watch_counters(
        "oss_cluster_resyncs",
        "Whole re-reads of the shared state (after each (re)connection of the listener)",
        "cause",
        lambda: {"reconnect_or_overflow": notifications.resyncs},
    )


def _device_access(settings: Settings, inventory: Inventory) -> DeviceAccess:
    nets = settings.drivers.allowed_networks
    # Blocking drivers hold a worker thread per call in flight: as many as a transaction
    # phase works on at once, or a slow device set goes in waves.
    workers = settings.provisioning.max_parallel
    return DeviceAccess(
        device_of=lambda name: inventory.graph.device(name),
        allowed=parse_networks(nets) if nets is not None else None,
        credentials_dirs=settings.drivers.credentials_dirs,
        ports={str(k): v for k, v in settings.drivers.ports.items()},
        timeout_s=settings.drivers.timeout_s,
        drivers=build_drivers(max_workers=workers),
    )


def _service_manager(
    settings: Settings, db: Database, inventory: Inventory, access: DeviceAccess
) -> ServiceManager:
    prov = settings.provisioning
    instance = settings.cluster.instance if settings.cluster.enabled else None
    engine = Engine(
        access,
        max_parallel=prov.max_parallel,
        hold_before_confirm_s=prov.hold_before_confirm_s,
        locks=device_locks_for(db, instance),  # PostgreSQL: held across instances
        lock_wait_s=prov.lock_wait_s,
    )
    return ServiceManager(
        db,
        inventory,
        engine,
        options=Options(asn=prov.asn, vlan_pool=prov.vlan_pool),
        instance=instance,
    )


def _noc_feed(
    settings: Settings, db: Database, notifications: Notifications | None
) -> tuple[NocPublisher | None, AlarmFeed, OrderEventsOutbox | None]:
    """Alarms (and order events) fed to the NOC over MQTT through the database outbox, when
    enabled: the publisher, the alarms' feed and the orders' outbox writer. In cluster mode
    (`notifications`) other instances write the outbox too: the publisher reads it for every
    round, the feed checks its memory, each write NOTIFYs."""
    if not settings.mqtt.enabled:
        return None, NoFeed(), None
    shared = notifications is not None
    publisher = NocPublisher(db, settings.mqtt, shared=shared)
    outbox = Outbox(publisher.offer, notifications)  # rows go to the publisher once committed
    feed = NocFeed(settings.mqtt, outbox, shared=shared)
    return publisher, feed, OrderEventsOutbox(settings.mqtt, outbox)


def _open_and_close(runtime: Runtime, daemon: Daemon, access: DeviceAccess) -> None:
    """Open: migrate the database, load the inventory, recover; close in reverse."""
    alarms = daemon.alarms

    async def close_streams() -> None:  # live listeners (SSE) end with the daemon
        alarms.close()
        daemon.inventory.changes.close()

    runtime.add_hook(open=daemon.db.migrate, close=daemon.db.close)
    runtime.add_hook(open=daemon.inventory.load)
    # cluster mode: join (the member lease, its fence on every write, this instance's share of
    # the devices) before anything runs; leave after everything stopped, before the database
    runtime.add_hook(open=daemon.cluster.open, close=daemon.cluster.close)
    runtime.add_hook(close=access.close)
    runtime.add_hook(close=daemon.services.close)
    runtime.add_hook(close=close_streams)
    # A transaction a previous run left open is resolved before anything new starts.
    runtime.add_hook(open=daemon.services.recover)
    runtime.add_hook(open=daemon.bss.orders.recover)  # orders resume from their services' outcome


def build(settings: Settings) -> tuple[Assembly, ApiServer]:
    """The whole daemon: its parts, and every component the runtime runs."""
    parts = assemble(settings)
    daemon, runtime = parts.daemon, parts.runtime
    api = ApiServer(create_app(daemon), settings.api)
    runtime.add_component(api)
    if parts.notifications is not None:
        runtime.add_component(parts.notifications)
    cluster = daemon.cluster
    for component in cluster.components():  # the leader's lease and the membership's watch
        runtime.add_component(component)
    cluster.watch(daemon.metrics)
    outputs = _add_outputs(runtime, daemon)
    _add_noc_publisher(runtime, daemon)
    if settings.assurance.enabled:
        _add_assurance(runtime, daemon, outputs)
    if settings.bss.enabled:
        usage = UsageCollector(daemon.bss.usage, settings.bss.usage_interval_s)
        runtime.add_component(cluster.singleton("usage", usage))
    if cluster.enabled:  # the transactions of instances that died (one instance: at start-up)
        orphans = OrphanRecovery(
            daemon.services, daemon.db, cluster.instance, settings.cluster.lease_s
        )
        runtime.add_component(cluster.singleton("txn-recovery", orphans))
    return parts, api


def _api_url(settings: Settings) -> str | None:
    """The API's address as this instance advertises it to the cluster's status, when
    `cluster.api_url` does not say it: the host name for a wildcard listen address (what the
    others can reach), unknown for a port picked at bind."""
    host, port = settings.api.host, settings.api.port
    if port == 0:
        return None
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _add_outputs(runtime: Runtime, daemon: Daemon) -> list[Output]:
    """The outputs the settings enable (oss/outputs/registry.py), in the order they get the
    pipeline's events; one that writes at its own pace (InfluxDB) is a runtime component."""
    context = OutputContext(daemon.settings, daemon.metrics, daemon.db, parts=(daemon.alarms,))
    outputs = build_outputs(context)
    for output in outputs:
        if isinstance(output, RunningOutput):
            runtime.add_component(output)
    return outputs


def _add_noc_publisher(runtime: Runtime, daemon: Daemon) -> None:
    publisher = daemon.noc_publisher
    if publisher is None:
        return
    feed = _Background("noc-feed", publisher.run)
    runtime.add_component(daemon.cluster.singleton("noc-feed", feed))  # one publisher at a time
    daemon.metrics.watch_counts(
        "oss_output_mqtt",
        "NOC feed: messages the broker acknowledged, connected",
        "counter",
        lambda: {"published": publisher.published, "connected": int(publisher.connected)},
    )


def _add_assurance(runtime: Runtime, daemon: Daemon, outputs: list[Output]) -> None:
    settings = daemon.settings
    nets = settings.drivers.allowed_networks
    assurance = AssurancePipeline(
        settings.assurance,
        daemon.inventory,
        outputs,
        allowed=parse_networks(nets) if nets is not None else None,
        credentials_dirs=settings.drivers.credentials_dirs,
        ports={str(protocol): port for protocol, port in settings.drivers.ports.items()},
        owns=daemon.cluster.owns if daemon.cluster.enabled else None,
        services=functools.partial(active_service_ends, daemon.db),  # what the probes measure
    )
    daemon.cluster.on_shares_changed(assurance.shares_changed)  # a device taken over: at once
    assurance.bind()  # a busy trap port stops start-up here, as a busy API port does
    runtime.add_component(assurance)
    assurance.watch(daemon.metrics)

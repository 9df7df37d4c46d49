"""`Daemon`: the assembled parts the REST API serves, built by `oss.app` (the composition root).

The API gets these parts, never the runtime that supervises them: a route reads the inventory,
the services, the alarms or the BSS, and sees the runtime only through `Readiness`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bss_bridge.bridge import Bss
from oss.auth import TokenStore
from oss.cluster import Cluster, Solo
from oss.faults.alarms import AlarmManager
from oss.inventory import Inventory
from oss.metrics import Metrics
from oss.outputs.mqtt_outbox import NocPublisher
from oss.provisioning.services import ServiceManager
from oss.settings import Settings
from oss.store import Database


class Readiness(Protocol):
    """What /readyz reports: storage open and components started, or stopping."""

    @property
    def ready(self) -> bool: ...

    @property
    def stopping(self) -> bool: ...


@dataclass(frozen=True)
class Daemon:
    settings: Settings
    metrics: Metrics
    db: Database
    inventory: Inventory
    tokens: TokenStore
    services: ServiceManager
    alarms: AlarmManager
    bss: Bss
    readiness: Readiness
    noc_publisher: NocPublisher | None  # None when the NOC feed (mqtt.enabled) is off
    cluster: Cluster | Solo  # Solo unless cluster.enabled: who owns which device, the leases

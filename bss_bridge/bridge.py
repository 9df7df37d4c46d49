"""The BSS module as the daemon holds it (`runtime.bss`): one object per concern, sharing the
database, the provisioning service manager and the MQTT outbox."""

from __future__ import annotations

from bss_bridge.billing import BillRun
from bss_bridge.catalog import Catalog
from bss_bridge.customers import Customers
from bss_bridge.orders import Orders
from bss_bridge.sla import compliance_many
from bss_bridge.usage import UsageLedger
from oss.faults.noc_feed import NocFeedSettings, NocPublisher
from oss.provisioning.services import ServiceManager
from oss.settings import BssSettings
from oss.store import Database


class Bss:
    def __init__(
        self,
        db: Database,
        services: ServiceManager,
        settings: BssSettings,
        mqtt: NocFeedSettings,
        publisher: NocPublisher | None,
    ) -> None:
        self.db = db
        self.services = services
        self.settings = settings
        self.mqtt = mqtt  # the outbox's topic prefix; messages go out when MQTT is enabled
        self.publisher = publisher  # woken after a commit that wrote outbox rows
        # Each concern adds itself here: catalog, customers, orders, usage, sla, billing.
        self.catalog = Catalog.load(settings.catalog_dir, services.types)
        self.customers = Customers(db)
        self.orders = Orders(db, services, lambda: self.catalog, mqtt, publisher)
        self.usage = UsageLedger(db)
        self.billing = BillRun(db, self.catalog, sla=compliance_many)

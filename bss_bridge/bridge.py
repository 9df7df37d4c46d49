"""The BSS module as the daemon holds it (`daemon.bss`): one object per concern, sharing the
database, the OSS's ports (`bss_bridge.ports`, filled by the composition root) and the MQTT
outbox."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from bss_bridge.billing import BillRun
from bss_bridge.catalog import Catalog
from bss_bridge.customers import Customers
from bss_bridge.orders import Orders
from bss_bridge.ports import OrderEvents, OssPorts
from bss_bridge.sla import compliance_many
from bss_bridge.tmf_services import ServiceInventory
from bss_bridge.usage import UsageLedger
from oss.store import Database


class Bss:
    def __init__(
        self,
        db: Database,
        oss: OssPorts,
        catalog_dir: Path | None,
        order_events: OrderEvents | None,
    ) -> None:
        self.db = db
        self.oss = oss
        # Each concern adds itself here: catalog, customers, orders, usage, sla, billing.
        self.catalog = Catalog.load(catalog_dir, oss.provisioning.service_types())
        self.customers = Customers(db)
        self.orders = Orders(db, oss, lambda: self.catalog, order_events)
        self.usage = UsageLedger(db, oss.records)
        self.inventory = ServiceInventory(db, oss.records.services)
        self.billing = BillRun(
            db,
            self.catalog,
            sla=partial(compliance_many, records=oss.records),
            alarms=oss.records.alarms,
            jobs=oss.jobs,
        )

"""A small inventory for the console's tests: two sites, four devices in a line with a spur
(r1 - r2 - r3 - r4, and r2 - r10), alarm signals to raise on its objects, and two services
with their customers' products."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from oss.daemon import Daemon
from oss.faults.reducer import Signal
from oss.store import Database
from oss.store.tables import ServiceResourceRow, ServiceRow
from tests.bss_rows import add_account, product_row
from topology.model import Device, Endpoint, Link, Site

ACTOR = "test:console"
# (a device, its interface, b device, its interface)
WIRING = [
    ("r1", "eth1", "r2", "eth1"),
    ("r2", "eth2", "r3", "eth1"),
    ("r3", "eth2", "r4", "eth1"),
    ("r2", "eth3", "r10", "eth1"),
]


async def seed_inventory(daemon: Daemon) -> dict[tuple[str, str], int]:
    """The inventory above; returns the link ids by (a device, b device)."""
    inventory = daemon.inventory
    await inventory.add_site(Site(name="north"), actor=ACTOR)
    await inventory.add_site(Site(name="south"), actor=ACTOR)
    for name, site, role in [
        ("r1", "north", "pe"),
        ("r2", "north", "p"),
        ("r3", "south", "p"),
        ("r4", "south", "pe"),
        ("r10", "south", "ce"),
    ]:
        device = Device(name=name, site=site, role=role, credentials_ref=f"env:{name.upper()}_PW")
        await inventory.add_device(device, actor=ACTOR)
    ids = {}
    for a_dev, a_if, b_dev, b_if in WIRING:
        link = await inventory.add_link(
            Link(
                a=Endpoint(device=a_dev, interface=a_if),
                b=Endpoint(device=b_dev, interface=b_if),
                capacity_bps=10**9,
            ),
            actor=ACTOR,
        )
        assert link.id is not None
        ids[(a_dev, b_dev)] = link.id
    return ids


def raise_on(object_type: str, name: str, severity: str, problem: str = "test") -> Signal:
    return Signal(
        kind="raise",
        reduction_key=f"{problem}:{object_type}:{name}",
        alarm_type="equipmentAlarm",
        severity=severity,
        probable_cause="equipmentMalfunction",
        specific_problem=f"{problem} on {name}",
        object_type=object_type,
        object=name,
        time_ns=time.time_ns(),
    )


async def seed_services(db: Database, links: dict[tuple[str, str], int]) -> None:
    """svc-a (a slice of acme: r3 - r4) and svc-b (an L3VPN of globex: r2 - r3), each with an
    active product of the shipped catalogue (metro-slice-200: 500.00, business-vpn: 300.00 EUR
    a month), and a terminated product of acme on svc-a, which is charged no more."""
    services = [
        ("svc-a", "slice", "acme", ("r3", "r4")),
        ("svc-b", "l3vpn", "globex", ("r2", "r3")),
    ]
    async with db.transaction() as s:
        for name, kind, customer, (a, b) in services:
            row = ServiceRow(name=name, type=kind, customer=customer, state="active", params={})
            s.add(row)
            await s.flush()
            s.add_all(
                [
                    ServiceResourceRow(service_id=row.id, kind="device", device=a, role="pe"),
                    ServiceResourceRow(service_id=row.id, kind="device", device=b, role="pe"),
                    ServiceResourceRow(
                        service_id=row.id, kind="link", link_id=links[(a, b)], role="primary",
                        bandwidth_bps=10**8, reserved=True,
                    ),
                ]
            )  # fmt: skip
        await add_account(s, "acme", "acme-1")
        await add_account(s, "globex", "globex-1")
        start = datetime(2026, 11, 1, tzinfo=UTC)
        current = product_row(start, pid="p-a", service="svc-a")
        current.created_at = start
        old = product_row(
            datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 15, tzinfo=UTC), pid="p-old"
        )
        old.created_at = datetime(2026, 9, 1, tzinfo=UTC)  # the earlier product of svc-a
        vpn = product_row(
            start, pid="p-b", service="svc-b", account="globex-1", customer="globex",
            offering="business-vpn",
        )  # fmt: skip
        s.add_all([current, old, vpn])

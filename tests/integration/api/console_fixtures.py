"""A small inventory for the console's tests: two sites, four devices in a line with a spur
(r1 - r2 - r3 - r4, and r2 - r10), and alarm signals to raise on its objects."""

from __future__ import annotations

import time

from oss.daemon import Daemon
from oss.faults.reducer import Signal
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

"""Fixtures for the alarm tests: a migrated SQLite database, a recording feed, a small graph and
a fake service inventory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select

from oss.faults.alarms import AlarmManager
from oss.store import Database
from oss.store.tables import OutboxRow
from topology.graph import InventoryGraph
from topology.model import Device, Endpoint, Interface, Link


@dataclass
class RecordingFeed:
    """Records what it is given and writes one outbox row per change on the caller's
    connection, so a test can see that the messages commit (or roll back) with the alarm
    change, and counts the rows it is told were committed."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    committed_rows: int = 0

    def write_changes(self, conn: Connection, changes: list[tuple[dict[str, Any], str]]) -> int:
        rows = [
            {"channel": "test", "topic": f"alarms/{alarm['id']}", "payload": event}
            for alarm, event in changes
        ]
        if rows:
            conn.execute(insert(OutboxRow), rows)
        self.sent += [(event, alarm) for alarm, event in changes]
        return len(rows)

    def committed(self, written: int) -> None:
        self.committed_rows += written


@dataclass
class FakeServices:
    on_link: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    on_device: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def services_on(
        self, *, link_id: int | None = None, device: str | None = None
    ) -> list[dict[str, Any]]:
        if link_id is not None:
            return list(self.on_link.get(link_id, []))
        return list(self.on_device.get(device or "", []))


def chain_graph() -> InventoryGraph:
    """r1 -1- r2 -2- r3, and r4 hanging off r2 by link 3 (its only link).

    Interfaces: link 1 r1:eth1--r2:eth1, link 2 r2:eth2--r3:eth1, link 3 r2:eth3--r4:eth1."""
    g = InventoryGraph()
    for name in ("r1", "r2", "r3", "r4"):
        g.upsert_device(Device(name=name))
    links = [("r1:eth1", "r2:eth1"), ("r2:eth2", "r3:eth1"), ("r2:eth3", "r4:eth1")]
    for link_id, (a, b) in enumerate(links, start=1):
        ends = [Endpoint.parse(a), Endpoint.parse(b)]
        for end in ends:
            g.upsert_interface(Interface(device=end.device, name=end.interface))
        g.upsert_link(Link(id=link_id, a=ends[0], b=ends[1]))
    return g


SVC_A = {"id": 7, "name": "svc-a", "type": "l3vpn", "customer": "acme"}
SVC_B = {"id": 8, "name": "svc-b", "type": "l2p2p", "customer": "globex"}


@pytest.fixture
def db(migrated_db: Database) -> Database:
    """The alarm tests' database: the unit tests' migrated SQLite one."""
    return migrated_db


@pytest.fixture
def feed() -> RecordingFeed:
    return RecordingFeed()


@pytest.fixture
def services() -> FakeServices:
    return FakeServices(on_link={3: [SVC_A]}, on_device={"r2": [SVC_A, SVC_B]})


@pytest.fixture
def graph() -> InventoryGraph:
    return chain_graph()


@pytest.fixture
def manager(
    db: Database, graph: InventoryGraph, services: FakeServices, feed: RecordingFeed
) -> AlarmManager:
    return AlarmManager(db, lambda: graph, services, feed)


async def outbox_count(db: Database) -> int:
    async with db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(OutboxRow)) or 0)

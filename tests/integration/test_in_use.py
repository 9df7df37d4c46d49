"""`oss.store.in_use` on both backends (SQLite, a real PostgreSQL): who uses an inventory
object, and the inventory's refusals that rest on it, including the race between a service
storing its resources and a removal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from oss.errors import Conflict
from oss.inventory import Inventory
from oss.provisioning.access import DeviceAccess
from oss.provisioning.engine import Engine
from oss.provisioning.services import ServiceManager
from oss.store import Database
from oss.store.in_use import InUse, unavailable, users_of
from oss.store.tables import (
    AuditRow,
    LinkRow,
    ServiceResourceRow,
    ServiceRow,
    TransactionDeviceRow,
    TransactionRow,
)
from tests.integration.provisioning.conftest import chain_clab
from topology.clab import parse_clab
from topology.model import Device, Endpoint, Link, Site

pytestmark = pytest.mark.integration

ACTOR = "test:in-use"


@pytest.fixture
async def inv(db: Database) -> Inventory:
    """r1 -- r2 -- r3 in site pop, links 1G."""
    inventory = Inventory(db)
    await inventory.load()
    await inventory.add_site(Site(name="pop"), actor=ACTOR)
    for name in ("r1", "r2", "r3"):
        await inventory.add_device(Device(name=name, site="pop"), actor=ACTOR)
    for a, b in (("r1:eth1", "r2:eth1"), ("r2:eth2", "r3:eth1")):
        link = Link(a=Endpoint.parse(a), b=Endpoint.parse(b), capacity_bps=10**9)
        await inventory.add_link(link, actor=ACTOR)
    return inventory


def link_id(inv: Inventory, a: str) -> int:
    found = inv.graph.link_at(Endpoint.parse(a))
    assert found is not None and found.id is not None
    return found.id


def resources(service_id: int, link: int, bps: int) -> list[ServiceResourceRow]:
    return [
        ServiceResourceRow(service_id=service_id, kind="device", device="r1", role="endpoint"),
        ServiceResourceRow(service_id=service_id, kind="device", device="r2", role="endpoint"),
        ServiceResourceRow(
            service_id=service_id, kind="interface", device="r1", interface="eth1", role="att"
        ),
        ServiceResourceRow(
            service_id=service_id,
            kind="link",
            link_id=link,
            role="primary",
            bandwidth_bps=bps,
            reserved=True,
        ),
    ]


async def add_service(db: Database, name: str, state: str, link: int | None, bps: int) -> int:
    async with db.transaction() as s:
        row = ServiceRow(name=name, type="slice", customer="acme", state=state, params={})
        s.add(row)
        await s.flush()
        if link is not None:
            s.add_all(resources(row.id, link, bps))
        return row.id


async def add_transaction(db: Database, device: str, *, finished: bool) -> int:
    async with db.transaction() as s:
        row = TransactionRow(
            kind="reconcile",
            state="committed" if finished else "prepared",
            actor=ACTOR,
            finished_at=datetime.now(UTC) if finished else None,
        )
        s.add(row)
        await s.flush()
        s.add(
            TransactionDeviceRow(
                transaction_id=row.id,
                device=device,
                position=0,
                protocol="netconf",
                state="prepared",
                payload="",
                intent={},
                owned=[],
                steps=[],
            )
        )
        return row.id


async def refusals(db: Database, action: str) -> list[AuditRow]:
    async with db.read() as s:
        return list(await s.scalars(select(AuditRow).where(AuditRow.action == action)))


async def test_users_are_live_services_and_open_transactions(db: Database, inv: Inventory) -> None:
    link = link_id(inv, "r1:eth1")
    await add_service(db, "live", "active", link, 300_000_000)
    await add_service(db, "broken", "failed", link, 0)
    await add_service(db, "gone", "terminated", link, 500_000_000)
    await add_transaction(db, "r3", finished=True)
    open_txn = await add_transaction(db, "r3", finished=False)
    async with db.transaction() as s:
        on_link = await users_of(s, links=[link])
        on_r3 = await users_of(s, devices=["r3"])
        on_att = await users_of(s, interfaces=[("r1", "eth1")])
        nothing = await users_of(s, interfaces=[("r2", "eth9")])
    assert [u.name for u in on_link.services] == ["live", "broken"]
    assert on_link.reserved_bps == {link: 300_000_000}  # terminated ones hold nothing
    assert f"link {link} (300000000 bit/s reserved)" in on_link.services[0].uses
    assert on_r3.services == [] and [t.id for t in on_r3.transactions] == [open_txn]
    assert "transaction" in on_r3.describe() and "r3" in on_r3.describe()
    assert [u.uses for u in on_att.services] == [("interface r1:eth1",)] * 2
    assert not nothing


async def test_an_open_transaction_holds_its_devices(db: Database, inv: Inventory) -> None:
    txn = await add_transaction(db, "r3", finished=False)
    with pytest.raises(InUse, match=f"transaction {txn}") as refused:
        await inv.remove_device("r3", actor=ACTOR)
    assert "retry when those transactions have ended" in refused.value.message
    assert refused.value.extra["transactions"][0]["devices"] == ["r3"]
    assert [a.object_id for a in await refusals(db, "device.delete.refused")] == ["r3"]
    assert inv.graph.device("r3").name == "r3"
    async with db.transaction() as s:
        row = await s.get(TransactionRow, txn)
        assert row is not None
        row.state, row.finished_at = "committed", datetime.now(UTC)
    await inv.remove_device("r3", actor=ACTOR)


async def test_site_refusals_never_cascade(db: Database, inv: Inventory) -> None:
    link = link_id(inv, "r2:eth2")
    await add_service(db, "live", "reserved", link, 100)
    with pytest.raises(InUse, match="service live") as refused:
        await inv.remove_site("pop", actor=ACTOR)
    assert refused.value.extra["services"][0]["name"] == "live"
    # an idle site with devices is refused too (and audited): devices are never swept away
    await inv.add_site(Site(name="idle"), actor=ACTOR)
    await inv.add_device(Device(name="r9", site="idle"), actor=ACTOR)
    with pytest.raises(InUse, match="still has devices: r9"):
        await inv.remove_site("idle", actor=ACTOR)
    assert sorted(a.object_id for a in await refusals(db, "site.delete.refused")) == [
        "idle",
        "pop",
    ]
    assert len(inv.graph.devices()) == 4


async def test_a_removal_waits_for_a_reservation_in_flight(db: Database, inv: Inventory) -> None:
    """A service stores its resources while the link is being removed: the removal's check
    waits for that transaction and then sees the service (without the lock it would read
    before the reservation commits, then delete the link under it)."""
    link = link_id(inv, "r1:eth1")
    service = await add_service(db, "pending", "designed", None, 0)
    async with db.transaction() as s:
        rows = resources(service, link, 200_000_000)
        assert await unavailable(s, rows, service_id=service) == []
        s.add_all(rows)
        removal = asyncio.create_task(inv.remove_link(link, actor=ACTOR))
        await until_blocked(db, removal)
    with pytest.raises(InUse, match="service pending"):
        await removal
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(LinkRow)) == 2


async def test_a_reservation_sees_what_was_removed_or_shrunk(db: Database, inv: Inventory) -> None:
    link, other = link_id(inv, "r1:eth1"), link_id(inv, "r2:eth2")
    big = await add_service(db, "big", "active", None, 0)
    async with db.transaction() as s:  # 900M of the 1G between r2 and r3
        s.add(resources(big, other, 900_000_000)[-1])
    await inv.remove_link(link, actor=ACTOR)
    await inv.remove_device("r1", actor=ACTOR)
    rows = [*resources(99, link, 1), resources(99, other, 200_000_000)[-1]]
    async with db.transaction() as s:
        problems = await unavailable(s, rows, service_id=99)
    assert problems == [
        "device r1 was removed",
        "interface r1:eth1 was removed",
        f"link {link} was removed",
        f"link {other} has 100000000 bit/s free, 200000000 bit/s needed",
    ]


async def until_blocked(db: Database, task: asyncio.Task[None]) -> None:
    """Until `task` waits for this transaction: on PostgreSQL, for a row lock; on SQLite, for
    the write turn (the only writer's)."""
    for _ in range(600):
        assert not task.done(), task
        if db.backend == "sqlite":
            await asyncio.sleep(0.05)
            return
        async with db.engine.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the removal never waited for the reservation")


async def test_a_service_placed_on_a_link_removed_meanwhile_is_refused(
    db: Database, tmp_path: Path
) -> None:
    """A slice is placed on the graph, then the link is removed (nobody used it yet), then the
    slice stores its reservations: that last step sees the link gone and refuses (409); no
    service record is left behind. No device is contacted (no network is allowed)."""
    inv = Inventory(db)
    await inv.load()
    topo = parse_clab(chain_clab("127.0.0", tmp_path / "credentials.yaml"), "chain5.clab.yml")
    await inv.import_topology(topo, actor=ACTOR, source="chain5.clab.yml")
    access = DeviceAccess(device_of=inv.graph.device, allowed=[], timeout_s=1)
    manager = ServiceManager(db, inv, Engine(access))
    victim = link_id(inv, "p1:eth2")  # p1 -- p2, on the fast path from west to east
    probe = manager._probe

    async def place_then_remove(*args: Any, **kwargs: Any) -> Any:
        placed = await probe(*args, **kwargs)
        await inv.remove_link(victim, actor=ACTOR)
        return placed

    manager._probe = place_then_remove  # type: ignore[method-assign]
    slice_ = {"customer": "acme", "from": "west", "to": "east", "bandwidth": "200M"}
    try:
        with pytest.raises(Conflict, match=f"inventory changed .*link {victim}"):
            await manager.create("slice", slice_, actor=ACTOR)
    finally:
        await access.close()
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(ServiceRow)) == 0
        assert await s.scalar(select(func.count()).select_from(ServiceResourceRow)) == 0

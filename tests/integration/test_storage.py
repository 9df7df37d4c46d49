"""Storage against both backends: SQLite and a real PostgreSQL started by the harness."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, insert, select, text

from bss_bridge import tables as bss_tables  # noqa: F401  (the BSS tables are on the metadata too)
from oss.auth import TokenStore
from oss.auth_roles import Role
from oss.errors import Conflict, NotFound, Unauthorized
from oss.inventory import Inventory
from oss.store import Database
from oss.store.base import Base
from oss.store.database import head_revision
from oss.store.tables import AuditRow, DeviceRow, InterfaceRow, LinkRow, TokenRow
from topology.clab import parse_clab
from topology.model import Device, Endpoint, Interface, Link, LinkState, Site

REPO = Path(__file__).resolve().parents[2]
ACTOR = "test:storage"


async def count(db: Database, table: type) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)


async def reloaded(db: Database) -> Inventory:
    inv = Inventory(db)
    await inv.load()
    return inv


async def test_migrations_reach_head_and_match_the_models(db: Database) -> None:
    assert await db.current_revision() == head_revision()
    await db.migrate()  # a second start finds nothing to do
    async with db.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diffs == [], f"models and migrations disagree: {diffs}"


async def test_changes_are_written_through_and_survive_reload(db: Database) -> None:
    inv = await reloaded(db)
    await inv.add_site(Site(name="pop1"), actor=ACTOR)
    await inv.add_device(
        Device(
            name="r1",
            role="pe",
            site="pop1",
            mgmt_address="127.10.0.1",
            credentials_ref="env:R1_SECRET",
        ),
        actor=ACTOR,
    )
    await inv.add_device(Device(name="r2", role="pe", site="pop1"), actor=ACTOR)
    link = await inv.add_link(
        Link(
            a=Endpoint(device="r1", interface="ge-0/0/0"),
            b=Endpoint(device="r2", interface="ge-0/0/1"),
            capacity_bps=10**9,
            latency_us=250,
        ),
        actor=ACTOR,
    )
    assert link.id is not None
    await inv.update_device("r2", {"state": "maintenance"}, actor=ACTOR)
    await inv.update_link(link.id, {"state": "down"}, actor=ACTOR)

    again = await reloaded(db)
    assert again.graph.to_json() == inv.graph.to_json()
    assert again.graph.device("r2").state == "maintenance"
    assert again.graph.link(link.id).state is LinkState.DOWN
    # Interfaces named in the link were created with it, at the link's speed.
    assert again.graph.interface("r1", "ge-0/0/0").speed_bps == 10**9


async def test_removing_a_device_cascades_in_the_database(db: Database) -> None:
    inv = await reloaded(db)
    for name in ("r1", "r2", "r3"):
        await inv.add_device(Device(name=name), actor=ACTOR)
    await inv.add_link(Link(a=Endpoint.parse("r1:eth1"), b=Endpoint.parse("r2:eth1")), actor=ACTOR)
    await inv.add_link(Link(a=Endpoint.parse("r2:eth2"), b=Endpoint.parse("r3:eth1")), actor=ACTOR)
    await inv.remove_device("r2", actor=ACTOR)
    assert await count(db, LinkRow) == 0
    assert await count(db, InterfaceRow) == 2
    again = await reloaded(db)
    assert [d.name for d in again.graph.devices()] == ["r1", "r3"]
    with pytest.raises(NotFound):
        again.graph.device("r2")


async def test_refused_change_writes_nothing(db: Database) -> None:
    inv = await reloaded(db)
    for name in ("r1", "r2", "r3"):
        await inv.add_device(Device(name=name), actor=ACTOR)
    await inv.add_link(Link(a=Endpoint.parse("r1:eth1"), b=Endpoint.parse("r2:eth1")), actor=ACTOR)
    audit_before, links_before = await count(db, AuditRow), await count(db, LinkRow)
    with pytest.raises(Conflict, match="r1:eth1"):
        await inv.add_link(
            Link(a=Endpoint.parse("r3:eth9"), b=Endpoint.parse("r1:eth1")), actor=ACTOR
        )
    assert await count(db, AuditRow) == audit_before
    assert await count(db, LinkRow) == links_before
    assert len(inv.graph.interfaces("r3")) == 0  # the would-be new interface was not kept


async def test_database_refusal_leaves_graph_untouched(db: Database) -> None:
    inv = await reloaded(db)
    # Someone writes behind the daemon's back; the graph does not know about this row.
    async with db.transaction() as s:
        s.add(DeviceRow(name="ghost", role="p", platform="linux", state="active"))
    with pytest.raises(Conflict, match="database refused"):
        await inv.add_device(Device(name="ghost"), actor=ACTOR)
    with pytest.raises(NotFound):
        inv.graph.device("ghost")
    assert await count(db, AuditRow) == 0


async def test_import_is_idempotent_and_atomic(db: Database) -> None:
    inv = await reloaded(db)
    ring = REPO / "lab" / "topologies" / "ring4.clab.yml"
    topo = parse_clab(ring.read_text(), str(ring))
    first = await inv.import_topology(topo, actor=ACTOR, source=str(ring))
    assert first.created["devices"] == 4
    assert first.created["links"] == len(topo.links)
    second = await inv.import_topology(topo, actor=ACTOR, source=str(ring))
    assert second.created == {} and second.updated == {}

    snapshot = inv.graph.to_json()
    audit_before = await count(db, AuditRow)
    # A file that adds a device and reuses an endpoint already cabled elsewhere.
    used = topo.links[0].a
    clash = f"""
name: clash
topology:
  nodes:
    newbox: {{kind: linux}}
    {used.device}: {{kind: linux}}
  links:
    - endpoints: ["newbox:eth1", "{used}"]
"""
    with pytest.raises(Conflict, match=str(used)):
        await inv.import_topology(parse_clab(clash, "clash.clab.yml"), actor=ACTOR, source="clash")
    assert inv.graph.to_json() == snapshot
    assert (await reloaded(db)).graph.to_json() == snapshot
    assert await count(db, AuditRow) == audit_before
    assert await count(db, DeviceRow) == 4


async def test_import_keeps_what_the_file_does_not_say(db: Database) -> None:
    inv = await reloaded(db)
    ring = REPO / "lab" / "topologies" / "ring4.clab.yml"
    topo = parse_clab(ring.read_text(), str(ring))
    await inv.import_topology(topo, actor=ACTOR, source="ring")
    await inv.update_device("r1", {"credentials_ref": "env:R1_SECRET"}, actor=ACTOR)
    report = await inv.import_topology(topo, actor=ACTOR, source="ring")
    assert report.updated == {}
    assert inv.graph.device("r1").credentials_ref == "env:R1_SECRET"


async def test_every_change_is_audited_with_before_and_after(db: Database) -> None:
    inv = await reloaded(db)
    await inv.add_device(Device(name="r1", role="p"), actor="token:alice#1")
    await inv.update_device("r1", {"role": "pe"}, actor="token:bob#2")
    await inv.remove_device("r1", actor="token:alice#1")
    async with db.sessions() as s:
        rows = list(await s.scalars(select(AuditRow).order_by(AuditRow.id)))
    assert [(r.actor, r.action, r.object_id) for r in rows] == [
        ("token:alice#1", "create", "r1"),
        ("token:bob#2", "update", "r1"),
        ("token:alice#1", "delete", "r1"),
    ]
    assert rows[1].before["role"] == "p" and rows[1].after["role"] == "pe"
    assert rows[2].after is None and rows[2].before["name"] == "r1"
    assert all(r.at.tzinfo is not None for r in rows)


async def test_tokens_are_stored_hashed_and_can_be_revoked(db: Database) -> None:
    store = TokenStore(db)
    token, info = await store.create(name="ops", role=Role.OPERATOR, actor=ACTOR)
    principal = await store.authenticate(token)
    assert (principal.name, principal.role) == ("ops", Role.OPERATOR)
    async with db.engine.connect() as conn:
        dump = " ".join(str(row) for row in await conn.execute(text("SELECT * FROM api_tokens")))
    assert token not in dump
    assert info.prefix in dump  # the short prefix is kept to tell tokens apart
    await store.revoke(info.id, actor=ACTOR)
    with pytest.raises(Unauthorized):
        await store.authenticate(token)


async def test_replace_revokes_tokens_of_the_same_name(db: Database) -> None:
    store = TokenStore(db)
    old, _ = await store.create(name="make-run", role=Role.OPERATOR, actor=ACTOR)
    new, _ = await store.create(name="make-run", role=Role.OPERATOR, actor=ACTOR, replace=True)
    with pytest.raises(Unauthorized):
        await store.authenticate(old)
    assert (await store.authenticate(new)).name == "make-run"
    assert await count(db, TokenRow) == 2
    assert [t.name for t in await store.list()] == ["make-run"]


async def test_interface_update_keeps_identity(db: Database) -> None:
    inv = await reloaded(db)
    await inv.add_device(Device(name="r1"), actor=ACTOR)
    await inv.add_interface(Interface(device="r1", name="ethernet-1/1"), actor=ACTOR)
    await inv.update_interface(
        "r1", "ethernet-1/1", {"oper_state": "down", "name": "x"}, actor=ACTOR
    )
    again = await reloaded(db)
    assert again.graph.interface("r1", "ethernet-1/1").oper_state == "down"


async def test_concurrent_writers_of_both_kinds_all_commit_in_turn(db: Database) -> None:
    # The ORM's transactions (aiosqlite) and Database.write (a synchronous connection in a
    # thread) interleaved: on SQLite they take turns on the process's write lock, so none
    # meets "database is locked"; a failing one rolls back alone.
    async def orm_writer(n: int) -> None:
        async with db.transaction() as session:
            counter = await session.scalar(select(func.count()).select_from(AuditRow))
            session.add(
                AuditRow(actor=ACTOR, action=f"orm-{n}", object_type="t", object_id=str(counter))
            )

    async def core_writer(n: int) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                insert(AuditRow),
                [{"actor": ACTOR, "action": f"core-{n}", "object_type": "t", "object_id": "x"}],
            )
            if n == 7:
                raise RuntimeError("refused after writing")

        await db.write(work)

    results = await asyncio.gather(
        *(orm_writer(n) for n in range(20)),
        *(core_writer(n) for n in range(20)),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert [str(f) for f in failures] == ["refused after writing"]
    async with db.sessions() as session:
        actions = set((await session.scalars(select(AuditRow.action))).all())
    assert actions == {f"orm-{n}" for n in range(20)} | {f"core-{n}" for n in range(20) if n != 7}


async def test_sqlite_writes_keep_one_connection_and_reopen_a_broken_one(tmp_path: Path) -> None:
    # Database.write on SQLite keeps its connection between writes (a checkout, reset and
    # close per storm batch cost more than its statements); a refused write rolls back on it
    # and the next one goes on; a connection the driver broke is replaced, nothing lost.
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}")
    await db.migrate()

    def audit(action: str) -> Callable[[Connection], object]:
        def work(conn: Connection) -> object:
            conn.execute(
                insert(AuditRow),
                [{"actor": ACTOR, "action": action, "object_type": "t", "object_id": "x"}],
            )
            if action == "refused":
                raise RuntimeError("refused after writing")
            return conn.connection.driver_connection  # kept: its id cannot be reused

        return work

    try:
        first = await db.write(audit("one"))
        with pytest.raises(RuntimeError, match="refused after writing"):
            await db.write(audit("refused"))
        assert await db.write(audit("two")) is first
        assert db._write_conn is not None
        db._write_conn.invalidate()  # as the driver would mark a broken connection
        assert await db.write(audit("three")) is not first
        async with db.sessions() as session:
            actions = (await session.scalars(select(AuditRow.action).order_by(AuditRow.id))).all()
        assert actions == ["one", "two", "three"]
    finally:
        await db.close()
    assert db._write_conn is None

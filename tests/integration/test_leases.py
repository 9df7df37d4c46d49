"""Leases and fencing tokens on a real PostgreSQL: the database, not Python, refuses a stale
lease holder's write (oss.store.leases, oss.store.fencing, migration 0008's oss_fence)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Connection, func, insert, select

from oss.errors import Fenced
from oss.store import Database, leases
from oss.store.fencing import Fence, fenced
from oss.store.tables import AuditRow
from tests.peers.postgres import PostgresServer, create_database

_numbers = iter(range(1, 10_000))


@pytest.fixture
async def pg(postgres: PostgresServer) -> AsyncIterator[Database]:
    database = Database(create_database(postgres, f"oss_leases_{next(_numbers)}"))
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


def _audit(note: str) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:
        conn.execute(
            insert(AuditRow),
            {"actor": "test", "action": note, "object_type": "test", "object_id": note},
        )

    return write


async def _audited(db: Database, note: str) -> int:
    async with db.read() as session:
        query = select(func.count()).select_from(AuditRow).where(AuditRow.action == note)
        return int(await session.scalar(query) or 0)


async def test_a_lease_has_one_holder_until_it_expires_and_the_token_moves_on(
    pg: Database,
) -> None:
    first = await pg.write(lambda c: leases.acquire(c, "leader", "a", 0.5), fenced=False)
    assert first == 1
    assert await pg.write(lambda c: leases.acquire(c, "leader", "b", 0.5), fenced=False) is None
    assert await pg.write(lambda c: leases.renew(c, "leader", "a", 1, 0.5), fenced=False)
    await asyncio.sleep(0.6)
    # expired: a renewal is refused, a successor takes it with the next token
    assert not await pg.write(lambda c: leases.renew(c, "leader", "a", 1, 0.5), fenced=False)
    assert await pg.write(lambda c: leases.acquire(c, "leader", "b", 5), fenced=False) == 2
    (lease,) = await pg.write(leases.all_leases, fenced=False)
    assert (lease.holder, lease.token, lease.live) == ("b", 2, True)
    # the same holder re-acquiring (a restart) gets a new token: the old one is stale at once
    assert await pg.write(lambda c: leases.acquire(c, "leader", "b", 5), fenced=False) == 3


async def test_the_database_refuses_a_write_under_a_stale_or_expired_fence(pg: Database) -> None:
    token = await pg.write(lambda c: leases.acquire(c, "singleton:job", "a", 0.5), fenced=False)
    assert token is not None
    held = Fence("singleton:job", "a", token)
    with fenced(held):
        await pg.write(_audit("while-held"))
        async with pg.transaction() as session:
            session.add(
                AuditRow(actor="t", action="orm-while-held", object_type="t", object_id="1")
            )
    await asyncio.sleep(0.6)  # a pause past the lease
    with fenced(held), pytest.raises(Fenced, match=r"singleton:job.*token 1.*expired"):
        await pg.write(_audit("after-expiry"))
    assert await pg.write(lambda c: leases.acquire(c, "singleton:job", "b", 5), fenced=False) == 2
    with fenced(held), pytest.raises(Fenced, match=r"stale: now token 2 of b"):
        async with pg.transaction() as session:
            session.add(AuditRow(actor="t", action="orm-stale", object_type="t", object_id="2"))
    assert await _audited(pg, "while-held") == 1
    assert await _audited(pg, "orm-while-held") == 1
    assert await _audited(pg, "after-expiry") == 0
    assert await _audited(pg, "orm-stale") == 0


async def test_the_membership_fence_rides_on_every_write_of_the_process(pg: Database) -> None:
    token = await pg.write(lambda c: leases.acquire(c, "member:a", "a", 5), fenced=False)
    assert token is not None
    pg.member_fence = Fence("member:a", "a", token)
    await pg.write(_audit("member-ok"))
    await pg.write(lambda c: leases.acquire(c, "member:a", "a", 5), fenced=False)  # a restart
    with pytest.raises(Fenced, match="member:a"):
        await pg.write(_audit("member-stale"))
    assert await _audited(pg, "member-ok") == 1
    assert await _audited(pg, "member-stale") == 0
    assert await pg.write(leases.live_members, fenced=False) == {"a"}


async def test_a_successor_waits_for_the_holders_transaction_to_end(pg: Database) -> None:
    """The fence holds the lease row for the transaction: no successor can take the lease
    between the check and the commit."""
    token = await pg.write(lambda c: leases.acquire(c, "leader", "a", 0.3), fenced=False)
    assert token is not None
    successor = Database(pg.url.render_as_string(hide_password=False))
    try:
        with fenced(Fence("leader", "a", token)):
            async with pg.transaction() as session:
                session.add(AuditRow(actor="t", action="slow", object_type="t", object_id="3"))
                await session.flush()
                take = asyncio.create_task(
                    successor.write(lambda c: leases.acquire(c, "leader", "b", 5), fenced=False)
                )
                await asyncio.sleep(0.5)  # past the lease: the successor still waits
                assert not take.done()
        assert await take == 2  # once the holder's transaction ended
    finally:
        await successor.close()
    assert await _audited(pg, "slow") == 1


async def test_device_shares_follow_the_leaders_assignment(pg: Database) -> None:
    await pg.write(lambda c: leases.register_member(c, "a", None, 1, "test"), fenced=False)
    assert [m.instance for m in await pg.write(leases.members, fenced=False)] == ["a"]
    assert await pg.write(leases.shares, fenced=False) == {}

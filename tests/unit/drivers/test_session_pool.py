"""SessionPool: reuse, per-device limits, replacement of dead or re-targeted sessions."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from drivers.base import SessionPool, Target
from oss.errors import ConnectError, RpcError


class FakeSession:
    numbers = itertools.count(1)

    def __init__(self, target: Target) -> None:
        self.number = next(self.numbers)
        self.target = target
        self.alive = True
        self.closed = False


class Opener:
    def __init__(self) -> None:
        self.opened: list[FakeSession] = []

    async def open(self, target: Target) -> FakeSession:
        session = FakeSession(target)
        self.opened.append(session)
        return session

    async def close(self, session: FakeSession) -> None:
        session.closed = True


def pool(opener: Opener, per_device: int = 1) -> SessionPool[FakeSession]:
    return SessionPool(
        opener.open,
        opener.close,
        per_device=per_device,
        is_broken=lambda exc: isinstance(exc, ConnectError),
        is_alive=lambda s: s.alive,
    )


R1 = Target(name="r1", host="127.10.0.1", port=830)


async def test_sessions_are_reused_per_device() -> None:
    opener = Opener()
    p = pool(opener)
    async with p.borrow(R1) as first:
        pass
    async with p.borrow(R1) as second:
        pass
    async with p.borrow(Target(name="r2", host="127.10.0.2", port=830)) as other:
        pass
    assert first is second and other is not first
    assert len(opener.opened) == 2


async def test_a_session_closed_while_idle_is_replaced() -> None:
    opener = Opener()
    p = pool(opener)
    async with p.borrow(R1) as first:
        pass
    first.alive = False
    async with p.borrow(R1) as second:
        pass
    assert second is not first and first.closed


async def test_a_changed_target_gets_a_new_session() -> None:
    opener = Opener()
    p = pool(opener)
    async with p.borrow(R1) as first:
        pass
    moved = Target(name="r1", host="127.10.0.9", port=830)
    async with p.borrow(moved) as second:
        pass
    assert second.target is moved and first.closed


async def test_broken_sessions_are_dropped_other_errors_keep_them() -> None:
    opener = Opener()
    p = pool(opener)
    with pytest.raises(RpcError):
        async with p.borrow(R1):
            raise RpcError("refused", device="r1", protocol="netconf", device_error="no")
    assert len(p) == 1
    with pytest.raises(ConnectError):
        async with p.borrow(R1):
            raise ConnectError("gone", device="r1", protocol="netconf")
    assert len(p) == 0 and opener.opened[0].closed


async def test_per_device_limit_serialises_borrowers() -> None:
    opener = Opener()
    p = pool(opener, per_device=1)
    inside = 0
    most = 0

    async def use() -> None:
        nonlocal inside, most
        async with p.borrow(R1):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(use() for _ in range(5)))
    assert most == 1 and len(opener.opened) == 1

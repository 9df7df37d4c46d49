"""`oss.store.notify` without a server: what a writer sends (split under PostgreSQL's payload
limit, nothing on SQLite) and how heard notices reach their handlers (own ones ignored, a
resync before the notices queued after it, a failed handler resyncs its channel)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from oss.store.notify import ALARMS, INVENTORY, PAYLOAD_LIMIT, Notifications


class FakeConn:
    """Records the NOTIFYs a writer makes (a PostgreSQL connection's dialect name)."""

    def __init__(self, dialect: str = "postgresql") -> None:
        self.dialect = type("D", (), {"name": dialect})()
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def execute(self, _statement: Any, params: Mapping[str, str]) -> None:
        assert len(params["payload"].encode()) < 8000  # what PostgreSQL accepts
        self.sent.append((params["channel"], json.loads(params["payload"])))


def notes(instance: str = "a") -> Notifications:
    return Notifications(make_url("postgresql+asyncpg://oss@127.0.0.1:1/oss"), instance)


def test_a_notice_carries_its_sender_and_nothing_goes_out_on_sqlite() -> None:
    conn, sqlite = FakeConn(), FakeConn("sqlite")
    notes().send(conn, INVENTORY, devices=["r1"])  # type: ignore[arg-type]
    notes().send(sqlite, INVENTORY, devices=["r1"])  # type: ignore[arg-type]
    notes().send_items(sqlite, ALARMS, "alarms", [[1, "raised"]])  # type: ignore[arg-type]
    assert conn.sent == [(INVENTORY, {"instance": "a", "devices": ["r1"]})]
    assert sqlite.sent == []


def test_many_items_are_split_under_the_payload_limit_in_order() -> None:
    conn = FakeConn()
    items = [[i, "changed"] for i in range(3000)]
    notes().send_items(conn, ALARMS, "alarms", items)  # type: ignore[arg-type]
    assert len(conn.sent) > 1
    assert all(ch == ALARMS and n["instance"] == "a" for ch, n in conn.sent)
    assert [item for _, n in conn.sent for item in n["alarms"]] == items


def test_a_payload_too_long_for_postgresql_becomes_a_resync_request() -> None:
    conn = FakeConn()
    notes().send(conn, INVENTORY, devices=["d" * 50] * (PAYLOAD_LIMIT // 50))  # type: ignore[arg-type]
    assert conn.sent == [(INVENTORY, {"instance": "a", "resync": True})]


class Recorder:
    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[Any] = []
        self.fail_on = fail_on

    async def handle(self, notice: Mapping[str, Any]) -> None:
        self.calls.append(notice["n"])
        if notice["n"] == self.fail_on:
            raise RuntimeError("cannot apply")

    async def resync(self) -> None:
        self.calls.append("resync")


def heard(listener: Notifications, channel: str, **notice: Any) -> None:
    listener._heard(None, 1, channel, json.dumps(notice))


async def test_other_instances_notices_reach_their_handler_in_order_own_ones_do_not() -> None:
    n, alarms, inventory = notes("b"), Recorder(), Recorder()
    n.on(ALARMS, alarms.handle, alarms.resync)
    n.on(INVENTORY, inventory.handle, inventory.resync)
    heard(n, ALARMS, instance="a", n=1)
    heard(n, INVENTORY, instance="a", n=2)
    heard(n, ALARMS, instance="b", n=3)  # its own: its listeners knew at once
    heard(n, ALARMS, instance="c", n=4)
    await n.handle_pending()
    assert alarms.calls == [1, 4]
    assert inventory.calls == [2]
    assert n.heard[ALARMS] == 2


async def test_a_resync_request_replaces_the_notices_queued_before_it() -> None:
    n, alarms = notes("b"), Recorder()
    n.on(ALARMS, alarms.handle, alarms.resync)
    heard(n, ALARMS, instance="a", n=1)
    heard(n, ALARMS, instance="a", resync=True)
    heard(n, ALARMS, instance="a", n=2)
    await n.handle_pending()
    # The resync reads the committed state, which includes what 1 and 2 said (both heard,
    # so committed, before it runs).
    assert alarms.calls == ["resync"]


async def test_a_failed_handler_resyncs_its_channel() -> None:
    n, alarms = notes("b"), Recorder(fail_on=1)
    n.on(ALARMS, alarms.handle, alarms.resync)
    heard(n, ALARMS, instance="a", n=1)
    await n.handle_pending()
    assert alarms.calls == [1, "resync"]


async def test_every_handler_of_a_channel_hears_in_registration_order() -> None:
    n, first, second = notes("b"), Recorder(), Recorder()
    n.on(ALARMS, first.handle, first.resync)
    n.on(ALARMS, second.handle)  # no resync of its own
    heard(n, ALARMS, instance="a", n=1)
    heard(n, ALARMS, instance="a", resync=True)
    await n.handle_pending()
    assert (first.calls, second.calls) == (["resync"], [])
    heard(n, ALARMS, instance="a", n=2)
    await n.handle_pending()
    assert (first.calls, second.calls) == (["resync", 2], [2])


def test_a_channel_must_be_known() -> None:
    with pytest.raises(ValueError, match="unknown"):
        notes().on("oss_nothing", Recorder().handle)

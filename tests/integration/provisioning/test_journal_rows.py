"""The provisioning journal written in bulk (oss/store/journal_rows.py through DbJournal), on
SQLite and on a real PostgreSQL: what a restarted daemon loads back is what was journaled."""

from __future__ import annotations

import pytest

from drivers.platforms import load_platform
from oss.errors import NotFound
from oss.provisioning.engine import DeviceTxn, Transaction
from oss.provisioning.journal import DbJournal
from oss.provisioning.leaves import Intent
from oss.provisioning.plan import DevicePlan
from oss.store import Database
from oss.store.journal_rows import Unfinished

pytestmark = pytest.mark.integration

SUB = "interfaces/interface[name=eth1]/subinterfaces/subinterface[index=100]"


def plan(device: str) -> DevicePlan:
    return DevicePlan(
        device=device,
        platform=load_platform("lab-sim"),
        payload=f"<interfaces><!-- {device} --></interfaces>",
        intent=Intent({f"{SUB}/config/index": "100", f"{SUB}/config/enabled": True}, ()),
        owned=(SUB,),
    )


async def journaled(db: Database, journal: DbJournal, devices: int) -> Transaction:
    async with db.transaction() as s:
        txn_id = await journal.add(s, "create", None, "test:journal")
        txn = Transaction(txn_id, "create", [DeviceTxn(plan(f"d{i}"), i) for i in range(devices)])
        await journal.begin(s, txn)
    return txn


async def test_every_phase_is_loaded_back_as_written(db: Database) -> None:
    journal = DbJournal(db)
    txn = await journaled(db, journal, 3)
    fresh = await journal.load(txn.id)
    assert fresh.state == "pending"
    assert [(d.device, d.position, d.state) for d in fresh.devices] == [
        ("d0", 0, "pending"),
        ("d1", 1, "pending"),
        ("d2", 2, "pending"),
    ]
    assert fresh.devices[1].plan.intent == txn.devices[1].plan.intent
    assert fresh.devices[1].plan.owned == (SUB,)

    # read, then prepare: pre-images and persist ids, one device failed with an error
    for i, d in enumerate(txn.devices):
        d.plan.pre_image = {} if i else {f"{SUB}/config/index": "100"}
        d.persist_id = f"oss-{txn.id}-{i}"
        d.state, d.step = "prepared", "prepare"
        d.plan.steps.append({"step": "prepare", "ms": 1.5, "ok": True})
    txn.devices[2].state, txn.devices[2].error = "failed", "device d2, step prepare: refused"
    txn.state, txn.error = "rolling-back", "device d2, step prepare: refused"
    await journal.record(txn)

    back = await journal.load(txn.id)
    assert back.state == "rolling-back"
    assert back.error == "device d2, step prepare: refused"
    assert [d.state for d in back.devices] == ["prepared", "prepared", "failed"]
    assert [d.reached for d in back.devices] == ["prepared", "prepared", "none"]
    assert back.devices[0].plan.pre_image == {f"{SUB}/config/index": "100"}
    assert back.devices[1].plan.pre_image == {}
    assert back.devices[1].persist_id == f"oss-{txn.id}-1"
    assert back.devices[2].error == "device d2, step prepare: refused"
    assert back.devices[0].plan.steps == [{"step": "prepare", "ms": 1.5, "ok": True}]
    assert (await journal.unfinished()) == [Unfinished(txn.id, "create", None, None)]
    assert (await journal.show(txn.id))["finished_at"] is None

    txn.state = "rolled-back"
    await journal.record(txn)
    shown = await journal.show(txn.id)
    assert shown["state"] == "rolled-back"
    assert shown["finished_at"] is not None
    assert await journal.unfinished() == []


async def test_a_state_given_overrides_the_transaction_s_own(db: Database) -> None:
    journal = DbJournal(db)
    txn = await journaled(db, journal, 1)
    txn.state = "committed"
    await journal.record(txn, state="confirming")  # as a service change holds the end back
    shown = await journal.show(txn.id)
    assert (shown["state"], shown["finished_at"]) == ("confirming", None)


async def test_writing_a_transaction_not_in_the_journal_is_refused(db: Database) -> None:
    journal = DbJournal(db)
    missing = Transaction(424242, "create", [DeviceTxn(plan("d0"), 0)], state="reading")
    with pytest.raises(NotFound, match="424242"):
        await journal.record(missing)

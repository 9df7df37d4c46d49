"""The multi-device transaction engine (oss/provisioning/engine.py) against in-memory devices.

The fakes stand where DeviceAccess and the protocol adapters stand: `FakeAccess.adapter(name)`
opens a session on a `FakeDevice` (a running configuration as leaves) and yields a
`FakeAdapter` that applies the plan's intent on commit and puts the journaled pre-image back on
undo (with the real `restore_of`, as the gNMI and CLI adapters do). Every call is recorded, and
a test can make any step on any device fail, or hold it on an asyncio event.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from drivers.platforms import load_platform
from oss.errors import ConnectError, DeviceTimeout, DriverError, RpcError
from oss.provisioning.adapters import Adapter, Reached, restore_of
from oss.provisioning.engine import (
    DeviceTxn,
    Engine,
    Step,
    StepEvent,
    Transaction,
    TransactionFailed,
)
from oss.provisioning.leaves import Intent, in_scope, restrict, text
from oss.provisioning.plan import DevicePlan

PHASES: list[Step] = ["read", "prepare", "commit", "verify", "confirm"]
GUARD_S = 10.0  # only so a broken lock cannot hang the suite; never reached when it works

ETH1 = "interfaces/interface[name=eth1]"
SUB = f"{ETH1}/subinterfaces/subinterface[index=100]"
NI = "network-instances/network-instance[name=acme]"
QOS = "qos/interfaces/interface[interface-id=eth1.100]"
ORIGINAL = {
    f"{ETH1}/config/name": "eth1",
    f"{ETH1}/config/mtu": "1500",
    "interfaces/interface[name=eth2]/config/mtu": "1500",
}
CHANGE = Intent(
    {
        f"{ETH1}/config/mtu": 9000,  # a leaf the service does not own, changed
        f"{SUB}/config/index": 100,
        f"{SUB}/config/enabled": True,
        f"{SUB}/vlan/config/vlan-id": 100,
        f"{NI}/config/name": "acme",
        f"{NI}/config/type": "L3VRF",
        f"{QOS}/config/class": "assured",
    }
)
OWNED = (SUB, NI, QOS)


def applied(running: dict[str, str], intent: Intent) -> dict[str, str]:
    out = {p: v for p, v in running.items() if not in_scope(p, intent.removals)}
    out.update({p: text(v) for p, v in intent.leaves.items()})
    return out


# --- fakes ------------------------------------------------------------------------------------


@dataclass
class FakeDevice:
    name: str
    running: dict[str, str] = field(default_factory=lambda: dict(ORIGINAL))
    # step ("read", "prepare", "commit", "verify", "confirm", "undo", "recover") -> error
    faults: dict[str, BaseException] = field(default_factory=dict)
    # step -> awaited before the step does anything (events, to order things across tasks)
    hooks: dict[str, Callable[[DevicePlan], Awaitable[None]]] = field(default_factory=dict)
    ignores_commit: bool = False  # accepts the commit and changes nothing
    unreachable: bool = False  # refuses new sessions
    open_sessions: int = 0
    most_sessions: int = 0


class FakeAdapter:
    def __init__(self, device: FakeDevice, access: FakeAccess, session: int) -> None:
        self.device = device
        self.access = access
        self.session = session
        self.reads = 0

    async def _step(self, step: str, plan: DevicePlan, *detail: Any) -> None:
        self.access.calls.append((self.device.name, step, plan.payload, self.session, *detail))
        hook = self.device.hooks.get(step)
        if hook is not None:
            await hook(plan)
        fault = self.device.faults.get(step)
        if fault is not None:
            raise fault

    async def read(self, plan: DevicePlan) -> dict[str, Any]:
        self.reads += 1
        await self._step("read" if self.reads == 1 else "verify", plan)
        return dict(self.device.running)

    async def prepare(self, plan: DevicePlan) -> None:
        await self._step("prepare", plan)

    async def commit(self, plan: DevicePlan, persist_id: str) -> None:
        self.access.calls.append((self.device.name, "commit", plan.payload, self.session))
        hook = self.device.hooks.get("commit")
        if hook is not None:
            await hook(plan)
        if not self.device.ignores_commit:
            self.device.running = applied(self.device.running, plan.intent)
        fault = self.device.faults.get("commit")
        if fault is not None:
            raise fault  # after applying: a failed commit may still have changed the device

    async def confirm(self, plan: DevicePlan, persist_id: str) -> None:
        await self._step("confirm", plan, persist_id)

    async def undo(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        await self._step("undo", plan, reached)
        self._restore(plan, reached)

    async def recover(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        await self._step("recover", plan, reached)
        self._restore(plan, reached)

    def _restore(self, plan: DevicePlan, reached: Reached) -> None:
        if reached in ("committed", "confirmed"):
            restore = restore_of(plan, dict(self.device.running))
            self.device.running = applied(self.device.running, restore)


class FakeAccess:
    """Stands for DeviceAccess: `adapter(name)` opens a session on a fake device."""

    def __init__(self, *devices: FakeDevice) -> None:
        self.devices = {d.name: d for d in devices}
        self.calls: list[tuple[Any, ...]] = []  # (device, step, payload, session, *detail)
        self.sessions = 0

    @asynccontextmanager
    async def adapter(self, name: str) -> AsyncIterator[Adapter]:
        device = self.devices[name]
        if device.unreachable:
            raise ConnectError("connection refused", device=name, protocol="gnmi")
        self.sessions += 1
        device.open_sessions += 1
        device.most_sessions = max(device.most_sessions, device.open_sessions)
        try:
            yield FakeAdapter(device, self, self.sessions)
        finally:
            device.open_sessions -= 1

    def steps(self, device: str | None = None, payload: str | None = None) -> list[str]:
        return [
            c[1]
            for c in self.calls
            if (device is None or c[0] == device) and (payload is None or c[2] == payload)
        ]

    def undone(self) -> set[str]:
        return {c[0] for c in self.calls if c[1] in ("undo", "recover")}


class FakeJournal:
    """Records what the engine journals: the state and every device's state, in order, and
    (given the access) how many device calls had been made by then."""

    def __init__(self, access: FakeAccess | None = None) -> None:
        self.access = access
        self.records: list[tuple[str, dict[str, str]]] = []
        self.calls_before: dict[str, int] = {}  # first record of a state -> device calls so far
        self.pre_images: dict[str, list[bool]] = {}  # state -> which devices had a pre-image

    async def record(self, txn: Transaction) -> None:
        self.records.append((txn.state, {d.device: d.state for d in txn.devices}))
        if self.access is not None:
            self.calls_before.setdefault(txn.state, len(self.access.calls))
        self.pre_images.setdefault(txn.state, [d.plan.pre_image is not None for d in txn.devices])

    @property
    def states(self) -> list[str]:
        return [state for state, _ in self.records]


class Recorder:
    """An observer keeping every notification."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Step, StepEvent, str | None]] = []

    async def __call__(self, device: str, step: Step, event: StepEvent, error: str | None) -> None:
        self.events.append((device, step, event, error))

    def of(self, device: str) -> list[tuple[Step, StepEvent]]:
        return [(s, e) for d, s, e, _ in self.events if d == device]


def plan(device: str, tag: str = "t1", platform: str = "lab-sim-gnmi") -> DevicePlan:
    return DevicePlan(
        device=device,
        platform=load_platform(platform),
        payload=tag,  # the fakes apply the intent; the payload tells transactions apart
        intent=CHANGE,
        owned=OWNED,
    )


def transaction(
    names: list[str], txn_id: int = 1, tag: str = "t1", platform: str = "lab-sim-gnmi"
) -> Transaction:
    devices = [DeviceTxn(plan(n, tag, platform), i) for i, n in enumerate(names)]
    return Transaction(id=txn_id, kind="create", devices=devices)


def changed() -> dict[str, str]:
    return applied(dict(ORIGINAL), CHANGE)


NAMES = ["pe1", "p1", "pe2"]


@pytest.fixture
def devices() -> dict[str, FakeDevice]:
    return {n: FakeDevice(n) for n in NAMES}


@pytest.fixture
def access(devices: dict[str, FakeDevice]) -> FakeAccess:
    return FakeAccess(*devices.values())


# --- success ----------------------------------------------------------------------------------


async def test_success_on_three_devices(access: FakeAccess, devices: dict[str, FakeDevice]) -> None:
    journal, observer = FakeJournal(access), Recorder()
    txn = await Engine(access).run(transaction(NAMES), journal, observer)

    assert txn.state == "committed"
    assert txn.error is None
    assert [d.state for d in txn.devices] == ["confirmed"] * 3
    for name in NAMES:
        assert access.steps(name) == PHASES
        assert devices[name].running == changed()
        assert devices[name].most_sessions == 1
    # phase by phase: no device starts a step before every device finished the previous one
    order = [c[1] for c in access.calls]
    for earlier, later in itertools.pairwise(PHASES):
        last = max(i for i, s in enumerate(order) if s == earlier)
        first = min(i for i, s in enumerate(order) if s == later)
        assert last < first, (earlier, later)
    assert journal.states == [
        "reading",
        "preparing",
        "committing",
        "verifying",
        "confirming",
        "committed",
    ]
    # journaled before any device is touched, and the pre-images before any is prepared
    assert journal.calls_before["reading"] == 0
    assert journal.calls_before["preparing"] == 3
    assert journal.pre_images["preparing"] == [True, True, True]
    # the pre-image is what the change touches, read before anything changed
    assert txn.devices[0].plan.pre_image == {f"{ETH1}/config/mtu": "1500"}
    assert [c.op for c in txn.devices[0].changes].count("add") == 6


async def test_persist_ids_are_per_device_and_confirm_uses_them(access: FakeAccess) -> None:
    txn = await Engine(access).run(transaction(NAMES, txn_id=42), FakeJournal())
    ids = [d.persist_id for d in txn.devices]
    assert len(set(ids)) == 3
    assert all(i.startswith("oss-42-") for i in ids)
    confirmed = {c[0]: c[4] for c in access.calls if c[1] == "confirm"}
    assert confirmed == {d.device: d.persist_id for d in txn.devices}


async def test_a_device_that_already_holds_the_change_is_left_alone(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["p1"].running = changed()
    observer = Recorder()
    txn = await Engine(access).run(transaction(NAMES), FakeJournal(), observer)

    assert txn.state == "committed"
    assert [d.state for d in txn.devices] == ["confirmed", "unchanged", "confirmed"]
    assert access.steps("p1") == ["read"]
    assert observer.of("p1") == [("read", "start"), ("read", "done")]
    assert txn.devices[1].changes == []
    assert txn.devices[1].persist_id == ""
    for name in ("pe1", "pe2"):
        assert access.steps(name) == PHASES


async def test_nothing_to_change_anywhere_commits_without_touching(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    for device in devices.values():
        device.running = changed()
    txn = await Engine(access).run(transaction(NAMES), FakeJournal())
    assert txn.state == "committed"
    assert access.steps() == ["read"] * 3


async def test_preview_diffs_without_changing_anything(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["p1"].running = changed()
    devices["pe2"].faults["read"] = DeviceTimeout(
        "no answer within 5 s", device="pe2", protocol="x"
    )
    previews = await Engine(access).preview([plan(n) for n in NAMES])
    assert [p.state for p in previews] == ["differs", "unchanged", "failed"]
    assert "no answer within 5 s" in (previews[2].error or "")
    assert ("change", f"{ETH1}/config/mtu") in [(c.op, c.path) for c in previews[0].changes]
    assert access.steps() == ["read"] * 3
    assert devices["pe1"].running == ORIGINAL


async def test_an_exclusive_create_refuses_to_take_over_what_is_there(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    """What the service would own is on p1 already (another service's, or by hand): refused
    at read on every path (preview and run), nothing sent anywhere."""
    devices["p1"].running = changed()
    txn = transaction(NAMES)
    for d in txn.devices:
        d.plan.exclusive = True
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(txn, FakeJournal())
    assert failed.value.transaction.state == "rolled-back"
    assert "p1" in str(failed.value) and "does not take it over" in str(failed.value)
    assert set(access.steps()) == {"read"}
    exclusive = [plan(n) for n in NAMES]
    for p in exclusive:
        p.exclusive = True
    previews = await Engine(access).preview(exclusive)
    assert [p.state for p in previews] == ["differs", "failed", "differs"]
    assert "already configured" in (previews[1].error or "")


async def test_the_transaction_is_live_while_it_runs(access: FakeAccess) -> None:
    engine = Engine(access)
    seen: list[bool] = []

    async def observe(device: str, step: Step, event: StepEvent, error: str | None) -> None:
        seen.append(7 in engine.live)

    await engine.run(transaction(NAMES, txn_id=7), FakeJournal(), observe)
    assert seen
    assert all(seen)
    assert 7 not in engine.live


# --- failures ---------------------------------------------------------------------------------


def refusal(step: str, device: str) -> DriverError:
    if step == "read":
        return ConnectError("connection refused", device=device, protocol="gnmi")
    return RpcError(
        f"{step} refused", device=device, protocol="gnmi", device_error=f"injected at {step}"
    )


@pytest.mark.parametrize("position", [0, 1, 2])
@pytest.mark.parametrize("step", PHASES)
async def test_failure_at_each_step_and_position_undoes_everything(
    access: FakeAccess, devices: dict[str, FakeDevice], step: Step, position: int
) -> None:
    victim = NAMES[position]
    devices[victim].faults[step] = refusal(step, victim)
    journal, observer = FakeJournal(), Recorder()

    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), journal, observer)

    txn = failed.value.transaction
    message = str(failed.value)
    assert message.startswith(f"device {victim}, step {step}: {victim} (gnmi): ")
    assert message == txn.error
    assert (step == "read" and "connection refused" in message) or f"injected at {step}" in message
    assert txn.state == "rolled-back"
    assert journal.states[-1] == "rolled-back"
    # undone: exactly the devices that got to prepare (all of them, phases run side by side)
    assert access.undone() == (set() if step == "read" else set(NAMES))
    if step != "read":
        assert "rolling-back" in journal.states
        assert [d.state for d in txn.devices] == ["rolled-back"] * 3
    # nothing after the failed phase was tried
    later = PHASES[PHASES.index(step) + 1 :]
    assert not [c for c in access.calls if c[1] in later]
    # every device holds its original configuration
    for name in NAMES:
        assert devices[name].running == ORIGINAL, name
    assert (victim, step, "failed", message.split(": ", 1)[1]) in observer.events


async def test_a_device_that_does_not_hold_the_change_fails_verify(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["p1"].ignores_commit = True
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), FakeJournal())
    message = str(failed.value)
    assert message.startswith(
        "device p1, step verify: p1 (gnmi): verify: the device does not hold the change ("
    )
    assert f"~ {ETH1}/config/mtu: 1500 -> 9000" in message
    assert access.undone() == set(NAMES)
    assert all(d.running == ORIGINAL for d in devices.values())


async def test_an_unchanged_device_is_not_undone(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["p1"].running = changed()
    devices["pe2"].faults["commit"] = refusal("commit", "pe2")
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), FakeJournal())
    assert access.undone() == {"pe1", "pe2"}
    assert failed.value.transaction.devices[1].state == "unchanged"
    assert devices["pe1"].running == devices["pe2"].running == ORIGINAL
    assert devices["p1"].running == changed()


async def test_several_failures_name_the_first_position_and_the_others(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["pe2"].faults["prepare"] = refusal("prepare", "pe2")
    devices["p1"].faults["prepare"] = refusal("prepare", "p1")
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), FakeJournal())
    message = str(failed.value)
    assert message.startswith("device p1, step prepare: ")
    assert message.endswith(" (also failed: pe2)")


async def test_an_error_that_is_not_a_device_error_also_fails_the_transaction(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["p1"].faults["commit"] = KeyError("bug in an adapter")
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), FakeJournal())
    assert str(failed.value).startswith("device p1, step commit: ")
    assert all(d.running == ORIGINAL for d in devices.values())


# --- undo trouble -----------------------------------------------------------------------------


async def test_undo_on_a_broken_session_is_retried_on_a_fresh_one(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["pe2"].faults["confirm"] = refusal("confirm", "pe2")
    devices["p1"].faults["undo"] = ConnectError("session closed", device="p1", protocol="gnmi")
    observer = Recorder()
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), FakeJournal(), observer)

    txn = failed.value.transaction
    assert txn.state == "rolled-back"
    assert [d.state for d in txn.devices] == ["rolled-back"] * 3
    p1 = [c for c in access.calls if c[0] == "p1"]
    [own_session] = {c[3] for c in p1 if c[1] != "recover"}
    [(_, _, _, fresh_session, reached)] = [c for c in p1 if c[1] == "recover"]
    assert fresh_session != own_session
    assert reached == "confirmed"
    assert devices["p1"].most_sessions == 1  # the old session closed before the fresh one
    assert access.steps("pe1")[-1] == "undo"  # the others were undone on their own session
    assert observer.of("p1")[-4:] == [
        ("undo", "start"),
        ("undo", "failed"),
        ("undo", "start"),
        ("undo", "done"),
    ]
    assert all(d.running == ORIGINAL for d in devices.values())


async def test_an_undo_that_fails_everywhere_leaves_the_transaction_failed(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["pe2"].faults["verify"] = refusal("verify", "pe2")
    devices["p1"].faults["undo"] = refusal("undo", "p1")
    devices["p1"].faults["recover"] = refusal("recover", "p1")
    journal = FakeJournal()
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), journal)

    txn = failed.value.transaction
    assert txn.state == "failed"
    assert journal.states[-1] == "failed"
    message = str(failed.value)
    assert message.startswith("device pe2, step verify: ")
    assert message.endswith("; NOT restored on p1 (needs attention)")
    assert [d.state for d in txn.devices] == ["rolled-back", "undo-failed", "rolled-back"]
    assert devices["p1"].running == changed()
    assert devices["pe1"].running == devices["pe2"].running == ORIGINAL


async def test_an_unreachable_gnmi_device_cannot_be_restored(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    async def go_down(p: DevicePlan) -> None:
        lost = ConnectError("connection lost", device="p1", protocol="gnmi")
        devices["p1"].unreachable = True
        devices["p1"].faults["undo"] = lost
        raise lost

    devices["p1"].hooks["confirm"] = go_down
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), FakeJournal())
    txn = failed.value.transaction
    assert txn.state == "failed"
    assert str(failed.value).endswith("; NOT restored on p1 (needs attention)")
    assert txn.devices[1].state == "undo-failed"


async def test_an_unreachable_netconf_device_reverts_by_its_own_timer() -> None:
    """A NETCONF device that took the confirmed commit and then became unreachable reverts on
    its own when the confirmation never comes: the transaction says so and is rolled back."""
    devices = {n: FakeDevice(n) for n in NAMES}
    access = FakeAccess(*devices.values())

    async def go_down(p: DevicePlan) -> None:
        stalled = DeviceTimeout("no answer within 4 s", device="pe1", protocol="netconf")
        devices["pe1"].unreachable = True
        devices["pe1"].faults["undo"] = stalled
        raise stalled

    devices["pe1"].hooks["verify"] = go_down
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES, platform="lab-sim"), FakeJournal())
    txn = failed.value.transaction
    assert txn.state == "rolled-back"
    assert txn.devices[0].state == "auto-revert"
    assert str(failed.value) == (
        "device pe1, step verify: pe1 (netconf): no answer within 4 s; unreachable for undo, "
        "reverting by its own confirmed-commit timer: pe1"
    )
    assert devices["p1"].running == devices["pe2"].running == ORIGINAL


async def test_an_os_error_during_undo_is_retried_on_a_fresh_session(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["pe2"].faults["commit"] = refusal("commit", "pe2")
    devices["p1"].faults["undo"] = ConnectionResetError("connection reset by peer")
    journal = FakeJournal()
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), journal)
    assert failed.value.transaction.state == "rolled-back"
    assert journal.states[-1] == "rolled-back"
    assert all(d.running == ORIGINAL for d in devices.values())


# --- observer ---------------------------------------------------------------------------------


async def test_observer_sees_every_step_of_every_device(access: FakeAccess) -> None:
    observer = Recorder()
    await Engine(access).run(transaction(NAMES), FakeJournal(), observer)
    for name in NAMES:
        assert observer.of(name) == [(s, e) for s in PHASES for e in ("start", "done")]
    assert all(error is None for *_, error in observer.events)


async def test_observer_sees_the_failure_and_the_undo(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["p1"].faults["commit"] = refusal("commit", "p1")
    observer = Recorder()
    with pytest.raises(TransactionFailed):
        await Engine(access).run(transaction(NAMES), FakeJournal(), observer)
    head = [(s, e) for s in PHASES[:2] for e in ("start", "done")]
    assert observer.of("p1") == [
        *head,
        ("commit", "start"),
        ("commit", "failed"),
        ("undo", "start"),
        ("undo", "done"),
    ]
    assert observer.of("pe1") == [
        *head,
        ("commit", "start"),
        ("commit", "done"),
        ("undo", "start"),
        ("undo", "done"),
    ]
    [error] = [err for d, s, e, err in observer.events if e == "failed"]
    assert error == "p1 (gnmi): commit refused: injected at commit"


async def test_step_timings_are_kept_per_device(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    devices["pe2"].faults["confirm"] = refusal("confirm", "pe2")
    with pytest.raises(TransactionFailed) as failed:
        await Engine(access).run(transaction(NAMES), FakeJournal())
    pe2 = failed.value.transaction.devices[2]
    assert [(s["step"], s["ok"]) for s in pe2.plan.steps] == [
        *[(s, True) for s in PHASES[:-1]],
        ("confirm", False),
        ("undo", True),
    ]
    assert "injected at confirm" in pe2.plan.steps[-2]["error"]
    as_dict = failed.value.transaction.to_dict()
    assert as_dict["state"] == "rolled-back"
    assert as_dict["devices"][2]["state"] == "rolled-back"
    assert as_dict["devices"][2]["protocol"] == "gnmi"


# --- concurrency ------------------------------------------------------------------------------


async def test_transactions_on_a_shared_device_are_serialized() -> None:
    """The first transaction holds pe1's read; the second, which shares p1 with it, must not
    read any device until the first has finished."""
    devices = {n: FakeDevice(n) for n in ("pe1", "p1", "pe2")}
    access = FakeAccess(*devices.values())
    engine = Engine(access)
    first_reading, release = asyncio.Event(), asyncio.Event()

    async def hold(p: DevicePlan) -> None:
        if p.payload == "t1":
            first_reading.set()
            await release.wait()

    devices["pe1"].hooks["read"] = hold
    first = asyncio.create_task(engine.run(transaction(["pe1", "p1"], 1, "t1"), FakeJournal()))
    await asyncio.wait_for(first_reading.wait(), GUARD_S)
    second = asyncio.create_task(engine.run(transaction(["p1", "pe2"], 2, "t2"), FakeJournal()))
    for _ in range(50):  # let the second run as far as it can
        await asyncio.sleep(0)
    assert access.steps(payload="t2") == []
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), GUARD_S)

    payloads = [c[2] for c in access.calls]
    assert payloads.index("t2") > max(i for i, p in enumerate(payloads) if p == "t1")
    assert access.steps("p1", "t1") == PHASES
    assert access.steps("p1", "t2") == ["read"]  # the first left it holding the change
    assert access.steps("pe2", "t2") == PHASES


async def test_transactions_on_disjoint_devices_overlap() -> None:
    """Each transaction's read waits until the other one is reading too: they can only both
    finish if they run side by side."""
    devices = {n: FakeDevice(n) for n in ("pe1", "pe2")}
    access = FakeAccess(*devices.values())
    engine = Engine(access)
    reading = {"pe1": asyncio.Event(), "pe2": asyncio.Event()}

    def meet(mine: str, other: str) -> Callable[[DevicePlan], Awaitable[None]]:
        async def hook(p: DevicePlan) -> None:
            reading[mine].set()
            await reading[other].wait()

        return hook

    devices["pe1"].hooks["read"] = meet("pe1", "pe2")
    devices["pe2"].hooks["read"] = meet("pe2", "pe1")
    done = await asyncio.wait_for(
        asyncio.gather(
            engine.run(transaction(["pe1"], 1, "t1"), FakeJournal()),
            engine.run(transaction(["pe2"], 2, "t2"), FakeJournal()),
        ),
        GUARD_S,
    )
    assert [t.state for t in done] == ["committed", "committed"]


async def test_a_failed_transaction_releases_its_devices(
    access: FakeAccess, devices: dict[str, FakeDevice]
) -> None:
    engine = Engine(access)
    devices["p1"].faults["prepare"] = refusal("prepare", "p1")
    with pytest.raises(TransactionFailed):
        await engine.run(transaction(NAMES, 1, "t1"), FakeJournal())
    del devices["p1"].faults["prepare"]
    txn = await asyncio.wait_for(engine.run(transaction(NAMES, 2, "t2"), FakeJournal()), GUARD_S)
    assert txn.state == "committed"


# --- resolve after a crash --------------------------------------------------------------------


def journaled(
    states: dict[str, tuple[str, Reached]], txn_state: str, *, committed: set[str]
) -> tuple[Transaction, FakeAccess, dict[str, FakeDevice]]:
    """A transaction as a dead daemon left it: devices in `committed` hold the change."""
    devices = {n: FakeDevice(n) for n in states}
    for name in committed:
        devices[name].running = changed()
    txn = transaction(list(states))
    txn.state = txn_state  # type: ignore[assignment]
    for d in txn.devices:
        d.state, d.reached = states[d.device]
        d.persist_id = f"oss-1-{d.device}"
        d.plan.pre_image = restrict(ORIGINAL, d.plan.intent, d.plan.owned)
    return txn, FakeAccess(*devices.values()), devices


async def test_resolve_confirms_a_transaction_verified_everywhere() -> None:
    txn, access, devices = journaled(
        {
            "pe1": ("verified", "committed"),
            "p1": ("unchanged", "none"),
            "pe2": ("confirmed", "confirmed"),  # confirmed before the crash
        },
        "confirming",
        committed={"pe1", "p1", "pe2"},
    )
    journal = FakeJournal()
    out = await Engine(access).resolve(txn, journal)

    assert out.state == "committed"
    assert out.error is None
    assert journal.states[-1] == "committed"
    assert [c[:2] for c in access.calls] == [("pe1", "confirm")]
    assert access.calls[0][4] == "oss-1-pe1"
    assert [d.state for d in out.devices] == ["confirmed", "unchanged", "confirmed"]
    assert all(d.running == changed() for d in devices.values())


async def test_resolve_undoes_a_transaction_interrupted_while_committing() -> None:
    txn, access, devices = journaled(
        {
            "pe1": ("committed", "committed"),
            "p1": ("prepared", "committed"),  # its commit was under way
            "pe2": ("prepared", "prepared"),
            "p2": ("read", "none"),
        },
        "committing",
        committed={"pe1", "p1"},
    )
    journal = FakeJournal()
    out = await Engine(access).resolve(txn, journal)

    assert out.state == "rolled-back"
    assert out.error == "interrupted in state committing by a daemon restart"
    assert journal.states[-2:] == ["rolling-back", "rolled-back"]
    assert access.undone() == {"pe1", "p1", "pe2"}
    assert {c[1] for c in access.calls} == {"recover"}  # fresh sessions only
    assert {c[0]: c[4] for c in access.calls} == {
        "pe1": "committed",
        "p1": "committed",
        "pe2": "prepared",
    }
    assert all(d.running == ORIGINAL for d in devices.values())


async def test_resolve_undoes_when_the_confirmation_no_longer_works() -> None:
    txn, access, devices = journaled(
        {"pe1": ("verified", "committed"), "pe2": ("verified", "committed")},
        "confirming",
        committed={"pe1", "pe2"},
    )
    devices["pe2"].faults["confirm"] = refusal("confirm", "pe2")
    out = await Engine(access).resolve(txn, FakeJournal())

    assert out.state == "rolled-back"
    assert (out.error or "").startswith("device pe2, step confirm: ")
    assert access.undone() == {"pe1", "pe2"}
    assert all(d.running == ORIGINAL for d in devices.values())


async def test_resolve_undoes_a_device_whose_confirmation_may_have_landed_as_confirmed() -> None:
    """In `confirming`, a device's confirmation may have landed after the journal was written
    (the instance paused, then resumed): "nothing pending" then does not mean reverted, so
    every verified device is undone as confirmed (from its pre-image), not by a cancel only."""
    txn, access, devices = journaled(
        {"pe1": ("verified", "committed"), "pe2": ("verified", "committed")},
        "confirming",
        committed={"pe1", "pe2"},
    )
    devices["pe2"].faults["confirm"] = RpcError(
        "commit refused",
        device="pe2",
        protocol="netconf",
        device_error="persist-id given but no persistent confirmed commit is in progress",
    )
    out = await Engine(access).resolve(txn, FakeJournal())

    assert out.state == "rolled-back"
    recovered = {c[0]: c[4] for c in access.calls if c[1] == "recover"}
    assert recovered == {"pe1": "confirmed", "pe2": "confirmed"}
    assert all(d.running == ORIGINAL for d in devices.values())


async def test_resolve_names_a_device_it_could_not_restore() -> None:
    txn, access, devices = journaled(
        {"pe1": ("committed", "committed"), "pe2": ("committed", "committed")},
        "verifying",
        committed={"pe1", "pe2"},
    )
    devices["pe2"].unreachable = True
    out = await Engine(access).resolve(txn, FakeJournal())
    assert out.state == "failed"
    assert out.error == "interrupted in state verifying by a daemon restart; NOT restored on pe2"
    assert devices["pe1"].running == ORIGINAL
    assert devices["pe2"].running == changed()


async def test_resolve_waits_for_a_running_transaction_on_the_same_devices() -> None:
    txn, access, devices = journaled(
        {"pe1": ("committed", "committed")}, "committing", committed={"pe1"}
    )
    engine = Engine(access)
    reading, release = asyncio.Event(), asyncio.Event()
    devices["pe2"] = FakeDevice("pe2")
    access.devices["pe2"] = devices["pe2"]

    async def hold(p: DevicePlan) -> None:
        reading.set()
        await release.wait()

    devices["pe2"].hooks["read"] = hold
    other = asyncio.create_task(engine.run(transaction(["pe1", "pe2"], 2, "t2"), FakeJournal()))
    await asyncio.wait_for(reading.wait(), GUARD_S)
    resolving = asyncio.create_task(engine.resolve(txn, FakeJournal()))
    for _ in range(50):
        await asyncio.sleep(0)
    assert "recover" not in access.steps()
    release.set()
    await asyncio.wait_for(asyncio.gather(other, resolving), GUARD_S)
    steps = access.steps()
    assert steps.index("recover") > max(i for i, s in enumerate(steps) if s == "confirm")

"""Interface oper_state from what the collectors observe (defect 12): polled status, gNMI
status, linkDown/linkUp traps; written only when it changes."""

from __future__ import annotations

import pytest

from oss.assurance.oper_state import OperStates, oper_state
from oss.audit import list_entries
from oss.events import Event
from oss.inventory import Inventory
from oss.store.database import Database
from topology.model import Device, Interface, OperState

IFNAMES = {("r1", "2"): "eth1"}


@pytest.fixture
async def inventory(migrated_db: Database) -> Inventory:
    inv = Inventory(migrated_db)
    await inv.load()
    await inv.add_device(Device(name="r1"), actor="test")
    await inv.add_interface(Interface(device="r1", name="eth1"), actor="test")
    return inv


def polled(status: str, interface: str = "eth1") -> Event:
    tags = {"device": "r1", "interface": interface, "ifindex": "2"}
    return Event("interface", 1, tags, {"oper-status": status, "in-octets": 5})


def trap(name: str, values: dict[str, int | str] | None = None) -> Event:
    tags = {"device": "r1", "trap": name, "ifindex": "2", "source": "127.0.0.1:1"}
    return Event("snmp.trap", 1, tags, values or {})


def states(inventory: Inventory) -> OperStates:
    return OperStates(inventory, interface_name=lambda d, i: IFNAMES.get((d, i)))


async def changes(migrated_db: Database) -> list[tuple[str, str]]:
    entries, _ = await list_entries(
        migrated_db, limit=100, offset=0, actor="system:assurance", object_type="interface"
    )
    ordered = sorted(entries, key=lambda e: e.id)
    return [(e.before["oper_state"], e.after["oper_state"]) for e in ordered]


async def test_polls_write_the_state_only_when_it_changes(
    inventory: Inventory, migrated_db: Database
) -> None:
    tracker = states(inventory)
    await tracker.sink([polled("up"), polled("up", interface="lo")])  # lo: not in the inventory
    await tracker.sink([polled("up")])
    await tracker.sink([polled("up"), polled("lowerLayerDown")])  # the batch's last counts
    assert inventory.graph.interface("r1", "eth1").oper_state == OperState.DOWN
    assert await changes(migrated_db) == [("unknown", "up"), ("up", "down")]
    assert tracker.written == 2


async def test_link_traps_set_the_state_of_the_interface_they_name(
    inventory: Inventory, migrated_db: Database
) -> None:
    tracker = states(inventory)
    await tracker.sink([trap("linkDown", {"ifIndex.2": 2, "ifOperStatus.2": 2})])
    assert inventory.graph.interface("r1", "eth1").oper_state == OperState.DOWN
    await tracker.sink([trap("linkUp")])  # no ifOperStatus varbind: the trap's name says it
    assert inventory.graph.interface("r1", "eth1").oper_state == OperState.UP
    await tracker.sink([trap("coldStart"), trap("linkDown", {"ifIndex.9": 9})])
    assert await changes(migrated_db) == [("unknown", "down"), ("down", "up"), ("up", "down")]


async def test_a_trap_for_an_unknown_ifindex_changes_nothing(inventory: Inventory) -> None:
    tracker = OperStates(inventory, interface_name=lambda d, i: None)
    await tracker.sink([trap("linkDown")])
    assert inventory.graph.interface("r1", "eth1").oper_state == OperState.UNKNOWN


def test_observed_statuses_map_to_inventory_states() -> None:
    assert oper_state("up") == oper_state("UP") == oper_state(1) == OperState.UP
    assert oper_state("LOWER_LAYER_DOWN") == oper_state("notPresent") == OperState.DOWN
    assert oper_state("unknown") == OperState.UNKNOWN
    assert oper_state("") is None and oper_state(None) is None and oper_state(True) is None


async def test_a_poll_that_sees_nothing_new_does_not_ask_the_inventory(
    inventory: Inventory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inventory's lock (held for seconds by a placement) is taken only for a change."""
    calls: list[dict[tuple[str, str], OperState]] = []
    original = inventory.set_oper_states

    async def counted(observed: dict[tuple[str, str], OperState], *, actor: str) -> list[Interface]:
        calls.append(observed)
        return await original(observed, actor=actor)

    monkeypatch.setattr(inventory, "set_oper_states", counted)
    tracker = states(inventory)
    await tracker.sink([polled("up")])
    await tracker.sink([polled("up"), polled("down", interface="lo")])  # lo: not modelled
    assert len(calls) == 1

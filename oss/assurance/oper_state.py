"""Interface operational state in the inventory, from what the collectors observe: the
oper-status of polled (SNMP) and streamed (gNMI) "interface" events, and linkDown/linkUp traps.

    states = OperStates(inventory, interface_name=lambda device, ifindex: ...)
    await states.sink(events)       # a sink of the assurance pipeline

Only changes are written: a batch's last observation per interface is compared with the
inventory, and the interfaces whose state differs are written in one transaction (audited as
`system:assurance`). A poll repeating the known state writes nothing. Interfaces the inventory
does not model (a device's loopbacks, say) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from drivers.snmp_mib import IF_STATUS
from oss.errors import NotFound
from oss.events import INTERFACE, Event
from oss.inventory import Inventory
from topology.model import OperState

ACTOR = "system:assurance"
TRAP = "snmp.trap"
# IF-MIB's linkDown/linkUp (RFC 2863), as the trap receiver names them.
LINK_TRAPS = {"linkDown": OperState.DOWN, "linkUp": OperState.UP}
# ifOperStatus (IF-MIB) and OpenConfig's oper-status, lower-cased without "_": anything but up
# or unknown carries no traffic.
_UP, _UNKNOWN = "up", "unknown"


def oper_state(status: object) -> OperState | None:
    """An observed oper-status ("up", "lowerLayerDown", "LOWER_LAYER_DOWN", 2) as the
    inventory's state; None when it is no status."""
    if isinstance(status, int) and not isinstance(status, bool):
        status = IF_STATUS.get(status)
    if not isinstance(status, str) or not status:
        return None
    plain = status.replace("_", "").lower()
    if plain == _UP:
        return OperState.UP
    if plain == _UNKNOWN:
        return OperState.UNKNOWN
    return OperState.DOWN


class OperStates:
    def __init__(
        self, inventory: Inventory, *, interface_name: Callable[[str, str], str | None]
    ) -> None:
        self.inventory = inventory
        self._interface_name = interface_name  # (device, ifIndex) -> name, learned from polls
        self.written = 0  # interfaces whose state was written, since start

    async def sink(self, events: list[Event]) -> None:
        observed = self.observed(events)
        # Checked here first, without the inventory's lock (a placement can hold it for
        # seconds): a poll that sees nothing new waits for nothing.
        if any(self._differs(key, state) for key, state in observed.items()):
            changed = await self.inventory.set_oper_states(observed, actor=ACTOR)
            self.written += len(changed)

    def _differs(self, key: tuple[str, str], state: OperState) -> bool:
        try:
            return self.inventory.graph.interface(*key).oper_state != state
        except NotFound:  # not modelled in the inventory
            return False

    def observed(self, events: Iterable[Event]) -> dict[tuple[str, str], OperState]:
        """The last state seen per (device, interface) in these events."""
        found: dict[tuple[str, str], OperState] = {}
        for event in events:
            seen = self._seen(event)
            if seen is not None:
                device, interface, state = seen
                found[(device, interface)] = state
        return found

    def _seen(self, event: Event) -> tuple[str, str, OperState] | None:
        device = event.tags.get("device")
        if device is None:
            return None
        if event.name == INTERFACE:
            interface = event.tags.get("interface")
            state = oper_state(event.values.get("oper-status"))
        elif event.name == TRAP and event.tags.get("trap") in LINK_TRAPS:
            index = event.tags.get("ifindex")
            interface = self._interface_name(device, index) if index else None
            state = oper_state(event.values.get(f"ifOperStatus.{index}"))
            state = state or LINK_TRAPS[event.tags["trap"]]
        else:
            return None
        if not interface or state is None:
            return None
        return device, interface, state

"""The "alarms" output: the fault rules on every collected event list, and their signals to the
alarm manager in one transaction per list (a trap storm commits once per batch, not per trap).

It is an output like the others (oss/outputs/registry.py): registered here, built when
assurance is enabled, with the alarm manager the composition root hands over. The rules keep
what they last saw of each device; the pipeline says when a device leaves the inventory
(`device_removed`), so a device added again gets its alarms afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from oss.errors import Fenced
from oss.events import Event, InterfaceNames
from oss.faults.alarms import AlarmManager
from oss.faults.rules import Rules
from oss.outputs.registry import OutputContext, register_output

log = logging.getLogger(__name__)


class AlarmOutput:
    name = "alarms"

    def __init__(self, rules: Rules, alarms: AlarmManager, names: InterfaceNames) -> None:
        self.rules = rules
        self.alarms = alarms
        self._names = names  # what the rules name a trap's interface with

    async def offer(self, events: Sequence[Event]) -> None:
        self._names.learn(events)
        signals = [signal for event in events for signal in self.rules.signals(event)]
        if not signals:
            return
        refused_under = self.alarms.db.member_fence
        try:
            await self.alarms.signals(signals)
        except Fenced:
            # This instance lost its membership (a pause, a partition) and the batch was refused
            # whole. What it received is still real (traps are processed where they arrive):
            # once it is a member again, under a new token, the batch goes in.
            if not await self.alarms.db.member_again(refused_under):
                raise
            log.warning("alarms: a batch refused under a stale membership, applied after rejoin")
            await self.alarms.signals(signals)

    def device_removed(self, device: str) -> None:
        self.rules.forget_device(device)


def alarm_output(thresholds: Iterable[Mapping[str, Any]], alarms: AlarmManager) -> AlarmOutput:
    """The rules with these thresholds (TCA), feeding `alarms`."""
    names = InterfaceNames()
    rules = Rules(thresholds, interface_name=names)
    return AlarmOutput(rules, alarms, names)


@register_output("alarms")
def _alarms(context: OutputContext) -> AlarmOutput | None:
    settings = context.settings.assurance
    if not settings.enabled:
        return None
    return alarm_output(settings.thresholds, context.need(AlarmManager))

"""gNMI pushes configuration: one atomic Set, undone by Setting the pre-image back; the
payloads are JSON (`<stem>.gnmi.json.j2`)."""

from __future__ import annotations

from typing import Any

from drivers.gnmi import GnmiDriver, GnmiSession
from oss.errors import RpcError
from oss.provisioning.adapters import Reached, no_state_checks, restore_of
from oss.provisioning.leaves import (
    gnmi_intent,
    gnmi_payload,
    gnmi_updates,
    json_tree_leaves,
    scope_of,
)
from oss.provisioning.plan import DevicePlan
from oss.provisioning.protocols.registry import ConfigProtocol, register_protocol


class GnmiAdapter:
    def __init__(self, session: GnmiSession) -> None:
        self.session = session

    async def check(self, plan: DevicePlan) -> None:
        no_state_checks(plan)

    async def read(self, plan: DevicePlan) -> dict[str, Any]:
        leaves: dict[str, Any] = {}
        for root in scope_of(plan.intent, plan.owned):
            try:
                values = await self.session.get([root], datatype="config")
            except RpcError as exc:
                if "NOT_FOUND" in exc.device_error:
                    continue  # nothing configured under it yet
                raise
            for path, value in values.items():
                base = path.strip("/") or root
                leaves.update(json_tree_leaves(base, value, plan.platform.model, typed=True))
        return leaves

    async def prepare(self, plan: DevicePlan) -> None:
        """Nothing to stage: a gNMI Set is atomic on the device; the pre-image is read."""

    async def commit(self, plan: DevicePlan, persist_id: str) -> None:
        updates, deletes = gnmi_updates(plan.payload)
        await self.session.set(delete=deletes, update=updates)

    async def confirm(self, plan: DevicePlan, persist_id: str) -> None:
        """A Set needs no confirmation."""

    async def undo(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        if reached in ("committed", "confirmed"):
            restore = restore_of(plan, await self.read(plan))
            if restore.leaves or restore.removals:
                await self.session.set(
                    delete=list(restore.removals), update=list(restore.leaves.items())
                )

    recover = undo


register_protocol(
    ConfigProtocol(
        "gnmi",
        GnmiDriver,
        GnmiAdapter,
        "gnmi.json",
        parse=lambda payload, platform: gnmi_intent(payload, platform.model),
        write=lambda intent, platform: gnmi_payload(intent),
    )
)

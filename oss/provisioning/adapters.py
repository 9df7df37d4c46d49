"""The transaction steps on one device, per configuration protocol.

Every adapter reads the running configuration as leaves and knows how to prepare, commit,
confirm and undo a DevicePlan on an open session:

| step    | NETCONF                               | gNMI              | CLI                    |
|---------|---------------------------------------|-------------------|------------------------|
| prepare | lock candidate, edit-config, validate | -                 | -                      |
| commit  | confirmed commit with a persist id    | one atomic Set    | the config lines       |
| confirm | confirming commit, unlock             | -                 | -                      |
| undo    | discard / cancel-commit / restore     | Set the pre-image | lines to the pre-image |

The pre-image is the device's running configuration within the change's scope, read before
anything is touched and journaled, so a restarted daemon can still undo the change.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

from drivers.cli import CliSession
from drivers.gnmi import GnmiSession
from drivers.netconf import NetconfSession
from oss.errors import DriverError, RpcError
from oss.provisioning.leaves import (
    Intent,
    Leaves,
    cli_lines,
    cli_render,
    cli_running,
    gnmi_updates,
    json_tree_leaves,
    leaves_to_xml,
    restore_intent,
    scope_of,
    text,
    xml_intent,
)
from oss.provisioning.plan import DevicePlan

log = logging.getLogger(__name__)

# How far a device got; undo depends on it.
Reached = Literal["none", "prepared", "committed", "confirmed"]


class Adapter(Protocol):
    async def read(self, plan: DevicePlan) -> dict[str, Any]:
        """Running configuration leaves in the plan's scope (typed where the protocol is)."""
        ...

    async def prepare(self, plan: DevicePlan) -> None: ...

    async def commit(self, plan: DevicePlan, persist_id: str) -> None: ...

    async def confirm(self, plan: DevicePlan, persist_id: str) -> None: ...

    async def undo(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None: ...

    async def recover(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        """Undo from a fresh session (the transaction's own session broke or died)."""
        ...


def as_text(leaves: dict[str, Any]) -> Leaves:
    return {path: text(value) for path, value in leaves.items()}


def restore_of(plan: DevicePlan, current: dict[str, Any]) -> Intent:
    if plan.pre_image is None:
        raise DriverError(
            "no pre-image was read; cannot restore", device=plan.device, protocol=plan.protocol
        )
    return restore_intent(plan.pre_image, current, plan.intent, plan.owned)


class NetconfAdapter:
    def __init__(self, session: NetconfSession) -> None:
        self.session = session

    async def read(self, plan: DevicePlan) -> dict[str, Any]:
        leaves: Leaves = {}
        for root in scope_of(plan.intent, plan.owned):
            ns = plan.platform.model.namespaces.get(root)
            selector = f'<{root} xmlns="{ns}"/>' if ns else f"<{root}/>"
            data = await self.session.get_config("running", filter=selector)
            leaves.update(xml_intent(data, plan.platform.model).leaves)
        return dict(leaves)

    async def prepare(self, plan: DevicePlan) -> None:
        options = plan.platform.netconf
        await self.session.lock("candidate")
        # Holding the lock, whatever sits in the candidate is a leftover nobody can commit;
        # it must not ride along with this change.
        await self.session.discard_changes()
        await self.session.edit_config(plan.payload, target="candidate", operation="merge")
        if options.validate_config:
            await self.session.validate("candidate")

    async def commit(self, plan: DevicePlan, persist_id: str) -> None:
        await self.session.commit(
            confirmed=True, timeout_s=plan.platform.confirm_timeout_s, persist=persist_id
        )

    async def confirm(self, plan: DevicePlan, persist_id: str) -> None:
        await self.session.commit(persist_id=persist_id)
        await self._unlock()

    async def undo(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        if reached == "committed":
            try:
                await self.session.cancel_commit(persist_id=persist_id)
            except RpcError as exc:
                # the commit itself failed: there is nothing to cancel
                log.info("%s: cancel-commit: %s", plan.device, exc.device_error)
        elif reached == "confirmed":
            # Already confirmed: put the pre-image back with a new (plain) commit.
            await self.session.discard_changes()
            restore = restore_of(plan, await self.read(plan))
            if restore.leaves or restore.removals:
                xml = leaves_to_xml(restore, plan.platform.model)
                await self.session.edit_config(xml, target="candidate", operation="merge")
                await self.session.commit()
        await self.session.discard_changes()
        await self._unlock()

    async def recover(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        """Undo from a fresh session after a restart: the old session, its lock and its
        candidate edits died with the daemon; a pending confirmed commit is cancelled by its
        persist id (a device that already reverted it says so, which is fine)."""
        if reached in ("committed", "confirmed"):
            try:
                await self.session.cancel_commit(persist_id=persist_id)
            except RpcError as exc:
                log.info("%s: no confirmed commit to cancel (%s)", plan.device, exc.device_error)
        if reached == "confirmed":
            await self.undo(plan, "confirmed", persist_id)
        else:
            await self.session.discard_changes()

    async def _unlock(self) -> None:
        try:
            await self.session.unlock("candidate")
        except RpcError as exc:
            # A fresh session (recovery) never held it; the old lock died with its session.
            log.debug("unlock: %s", exc.device_error)


class GnmiAdapter:
    def __init__(self, session: GnmiSession) -> None:
        self.session = session

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


class CliAdapter:
    def __init__(self, session: CliSession) -> None:
        self.session = session

    async def read(self, plan: DevicePlan) -> dict[str, Any]:
        output = await self.session.get_config("running")
        return dict(cli_running(output, plan.platform.cli))

    async def prepare(self, plan: DevicePlan) -> None:
        """The rollback lines follow from the pre-image (journaled): nothing to send yet."""

    async def commit(self, plan: DevicePlan, persist_id: str) -> None:
        await self._send(plan, cli_lines(plan.payload))

    async def confirm(self, plan: DevicePlan, persist_id: str) -> None:
        """CLI lines take effect as they are sent."""

    async def undo(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        # A failed commit may have applied some lines: restore whenever a commit was tried.
        if reached in ("committed", "confirmed"):
            restore = restore_of(plan, await self.read(plan))
            await self._send(plan, cli_render(restore, plan.platform.cli))

    recover = undo

    async def _send(self, plan: DevicePlan, lines: list[str]) -> None:
        options = plan.platform.cli
        if lines:
            await self.session.send_config_set(lines, error_pattern=options.error_pattern)
        if options.commit:
            await self.session.commit()

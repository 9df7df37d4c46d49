"""NETCONF pushes configuration: a candidate locked, edited and validated, then a confirmed
commit with a persist id (the device reverts it by itself unless confirmed); the payloads are
XML (`<stem>.xml.j2`)."""

from __future__ import annotations

import logging
from typing import Any

from drivers.netconf import NetconfDriver, NetconfSession
from oss.errors import RpcError
from oss.provisioning.adapters import Reached, no_state_checks, restore_of
from oss.provisioning.leaves import element_intent, leaves_to_xml, subtree_filters, xml_intent
from oss.provisioning.plan import DevicePlan
from oss.provisioning.protocols.registry import ConfigProtocol, register_protocol

log = logging.getLogger(__name__)


def read_filters(plan: DevicePlan) -> list[str]:
    """The subtree filters of a read of `plan`'s scope (every one in the same get-config)."""
    return subtree_filters(plan.intent, plan.owned, plan.platform.model)


class NetconfAdapter:
    def __init__(self, session: NetconfSession) -> None:
        self.session = session
        self._filters: tuple[DevicePlan, list[str]] | None = None  # the last plan's, for verify

    async def check(self, plan: DevicePlan) -> None:
        no_state_checks(plan)

    async def read(self, plan: DevicePlan) -> dict[str, Any]:
        """One get-config whose filter selects just the change's scope (`read_filters`); the
        reply's tree is read as it comes, not written out and parsed again."""
        if self._filters is None or self._filters[0] is not plan:
            self._filters = (plan, read_filters(plan))
        filters = self._filters[1]
        if not filters:
            return {}
        data = await self.session.get_config_data("running", filter=filters)
        if data is None:
            return {}
        return dict(element_intent(data, plan.platform.model).leaves)

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


register_protocol(
    ConfigProtocol(
        "netconf",
        NetconfDriver,
        NetconfAdapter,
        "xml",
        parse=lambda payload, platform: xml_intent(payload, platform.model),
        write=lambda intent, platform: leaves_to_xml(intent, platform.model),
        reverts_unconfirmed=True,
    )
)

"""The transaction steps on one device: the contract every configuration protocol's adapter
meets (its class lives in the protocol's module, oss/provisioning/protocols/<name>.py) and
the helpers they share.

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

from typing import Any, Literal, Protocol

from oss.errors import DriverError, Unsupported
from oss.provisioning.leaves import Intent, Leaves, restore_intent, text
from oss.provisioning.plan import DevicePlan

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

    async def check(self, plan: DevicePlan) -> None:
        """The plan's state checks (oss.provisioning.state_checks), each within its bound."""
        ...


def no_state_checks(plan: DevicePlan) -> None:
    """For a protocol that cannot run a device's commands: a plan with checks is refused."""
    if plan.checks:
        raise Unsupported(
            "state checks need a protocol that runs commands (the CLI)",
            device=plan.device,
            protocol=plan.protocol,
        )


def as_text(leaves: dict[str, Any]) -> Leaves:
    return {path: text(value) for path, value in leaves.items()}


def restore_of(plan: DevicePlan, current: dict[str, Any]) -> Intent:
    if plan.pre_image is None:
        raise DriverError(
            "no pre-image was read; cannot restore", device=plan.device, protocol=plan.protocol
        )
    return restore_intent(plan.pre_image, current, plan.intent, plan.owned)

"""The CLI pushes configuration: the config lines as sent (committed where the platform
commits), undone by the lines back to the pre-image; the payloads are lines (`<stem>.cli.j2`).
Removals of entries the device does not hold are not sent (a device may refuse to remove what
is not there: FRR's `no network X`), and a platform with a `save_command` persists the running
configuration once a change is confirmed."""

from __future__ import annotations

from typing import Any

from drivers.cli import CliDriver, CliSession
from oss.provisioning.adapters import Reached, restore_of
from oss.provisioning.leaves import Intent, cli_intent, cli_lines, cli_render, cli_running, under
from oss.provisioning.plan import DevicePlan
from oss.provisioning.protocols.registry import ConfigProtocol, register_protocol
from oss.provisioning.state_checks import run_checks


class CliAdapter:
    def __init__(self, session: CliSession) -> None:
        self.session = session

    async def read(self, plan: DevicePlan) -> dict[str, Any]:
        output = await self.session.get_config("running")
        return dict(cli_running(output, plan.platform.cli))

    async def prepare(self, plan: DevicePlan) -> None:
        """The rollback lines follow from the pre-image (journaled): nothing to send yet."""

    async def commit(self, plan: DevicePlan, persist_id: str) -> None:
        await self._send(plan, _lines_for(plan))

    async def confirm(self, plan: DevicePlan, persist_id: str) -> None:
        """CLI lines take effect as they are sent; a platform that keeps a startup
        configuration saves the running one."""
        command = plan.platform.cli.save_command
        if command:
            await self.session.send_command(command)

    async def undo(self, plan: DevicePlan, reached: Reached, persist_id: str) -> None:
        # A failed commit may have applied some lines: restore whenever a commit was tried.
        if reached in ("committed", "confirmed"):
            restore = restore_of(plan, await self.read(plan))
            await self._send(plan, cli_render(restore, plan.platform.cli))

    recover = undo

    async def check(self, plan: DevicePlan) -> None:
        async def command(text: str) -> str:
            return str(await self.session.send_command(text))

        await run_checks(plan.checks, command, device=plan.device, protocol=plan.protocol)

    async def _send(self, plan: DevicePlan, lines: list[str]) -> None:
        options = plan.platform.cli
        if lines:
            await self.session.send_config_set(lines, error_pattern=options.error_pattern)
        if options.commit:
            await self.session.commit()


def _lines_for(plan: DevicePlan) -> list[str]:
    """The payload's lines, or (when it removes entries the pre-image does not hold) the
    intent written again without those removals."""
    removals = plan.intent.removals
    held = plan.pre_image or {}
    present = tuple(r for r in removals if any(under(path, r) for path in held))
    if plan.pre_image is None or present == removals:
        return cli_lines(plan.payload)
    return cli_render(Intent(plan.intent.leaves, present), plan.platform.cli)


register_protocol(
    ConfigProtocol(
        "cli",
        CliDriver,
        CliAdapter,
        "cli",
        parse=lambda payload, platform: cli_intent(payload, platform.cli),
        write=lambda intent, platform: "\n".join(cli_render(intent, platform.cli)),
    )
)

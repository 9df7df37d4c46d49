"""Reaching a device for configuration: its inventory record, its platform's config protocol,
a driver session on it, wrapped in that protocol's transaction adapter."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import ConfigDriver, Target
from drivers.platforms import Protocol as PlatformProtocol
from drivers.platforms import load_platform
from oss.provisioning.adapters import Adapter
from oss.provisioning.protocols import build_drivers, config_protocol
from topology.model import Device
from topology.targets import Network, target_for

FileSignature = tuple[int, int, int, int, int]


def file_signature(credentials_ref: str | None) -> FileSignature | None:
    """What changes when a `file:` credentials reference's file is edited, replaced or
    chmod-ed (inode, device, size, mode, mtime); None for any other reference, or a file that
    cannot be looked at (read again, so the reading reports the problem). One stat: the
    file's page is cached, and a transaction asks for each of its devices."""
    if credentials_ref is None or not credentials_ref.startswith("file:"):
        return None
    try:
        info = os.stat(credentials_ref.removeprefix("file:"))
    except OSError:
        return None
    return (info.st_ino, info.st_dev, info.st_size, info.st_mode, info.st_mtime_ns)


@dataclass
class DeviceAccess:
    """A driver per configuration protocol (`protocols.build_drivers`), shared by every
    transaction."""

    device_of: Callable[[str], Device]
    allowed: Sequence[Network] | None = None
    credentials_dirs: Sequence[Path] | None = None  # file: references must lie in these
    ports: Mapping[str, int] = field(default_factory=dict)  # per-protocol port overrides
    timeout_s: float = 30.0
    drivers: Mapping[str, ConfigDriver[Any]] = field(default_factory=build_drivers)

    # the last target of each device, while its device record and credentials file are the same
    _targets: dict[str, tuple[Device, FileSignature | None, Target]] = field(
        default_factory=dict, init=False, repr=False
    )

    @asynccontextmanager
    async def adapter(self, name: str) -> AsyncIterator[Adapter]:
        device = self.device_of(name)
        protocol = config_protocol(load_platform(device.platform))
        target = await self._target(device, protocol.name)
        async with self.drivers[protocol.name].connect(target) as session:
            yield protocol.adapter(session)

    async def _target(self, device: Device, protocol: PlatformProtocol) -> Target:
        """The device's target; built again (reading its credentials file, off the event loop)
        only when its inventory record or its credentials file changed since the last one:
        every transaction asks again for every device it touches."""
        signature = file_signature(device.credentials_ref)
        kept = self._targets.get(device.name)
        if (
            kept is not None
            and kept[0] == device
            and signature is not None
            and kept[1] == signature
        ):
            return kept[2]
        target = await asyncio.to_thread(
            target_for,
            device,
            protocol,
            port=self.ports.get(protocol),
            timeout_s=self.timeout_s,
            allowed=self.allowed,
            credentials_dirs=self.credentials_dirs,
        )
        self._targets[device.name] = (device, signature, target)
        return target

    async def close(self) -> None:
        for driver in self.drivers.values():
            await driver.close()

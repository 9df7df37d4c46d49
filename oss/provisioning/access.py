"""Reaching a device for configuration: its inventory record, its platform's config protocol,
a driver session on it, wrapped in that protocol's transaction adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import ConfigDriver
from drivers.platforms import load_platform
from oss.provisioning.adapters import Adapter
from oss.provisioning.protocols import build_drivers, config_protocol
from topology.model import Device
from topology.targets import Network, target_for


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

    @asynccontextmanager
    async def adapter(self, name: str) -> AsyncIterator[Adapter]:
        device = self.device_of(name)
        protocol = config_protocol(load_platform(device.platform))
        # target_for reads the credentials file: off the event loop
        target = await asyncio.to_thread(
            target_for,
            device,
            protocol.name,
            port=self.ports.get(protocol.name),
            timeout_s=self.timeout_s,
            allowed=self.allowed,
            credentials_dirs=self.credentials_dirs,
        )
        async with self.drivers[protocol.name].connect(target) as session:
            yield protocol.adapter(session)

    async def close(self) -> None:
        for driver in self.drivers.values():
            await driver.close()

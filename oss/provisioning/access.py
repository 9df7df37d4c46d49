"""Reaching a device for configuration: its inventory record, its platform's config protocol,
a driver session on it, wrapped in that protocol's transaction adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from drivers.cli import CliDriver
from drivers.gnmi import GnmiDriver
from drivers.netconf import NetconfDriver
from drivers.platforms import Protocol, load_platform
from oss.provisioning.adapters import Adapter, CliAdapter, GnmiAdapter, NetconfAdapter
from oss.provisioning.plan import config_protocol
from topology.model import Device
from topology.targets import Network, target_for


@dataclass
class DeviceAccess:
    """Drivers for the three configuration protocols, shared by every transaction."""

    device_of: Callable[[str], Device]
    allowed: Sequence[Network] | None = None
    credentials_dirs: Sequence[Path] | None = None  # file: references must lie in these
    ports: Mapping[str, int] = field(default_factory=dict)  # per-protocol port overrides
    timeout_s: float = 30.0
    netconf: NetconfDriver = field(default_factory=NetconfDriver)
    gnmi: GnmiDriver = field(default_factory=GnmiDriver)
    cli: CliDriver = field(default_factory=CliDriver)

    def protocol_of(self, device: str) -> Protocol:
        return config_protocol(load_platform(self.device_of(device).platform))

    @asynccontextmanager
    async def adapter(self, name: str) -> AsyncIterator[Adapter]:
        device = self.device_of(name)
        protocol = config_protocol(load_platform(device.platform))
        # target_for reads the credentials file: off the event loop
        target = await asyncio.to_thread(
            target_for,
            device,
            protocol,
            port=self.ports.get(protocol),
            timeout_s=self.timeout_s,
            allowed=self.allowed,
            credentials_dirs=self.credentials_dirs,
        )
        if protocol == "netconf":
            async with self.netconf.connect(target) as nc:
                yield NetconfAdapter(nc)
        elif protocol == "gnmi":
            async with self.gnmi.connect(target) as g:
                yield GnmiAdapter(g)
        else:
            async with self.cli.connect(target) as c:
                yield CliAdapter(c)

    async def close(self) -> None:
        await self.netconf.close()
        await self.gnmi.close()
        await self.cli.close()

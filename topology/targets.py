"""From an inventory device to a driver `Target`: address, the platform's port for the protocol,
resolved credentials, and the options the platform gives that protocol's driver. Here, not in
drivers/, because drivers take a target and know no inventory model.

An optional allow-list of networks keeps a daemon from talking to anything outside it (a lab
daemon sets 127.0.0.0/8, so no lab mistake ever leaves the machine).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path

from drivers.base import Target
from drivers.credentials import resolve_credentials
from drivers.platforms import Protocol, load_platform
from oss.errors import ConfigError
from topology.model import Device

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: Sequence[str]) -> list[Network]:
    try:
        return [ipaddress.ip_network(item, strict=False) for item in items]
    except ValueError as exc:
        raise ConfigError(f"allowed networks: {exc}") from None


def target_for(
    device: Device,
    protocol: Protocol,
    *,
    port: int | None = None,
    timeout_s: float = 30.0,
    allowed: Sequence[Network] | None = None,
    platforms_dir: Path | None = None,  # None: the configs folder in use
    credentials_dirs: Sequence[Path] | None = None,
) -> Target:
    if device.mgmt_address is None:
        raise ConfigError(f"device {device.name}: no management address in the inventory")
    address = ipaddress.ip_address(device.mgmt_address)
    if allowed is not None and not any(address in net for net in allowed):
        nets = ", ".join(str(n) for n in allowed)
        raise ConfigError(
            f"device {device.name}: {address} is outside the allowed networks ({nets})"
        )
    platform = load_platform(device.platform, platforms_dir)
    return Target(
        name=device.name,
        host=str(address),
        port=port if port is not None else platform.port(protocol),
        credentials=resolve_credentials(
            device.credentials_ref, device=device.name, allowed_dirs=credentials_dirs
        ),
        timeout_s=timeout_s,
        options={"platform": platform.name, **platform.driver_options(protocol)},
    )

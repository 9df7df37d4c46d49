"""DeviceAccess keeps each device's target while its inventory record and its credentials file
stay the same, and builds it again (reading the file) when either changes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from drivers.base import Target
from oss.errors import ConfigError
from oss.provisioning.access import DeviceAccess
from topology.model import Device
from topology.targets import parse_networks


class RecordingDriver:
    """A driver that lends a session that is just the target it was given."""

    def __init__(self) -> None:
        self.targets: list[Target] = []

    @asynccontextmanager
    async def connect(self, target: Target) -> AsyncIterator[Target]:
        self.targets.append(target)
        yield target

    async def close(self) -> None:
        return None


def credentials(path: Path, username: str) -> None:
    path.write_text(f"username: {username}\npassword: secret\n")
    path.chmod(0o600)


async def test_a_target_is_read_again_only_when_its_sources_change(tmp_path: Path) -> None:
    creds = tmp_path / "credentials.yaml"
    credentials(creds, "alice")
    devices = {
        "r1": Device(
            name="r1",
            platform="lab-sim",
            mgmt_address="127.0.0.1",
            credentials_ref=f"file:{creds}",
        )
    }
    driver = RecordingDriver()
    drivers: dict[str, Any] = {"netconf": driver}
    access = DeviceAccess(
        device_of=devices.__getitem__, allowed=parse_networks(["127.0.0.0/8"]), drivers=drivers
    )

    async def username() -> str | None:
        async with access.adapter("r1"):
            return driver.targets[-1].credentials.username

    assert await username() == "alice"
    first = driver.targets[-1]
    assert await username() == "alice"
    assert driver.targets[-1] is first  # the same file, the same device: kept

    credentials(creds, "bob")  # edited (size and mtime)
    assert await username() == "bob"
    os.utime(creds, ns=(1, 1))
    assert await username() == "bob"
    assert driver.targets[-1] is not first

    kept = driver.targets[-1]
    creds.chmod(0o644)  # a file others may read is refused again, not served from memory
    with pytest.raises(ConfigError, match="chmod 600"):
        await username()
    creds.chmod(0o600)

    devices["r1"] = devices["r1"].model_copy(update={"mgmt_address": "127.0.0.2"})
    assert await username() == "bob"
    assert driver.targets[-1] is not kept
    assert driver.targets[-1].host == "127.0.0.2"

"""What a long-running part of the daemon is, for the runtime that supervises it.

A *component* (the API server, the assurance pipeline, the NOC feed publisher, the usage
collector, ...) has a name, the shutdown stage it stops in, and `run(stop)`. Components import
this kernel module, never the runtime: `oss.app` builds them and hands them to `Runtime`.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Protocol

from oss.errors import ConfigError


class Stage(StrEnum):
    """Shutdown stages, in the order they stop."""

    INGRESS = "ingress"  # stop taking requests and events from outside
    WORKERS = "workers"  # collectors and background work finish or are cancelled


class Component(Protocol):
    """A long-running part of the daemon. `run` returns once `stop` is set."""

    name: str
    stage: Stage

    async def run(self, stop: asyncio.Event) -> None: ...


def cannot_listen(setting: str, host: str, port: int, transport: str, exc: OSError) -> ConfigError:
    """The one-line start-up error for a port the daemon cannot bind (busy, not local): names
    the setting, the address and the reason, and where to choose another."""
    env = "OSS_" + setting.upper().replace(".", "__")
    reason = exc.strerror or str(exc)
    return ConfigError(
        f"{setting}: cannot listen on {host}:{port} ({transport}): {reason}; "
        f"choose another with {env} or in the settings file"
    )

"""The project's error tree.

Every error the project raises on purpose derives from `OssError`; each class also inherits the
builtin it resembles, so callers that only know Python's builtins still catch it sensibly. The
REST layer maps these classes to RFC 9457 problem documents through `status` and `slug`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class OssError(Exception):
    """Root of every error the project raises on purpose."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def __str__(self) -> str:
        return self.message


class ConfigError(OssError, ValueError):
    """Settings could not be loaded; the message names the file, the key and the problem."""

    slug = "config-error"
    title = "Invalid configuration"


class NotFound(OssError, LookupError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(OssError, ValueError):
    """The change collides with what exists (duplicate name, object still in use)."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class InvalidInput(OssError, ValueError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class NoPath(OssError, LookupError):
    """The graph holds no path that satisfies the request."""

    status = 404
    slug = "no-path"
    title = "No path"


class Unauthorized(OssError, PermissionError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(OssError, PermissionError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class StorageError(OssError, RuntimeError):
    slug = "storage-error"
    title = "Storage error"


class Fenced(StorageError):
    """The database refused a write: the lease it was made under (its fencing token) is no
    longer current. The holder has lost it to a successor or let it expire (a pause, a
    partition); it must step down, never retry as the old holder."""

    status = 503
    slug = "lease-lost"
    title = "Cluster lease lost"


class NotReady(OssError, RuntimeError):
    status = 503
    slug = "not-ready"
    title = "Not ready"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as the input allows."""

    where: str  # "file.clab.yml:12" or "topology.links[3].endpoints[1]"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class TopologyFileError(InvalidInput):
    """A topology file was rejected as a whole; `problems` lists every reason with its line."""

    slug = "invalid-topology-file"
    title = "Invalid topology file"

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{filename}: rejected, nothing was written ({len(problems)} problem(s)):\n{lines}",
            problems=[{"where": p.where, "reason": p.reason} for p in problems],
        )
        self.filename = filename
        self.problems = problems


class DriverError(OssError, RuntimeError):
    """A device could not do what was asked. The message names the device and the protocol,
    never its credentials."""

    status = 502
    slug = "device-error"
    title = "Device error"

    def __init__(self, message: str, *, device: str, protocol: str, **extra: Any) -> None:
        super().__init__(
            f"{device} ({protocol}): {message}", device=device, protocol=protocol, **extra
        )
        self.device = device
        self.protocol = protocol


class ConnectError(DriverError, ConnectionError):
    """The device could not be reached, or the session broke."""

    slug = "device-unreachable"
    title = "Device unreachable"


class AuthError(DriverError, PermissionError):
    """The device refused our credentials or failed host-key verification."""

    slug = "device-auth-failed"
    title = "Device authentication failed"


class DeviceTimeout(DriverError, TimeoutError):
    status = 504
    slug = "device-timeout"
    title = "Device timeout"


class RpcError(DriverError):
    """The device answered with an error; `device_error` holds its own words."""

    slug = "device-rpc-error"
    title = "Device refused the operation"

    def __init__(
        self, message: str, *, device: str, protocol: str, device_error: str, **extra: Any
    ) -> None:
        super().__init__(
            f"{message}: {device_error}",
            device=device,
            protocol=protocol,
            device_error=device_error,
            **extra,
        )
        self.device_error = device_error


class Unsupported(DriverError):
    """The device (or its platform definition) lacks the capability asked for."""

    slug = "device-unsupported"
    title = "Not supported by the device"

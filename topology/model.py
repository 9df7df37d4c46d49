"""The typed inventory model: sites, devices, interfaces and links.

These are immutable values. The live graph (`topology.graph`) holds them; the database
(`oss.store`) persists them; the REST API shows them. A device carries a *reference* to its
credentials (`env:R1_SECRET`, `file:/etc/oss/r1.yaml`), never the secret itself.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from oss.bounds import LABEL_MAX, Int64, Label, PositiveInt64, Text

# Names appear in paths, CLI arguments and containerlab files: keep them plain.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$"
# Interface names keep vendor punctuation (ge-0/0/0, Ethernet1/1.100, ethernet-1/1).
IFNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$"
CREDENTIALS_REF_PATTERN = r"^(env|file|vault):\S+$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
InterfaceName = Annotated[str, Field(pattern=IFNAME_PATTERN)]


def _plain_address(value: str | None) -> str | None:
    if value is None:
        return None
    return str(ipaddress.ip_address(value))


ManagementAddress = Annotated[str | None, AfterValidator(_plain_address)]


class DeviceState(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    DECOMMISSIONED = "decommissioned"


class AdminState(StrEnum):
    UP = "up"
    DOWN = "down"


class OperState(StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


class LinkState(StrEnum):
    UP = "up"
    DOWN = "down"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Site(_Value):
    name: Name
    description: Text = ""


class Device(_Value):
    name: Name
    role: Name = "router"
    platform: Name = "linux"
    site: Name | None = None
    kind: Label | None = Field(
        default=None, description="containerlab kind, when it differs from platform"
    )
    image: Label | None = None
    mgmt_address: ManagementAddress = None
    credentials_ref: str | None = Field(
        default=None,
        pattern=CREDENTIALS_REF_PATTERN,
        max_length=LABEL_MAX,
        description="where the secret lives (env:VAR, file:/path, vault:path); never the secret",
    )
    state: DeviceState = DeviceState.ACTIVE


class Interface(_Value):
    device: Name
    name: InterfaceName
    speed_bps: Int64 | None = None
    admin_state: AdminState = AdminState.UP
    oper_state: OperState = OperState.UNKNOWN
    description: Text = ""


class Endpoint(_Value):
    device: Name
    interface: InterfaceName

    def __str__(self) -> str:
        return f"{self.device}:{self.interface}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """`r1:eth1` -> Endpoint; the interface part may itself hold colons or slashes."""
        device, sep, interface = text.partition(":")
        if not sep or not device or not interface:
            raise ValueError(f"endpoint {text!r} is not of the form 'device:interface'")
        return cls(device=device, interface=interface)


class Link(_Value):
    id: Int64 | None = None
    a: Endpoint
    b: Endpoint
    capacity_bps: PositiveInt64 = 10_000_000_000
    latency_us: Int64 = 100
    state: LinkState = LinkState.UP

    @model_validator(mode="after")
    def _distinct_ends(self) -> Link:
        if self.a == self.b:
            raise ValueError(f"link ends must differ, both are {self.a}")
        return self

    def ends(self) -> tuple[Endpoint, Endpoint]:
        return (self.a, self.b)

    def other_end(self, device: str) -> Endpoint:
        return self.b if self.a.device == device else self.a


_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_RATE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_TIME_UNITS_US = {"": 1, "us": 1, "µs": 1, "ms": 1000, "s": 1_000_000}


def parse_rate(value: int | float | str) -> int:
    """`10G`, `100M`, `2.5Gbps`, 400000000 -> bit/s."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    match = _UNIT.match(str(value))
    unit = match.group(2).lower().removesuffix("bps").removesuffix("bit/s") if match else None
    if not match or unit not in _RATE_UNITS:
        raise ValueError(f"{value!r} is not a rate (examples: 10G, 100M, 400000000)")
    return int(float(match.group(1)) * _RATE_UNITS[unit])


def parse_latency_us(value: int | float | str) -> int:
    """`500us`, `2ms`, `1.5ms`, 200 -> microseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    match = _UNIT.match(str(value))
    unit = match.group(2).lower() if match else None
    if not match or unit not in _TIME_UNITS_US:
        raise ValueError(f"{value!r} is not a latency (examples: 500us, 2ms, 200)")
    return int(float(match.group(1)) * _TIME_UNITS_US[unit])

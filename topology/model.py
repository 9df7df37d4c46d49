"""The typed inventory model: sites, devices, interfaces and links.

These are immutable values. The live graph (`topology.graph`) holds them; the database
(`oss.store`) persists them; the REST API shows them. A device carries a *reference* to its
credentials (`env:R1_SECRET`, `file:/etc/oss/r1.yaml`), never the secret itself.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from oss.bounds import LABEL_MAX, Int64, Label, PositiveInt64, Text

# The quantity parsers live in a module without pydantic (the CLI uses them); re-exported here.
from topology.units import parse_latency_us as parse_latency_us
from topology.units import parse_rate as parse_rate

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
    # The address that answers for the whole device (a loopback, the router-id): what active
    # probes measure to; absent, they measure to mgmt_address.
    loopback: ManagementAddress = None
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

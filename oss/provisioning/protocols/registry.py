"""The registry of configuration protocols and what a protocol registers (a protocol module
imports this; the lookups in the package's __init__ read it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from drivers.base import ConfigDriver
from drivers.platforms import Platform
from drivers.platforms import Protocol as ProtocolName
from oss.plugins import Registry
from oss.provisioning.adapters import Adapter
from oss.provisioning.leaves import Intent

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class DriverFactory(Protocol[S_co]):
    """A driver class: `max_workers` bounds its worker threads."""

    def __call__(self, *, max_workers: int) -> ConfigDriver[S_co]: ...


@dataclass(frozen=True)
class ConfigProtocol(Generic[S]):
    name: ProtocolName  # as platforms name it in `config_protocol`
    driver: DriverFactory[S]
    adapter: Callable[[S], Adapter]  # an open session -> its transaction steps
    template_kind: str  # configs/templates/<platform>/<stem>.<template_kind>.j2
    parse: Callable[[str, Platform], Intent]  # a rendered payload (or a device reply) as leaves
    write: Callable[[Intent, Platform], str]  # leaves as a payload: the inverse of parse
    # An unconfirmed commit reverts on the device by itself (a NETCONF confirmed commit's
    # timer), so a device unreachable for undo is reverting, not stuck.
    reverts_unconfirmed: bool = False


PROTOCOLS: Registry[ConfigProtocol[Any]] = Registry("configuration protocol")


def register_protocol(protocol: ConfigProtocol[S]) -> ConfigProtocol[S]:
    """Register `protocol` under its name (a protocol module's last statement)."""
    PROTOCOLS.add(protocol.name, protocol)
    return protocol

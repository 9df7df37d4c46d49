"""The configuration protocols, in one registry. Each protocol registers together its name, its
driver, its adapter (the transaction steps on the driver's session), its template kind, how its
payloads read as leaves and are written from them, and what it can do. Provisioning looks a
protocol up here (by the platform's `config_protocol`); nothing else branches on its name.

Adding a protocol (RESTCONF, say) is its driver module in drivers/ (`connect(target)` lending a
session, `close()`), its adapter class in `adapters.py`, one `ConfigProtocol(...)` entry in
PROTOCOLS below, its name in `drivers.platforms.Protocol` (the platform files' schema), and its
templates, `configs/templates/<platform>/<stem>.<template_kind>.j2`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from drivers.base import ConfigDriver
from drivers.cli import CliDriver
from drivers.gnmi import GnmiDriver
from drivers.netconf import NetconfDriver
from drivers.platforms import Platform
from drivers.platforms import Protocol as ProtocolName
from oss.errors import ConfigError
from oss.provisioning.adapters import Adapter, CliAdapter, GnmiAdapter, NetconfAdapter
from oss.provisioning.leaves import (
    Intent,
    cli_intent,
    cli_render,
    gnmi_intent,
    gnmi_payload,
    leaves_to_xml,
    xml_intent,
)
from oss.provisioning.plan import DevicePlan, Mode
from oss.provisioning.render import Renderer

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


PROTOCOLS: Mapping[str, ConfigProtocol[Any]] = {
    p.name: p
    for p in (
        ConfigProtocol(
            "netconf",
            NetconfDriver,
            NetconfAdapter,
            "xml",
            parse=lambda payload, platform: xml_intent(payload, platform.model),
            write=lambda intent, platform: leaves_to_xml(intent, platform.model),
            reverts_unconfirmed=True,
        ),
        ConfigProtocol(
            "gnmi",
            GnmiDriver,
            GnmiAdapter,
            "gnmi.json",
            parse=lambda payload, platform: gnmi_intent(payload, platform.model),
            write=lambda intent, platform: gnmi_payload(intent),
        ),
        ConfigProtocol(
            "cli",
            CliDriver,
            CliAdapter,
            "cli",
            parse=lambda payload, platform: cli_intent(payload, platform.cli),
            write=lambda intent, platform: "\n".join(cli_render(intent, platform.cli)),
        ),
    )
}


def config_protocol(platform: Platform) -> ConfigProtocol[Any]:
    """The protocol that pushes the platform's configuration."""
    protocol = PROTOCOLS.get(platform.config_protocol or "")
    if protocol is None:
        raise ConfigError(f"platform {platform.name}: no protocol pushes configuration")
    return protocol


def template_kind(protocol: str) -> str:
    """The kind of template that renders configuration for `protocol`."""
    try:
        return PROTOCOLS[protocol].template_kind
    except KeyError:
        raise ConfigError(f"no template kind renders configuration for {protocol}") from None


def parse_payload(platform: Platform, payload: str) -> Intent:
    """The payload as leaves and removals, read by the platform's config protocol."""
    return config_protocol(platform).parse(payload, platform)


def build_drivers(max_workers: int = 16) -> dict[str, ConfigDriver[Any]]:
    """One driver per configuration protocol, each with `max_workers` worker threads."""
    return {name: p.driver(max_workers=max_workers) for name, p in PROTOCOLS.items()}


def render_device(
    renderer: Renderer,
    platform: Platform,
    template: str,
    context: dict[str, Any],
    *,
    mode: Mode,
    device: str,
) -> DevicePlan:
    """Render a device's payload for `mode` with `template` (relative to configs/templates,
    see ServiceType.template); the delete rendering also says what is owned."""
    payload = renderer.render(template, {**context, "mode": mode})
    owned_payload = (
        payload if mode == "delete" else renderer.render(template, {**context, "mode": "delete"})
    )
    owned = parse_payload(platform, owned_payload).removals
    intent = parse_payload(platform, payload)
    return DevicePlan(device=device, platform=platform, payload=payload, intent=intent, owned=owned)

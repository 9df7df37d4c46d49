"""The configuration protocols, in one registry. Each protocol registers together its name, its
driver, its adapter (the transaction steps on the driver's session), its template kind, how its
payloads read as leaves and are written from them, and what it can do. Provisioning looks a
protocol up here (by the platform's `config_protocol`); nothing else branches on its name.

A protocol is one module in this package plus its registration: netconf.py, gnmi.py and cli.py
each hold their adapter class and end with `register_protocol(ConfigProtocol(...))`;
PROTOCOL_MODULES below imports them, so whoever looks a protocol up finds them registered.
The registry itself (ConfigProtocol, register_protocol) sits in registry.py, which the protocol
modules import, so no module imports this one back.

Adding RESTCONF, say, is restconf.py here (its adapter and registration) and its name in
PROTOCOL_MODULES, over what drivers/ must learn anyway: the driver module (`connect(target)`
lending a session, `close()`) and, in the platform schema it owns, the protocol's name
(`drivers.platforms.Protocol`, which refuses an unknown `config_protocol` with file:line) and
its options; then its templates, `configs/templates/<platform>/<stem>.<template_kind>.j2`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from drivers.base import ConfigDriver
from drivers.platforms import Platform
from oss.errors import ConfigError
from oss.provisioning.leaves import Intent
from oss.provisioning.plan import DevicePlan, Mode
from oss.provisioning.protocols import cli, gnmi, netconf
from oss.provisioning.protocols.registry import PROTOCOLS, ConfigProtocol, register_protocol
from oss.provisioning.render import Renderer
from oss.provisioning.state_checks import StateCheck, parse_checks

__all__ = [
    "PROTOCOLS",
    "PROTOCOL_MODULES",
    "ConfigProtocol",
    "build_drivers",
    "config_protocol",
    "parse_payload",
    "register_protocol",
    "render_device",
    "template_kind",
]

# The shipped protocols, imported so that they register; a new protocol's module joins them.
PROTOCOL_MODULES: tuple[ModuleType, ...] = (netconf, gnmi, cli)


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
    checks: tuple[StateCheck, ...] = ()
    checks_template = state_checks_template(template)
    if mode == "merge" and renderer.has(checks_template):
        text = renderer.render(checks_template, {**context, "mode": mode})
        checks = parse_checks(text, checks_template)
    return DevicePlan(
        device=device, platform=platform, payload=payload, intent=intent, owned=owned, checks=checks
    )


def state_checks_template(template: str) -> str:
    """`<set>/<stem>.checks.yaml.j2` beside a configuration template `<set>/<stem>.<kind>.j2`
    (the stem's own name holds no dot)."""
    folder, _, name = template.rpartition("/")
    stem = name.split(".", 1)[0]
    return f"{folder}/{stem}.checks.yaml.j2" if folder else f"{stem}.checks.yaml.j2"

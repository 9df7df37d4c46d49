"""One device's part of a change: the rendered payload, what it means as leaves, what the
service owns there, and (once read) the device's configuration before the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.platforms import Platform, Protocol
from oss.errors import ConfigError
from oss.provisioning.leaves import Intent, cli_intent, gnmi_intent, xml_intent
from oss.provisioning.realise import DeviceRole, ServiceNames
from oss.provisioning.render import Renderer
from oss.provisioning.service_types import TEMPLATE_KINDS, ServiceType

Mode = Literal["merge", "delete"]


def config_protocol(platform: Platform) -> Protocol:
    protocol = platform.config_protocol
    if protocol is None or protocol not in TEMPLATE_KINDS:
        raise ConfigError(f"platform {platform.name}: no protocol pushes configuration")
    return protocol


def parse_payload(platform: Platform, payload: str) -> Intent:
    protocol = config_protocol(platform)
    if protocol == "netconf":
        return xml_intent(payload, platform.model)
    if protocol == "gnmi":
        return gnmi_intent(payload, platform.model)
    return cli_intent(payload, platform.cli)


@dataclass
class DevicePlan:
    """What one device gets in one transaction."""

    device: str
    platform: Platform
    payload: str  # as rendered; sent as is
    intent: Intent  # the payload as leaves and removals
    owned: tuple[str, ...]  # entries the service owns on this device (gone on delete)
    pre_image: dict[str, Any] | None = None  # running config in scope, read before the change
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def protocol(self) -> Protocol:
        return config_protocol(self.platform)


def template_context(
    stype: ServiceType,
    values: Mapping[str, Any],
    names: ServiceNames,
    role: DeviceRole,
    platform: Platform,
) -> dict[str, Any]:
    """The variables a template sees for one device (`mode` is added when rendering); the
    list is documented in configs/templates/README.md."""
    return {
        "service": {
            "id": f"svc-{names.id}",
            "type": stype.name,
            "customer": stype.customer_of(values) or None,
            "params": dict(values),
            "vlan": names.vlan,
            "vrf": names.vrf,
            "rd": names.rd,
            "description": names.description,
        },
        "device": {
            "name": role.device.name,
            "role": role.role,
            "platform": platform.name,
            "site": role.device.site,
        },
        "attachments": [a.context() for a in role.attachments],
    }


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

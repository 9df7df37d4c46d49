"""One device's part of a change: the rendered payload, what it means as leaves, what the
service owns there, and (once read) the device's configuration before the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.platforms import Platform, Protocol
from oss.errors import ConfigError
from oss.provisioning.leaves import Intent
from oss.provisioning.realise import DeviceRole, ServiceNames
from oss.provisioning.service_types import ServiceType
from oss.provisioning.state_checks import StateCheck

Mode = Literal["merge", "delete"]


@dataclass
class DevicePlan:
    """What one device gets in one transaction."""

    device: str
    platform: Platform
    payload: str  # as rendered; sent as is
    intent: Intent  # the payload as leaves and removals
    owned: tuple[str, ...]  # entries the service owns on this device (gone on delete)
    pre_image: dict[str, Any] | None = None  # running config in scope, read before the change
    checks: tuple[StateCheck, ...] = ()  # what the device must show once verified (merge)
    exclusive: bool = False  # a create of an exclusive type: the owned entries must be absent
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def protocol(self) -> Protocol:
        """The platform's config protocol (a plan is rendered only for a registered one)."""
        if self.platform.config_protocol is None:
            raise ConfigError(f"platform {self.platform.name}: no protocol pushes configuration")
        return self.platform.config_protocol


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

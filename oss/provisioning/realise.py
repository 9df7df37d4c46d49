"""From a service's intent to devices: which devices take part, in which role, with which
attachments (subinterfaces), and the path placed through the graph for path services.

Everything taken from the parameters goes through the parts the type file binds
(`ServiceType.value_of`, `ServiceType.item_value`): no parameter is known here by name."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oss.errors import InvalidInput, NotFound
from oss.provisioning.service_types import ServiceType
from topology.graph import InventoryGraph, natural_key
from topology.model import Device, Link
from topology.placement import Demand, Placement, place


@dataclass
class Attachment:
    interface: str
    vlan: int
    kind: str  # access | core
    peer: str | None
    bandwidth_bps: int | None
    qos_class: str | None
    description: str
    ip: str | None = None
    prefix_length: int | None = None

    def context(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "subinterface": self.vlan,
            "id": f"{self.interface}.{self.vlan}",
            "vlan": self.vlan,
            "ip": self.ip,
            "prefix_length": self.prefix_length,
            "kind": self.kind,
            "peer": self.peer,
            "bandwidth_bps": self.bandwidth_bps,
            "qos_class": self.qos_class,
            "description": self.description,
        }


@dataclass
class DeviceRole:
    device: Device
    role: str
    attachments: list[Attachment] = field(default_factory=list)


@dataclass
class Realisation:
    devices: dict[str, DeviceRole]
    placement: Placement | None
    reservations: dict[int, int]  # link id -> bit/s

    def interfaces(self) -> list[tuple[str, str]]:
        return [(d, a.interface) for d, r in self.devices.items() for a in r.attachments]


@dataclass(frozen=True)
class ServiceNames:
    id: int
    vlan: int | None
    vrf: str
    rd: str | None
    description: str


def service_names(
    stype: ServiceType, values: Mapping[str, Any], service_id: int, vlan: int | None, asn: int
) -> ServiceNames:
    """The service's names on the devices: its bound VRF and RD, or `<type>-<id>` and
    `<asn>:<id>` (templates that need no RD simply do not use it)."""
    customer = stype.customer_of(values) or "-"
    return ServiceNames(
        id=service_id,
        vlan=vlan,
        vrf=str(stype.value_of("vrf", values) or f"{stype.name}-{service_id}"),
        rd=stype.value_of("rd", values) or f"{asn}:{service_id}",
        description=f"oss svc-{service_id} {stype.name} {customer}"[:200],
    )


def resolve_endpoint(
    graph: InventoryGraph, text: str, roles: tuple[str, ...]
) -> tuple[str, str | None]:
    """`device:interface`, `device`, or a site (its first device with an eligible role)."""
    name, _, interface = text.partition(":")
    if any(d.name == name for d in graph.devices()):
        if interface:
            graph.interface(name, interface)  # NotFound names it
        return name, interface or None
    if interface:
        raise NotFound(f"endpoint {text}: no device {name}")
    sites = {s.name for s in graph.sites()}
    if name not in sites:
        raise NotFound(f"endpoint {text}: neither a device nor a site")
    in_site = sorted(
        (d for d in graph.devices() if d.site == name), key=lambda d: natural_key(d.name)
    )
    for role in roles:
        for device in in_site:
            if device.role == role:
                return device.name, None
    raise NotFound(f"endpoint {text}: site {name} has no device with role {' or '.join(roles)}")


def realise(
    graph: InventoryGraph,
    stype: ServiceType,
    params: Mapping[str, Any],
    names: ServiceNames,
    reserved: Mapping[int, int],
    placed: Placement | None = None,
) -> Realisation:
    """`placed`: the service's stored paths (no new placement), for changes to what exists."""
    if stype.realisation == "endpoints":
        return _endpoints(graph, stype, params, names)
    return _path(graph, stype, params, names, reserved, placed)


def _endpoints(
    graph: InventoryGraph, stype: ServiceType, params: Mapping[str, Any], names: ServiceNames
) -> Realisation:
    """Each endpoint's device in role `pe`, with an access attachment per interface named:
    attachment-list items (device, interface, their own VLAN or the service's, an address)
    and endpoint parameters (a device or site alone configures the device, no attachment)."""
    devices: dict[str, DeviceRole] = {}
    access = _Access(stype, params, names)
    for name in stype.endpoint_params:
        value = params.get(name)
        if isinstance(value, list):
            for i, item in enumerate(value):
                device = str(stype.item_value("device", item))
                interface = str(stype.item_value("interface", item))
                vlan = stype.item_value("vlan", item) or names.vlan
                address = stype.item_value("address", item)
                role = devices.setdefault(device, DeviceRole(graph.device(device), "pe"))
                access.attach(graph, role, f"parameters.{name}[{i}]", interface, vlan, address)
        elif value is not None:
            device, named = resolve_endpoint(graph, str(value), stype.endpoint_roles)
            role = devices.setdefault(device, DeviceRole(graph.device(device), "pe"))
            if named is not None:
                access.attach(graph, role, f"parameters.{name}", named, names.vlan, None)
    return Realisation(devices, None, {})


@dataclass(frozen=True)
class _Access:
    """Access attachments of an endpoints realisation, with the service's rate and class."""

    stype: ServiceType
    params: Mapping[str, Any]
    names: ServiceNames

    def attach(
        self,
        graph: InventoryGraph,
        role: DeviceRole,
        where: str,
        interface: str,
        vlan: int | None,
        address: str | None,
    ) -> None:
        device = role.device.name
        graph.interface(device, interface)  # NotFound names it
        if vlan is None:
            raise InvalidInput(f"{self.stype.name}: {where} has no VLAN")
        if any(a.interface == interface and a.vlan == vlan for a in role.attachments):
            raise InvalidInput(f"{where}: {device}:{interface} vlan {vlan} is listed twice")
        ip = ipaddress.ip_interface(address) if address else None
        qos = self.stype.value_of("qos_class", self.params)
        role.attachments.append(
            Attachment(
                interface=interface,
                vlan=int(vlan),
                kind="access",
                peer=None,
                bandwidth_bps=self.stype.value_of("bandwidth", self.params),
                qos_class=None if qos is None else str(qos),
                description=self.names.description,
                ip=str(ip.ip) if ip else None,
                prefix_length=ip.network.prefixlen if ip else None,
            )
        )


def _path(
    graph: InventoryGraph,
    stype: ServiceType,
    params: Mapping[str, Any],
    names: ServiceNames,
    reserved: Mapping[int, int],
    placed: Placement | None = None,
) -> Realisation:
    first, second = stype.endpoint_params[:2]
    a, a_if = resolve_endpoint(graph, str(params[first]), stype.endpoint_roles)
    z, z_if = resolve_endpoint(graph, str(params[second]), stype.endpoint_roles)
    if a == z:
        raise InvalidInput(f"parameters: {first} and {second} are both on device {a}")
    bandwidth = int(stype.value_of("bandwidth", params) or 0)
    demand = Demand(
        a=a,
        b=z,
        bandwidth_bps=bandwidth,
        max_latency_us=stype.value_of("latency", params),
        protection=stype.value_of("protection", params) or "none",
    )
    placement = placed if placed is not None else place(graph, demand, reserved)
    if names.vlan is None:
        raise InvalidInput(f"{stype.name}: a path service needs a VLAN")
    vlan = names.vlan
    qos_value = stype.value_of("qos_class", params)
    qos = None if qos_value is None else str(qos_value)
    devices: dict[str, DeviceRole] = {}

    def role_of(name: str) -> DeviceRole:
        if name not in devices:
            devices[name] = DeviceRole(
                graph.device(name), "endpoint" if name in (a, z) else "transit"
            )
        return devices[name]

    def attach(name: str, interface: str, kind: str, peer: str | None) -> None:
        role = role_of(name)
        if any(x.interface == interface for x in role.attachments):
            return  # both paths cross this interface
        role.attachments.append(
            Attachment(interface, vlan, kind, peer, bandwidth or None, qos, names.description)
        )

    for name, iface in ((a, a_if), (z, z_if)):
        role_of(name)
        if iface is not None:
            attach(name, iface, "access", None)
    for link_id in placement.links():
        link: Link = graph.link(link_id)
        attach(link.a.device, link.a.interface, "core", str(link.b))
        attach(link.b.device, link.b.interface, "core", str(link.a))
    order = {name: i for path in placement.paths() for i, name in enumerate(path.devices)}
    ordered = dict(
        sorted(devices.items(), key=lambda kv: (order.get(kv[0], 0), natural_key(kv[0])))
    )
    return Realisation(ordered, placement, {link: bandwidth for link in placement.links()})

"""The namespace lab's plan: every name and address of a containerlab file's lab, as data.

Pure: no side effects, so tests, the builder (lab.netns.build), the node software (lab.netns.node)
and the safety check (lab.netns.safety) all read the same answer.

- One namespace per node, `<prefix>-<lab>-<node>`, and one management namespace
  `<prefix>-<lab>-mgmt` holding the bridge `br-mgmt` with the gateway address (where the daemon
  lives, and where snmpd's traps go); each node's `eth0` is on that bridge.
- Management addresses come from the file's `mgmt: {ipv4-subnet: ...}` (containerlab's default
  172.20.20.0/24 without it): a node keeps its `mgmt-ipv4` when it lies inside that subnet; a
  loopback one (127.x, what the simulated lab's topologies carry) is ignored here and the node
  gets the next free host, in file order, from .2 (as containerlab does); `mgmt-ipv6` is not
  used (the namespace lab's management network is IPv4). Any other `mgmt-ipv4` is an error.
- Data-plane links get a /31 each from 10.254.0.0/16 in file order (the first endpoint written
  gets the even address); nodes get a /32 loopback 10.255.0.N, N = 1.. in file order, which is
  also their OSPF/BGP router-id.
- Profiles: the node's `oss.lab-profile` label, else what `profile_of` answers (the node
  software's match rules), else `frr`. BGP: the `oss.bgp-asn` label.

A bad file is refused as a whole with every problem located (`TopologyFileError`, file:line).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from oss.errors import InvalidInput, Problem, TopologyFileError
from topology.clab import ClabSource, ClabTopology
from topology.graph import natural_key
from topology.model import Device

DEFAULT_MGMT_SUBNET = "172.20.20.0/24"  # containerlab's default management network
LINK_PREFIX = "10.254.0.0/16"
LOOPBACK_PREFIX = "10.255.0.0/24"
MGMT_BRIDGE = "br-mgmt"
MGMT_INTERFACE = "eth0"  # the node's side of its management veth
DEFAULT_PROFILE = "frr"
IFNAMSIZ = 15  # Linux interface names: at most 15 characters
PROFILE_LABEL, ASN_LABEL = "oss.lab-profile", "oss.bgp-asn"

# A prefix names the namespaces of every lab made with it; tests give each lab its own.
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
_PROFILE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PRIVATE_V4 = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)

ProfileOf = Callable[[Device, Mapping[str, str]], str | None]


def frozen_mapping(mapping: Mapping[str, Any]) -> Mapping[str, str]:
    """A read-only copy with text values (labels, link vars)."""
    return MappingProxyType({str(k): str(v) for k, v in mapping.items()})


@dataclass(frozen=True)
class InterfacePlan:
    name: str  # "eth1", as in the clab file
    address: str  # "10.254.0.0/31"


@dataclass(frozen=True)
class NodePlan:
    name: str  # the clab node name, "agg1"
    namespace: str  # "<prefix>-<lab>-<node>"
    mgmt_address: str  # "172.20.20.2" (no prefix length), on eth0 in the node's namespace
    loopback: str  # "10.255.0.N" (/32 on lo); also the OSPF/BGP router-id
    profile: str  # a file stem in lab/profiles/ ("frr")
    interfaces: tuple[InterfacePlan, ...]  # data-plane interfaces only (not eth0, not lo)
    # the clab labels (oss.role, oss.site, ...)
    labels: Mapping[str, str] = field(default_factory=lambda: frozen_mapping({}), hash=False)
    asn: int | None = None  # BGP AS when the node's `oss.bgp-asn` label asks for BGP
    kind: str = ""  # the clab kind and image, for the node software's profile match rules
    image: str = ""

    def interface(self, name: str) -> InterfacePlan:
        for interface in self.interfaces:
            if interface.name == name:
                return interface
        raise InvalidInput(f"node {self.name} has no interface '{name}'")


@dataclass(frozen=True)
class LinkPlan:
    a: str  # "agg1:eth1"
    b: str  # "agg2:eth1"
    subnet: str  # "10.254.0.0/31"
    # the clab link vars (capacity, latency, ospf-cost, ...)
    vars: Mapping[str, str] = field(default_factory=lambda: frozen_mapping({}), hash=False)

    def ends(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """((node, interface), (node, interface))."""
        a_node, _, a_if = self.a.partition(":")
        b_node, _, b_if = self.b.partition(":")
        return (a_node, a_if), (b_node, b_if)

    def far_end(self, endpoint: str) -> str:
        if endpoint == self.a:
            return self.b
        if endpoint == self.b:
            return self.a
        raise InvalidInput(f"{endpoint} is not an end of the link {self.a} -- {self.b}")


@dataclass(frozen=True)
class LabPlan:
    name: str
    prefix: str
    mgmt_namespace: str  # "<prefix>-<lab>-mgmt"
    mgmt_bridge: str  # "br-mgmt", inside the management namespace
    mgmt_subnet: str  # "172.20.20.0/24"
    mgmt_gateway: str  # the subnet's first host, on the bridge: the daemon's address
    link_prefix: str  # "10.254.0.0/16"
    loopback_prefix: str  # "10.255.0.0/24"
    nodes: tuple[NodePlan, ...]
    links: tuple[LinkPlan, ...]

    def node(self, name: str) -> NodePlan:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise InvalidInput(f"lab {self.name} has no node '{name}' (nodes: {known})")

    def link(self, endpoint: str) -> LinkPlan:
        """The link with `endpoint` ("r1:eth1") at either end."""
        for link in self.links:
            if endpoint in (link.a, link.b):
                return link
        raise InvalidInput(f"lab {self.name} has no link at '{endpoint}'")

    def links_of(self, node: str) -> tuple[LinkPlan, ...]:
        return tuple(link for link in self.links if node in (e[0] for e in link.ends()))

    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of the lab, the management one first."""
        return (self.mgmt_namespace, *(n.namespace for n in self.nodes))

    def prefixes(self) -> tuple[str, ...]:
        """Every prefix the lab may route: a route outside them is a way out (lab.netns.safety)."""
        return (self.mgmt_subnet, self.link_prefix, self.loopback_prefix)


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise InvalidInput(
            f"namespace prefix '{prefix}': use 1-16 lowercase letters, digits and '-', "
            "starting with a letter"
        )
    return prefix


def plan_lab(
    topology: ClabTopology, prefix: str = "oss", profile_of: ProfileOf | None = None
) -> LabPlan:
    """The lab `topology` (from `topology.clab.parse_clab`) makes in namespaces."""
    check_prefix(prefix)
    source = topology.source
    if source is None:
        raise InvalidInput("the namespace lab plans from a parsed containerlab file")
    problems = _Problems(source.filename)
    lab = _lab_name(topology.name, source, problems)
    mgmt_subnet = _mgmt_subnet(source, problems)
    devices = {d.name: d for d in topology.devices}
    order = list(source.nodes)  # file order
    mgmt = _mgmt_addresses(source, order, mgmt_subnet, problems)
    loopbacks = _hosts(LOOPBACK_PREFIX, len(order), "loopback", problems)
    links, addresses = _links(source, problems)
    _check_labels(source, problems)
    if problems.found:
        raise TopologyFileError(source.filename, problems.found)
    nodes = []
    for index, name in enumerate(order):
        labels = source.nodes[name].labels
        device = devices[name]
        interfaces = tuple(
            InterfacePlan(interface, address)
            for interface, address in sorted(
                addresses.get(name, []), key=lambda i: natural_key(i[0])
            )
        )
        nodes.append(
            NodePlan(
                name=name,
                namespace=f"{prefix}-{lab}-{name}",
                mgmt_address=mgmt[name],
                loopback=loopbacks[index],
                profile=_profile(device, labels, profile_of),
                interfaces=interfaces,
                labels=frozen_mapping(labels),
                asn=_asn(labels),
                kind=device.kind or "",
                image=device.image or "",
            )
        )
    return LabPlan(
        name=lab,
        prefix=prefix,
        mgmt_namespace=f"{prefix}-{lab}-mgmt",
        mgmt_bridge=MGMT_BRIDGE,
        mgmt_subnet=str(mgmt_subnet),
        mgmt_gateway=str(next(mgmt_subnet.hosts())),
        link_prefix=LINK_PREFIX,
        loopback_prefix=LOOPBACK_PREFIX,
        nodes=tuple(nodes),
        links=links,
    )


# --------------------------------------------------------------------------- the plan as JSON


def plan_to_json(plan: LabPlan) -> dict[str, Any]:
    def node(n: NodePlan) -> dict[str, Any]:
        return {
            "name": n.name,
            "namespace": n.namespace,
            "mgmt_address": n.mgmt_address,
            "loopback": n.loopback,
            "profile": n.profile,
            "interfaces": [[i.name, i.address] for i in n.interfaces],
            "labels": dict(n.labels),
            "asn": n.asn,
            "kind": n.kind,
            "image": n.image,
        }

    return {
        "name": plan.name,
        "prefix": plan.prefix,
        "mgmt_namespace": plan.mgmt_namespace,
        "mgmt_bridge": plan.mgmt_bridge,
        "mgmt_subnet": plan.mgmt_subnet,
        "mgmt_gateway": plan.mgmt_gateway,
        "link_prefix": plan.link_prefix,
        "loopback_prefix": plan.loopback_prefix,
        "nodes": [node(n) for n in plan.nodes],
        "links": [
            {"a": li.a, "b": li.b, "subnet": li.subnet, "vars": dict(li.vars)} for li in plan.links
        ],
    }


def plan_from_json(data: Mapping[str, Any]) -> LabPlan:
    if not isinstance(data, Mapping):
        raise InvalidInput("the recorded plan is not a mapping")
    nodes = tuple(
        NodePlan(
            name=n["name"],
            namespace=n["namespace"],
            mgmt_address=n["mgmt_address"],
            loopback=n["loopback"],
            profile=n["profile"],
            interfaces=tuple(InterfacePlan(name, address) for name, address in n["interfaces"]),
            labels=frozen_mapping(n.get("labels", {})),
            asn=n.get("asn"),
            kind=n.get("kind", ""),
            image=n.get("image", ""),
        )
        for n in data["nodes"]
    )
    links = tuple(
        LinkPlan(li["a"], li["b"], li["subnet"], frozen_mapping(li.get("vars", {})))
        for li in data["links"]
    )
    return LabPlan(
        name=data["name"],
        prefix=data["prefix"],
        mgmt_namespace=data["mgmt_namespace"],
        mgmt_bridge=data["mgmt_bridge"],
        mgmt_subnet=data["mgmt_subnet"],
        mgmt_gateway=data["mgmt_gateway"],
        link_prefix=data["link_prefix"],
        loopback_prefix=data["loopback_prefix"],
        nodes=nodes,
        links=links,
    )


# ------------------------------------------------------------------------------------ helpers


class _Problems:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.found: list[Problem] = []

    def add(self, line: int, reason: str) -> None:
        self.found.append(Problem(where=f"{self.filename}:{line}", reason=reason))


def _lab_name(name: str, source: ClabSource, problems: _Problems) -> str:
    # The lab's name is part of every namespace name (and shown by `ip netns`): keep it tame.
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", name):
        problems.add(1, f"lab name '{name}': use letters, digits, '_', '.', '-' (max 40)")
    return name


def _mgmt_subnet(source: ClabSource, problems: _Problems) -> ipaddress.IPv4Network:
    default = ipaddress.IPv4Network(DEFAULT_MGMT_SUBNET)
    if source.mgmt_ipv4_subnet is None:
        return default
    text, line = source.mgmt_ipv4_subnet
    try:
        subnet = ipaddress.IPv4Network(text)
    except ValueError:
        problems.add(line, f"mgmt ipv4-subnet '{text}' is not an IPv4 network like 172.20.20.0/24")
        return default
    if not any(subnet.subnet_of(p) for p in _PRIVATE_V4):
        problems.add(
            line, f"mgmt ipv4-subnet {subnet} is not private (10/8, 172.16/12, 192.168/16)"
        )
    elif not 16 <= subnet.prefixlen <= 30:
        problems.add(line, f"mgmt ipv4-subnet {subnet}: use a /16 to a /30")
    for other in (LINK_PREFIX, LOOPBACK_PREFIX):
        if subnet.overlaps(ipaddress.IPv4Network(other)):
            problems.add(line, f"mgmt ipv4-subnet {subnet} overlaps the lab's {other}")
    return subnet


def _mgmt_addresses(
    source: ClabSource, order: list[str], subnet: ipaddress.IPv4Network, problems: _Problems
) -> dict[str, str]:
    hosts = list(subnet.hosts()) if subnet.prefixlen >= 16 else []
    gateway = hosts[0] if hosts else subnet.network_address
    taken: dict[ipaddress.IPv4Address, str] = {gateway: "the management gateway"}
    chosen: dict[str, str] = {}
    for name in order:
        written = source.nodes[name].mgmt_ipv4
        if written is None:
            continue
        text, line = written
        address = ipaddress.IPv4Address(text)  # the parser checked it is one
        if address.is_loopback:
            continue  # the simulated lab's address: not used in namespaces (see the docstring)
        if address not in hosts:
            problems.add(
                line,
                f"node {name}: mgmt-ipv4 {address} is not a host address of the lab's "
                f"management subnet {subnet} (set `mgmt: {{ipv4-subnet: ...}}` or change it)",
            )
        elif address in taken:
            problems.add(line, f"node {name}: mgmt-ipv4 {address} is taken by {taken[address]}")
        else:
            taken[address] = f"node {name}"
            chosen[name] = str(address)
    free = (h for h in hosts[1:] if h not in taken)
    for name in order:
        if name not in chosen:
            spare = next(free, None)
            if spare is None:
                line = source.nodes[name].line
                problems.add(line, f"node {name}: no free address left in {subnet}")
            chosen[name] = str(spare or "")
    return chosen


def _hosts(prefix: str, count: int, what: str, problems: _Problems) -> list[str]:
    hosts = [str(h) for h in itertools.islice(ipaddress.IPv4Network(prefix).hosts(), count)]
    if len(hosts) < count:
        problems.add(1, f"{count} nodes need more {what} addresses than {prefix} holds")
    return hosts


def _links(
    source: ClabSource, problems: _Problems
) -> tuple[tuple[LinkPlan, ...], dict[str, list[tuple[str, str]]]]:
    network = ipaddress.IPv4Network(LINK_PREFIX)
    subnets = network.subnets(new_prefix=31)
    links: list[LinkPlan] = []
    addresses: dict[str, list[tuple[str, str]]] = {}
    for link in source.links:
        subnet = next(subnets, None)
        if subnet is None:
            problems.add(link.line, f"more links than {LINK_PREFIX} holds /31s for")
            break
        for end, address in zip((link.a, link.b), subnet, strict=True):
            node, _, interface = end.partition(":")
            if len(interface) > IFNAMSIZ:
                problems.add(
                    link.line,
                    f"link {link.a} -- {link.b}: interface name '{interface}' is longer than "
                    f"Linux allows ({IFNAMSIZ} characters)",
                )
            elif interface in ("lo", "eth0", MGMT_BRIDGE):
                problems.add(
                    link.line,
                    f"link {link.a} -- {link.b}: '{interface}' is the lab's own "
                    "(eth0 is the management interface); number data links from eth1",
                )
            addresses.setdefault(node, []).append((interface, f"{address}/31"))
        links.append(LinkPlan(link.a, link.b, str(subnet), frozen_mapping(link.vars)))
    return tuple(links), addresses


def _check_labels(source: ClabSource, problems: _Problems) -> None:
    for name, node in source.nodes.items():
        asn = node.labels.get(ASN_LABEL)
        if asn is not None and _parse_asn(asn) is None:
            problems.add(
                node.line,
                f"node {name}: label {ASN_LABEL} '{asn}' is not an AS number (1-4294967294)",
            )
        profile = node.labels.get(PROFILE_LABEL)
        if profile is not None and not _PROFILE.match(profile):
            problems.add(
                node.line,
                f"node {name}: label {PROFILE_LABEL} '{profile}' is not a profile name "
                "(lowercase letters, digits, '-' and '_': a file stem in lab/profiles/)",
            )


def _parse_asn(text: str) -> int | None:
    if not text.isdigit():
        return None
    asn = int(text)
    return asn if 1 <= asn <= 4294967294 else None


def _asn(labels: Mapping[str, str]) -> int | None:
    text = labels.get(ASN_LABEL)
    return None if text is None else _parse_asn(text)


def _profile(device: Device, labels: Mapping[str, str], profile_of: ProfileOf | None) -> str:
    if PROFILE_LABEL in labels:
        return labels[PROFILE_LABEL]
    chosen = profile_of(device, labels) if profile_of is not None else None
    return chosen or DEFAULT_PROFILE


def endpoints(plan: LabPlan) -> Iterable[str]:
    """Every data-plane endpoint of the lab, "node:interface"."""
    for link in plan.links:
        yield link.a
        yield link.b

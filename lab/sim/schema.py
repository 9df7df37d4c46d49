"""The simulated device's configuration model, as data: which leaves exist, their types and
constraints, the list keys and the namespace of each top-level container.

`LEAVES` is the whole model. A pattern is a leaf path in the lab's gNMI syntax with each list
element written with its key *name* (`interface[name]`) where a real path has a key *value*
(`interface[name=eth1]`). Everything else is derived from it: the tree of containers, lists and
leaves (`ROOT`), the list keys (`LIST_KEYS`), the order of `show running-config`.

OpenConfig-shaped, as every list entry carries its key again as `config/<key>`; the model is
the lab's own subset (see lab/README.md). Checking values against the specs (types, ranges,
patterns) and the whole-configuration rules (references, uniqueness, bandwidth) is
`lab.sim.datastore`'s job; this module only describes and navigates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from lab.sim.model import LeafValue, Leaves, split_path

LeafKind = Literal["str", "int", "bool", "enum"]


@dataclass(frozen=True)
class LeafSpec:
    """One configuration leaf: its type and the constraints on its value."""

    kind: LeafKind
    range: tuple[int, int] | None = None  # int: inclusive bounds
    length: tuple[int, int] | None = None  # str: inclusive bounds, in characters
    pattern: str | None = None  # str: the whole value must match
    pattern_help: str = ""  # what the pattern means, for error messages
    values: tuple[str, ...] = ()  # enum: the allowed values


@dataclass(frozen=True)
class Namespace:
    uri: str
    prefix: str  # in <error-path> instance identifiers
    module: str  # the YANG module name (capabilities, gNMI models)
    revision: str  # in the NETCONF capability
    version: str  # openconfig-version, in gNMI's supported models


# --- the model --------------------------------------------------------------------------------

UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)
DESCRIPTION = LeafSpec("str", length=(0, 255))  # the simulated platform's limit
NAME = LeafSpec(
    "str",
    length=(1, 64),
    # No '/', '[', ']', '=' or spaces: a name is a key in `a/b[name=x]/c` paths and CLI words.
    pattern=r"[A-Za-z0-9][A-Za-z0-9_.:-]*",
    pattern_help="made of letters, digits and _ . : - (starting with a letter or digit)",
)
ASN_NN = LeafSpec(
    "str", pattern=r"[0-9]{1,10}:[0-9]{1,10}", pattern_help="in the form ASN:NN (such as 65000:100)"
)
SUBINTERFACE_ID = LeafSpec(
    "str",
    length=(3, 64),
    pattern=r"[A-Za-z0-9][A-Za-z0-9_:-]*(/[A-Za-z0-9_:-]+)*\.[0-9]{1,10}",
    pattern_help="in the form <interface>.<subinterface> (such as eth1.100)",
)
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = LeafSpec(
    "str", pattern=rf"{_OCTET}(\.{_OCTET}){{3}}", pattern_help="an IPv4 address (such as 192.0.2.1)"
)

INTERFACE = "interfaces/interface[name]"
SUBINTERFACE = f"{INTERFACE}/subinterfaces/subinterface[index]"
ADDRESS = f"{SUBINTERFACE}/ipv4/addresses/address[ip]"
NETWORK_INSTANCE = "network-instances/network-instance[name]"
NI_INTERFACE = f"{NETWORK_INSTANCE}/interfaces/interface[id]"
QOS_INTERFACE = "qos/interfaces/interface[interface-id]"

# Every configuration leaf, in the order `show running-config` and replies list them.
LEAVES: dict[str, LeafSpec] = {
    f"{INTERFACE}/config/name": LeafSpec("str", length=(1, 64)),
    f"{INTERFACE}/config/description": DESCRIPTION,
    f"{INTERFACE}/config/enabled": LeafSpec("bool"),
    f"{INTERFACE}/config/mtu": LeafSpec("int", range=(576, 9216)),
    f"{SUBINTERFACE}/config/index": LeafSpec("int", range=UINT32),
    f"{SUBINTERFACE}/config/description": DESCRIPTION,
    f"{SUBINTERFACE}/config/enabled": LeafSpec("bool"),
    f"{SUBINTERFACE}/vlan/config/vlan-id": LeafSpec("int", range=(1, 4094)),
    f"{ADDRESS}/config/ip": IPV4,
    f"{ADDRESS}/config/prefix-length": LeafSpec("int", range=(0, 32)),
    f"{NETWORK_INSTANCE}/config/name": NAME,
    f"{NETWORK_INSTANCE}/config/type": LeafSpec("enum", values=("L3VRF", "L2P2P")),
    f"{NETWORK_INSTANCE}/config/description": DESCRIPTION,
    f"{NETWORK_INSTANCE}/config/route-distinguisher": ASN_NN,
    f"{NETWORK_INSTANCE}/config/import-route-target": ASN_NN,
    f"{NETWORK_INSTANCE}/config/export-route-target": ASN_NN,
    f"{NI_INTERFACE}/config/id": SUBINTERFACE_ID,
    f"{NI_INTERFACE}/config/interface": LeafSpec("str", length=(1, 64)),
    f"{NI_INTERFACE}/config/subinterface": LeafSpec("int", range=UINT32),
    f"{QOS_INTERFACE}/config/interface-id": SUBINTERFACE_ID,
    f"{QOS_INTERFACE}/config/class": LeafSpec(
        "enum", values=("best-effort", "assured", "expedited")
    ),
    f"{QOS_INTERFACE}/config/bandwidth-bps": LeafSpec("int", range=UINT64),
}

# The top-level containers, in order, and the namespace of everything below each of them.
NAMESPACES: dict[str, Namespace] = {
    "interfaces": Namespace(
        "http://openconfig.net/yang/interfaces",
        "oc-if",
        "openconfig-interfaces",
        "2021-04-06",
        "3.0.0",
    ),
    "network-instances": Namespace(
        "http://openconfig.net/yang/network-instance",
        "oc-netinst",
        "openconfig-network-instance",
        "2023-12-13",
        "4.4.0",
    ),
    "qos": Namespace(
        "http://openconfig.net/yang/qos", "oc-qos", "openconfig-qos", "2023-04-27", "0.11.0"
    ),
}


# --- the tree derived from it -------------------------------------------------------------------

NodeKind = Literal["container", "list", "leaf"]


@dataclass
class Node:
    """A schema node. A list node stands for its entries: its children are an entry's."""

    name: str
    kind: NodeKind
    pattern: str  # the schema path of the node (a list as `name`, without `[key]`)
    key: str | None = None  # a list's key leaf
    leaf: LeafSpec | None = None
    children: dict[str, Node] = field(default_factory=dict)
    order: int = 0  # position among its siblings

    def child(self, name: str) -> Node | None:
        return self.children.get(name)


_PATTERN_ELEM = re.compile(r"^([a-z][a-z0-9-]*)(?:\[([a-z][a-z0-9-]*)\])?$")


def _build(leaves: Mapping[str, LeafSpec]) -> tuple[Node, dict[str, str]]:
    root = Node("", "container", "")
    keys: dict[str, str] = {}
    for pattern, spec in leaves.items():
        node = root
        elems = pattern.split("/")
        for depth, elem in enumerate(elems):
            match = _PATTERN_ELEM.match(elem)
            if match is None:
                raise ValueError(f"schema pattern {pattern}: bad element {elem!r}")
            name, key = match.groups()
            last = depth == len(elems) - 1
            kind: NodeKind = "leaf" if last else "list" if key else "container"
            child = node.children.get(name)
            if child is None:
                where = "/".join(_PATTERN_ELEM.sub(r"\1", e) for e in elems[: depth + 1])
                child = Node(name, kind, where, key=key, order=len(node.children))
                node.children[name] = child
                if key:
                    keys[where] = key
            if child.kind != kind or child.key != key:
                raise ValueError(f"schema pattern {pattern}: {elem} conflicts with an earlier one")
            if last:
                child.leaf = spec
            node = child
    for where, key in keys.items():  # OpenConfig: every entry carries its key as config/<key>
        entry = _node_at(root, tuple(where.split("/")))
        config = entry.child("config") if entry is not None else None
        if config is None or key not in config.children:
            raise ValueError(f"schema list {where}: no config/{key} leaf for its key")
    return root, keys


def _node_at(root: Node, names: Sequence[str]) -> Node | None:
    node: Node | None = root
    for name in names:
        node = node.child(name) if node is not None else None
    return node


ROOT, LIST_KEYS = _build(LEAVES)  # LIST_KEYS: list node path -> key leaf


@lru_cache(maxsize=4096)
def node_at(names: tuple[str, ...]) -> Node | None:
    """The schema node at a path of element names (keys left out), or None."""
    return _node_at(ROOT, names)


def key_spec(node: Node) -> LeafSpec:
    """The spec of a list's key: that of its `config/<key>` leaf."""
    assert node.kind == "list" and node.key is not None
    config = node.children["config"]
    spec = config.children[node.key].leaf
    assert spec is not None
    return spec


def namespace_of(path: str) -> Namespace | None:
    top = path.strip("/").split("/", 1)[0].split("[", 1)[0]
    return NAMESPACES.get(top)


# --- concrete paths -------------------------------------------------------------------------------


class PathError(ValueError):
    """A path that the model does not have. `element` is the offending element's name and
    `at` the (canonical) path of its parent."""

    def __init__(self, message: str, *, element: str, at: str, read_only: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.element = element
        self.at = at
        self.read_only = read_only


@dataclass(frozen=True)
class Resolved:
    node: Node
    path: str  # canonical: int keys without leading zeros
    entry: bool  # the last element is a list entry (with its key), not the whole list

    @property
    def is_leaf(self) -> bool:
        return self.node.kind == "leaf"


def canonical_key(node: Node, text: str) -> str:
    """A key value as paths spell it (int keys in decimal without leading zeros); ValueError
    when it is not of the key's type."""
    if key_spec(node).kind == "int":
        return str(int(text, 10))
    return text


def typed_key(node: Node, text: str) -> LeafValue:
    """A key value from a path, typed like its leaf (for JSON trees)."""
    if key_spec(node).kind == "int" and text.isdigit():
        return int(text)
    return text


@lru_cache(maxsize=1 << 14)
def resolve(path: str) -> Resolved:
    """The schema node of a concrete path (`a/b[key=v]/c`); PathError when the model has no
    such node. A list element may lack its key only as the last element (the whole list)."""
    node = ROOT
    parts: list[str] = []
    elems = split_path(path)
    if not elems:
        raise PathError("an empty path", element="", at="")
    entry = False
    for depth, (name, keys) in enumerate(elems):
        at = "/".join(parts)
        child = node.child(name)
        if child is None:
            if name == "state":
                raise PathError("state is read-only", element=name, at=at, read_only=True)
            where = f"in {node.name}" if node.name else "at the top level"
            raise PathError(f"unknown element '{name}' {where}", element=name, at=at)
        if child.kind == "list":
            key = child.key or ""
            last = depth == len(elems) - 1
            if not keys and last:
                parts.append(name)
                entry = False
            elif list(keys) != [key]:
                raise PathError(f"{name} needs its key: {name}[{key}=...]", element=name, at=at)
            else:
                try:
                    value = canonical_key(child, keys[key])
                except ValueError:
                    raise PathError(
                        f"{name} key {key}='{keys[key]}' is not an integer", element=key, at=at
                    ) from None
                parts.append(f"{name}[{key}={value}]")
                entry = True
        elif keys:
            raise PathError(f"{name} is not a list: it has no keys", element=name, at=at)
        else:
            parts.append(name)
            entry = False
        node = child
    return Resolved(node=node, path="/".join(parts), entry=entry)


def leaf_spec(path: str) -> LeafSpec | None:
    """The spec of a configuration leaf path, or None when it is not one."""
    try:
        resolved = resolve(path)
    except PathError:
        return None
    return resolved.node.leaf if resolved.is_leaf else None


def entry_keys(path: str) -> list[tuple[str, str, str]]:
    """Every list entry a leaf path passes through: (entry path, key name, key value)."""
    out: list[tuple[str, str, str]] = []
    parts: list[str] = []
    for name, keys in split_path(path):
        elem = name + "".join(f"[{k}={v}]" for k, v in keys.items())
        parts.append(elem)
        for key, value in keys.items():
            out.append(("/".join(parts), key, value))
    return out


def fill_keys(leaves: Leaves) -> Leaves:
    """Give every list entry that has a leaf its `config/<key>` leaf (typed), as an OpenConfig
    device does when an entry is created: entries exist by their leaves here, so an edit that
    names only an entry's description still creates a complete entry."""
    missing: dict[str, LeafValue] = {}
    for path in leaves:
        for entry, key, value in entry_keys(path):
            key_path = f"{entry}/config/{key}"
            if key_path in leaves or key_path in missing:
                continue
            try:
                resolved = resolve(entry)
            except PathError:
                continue  # not in the model: validation reports it
            if resolved.node.kind == "list" and resolved.node.key == key:
                missing[key_path] = typed_key(resolved.node, value)
    if missing:
        leaves.update(missing)
    return leaves


def below(leaves: Iterable[str], prefix: str) -> list[str]:
    """The leaf paths at or below `prefix` (a leaf, an entry or a container)."""
    prefix = prefix.strip("/")
    return [p for p in leaves if p == prefix or p.startswith(prefix + "/")]


# --- presentation ---------------------------------------------------------------------------------


def instance_path(path: str) -> str:
    """An instance identifier in the style devices use in <error-path>:
    `/oc-if:interfaces/oc-if:interface[oc-if:name='eth1']/oc-if:config/oc-if:mtu`."""
    ns = namespace_of(path)
    pre = f"{ns.prefix}:" if ns is not None else ""
    out = []
    for name, keys in split_path(path):
        out.append(f"/{pre}{name}" + "".join(f"[{pre}{k}='{v}']" for k, v in keys.items()))
    return "".join(out) or "/"


_DIGITS = re.compile(r"(\d+)")


def _natural(text: str) -> tuple[tuple[int, str], ...]:
    # "eth2" before "eth10"; parts alternate text and number, so tuples always compare.
    return tuple(
        (int(part), "") if i % 2 else (0, part) for i, part in enumerate(_DIGITS.split(text))
    )


@lru_cache(maxsize=1 << 16)
def sort_key(path: str) -> tuple[object, ...]:
    """Schema order (the order of `LEAVES`), list entries in natural key order; paths outside
    the model last, by name."""
    node: Node | None = ROOT
    out: list[object] = []
    for name, keys in split_path(path):
        child = node.child(name) if node is not None else None
        order = child.order if child is not None else 1 << 30
        out.append((order, name, tuple(_natural(v) for v in keys.values())))
        node = child
    return tuple(out)


def sorted_leaves(leaves: Mapping[str, LeafValue]) -> list[tuple[str, LeafValue]]:
    return sorted(leaves.items(), key=lambda item: sort_key(item[0]))

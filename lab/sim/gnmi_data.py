"""The simulated device's data as its gNMI server sees it: the OpenConfig state leaves derived
from the device, path matching with wildcards, JSON trees for Get, and the rules a SetRequest's
edits must follow before they reach `SimDevice.apply`.

Paths here are parsed once into tuples (`ParsedPath`) and cached, because a sampled subscription
matches the same few hundred leaf paths over and over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, cast

from pygnmi.spec.v080 import gnmi_pb2 as pb

from lab.sim import schema
from lab.sim.model import LeafValue, Leaves, SimDevice, split_path

Elem = tuple[str, tuple[tuple[str, str], ...]]  # (name, sorted keys)
ParsedPath = tuple[Elem, ...]

WILDCARD = "*"

# The interface config leaves mirrored as state leaves.
INTERFACE_CONFIG_LEAVES = tuple(
    pattern.rsplit("/", 1)[1]
    for pattern in schema.LEAVES
    if pattern.startswith("interfaces/interface[name]/config/")
)
_PYTHON_TYPES: dict[str, type] = {"str": str, "int": int, "bool": bool, "enum": str}


class SetRejected(ValueError):
    """A SetRequest edit breaks the device's rules; the whole request is refused."""


# --- paths ------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 16)
def parse(path: str) -> ParsedPath:
    return tuple((name, tuple(sorted(keys.items()))) for name, keys in split_path(path))


def _strip_module(name: str) -> str:
    # "openconfig-interfaces:interfaces" -> "interfaces": the model has one namespace.
    return name.rpartition(":")[2]


def from_proto(*paths: Any) -> ParsedPath:
    """Concatenate gNMI Path messages (prefix first) into one parsed path."""
    elems: list[Elem] = []
    for path in paths:
        for elem in path.elem:
            elems.append((_strip_module(elem.name), tuple(sorted(elem.key.items()))))
    return tuple(elems)


def to_str(path: ParsedPath) -> str:
    return "/".join(name + "".join(f"[{k}={v}]" for k, v in keys) for name, keys in path)


def to_proto(path: ParsedPath, target: str = "") -> Any:
    proto = pb.Path(target=target)
    for name, keys in path:
        proto.elem.add(name=name, key=dict(keys))
    return proto


def has_wildcard(path: ParsedPath) -> bool:
    return any(name == WILDCARD or any(v == WILDCARD for _, v in keys) for name, keys in path)


def matches(request: ParsedPath, leaf: ParsedPath) -> bool:
    """Is `leaf` at or below `request`? A request element with no key, or a `*` key, selects
    every list entry (as gNMI says)."""
    if len(leaf) < len(request):
        return False
    for (rname, rkeys), (lname, lkeys) in zip(request, leaf, strict=False):
        if rname != WILDCARD and rname != lname:
            return False
        if rkeys:
            have = dict(lkeys)
            for key, value in rkeys:
                if value != WILDCARD and have.get(key) != value:
                    return False
    return True


def fixed_prefix(request: ParsedPath, leaves: list[ParsedPath]) -> ParsedPath:
    """The longest wildcard-free start of `request` that leaves every leaf at least one element
    below it: the prefix a notification carries, so its updates can be short relative paths."""
    depth = min([len(request), *(len(leaf) - 1 for leaf in leaves)])
    prefix: list[Elem] = []
    for name, keys in request[:depth]:
        if name == WILDCARD or any(v == WILDCARD for _, v in keys):
            break
        prefix.append((name, keys))
    return tuple(prefix)


# --- the device's leaves ------------------------------------------------------------------------


def is_counter(path: str) -> bool:
    return "/state/counters/" in path


def state_leaves(device: SimDevice) -> Leaves:
    """The OpenConfig `state` leaves of every interface, as of now."""
    out: Leaves = {}
    running = device.running
    for name, iface in device.interfaces.items():
        config = f"interfaces/interface[name={name}]/config/"
        state = f"interfaces/interface[name={name}]/state/"
        for leaf in INTERFACE_CONFIG_LEAVES:
            value = running.get(config + leaf)
            if value is not None:
                out[state + leaf] = value
        out[state + "admin-status"] = "UP" if device.admin_up(name) else "DOWN"
        out[state + "oper-status"] = "UP" if device.oper_up(name) else "DOWN"
        out[state + "ifindex"] = iface.index
        out[state + "last-change"] = iface.last_change_ns
        for counter, value in device.counters(name).items():
            out[state + "counters/" + counter] = value
    return out


def _state_value(device: SimDevice, ifname: str, leaf: str) -> LeafValue | None:
    if leaf == "admin-status":
        return "UP" if device.admin_up(ifname) else "DOWN"
    if leaf == "oper-status":
        return "UP" if device.oper_up(ifname) else "DOWN"
    if leaf == "ifindex":
        return device.interfaces[ifname].index
    if leaf == "last-change":
        return device.interfaces[ifname].last_change_ns
    return device.running.get(f"interfaces/interface[name={ifname}]/config/{leaf}")


_STATE_PATH = re.compile(r"^interfaces/interface\[name=([^\]]+)\]/state/(.+)$")
_CONFIG, _COUNTER, _STATE = 0, 1, 2


class LeafReader:
    """Reads the current values of a fixed list of leaf paths: what a sampled subscription
    does on every tick. The paths are planned once into steps; consecutive counters of one
    interface are one step, read from a single `device.counters()` call."""

    def __init__(self, device: SimDevice, paths: list[str]) -> None:
        self.device = device
        self.paths = paths
        self._interfaces: set[str] = set()
        # (kind, interface, keys): a counters step has several keys, the others one
        self._steps: list[tuple[int, str, list[str]]] = []
        for path in paths:
            match = _STATE_PATH.match(path)
            if match is None:
                self._steps.append((_CONFIG, "", [path]))
                continue
            ifname, leaf = match.groups()
            self._interfaces.add(ifname)
            if not leaf.startswith("counters/"):
                self._steps.append((_STATE, ifname, [leaf]))
            elif self._steps and self._steps[-1][:2] == (_COUNTER, ifname):
                self._steps[-1][2].append(leaf[9:])
            else:
                self._steps.append((_COUNTER, ifname, [leaf[9:]]))

    def read(self) -> list[LeafValue] | None:
        """The values in path order, or None when a leaf no longer exists."""
        device = self.device
        if not self._interfaces <= device.interfaces.keys():
            return None
        out: list[LeafValue | None] = []
        for kind, ifname, keys in self._steps:
            if kind == _COUNTER:
                counters = device.counters(ifname)
                out.extend([counters.get(key) for key in keys])
            elif kind == _STATE:
                out.append(_state_value(device, ifname, keys[0]))
            else:
                out.append(device.running.get(keys[0]))
        if None in out:
            return None
        return cast(list[LeafValue], out)


def device_leaves(device: SimDevice, *, config: bool = True, state: bool = True) -> Leaves:
    out: Leaves = dict(device.running) if config else {}
    if state:
        out.update(state_leaves(device))
    return out


def select(leaves: Mapping[str, LeafValue], request: ParsedPath) -> dict[ParsedPath, LeafValue]:
    return {
        parsed: value for path, value in leaves.items() if matches(request, parsed := parse(path))
    }


# --- values -------------------------------------------------------------------------------------


def set_typed(val: Any, value: LeafValue, encoding: int) -> None:
    """Write one scalar into a TypedValue: typed fields for PROTO, JSON text otherwise."""
    if encoding == pb.PROTO:
        if isinstance(value, bool):
            val.bool_val = value
        elif isinstance(value, int):
            if value >= 0:
                val.uint_val = value
            else:
                val.int_val = value
        elif isinstance(value, float):
            val.double_val = value
        else:
            val.string_val = value
    elif encoding == pb.JSON:
        val.json_val = json.dumps(value).encode()
    else:
        val.json_ietf_val = json.dumps(value).encode()


def decode_typed(val: Any) -> Any:
    """A TypedValue from a SetRequest as a Python value. Text that is not JSON is taken as a
    plain string, because pygnmi sends Python strings unquoted."""
    kind = val.WhichOneof("value")
    if kind in ("json_val", "json_ietf_val"):
        raw = getattr(val, kind).decode("utf-8")
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    if kind in ("string_val", "int_val", "uint_val", "bool_val", "double_val", "float_val"):
        return getattr(val, kind)
    if kind == "ascii_val":
        return val.ascii_val
    raise SetRejected(f"unsupported value encoding {kind}")


def json_tree(items: Mapping[ParsedPath, LeafValue], depth: int) -> Any:
    """The leaves below a node (`depth` elements of each path are the node itself) as an
    OpenConfig-shaped JSON tree: lists as arrays of entries that carry their keys (typed like
    their leaves: a subinterface's index is a number), in schema order."""
    root: dict[str, Any] = {}
    entries: dict[tuple[int, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    ordered = sorted(items.items(), key=lambda item: schema.sort_key(to_str(item[0])))
    for path, value in ordered:
        rest = path[depth:]
        if not rest:
            return value  # the node is itself a leaf
        node = root
        for i, (name, keys) in enumerate(rest):
            if i == len(rest) - 1:
                node[name] = value
            elif keys:
                array = node.setdefault(name, [])
                entry = entries.get((id(array), keys))
                if entry is None:
                    entry = _typed_keys(path[: depth + i + 1])
                    array.append(entry)
                    entries[(id(array), keys)] = entry
                node = entry
            else:
                node = node.setdefault(name, {})
    return root


def _typed_keys(entry: ParsedPath) -> dict[str, Any]:
    keys = dict(entry[-1][1])
    list_node = schema.node_at(tuple(name for name, _ in entry))
    if list_node is None or list_node.kind != "list":
        return dict(keys)
    return {k: schema.typed_key(list_node, v) for k, v in keys.items()}


# --- Set ----------------------------------------------------------------------------------------


def _check_config_path(path: ParsedPath, device: SimDevice, *, whole_leaf: bool) -> ParsedPath:
    """An edit's path, canonical (int keys without leading zeros): a node of the configuration
    model (`lab.sim.schema`) below the root, on an interface the device has. `whole_leaf` asks
    for a complete leaf path."""
    text = "/" + to_str(path)
    if not path:
        raise SetRejected("an edit needs a path below the root")
    if has_wildcard(path):
        raise SetRejected(f"{text}: wildcards are not allowed in Set")
    try:
        resolved = schema.resolve(to_str(path))
    except schema.PathError as exc:
        if exc.read_only:
            raise SetRejected(f"{text}: state is read-only") from None
        raise SetRejected(f"{text}: no such node: {exc.message}") from None
    if len(path) >= 2 and path[0][0] == "interfaces" and path[1][1]:
        ifname = path[1][1][0][1]
        if ifname not in device.interfaces:
            raise SetRejected(f"{text}: no interface {ifname}")
    if whole_leaf and not resolved.is_leaf:
        raise SetRejected(f"{text}: not a leaf")
    return parse(resolved.path)


def _coerce(path: ParsedPath, value: Any) -> LeafValue:
    """A JSON value for a leaf, of the leaf's type (constraints are the validation's)."""
    spec = schema.leaf_spec(to_str(path))
    assert spec is not None  # the path was checked
    want = _PYTHON_TYPES[spec.kind]
    text = "/" + to_str(path)
    if want is int and isinstance(value, str) and value.isdigit():
        value = int(value)  # RFC 7951 lets 64-bit numbers travel as strings; accept that form
    if isinstance(value, bool) != (want is bool) or not isinstance(value, want):
        raise SetRejected(f"{text}: expected {want.__name__}, got {type(value).__name__}")
    if spec.kind == "enum" and value not in spec.values:
        raise SetRejected(f"{text}: {value!r} is not one of {', '.join(spec.values)}")
    assert isinstance(value, str | int | bool)
    return value


def _list_node(names: tuple[str, ...]) -> schema.Node | None:
    node = schema.node_at(names)
    return node if node is not None and node.kind == "list" else None


def _entries(base: ParsedPath, name: str, items: list[Any]) -> Iterator[tuple[ParsedPath, Any]]:
    """The entries of list `name` under `base`, each with its key in the path."""
    where = f"/{to_str(base)}/{name}".replace("//", "/")
    node = _list_node((*(n for n, _ in base), name))
    if node is None or node.key is None:
        raise SetRejected(f"{where}: not a list")
    for entry in items:
        if not isinstance(entry, dict):
            raise SetRejected(f"{where}: list entries must be objects")
        fields = {_strip_module(k): v for k, v in entry.items()}
        if node.key not in fields:
            raise SetRejected(f"{where}: list entry without its key {node.key!r}")
        elem: Elem = (name, ((node.key, str(fields[node.key])),))
        # The entry exists even when it names nothing but its key: its config/<key> leaf.
        yield (*base, elem, ("config", ()), (node.key, ())), fields[node.key]
        yield from flatten((*base, elem), fields)


def flatten(base: ParsedPath, value: Any) -> Iterator[tuple[ParsedPath, Any]]:
    """A JSON value set at `base` as (leaf path, scalar) pairs. A list node without a key in
    the path takes an array of entries."""
    if isinstance(value, dict):
        key_names = dict(base[-1][1]) if base else {}
        for raw_name, child in value.items():
            name = _strip_module(raw_name)
            if name in key_names:
                if str(child) != key_names[name]:
                    raise SetRejected(f"/{to_str(base)}: key {name}={child} differs from the path")
                continue  # the list key, already in the path
            if isinstance(child, list):
                yield from _entries(base, name, child)
            else:
                yield from flatten((*base, (name, ())), child)
    elif isinstance(value, list):
        if not base or base[-1][1]:
            raise SetRejected(f"/{to_str(base)}: a list needs its keys in the path or its entries")
        yield from _entries(base[:-1], base[-1][0], value)
    else:
        yield base, value


def apply_edits(
    device: SimDevice,
    *,
    deletes: list[ParsedPath],
    replaces: list[tuple[ParsedPath, Any]],
    updates: list[tuple[ParsedPath, Any]],
) -> Leaves:
    """The running configuration after a SetRequest's edits, in gNMI's order (deletes, then
    replaces, then updates), with every list entry's key leaf filled in. Raises SetRejected,
    leaving the device untouched, on any problem of structure or type; the caller validates the
    result as a whole before applying it."""
    new = dict(device.running)

    def remove_below(path: ParsedPath) -> None:
        for leaf in [p for p in new if matches(path, parse(p))]:
            del new[leaf]

    def write(path: ParsedPath, value: Any) -> None:
        entry = schema.resolve(to_str(path))
        if entry.entry and entry.node.key is not None:  # the entry exists, even if `{}`
            key_leaf = (*path, ("config", ()), (entry.node.key, ()))
            new[to_str(key_leaf)] = schema.typed_key(entry.node, dict(path[-1][1])[entry.node.key])
        for leaf, scalar in flatten(path, value):
            leaf = _check_config_path(leaf, device, whole_leaf=True)
            new[to_str(leaf)] = _coerce(leaf, scalar)

    for path in deletes:
        remove_below(_check_config_path(path, device, whole_leaf=False))
    for path, value in replaces:
        path = _check_config_path(path, device, whole_leaf=False)
        remove_below(path)
        write(path, value)
    for path, value in updates:
        write(_check_config_path(path, device, whole_leaf=False), value)
    return schema.fill_keys(new)

"""OpenConfig-shaped XML <-> SimDevice leaves, for the simulated NETCONF server.

Data trees are built with *local* tag names (`interfaces`, `interface`, `config`, ...): each
top-level container (`interfaces`, `network-instances`, `qos`) and everything below it is in
one namespace (`lab.sim.schema.NAMESPACES`), added once, on the top element, when a reply is
serialised (`with_namespaces`). Incoming XML (edit-config, filters) is checked against that
namespace and then compared by local name. Edits are walked along the schema
(`lab.sim.schema`), so containers, list entries and leaves at any depth take every operation.

Uses the standard library's ElementTree: the lab parses only what its own test clients send,
and ElementTree's path language covers the XPath subset the simulated device supports.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping

from lab.sim import schema
from lab.sim.datastore import RpcFailure, coerce_leaf
from lab.sim.model import LeafValue, Leaves, SimDevice, iface_path, split_path

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
_OPERATION = f"{{{BASE_NS}}}operation"
# The top-level containers the device serves and the namespace of each.
TOP_NAMESPACES = {name: ns.uri for name, ns in schema.NAMESPACES.items()}
EDIT_OPERATIONS = ("merge", "replace", "create", "delete", "remove")
DEFAULT_OPERATIONS = ("merge", "replace", "none")
COUNTERS = (
    "in-octets",
    "out-octets",
    "in-unicast-pkts",
    "out-unicast-pkts",
    "in-errors",
    "out-errors",
    "in-discards",
    "out-discards",
)


def split_tag(tag: str) -> tuple[str | None, str]:
    """`{ns}local` -> (ns, local); `local` -> (None, local)."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def text_of(value: LeafValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- leaves -> XML ----------------------------------------------------------------------------


def state_leaves(device: SimDevice) -> Leaves:
    """The operational state of every interface, as OpenConfig `state` leaves."""
    leaves: Leaves = {}
    for name, iface in device.interfaces.items():
        running = device.running

        def state(leaf: str, value: LeafValue, ifname: str = name) -> None:
            leaves[iface_path(ifname, f"state/{leaf}")] = value

        state("name", name)
        state("description", running.get(iface_path(name, "config/description"), ""))
        state("enabled", device.admin_up(name))
        state("mtu", running.get(iface_path(name, "config/mtu"), 1500))
        state("ifindex", iface.index)
        state("admin-status", "UP" if device.admin_up(name) else "DOWN")
        state("oper-status", "UP" if device.oper_up(name) else "DOWN")
        state("last-change", iface.last_change_ns)
        for counter, value in device.counters(name).items():
            state(f"counters/{counter}", value)
    return leaves


def leaves_to_xml(leaves: Iterable[tuple[str, LeafValue]]) -> ET.Element:
    """A `data` element from leaf paths, in their order; list keys become key leaves."""
    data = ET.Element("data")
    index: dict[tuple[int, str, tuple[tuple[str, str], ...]], ET.Element] = {}
    for path, value in leaves:
        parts = split_path(path)
        parent = data
        for name, keys in parts[:-1]:
            key = (id(parent), name, tuple(sorted(keys.items())))
            element = index.get(key)
            if element is None:
                element = ET.SubElement(parent, name)
                for key_name, key_value in keys.items():
                    ET.SubElement(element, key_name).text = key_value
                index[key] = element
            parent = element
        ET.SubElement(parent, parts[-1][0]).text = text_of(value)
    return data


def device_data(device: SimDevice, config: Leaves, *, with_state: bool) -> ET.Element:
    """<data> for get-config (config only) or get (config and state), in schema order."""
    ordered: list[tuple[str, LeafValue]] = schema.sorted_leaves(config)
    if with_state:
        ordered.extend(state_leaves(device).items())
    return leaves_to_xml(ordered)


def with_namespaces(data: ET.Element) -> ET.Element:
    """Declare each top-level container's namespace (data trees use local names)."""
    for child in data:
        ns = TOP_NAMESPACES.get(child.tag)
        if ns is not None:
            child.set("xmlns", ns)
    return data


# --- edit-config ------------------------------------------------------------------------------


def apply_edit(current: Mapping[str, LeafValue], config: ET.Element, default_op: str) -> Leaves:
    """The datastore content after applying an edit-config <config> (RFC 6241 section 7.2).
    Checks structure and types; the constraints are `datastore.validate`'s."""
    result: Leaves = dict(current)
    for top in config:
        ns, local = split_tag(top.tag)
        node = schema.ROOT.child(local)
        if node is None:
            raise RpcFailure(
                "unknown-element",
                f"unknown top-level element '{local}'",
                info={"bad-element": local},
            )
        if ns != TOP_NAMESPACES[local]:
            raise RpcFailure(
                "unknown-namespace",
                f"element '{local}' must be in namespace {TOP_NAMESPACES[local]}",
                info={"bad-element": local, "bad-namespace": ns or ""},
            )
        _edit(result, top, node, local, _operation(top, default_op), ns)
    return schema.fill_keys(result)


def _operation(element: ET.Element, inherited: str) -> str:
    op = element.get(_OPERATION) or element.get("operation")
    if op is None:
        return inherited
    if op not in EDIT_OPERATIONS:
        raise RpcFailure(
            "bad-attribute",
            f"unknown operation '{op}'",
            error_type="protocol",
            info={"bad-attribute": "operation", "bad-element": split_tag(element.tag)[1]},
        )
    return op


def _children(element: ET.Element, ns: str) -> Iterable[tuple[str, ET.Element]]:
    for child in element:
        child_ns, local = split_tag(child.tag)
        if child_ns is not None and child_ns != ns:
            raise RpcFailure(
                "unknown-namespace",
                f"element '{local}' is in an unknown namespace",
                info={"bad-element": local, "bad-namespace": child_ns},
            )
        yield local, child


def _container_op(leaves: Leaves, prefix: str, op: str) -> bool:
    """Apply an operation to a container or list entry; returns whether to descend into the
    children (not after delete or remove, which take the whole subtree)."""
    present = schema.below(leaves, prefix)
    where = schema.instance_path(prefix)
    if op == "create" and present:
        raise RpcFailure("data-exists", f"{where} already exists", path=where)
    if op == "delete" and not present:
        raise RpcFailure("data-missing", f"{where} does not exist", path=where)
    if op in ("replace", "delete", "remove"):
        for path in present:
            del leaves[path]
    return op not in ("delete", "remove")


def _edit(
    leaves: Leaves, element: ET.Element, node: schema.Node, path: str, op: str, ns: str
) -> None:
    """Apply one element of an edit: `node` is its schema node, `path` its leaf-path prefix."""
    if node.kind == "leaf":
        _edit_leaf(leaves, element, node, path, op)
        return
    key_value = ""
    if node.kind == "list":
        path, key_value = _entry_path(element, node, path, ns)
    if not _container_op(leaves, path, op):
        return
    if node.kind == "list" and node.key is not None and op in ("merge", "replace", "create"):
        # An entry named by its key alone exists too: it has its config/<key> leaf.
        leaves[f"{path}/config/{node.key}"] = schema.typed_key(node, key_value)
    for local, child in _children(element, ns):
        if node.kind == "list" and local == node.key:
            continue  # the key, already in the path
        child_node = node.child(local)
        if child_node is None:
            if local == "state":
                raise RpcFailure(
                    "invalid-value",
                    "state is read-only (config false)",
                    path=schema.instance_path(f"{path}/state"),
                )
            raise RpcFailure(
                "unknown-element",
                f"unknown element '{local}' in {node.name}",
                path=schema.instance_path(path),
                info={"bad-element": local},
            )
        _edit(leaves, child, child_node, f"{path}/{local}", _operation(child, op), ns)


def _entry_path(element: ET.Element, node: schema.Node, path: str, ns: str) -> tuple[str, str]:
    """A list entry's path and key, from its key child: `.../interface` ->
    (`.../interface[name=eth1]`, "eth1")."""
    key = node.key or ""
    key_element = next((c for local, c in _children(element, ns) if local == key), None)
    text = (key_element.text or "").strip() if key_element is not None else ""
    parent = path.rpartition("/")[0]
    if not text:
        raise RpcFailure(
            "missing-element",
            f"{node.name} entry without its key '{key}'",
            path=schema.instance_path(parent or path),
            info={"bad-element": key},
        )
    try:
        value = schema.canonical_key(node, text)
    except ValueError:
        raise RpcFailure(
            "invalid-value",
            f"'{text}' is not an integer",
            path=schema.instance_path(f"{path}/{key}"),
        ) from None
    return f"{path}[{key}={value}]", value


def _edit_leaf(leaves: Leaves, element: ET.Element, node: schema.Node, path: str, op: str) -> None:
    where = schema.instance_path(path)
    if len(element):
        raise RpcFailure(
            "unknown-element",
            f"{node.name} is a leaf: it has no child elements",
            path=where,
            info={"bad-element": split_tag(element[0].tag)[1]},
        )
    if op in ("delete", "remove"):
        if path not in leaves and op == "delete":
            raise RpcFailure("data-missing", f"{where} does not exist", path=where)
        leaves.pop(path, None)
    elif op == "create" and path in leaves:
        raise RpcFailure("data-exists", f"{where} already exists", path=where)
    elif op != "none":
        leaves[path] = coerce_leaf(path, (element.text or "").strip())


def parse_default_operation(text: str | None) -> str:
    op = (text or "merge").strip()
    if op not in DEFAULT_OPERATIONS:
        raise RpcFailure(
            "invalid-value", f"unknown default-operation '{op}'", error_type="protocol"
        )
    return op


# --- filters ----------------------------------------------------------------------------------


def subtree_filter(data: ET.Element, flt: ET.Element) -> ET.Element:
    """RFC 6241 section 6: containment, selection and content-match nodes."""
    out = ET.Element("data")
    _filter_level(flt, data, out, schema.ROOT, None)
    return out


def _matches(f: ET.Element, d: ET.Element, tree_ns: str | None) -> bool:
    """Does filter node `f` select data node `d`? `tree_ns` is the namespace of the tree they
    are in (None at the top, where each container has its own)."""
    ns, local = split_tag(f.tag)
    if local != d.tag:
        return False
    if ns is None:
        return True
    if tree_ns is None:
        return TOP_NAMESPACES.get(local) == ns
    return ns == tree_ns


def _filter_level(
    fparent: ET.Element,
    dparent: ET.Element,
    out: ET.Element,
    node: schema.Node | None,
    tree_ns: str | None,
) -> bool:
    """Filter the children of `dparent` (schema node `node`, None outside the config model)
    into `out`; returns whether anything was selected."""
    filters = list(fparent)
    content = [f for f in filters if not len(f) and (f.text or "").strip()]
    others = [f for f in filters if f not in content]
    for f in content:
        wanted = (f.text or "").strip()
        if not any(_matches(f, d, tree_ns) and (d.text or "").strip() == wanted for d in dparent):
            return False
    if not others:
        out.extend(copy.deepcopy(d) for d in dparent)  # only content matches: the whole entry
        return True
    added = False
    for f in content:
        out.extend(copy.deepcopy(d) for d in dparent if _matches(f, d, tree_ns))
    for f in others:
        for d in dparent:
            if not _matches(f, d, tree_ns):
                continue
            if not len(f):  # a selection node
                out.append(copy.deepcopy(d))
                added = True
                continue
            branch = ET.Element(d.tag)
            child = node.child(d.tag) if node is not None else None
            if _filter_level(f, d, branch, child, tree_ns or TOP_NAMESPACES.get(d.tag)):
                out.append(branch)
                added = True
    if added and not content:
        _keep_key(dparent, out, node)
    return added


def _key_of(element: ET.Element, node: schema.Node | None) -> ET.Element | None:
    """A list entry's key leaf element (None when `element` is not a list entry)."""
    if node is None or node.kind != "list" or node.key is None:
        return None
    return element.find(node.key)


def _keep_key(dparent: ET.Element, out: ET.Element, node: schema.Node | None) -> None:
    """List entries keep their key leaf in the output, so the client can tell them apart."""
    key = _key_of(dparent, node)
    if key is not None and out.find(key.tag) is None:
        out.insert(0, copy.deepcopy(key))


_PREFIX = re.compile(r"(?<![\w.\-'\"])[A-Za-z_][\w.\-]*:(?=[A-Za-z_*])")


def xpath_filter(data: ET.Element, select: str) -> ET.Element:
    """The XPath subset ElementTree understands: location paths with `[key='value']` predicates,
    `*`, `//`, and unions with `|`. Prefixes are ignored (each top-level container has one
    namespace, and local names are enough to tell the nodes apart)."""
    out = ET.Element("data")
    parents = {child: parent for parent in data.iter() for child in parent}
    copies: dict[int, ET.Element] = {id(data): out}
    for branch in select.split("|"):
        path = _element_path(branch)
        try:
            found = data.findall(path)
        except (SyntaxError, KeyError) as exc:
            raise RpcFailure(
                "invalid-value",
                f"unsupported or invalid XPath '{branch.strip()}': {exc}",
                error_type="protocol",
            ) from None
        for element in found:
            _copy_with_ancestors(element, parents, copies)
    return out


def _element_path(xpath: str) -> str:
    text = _PREFIX.sub("", xpath.strip())
    text = re.sub(r"\s+(?=(?:[^'\"]*['\"][^'\"]*['\"])*[^'\"]*$)", "", text)  # drop spaces
    if text.startswith("//"):
        return "." + text
    if text.startswith("/"):
        return text[1:] or "."
    return text


def _copy_with_ancestors(
    element: ET.Element, parents: Mapping[ET.Element, ET.Element], copies: dict[int, ET.Element]
) -> None:
    chain = [element]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    chain.reverse()  # data, ..., element
    nodes: list[schema.Node | None] = [schema.ROOT]  # the schema node of each chain element
    for depth in range(1, len(chain)):
        parent_node = nodes[-1]
        nodes.append(parent_node.child(chain[depth].tag) if parent_node is not None else None)
    for depth in range(1, len(chain)):
        node = chain[depth]
        if id(node) in copies:
            continue
        parent_copy = copies[id(chain[depth - 1])]
        if node is element:
            parent_key = _key_of(chain[depth - 1], nodes[depth - 1])
            if parent_key is node and parent_copy.find(node.tag) is not None:
                continue  # a list key, already copied with its entry
            clone = copy.deepcopy(node)
        else:
            clone = ET.Element(node.tag)
            key = _key_of(node, nodes[depth])
            if key is not None:
                clone.append(copy.deepcopy(key))
        parent_copy.append(clone)
        copies[id(node)] = clone
        if node is element:
            for sub in node.iter():
                copies[id(sub)] = clone  # already fully copied: nothing below it is added again

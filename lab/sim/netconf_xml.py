"""OpenConfig interfaces XML <-> SimDevice leaves, for the simulated NETCONF server.

Data trees are built with *local* tag names (`interfaces`, `interface`, `config`, ...): the
simulated device serves one YANG module, so the namespace is added once, on the top element,
when a reply is serialised (`with_namespaces`). Incoming XML (edit-config, filters) is checked
against that namespace and then compared by local name.

Uses the standard library's ElementTree: the lab parses only what its own test clients send,
and ElementTree's path language covers the XPath subset the simulated device supports.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping

from lab.sim.datastore import (
    CONFIG_LEAF_TYPES,
    OC_INTERFACES_NS,
    RpcFailure,
    coerce_leaf,
    error_path,
)
from lab.sim.model import LeafValue, Leaves, SimDevice, iface_path, split_path

BASE_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
_OPERATION = f"{{{BASE_NS}}}operation"
# The top-level containers the device serves and the namespace of each.
TOP_NAMESPACES = {"interfaces": OC_INTERFACES_NS}
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
    """<data> for get-config (config only) or get (config and state), interface by interface."""
    ordered: list[tuple[str, LeafValue]] = list(config.items())
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
    """The datastore content after applying an edit-config <config> (RFC 6241 section 7.2)."""
    result: Leaves = dict(current)
    for top in config:
        ns, local = split_tag(top.tag)
        if local not in TOP_NAMESPACES:
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
        _edit_interfaces(result, top, _operation(top, default_op))
    return result


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


def _children(element: ET.Element) -> Iterable[tuple[str, ET.Element]]:
    for child in element:
        ns, local = split_tag(child.tag)
        if ns is not None and ns != OC_INTERFACES_NS:
            raise RpcFailure(
                "unknown-namespace",
                f"element '{local}' is in an unknown namespace",
                info={"bad-element": local, "bad-namespace": ns},
            )
        yield local, child


def _subtree(leaves: Leaves, prefix: str) -> list[str]:
    return [p for p in leaves if p == prefix or p.startswith(prefix + "/")]


def _container_op(leaves: Leaves, prefix: str, op: str, where: str) -> bool:
    """Apply a container-level operation; returns whether to descend into the children."""
    present = _subtree(leaves, prefix)
    if op == "create" and present:
        raise RpcFailure("data-exists", f"{where} already exists", path=where)
    if op == "delete" and not present:
        raise RpcFailure("data-missing", f"{where} does not exist", path=where)
    if op in ("replace", "delete", "remove"):
        for path in present:
            del leaves[path]
    return op not in ("delete", "remove")


def _edit_interfaces(leaves: Leaves, element: ET.Element, op: str) -> None:
    if not _container_op(leaves, "interfaces", op, error_path()):
        return
    for local, child in _children(element):
        if local != "interface":
            raise RpcFailure(
                "unknown-element",
                f"unknown element '{local}' in interfaces",
                path=error_path(),
                info={"bad-element": local},
            )
        _edit_interface(leaves, child, _operation(child, op))


def _edit_interface(leaves: Leaves, element: ET.Element, op: str) -> None:
    name_element = next((c for local, c in _children(element) if local == "name"), None)
    ifname = (name_element.text or "").strip() if name_element is not None else ""
    if not ifname:
        raise RpcFailure(
            "missing-element",
            "interface entry without its key 'name'",
            path=error_path(),
            info={"bad-element": "name"},
        )
    where = error_path(ifname)
    if not _container_op(leaves, f"interfaces/interface[name={ifname}]", op, where):
        return
    for local, child in _children(element):
        if local == "name":
            continue
        if local == "config":
            _edit_config(leaves, ifname, child, _operation(child, op))
        elif local == "state":
            raise RpcFailure(
                "invalid-value",
                "state is read-only (config false)",
                path=error_path(ifname, "state"),
            )
        else:
            raise RpcFailure(
                "unknown-element",
                f"unknown element '{local}' in interface",
                path=where,
                info={"bad-element": local},
            )


def _edit_config(leaves: Leaves, ifname: str, element: ET.Element, op: str) -> None:
    prefix = iface_path(ifname, "config")
    if not _container_op(leaves, prefix, op, error_path(ifname, "config")):
        return
    for local, child in _children(element):
        if local not in CONFIG_LEAF_TYPES or len(child):
            raise RpcFailure(
                "unknown-element",
                f"unknown element '{local}' in interface config",
                path=error_path(ifname, "config"),
                info={"bad-element": local},
            )
        leaf_op = _operation(child, op)
        path = iface_path(ifname, f"config/{local}")
        where = error_path(ifname, f"config/{local}")
        if leaf_op in ("delete", "remove"):
            if path not in leaves and leaf_op == "delete":
                raise RpcFailure("data-missing", f"{where} does not exist", path=where)
            leaves.pop(path, None)
        elif leaf_op == "create" and path in leaves:
            raise RpcFailure("data-exists", f"{where} already exists", path=where)
        elif leaf_op != "none":
            leaves[path] = coerce_leaf(ifname, local, (child.text or "").strip())


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
    _filter_level(flt, data, out, top=True)
    return out


def _matches(f: ET.Element, d: ET.Element, top: bool) -> bool:
    ns, local = split_tag(f.tag)
    if local != d.tag:
        return False
    if top and ns is not None:
        return TOP_NAMESPACES.get(local) == ns
    return ns is None or ns == OC_INTERFACES_NS


def _filter_level(fparent: ET.Element, dparent: ET.Element, out: ET.Element, top: bool) -> bool:
    filters = list(fparent)
    content = [f for f in filters if not len(f) and (f.text or "").strip()]
    others = [f for f in filters if f not in content]
    for f in content:
        wanted = (f.text or "").strip()
        if not any(_matches(f, d, top) and (d.text or "").strip() == wanted for d in dparent):
            return False
    if not others:
        out.extend(copy.deepcopy(d) for d in dparent)  # only content matches: the whole entry
        return True
    added = False
    for f in content:
        out.extend(copy.deepcopy(d) for d in dparent if _matches(f, d, top))
    for f in others:
        for d in dparent:
            if not _matches(f, d, top):
                continue
            if not len(f):  # a selection node
                out.append(copy.deepcopy(d))
                added = True
                continue
            branch = ET.Element(d.tag)
            if _filter_level(f, d, branch, top=False):
                out.append(branch)
                added = True
    if added and not content:
        _keep_key(dparent, out)
    return added


def _keep_key(dparent: ET.Element, out: ET.Element) -> None:
    """List entries keep their key leaf in the output, so the client can tell them apart."""
    key = dparent.find("name") if dparent.tag == "interface" else None
    if key is not None and out.find("name") is None:
        out.insert(0, copy.deepcopy(key))


_PREFIX = re.compile(r"(?<![\w.\-'\"])[A-Za-z_][\w.\-]*:(?=[A-Za-z_*])")


def xpath_filter(data: ET.Element, select: str) -> ET.Element:
    """The XPath subset ElementTree understands: location paths with `[key='value']` predicates,
    `*`, `//`, and unions with `|`. Prefixes are ignored (the device serves one module)."""
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
    for depth in range(1, len(chain)):
        node = chain[depth]
        if id(node) in copies:
            continue
        parent_copy = copies[id(chain[depth - 1])]
        if node is element:
            if node.tag == "name" and parent_copy.find("name") is not None:
                continue  # a list key, already copied with its entry
            clone = copy.deepcopy(node)
        else:
            clone = ET.Element(node.tag)
            key = node.find("name") if node.tag == "interface" else None
            if key is not None:
                clone.append(copy.deepcopy(key))
        parent_copy.append(clone)
        copies[id(node)] = clone
        if node is element:
            for sub in node.iter():
                copies[id(sub)] = clone  # already fully copied: nothing below it is added again

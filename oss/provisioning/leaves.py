"""Configuration as leaves: `{path: text}` in gNMI path syntax, whatever protocol carried it.

Rendered payloads (NETCONF XML, gNMI JSON updates, CLI lines) and the running configuration
read back from a device all become leaves, so diff, verify, drift and pre-images are one piece
of code for every protocol. Values are compared as text (`true`, `9000`): each protocol's
typing differs, the configured value does not.

List entries appear in paths with their key (`interfaces/interface[name=eth1]/config/mtu`);
which leaf is a list's key is data from the platform (`model.list_keys`).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lxml import etree  # type: ignore[import-untyped]

from drivers.platforms import CliOptions, ModelOptions
from oss.errors import InvalidInput
from oss.provisioning import cli_blocks

Leaves = dict[str, str]
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
_OPERATION = f"{{{NC_NS}}}operation"
_REMOVING = ("remove", "delete")
_XML_PARSER = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)


@dataclass(frozen=True)
class Intent:
    """What a rendered payload asks of one device: leaves to hold and entries to remove."""

    leaves: dict[str, Any]  # text, or typed values where the protocol is typed (gNMI JSON)
    removals: tuple[str, ...] = ()


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- paths ----------------------------------------------------------------------------------


def elements(path: str) -> list[str]:
    """`a/b[k=x/y]/c` -> ["a", "b[k=x/y]", "c"] (slashes inside keys do not split)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(path):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "/" and depth == 0:
            parts.append(path[start:i])
            start = i + 1
    if path[start:]:
        parts.append(path[start:])
    return [p for p in parts if p]


def schema_path(path: str) -> str:
    """The path without list keys: `a/b[k=v]/c` -> `a/b/c`."""
    return "/".join(re.sub(r"\[.*\]$", "", part) for part in elements(path))


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def in_scope(path: str, prefixes: Iterable[str]) -> bool:
    return any(under(path, prefix) for prefix in prefixes)


class KeyMap:
    """Which leaf keys a list, by the longest matching suffix of its schema path."""

    def __init__(self, model: ModelOptions) -> None:
        self._by_suffix = {tuple(k.split("/")): v for k, v in model.list_keys.items()}
        self._longest = max((len(s) for s in self._by_suffix), default=0)
        # answers by the schema's last elements (all a suffix can see): a walk asks for every
        # element of every reply, and the same few shapes come back
        self._known: dict[tuple[str, ...], str | None] = {}

    def key_of(self, schema: list[str]) -> str | None:
        tail = tuple(schema[-self._longest :]) if self._longest else ()
        try:
            return self._known[tail]
        except KeyError:
            pass
        best: tuple[int, str | None] = (0, None)
        for suffix, key in self._by_suffix.items():
            n = len(suffix)
            if n > best[0] and tail[-n:] == suffix:
                best = (n, key)
        self._known[tail] = best[1]
        return best[1]


_KEY_MAPS: dict[int, tuple[ModelOptions, KeyMap]] = {}
_KEY_MAPS_KEPT = 64


def key_map(model: ModelOptions) -> KeyMap:
    """The model's KeyMap, kept with its answers: platforms are loaded once, and a KeyMap's
    lookups are most of reading a reply as leaves. Held by identity next to the model itself
    (the model is frozen but holds dicts, so it cannot be hashed); a few models at most."""
    kept = _KEY_MAPS.get(id(model))
    if kept is None or kept[0] is not model:
        if len(_KEY_MAPS) >= _KEY_MAPS_KEPT:
            _KEY_MAPS.clear()
        kept = _KEY_MAPS[id(model)] = (model, KeyMap(model))
    return kept[1]


# --- XML --------------------------------------------------------------------------------------


def _local(tag: Any) -> str | None:
    if not isinstance(tag, str):
        return None  # a comment or processing instruction
    return tag.rpartition("}")[2]  # "{namespace}name" or "name"


_HOLDER_START = re.compile(r"\s*<(?:[\w.-]+:)?(?:config|data)[\s/>]")


def _parse_xml(payload: str) -> Any:
    if not payload.lstrip().startswith("<"):
        raise InvalidInput(f"configuration is not XML: {payload.strip()[:60]!r}")
    if not _HOLDER_START.match(payload):
        # Rendered payloads are mostly several top-level containers: wrapped at once rather
        # than after a failed parse (an lxml error costs more than the parse itself).
        try:
            return etree.fromstring(f"<config>{payload}</config>".encode(), parser=_XML_PARSER)
        except etree.XMLSyntaxError:
            pass  # an XML declaration, or not well-formed: said below as the payload's error
    try:
        root = etree.fromstring(payload.encode(), parser=_XML_PARSER)
    except etree.XMLSyntaxError as first:
        # Several top-level elements are fine (they get a <config> around them); anything
        # else is reported as the payload's own error, not the wrapper's.
        try:
            root = etree.fromstring(f"<config>{payload}</config>".encode(), parser=_XML_PARSER)
        except etree.XMLSyntaxError:
            raise InvalidInput(f"configuration XML is not well-formed: {first}") from None
    if _local(root.tag) in ("config", "data"):
        return root
    holder = etree.Element("config")
    holder.append(root)
    return holder


def xml_intent(payload: str, model: ModelOptions) -> Intent:
    """Leaves of an XML payload or a <data> reply; entries marked nc:operation remove/delete
    are removals (their leaves are not intended)."""
    return element_intent(_parse_xml(payload), model)


def element_intent(root: Any, model: ModelOptions) -> Intent:
    """`xml_intent` of an element already parsed (a reply's <data>, as the NETCONF driver
    hands it over: parsed once, not written out and read again); its children are the
    top-level containers."""
    keys = key_map(model)
    leaves: Leaves = {}
    removals: list[str] = []

    def walk(element: Any, path: str, schema: list[str], skip: str | None) -> None:
        for child in element:
            tag = child.tag
            if not isinstance(tag, str):
                continue  # a comment or processing instruction
            name = tag.rpartition("}")[2]  # as _local, inline: every element of every read
            if name == skip:
                continue  # the entry's key leaf (already in the path)
            child_schema = [*schema, name]
            key = keys.key_of(child_schema)
            segment = name
            if key is not None:
                key_element = next((c for c in child if _local(c.tag) == key), None)
                if key_element is None:
                    raise InvalidInput(f"list entry {path}/{name} has no key leaf <{key}>")
                segment = f"{name}[{key}={(key_element.text or '').strip()}]"
            child_path = f"{path}/{segment}" if path else segment
            if child.get(_OPERATION) in _REMOVING:
                removals.append(child_path)
            elif key is None and not (len(child) and _has_elements(child)):
                if path:  # an empty top-level container holds nothing
                    value = child.text or ""
                    if len(child):  # text around comments inside the leaf is one value
                        value += "".join(c.tail or "" for c in child)
                    leaves[child_path] = value.strip()
            else:
                walk(child, child_path, child_schema, key)

    walk(root, "", [], None)
    return Intent(leaves, tuple(removals))


def _has_elements(element: Any) -> bool:
    return any(isinstance(c.tag, str) for c in element)  # comments are not children


def leaves_to_xml(intent: Intent, model: ModelOptions) -> str:
    """A NETCONF <config> that sets `intent.leaves` and removes `intent.removals`; the
    inverse of `xml_intent` (used to put a pre-image back)."""
    root = etree.Element("config", nsmap={"nc": NC_NS})
    index: dict[tuple[int, str], Any] = {}

    def node(path_parts: list[str]) -> Any:
        parent, ns = root, None
        for part in path_parts:
            name, _, rest = part.partition("[")
            if parent is root:
                ns = model.namespaces.get(name)  # descendants stay in their module's namespace
            found = index.get((id(parent), part))
            if found is None:
                found = etree.SubElement(parent, f"{{{ns}}}{name}" if ns else name)
                if rest:
                    key_name, _, value = rest[:-1].partition("=")
                    key_tag = f"{{{ns}}}{key_name}" if ns else key_name
                    etree.SubElement(found, key_tag).text = value
                index[(id(parent), part)] = found
            parent = found
        return parent

    for path in intent.removals:
        node(elements(path)).set(_OPERATION, "remove")
    for path, value in intent.leaves.items():
        node(elements(path)).text = text(value)
    return str(etree.tostring(root, encoding="unicode"))


def subtree_filters(intent: Intent, owned: Iterable[str], model: ModelOptions) -> list[str]:
    """NETCONF subtree filters (one per top-level container, all sent in one get-config) that
    select what `diff` compares: each entry the change owns or removes, whole, and each
    intended leaf outside them; list entries by their keys (content-match nodes, RFC 6241
    6.2.5). A device answers with just these instead of whole top-level containers."""
    whole: list[str] = []
    for path in sorted({*owned, *intent.removals}, key=lambda p: len(elements(p))):
        if not in_scope(path, whole):
            whole.append(path)
    chosen = [*whole, *(p for p in intent.leaves if not in_scope(p, whole))]
    tops: dict[str, Any] = {}
    index: dict[tuple[int, str], Any] = {}
    for path in chosen:
        parts = elements(path)
        top, _, _ = parts[0].partition("[")
        ns = model.namespaces.get(top)
        parent: Any = None
        for part in parts:
            name, _, rest = part.partition("[")
            found = index.get((id(parent), part))
            if found is None:
                tag = f"{{{ns}}}{name}" if ns else name
                if parent is None:
                    found = etree.Element(tag, nsmap={None: ns} if ns else None)
                    tops[part] = found
                else:
                    found = etree.SubElement(parent, tag)
                if rest:
                    key_name, _, value = rest[:-1].partition("=")
                    etree.SubElement(found, f"{{{ns}}}{key_name}" if ns else key_name).text = value
                index[(id(parent), part)] = found
            parent = found
    return [str(etree.tostring(tops[t], encoding="unicode")) for t in sorted(tops)]


# --- gNMI JSON --------------------------------------------------------------------------------


def json_tree_leaves(
    base: str, value: Any, model: ModelOptions, *, typed: bool = False
) -> dict[str, Any]:
    """Leaves of a JSON value found at `base` (a gNMI Get answer or a Set update); lists
    (arrays of objects) are keyed through the model's list keys."""
    keys = KeyMap(model)
    leaves: dict[str, Any] = {}

    def walk(path: str, item: Any) -> None:
        if isinstance(item, dict):
            for name, child in item.items():
                name = name.split(":", 1)[-1]  # json_ietf module prefixes
                child_path = f"{path}/{name}" if path else name
                if isinstance(child, list) and child and all(isinstance(c, dict) for c in child):
                    key = keys.key_of(schema_path(child_path).split("/"))
                    if key is None:
                        raise InvalidInput(f"{child_path}: a list whose key the model lacks")
                    for entry in child:
                        entry = {k.split(":", 1)[-1]: v for k, v in entry.items()}
                        if entry.get(key) is None:
                            raise InvalidInput(f"{child_path}: a list entry without its key {key}")
                        entry_path = f"{child_path}[{key}={text(entry[key])}]"
                        walk(entry_path, {k: v for k, v in entry.items() if k != key})
                else:
                    walk(child_path, child)
        elif isinstance(item, list):
            leaves[path] = item if typed else json.dumps(item)
        else:
            leaves[path] = item if typed else text(item)

    walk(base, value)
    return leaves


def gnmi_intent(payload: str, model: ModelOptions) -> Intent:
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"gNMI payload is not JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) - {"update", "delete"}:
        raise InvalidInput('a gNMI payload is an object with "update" and "delete" lists')
    leaves: Leaves = {}
    for update in data.get("update", []):
        path = str(update["path"]).strip("/")
        leaves.update(json_tree_leaves(path, update["value"], model, typed=True))
    removals = tuple(str(p).strip("/") for p in data.get("delete", []))
    return Intent(leaves, removals)


def gnmi_payload(intent: Intent) -> str:
    """A gNMI payload (the templates' JSON form) that applies `intent` leaf by leaf."""
    updates = [{"path": path, "value": value} for path, value in intent.leaves.items()]
    return json.dumps({"delete": list(intent.removals), "update": updates}, indent=1)


def gnmi_updates(payload: str) -> tuple[list[tuple[str, Any]], list[str]]:
    data = json.loads(payload)
    updates = [(str(u["path"]).strip("/"), u["value"]) for u in data.get("update", [])]
    return updates, [str(p).strip("/") for p in data.get("delete", [])]


# --- CLI lines --------------------------------------------------------------------------------


def cli_lines(payload: str) -> list[str]:
    return [line.strip() for line in payload.splitlines() if line.strip()]


def cli_intent(payload: str, options: CliOptions) -> Intent:
    """Leaves of `set` lines and removals of `delete` lines, by the platform's line formats."""
    if options.syntax == "blocks":
        held, removed = cli_blocks.parse(payload, options, removals=True)
        return Intent(
            {"/".join(p): v for p, v in held.items()}, tuple("/".join(p) for p in removed)
        )
    set_re = re.compile(options.config_line)
    delete_re = _format_regex(options.delete_line)
    leaves: Leaves = {}
    removals: list[str] = []
    for line in cli_lines(payload):
        match = set_re.match(line)
        if match is not None:
            leaves[match["path"]] = _unquote(match["value"])
            continue
        match = delete_re.match(line)
        if match is None:
            raise InvalidInput(f"configuration line not understood: {line!r}")
        removals.append(match["path"])
    return Intent(leaves, tuple(removals))


def cli_running(output: str, options: CliOptions) -> Leaves:
    """Leaves of a `show running-config` answer (lines that are not config are skipped)."""
    if options.syntax == "blocks":
        held, _ = cli_blocks.parse(output, options, removals=False)
        return {"/".join(p): v for p, v in held.items()}
    set_re = re.compile(options.config_line, re.MULTILINE)
    return {m["path"]: _unquote(m["value"]) for m in set_re.finditer(output)}


def cli_render(intent: Intent, options: CliOptions) -> list[str]:
    """Lines that remove `intent.removals`, then set `intent.leaves`."""
    if options.syntax == "blocks":
        leaves = [(tuple(elements(p)), text(v)) for p, v in intent.leaves.items()]
        return cli_blocks.render(leaves, [tuple(elements(p)) for p in intent.removals], options)
    lines = [options.delete_line.format(path=p) for p in intent.removals]
    lines += [
        options.set_line.format(path=p, value=shlex.quote(v)) for p, v in intent.leaves.items()
    ]
    return lines


def _format_regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template).replace(r"\{path\}", r"(?P<path>\S+)")
    return re.compile(f"^{pattern}$")


def _unquote(value: str) -> str:
    try:
        parts = shlex.split(value)
    except ValueError:
        return value.strip()
    return " ".join(parts) if len(parts) != 1 else parts[0]


# --- diff -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    op: Literal["add", "change", "remove"]
    path: str
    old: str | None = None
    new: str | None = None

    def line(self) -> str:
        """`+ path = value`; a leaf without a value (a CLI line that is all name, FRR's
        `neighbor X remote-as N`) is just `+ path`."""
        if self.op == "add":
            return f"+ {self.path} = {self.new}" if self.new else f"+ {self.path}"
        if self.op == "remove":
            return f"- {self.path} = {self.old}" if self.old else f"- {self.path}"
        return f"~ {self.path}: {self.old} -> {self.new}"

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "path": self.path, "old": self.old, "new": self.new}


def diff(intended: Intent, owned: Iterable[str], running: Mapping[str, str]) -> list[Change]:
    """What must change on a device so it holds `intended`: its leaves set, nothing else under
    the entries the service owns, and its removals gone."""
    owned = tuple(owned)
    changes: list[Change] = []
    for path, typed in intended.leaves.items():
        value, old = text(typed), running.get(path)
        if old is None:
            changes.append(Change("add", path, new=value))
        elif old != value:
            changes.append(Change("change", path, old=old, new=value))
    gone = (*owned, *intended.removals)
    for path in sorted(running):
        if path not in intended.leaves and in_scope(path, gone):
            changes.append(Change("remove", path, old=running[path]))
    return changes


def scope_of(intended: Intent, owned: Iterable[str]) -> list[str]:
    """Top-level containers a read must cover to see everything `diff` compares."""
    roots = {elements(p)[0] for p in (*intended.leaves, *intended.removals, *owned)}
    return sorted(roots)


def restrict(running: Mapping[str, str], intended: Intent, owned: Iterable[str]) -> Leaves:
    """The part of a running configuration a change touches: its leaves and owned entries."""
    owned = (*owned, *intended.removals)
    return {
        path: value
        for path, value in running.items()
        if path in intended.leaves or in_scope(path, owned)
    }


def restore_intent(
    pre_image: Mapping[str, Any],
    current: Mapping[str, Any],
    touched: Intent,
    owned: Iterable[str],
) -> Intent:
    """What puts a device holding `current` back to `pre_image` after `touched` was (perhaps
    partly) applied: entries and leaves that are there now but were not before are removed;
    pre-image leaves that are missing or differ are set again. Nothing else is sent, so
    undoing a change that never landed sends nothing."""
    owned = tuple(owned)
    scope = (*owned, *touched.removals)
    candidates = [*scope, *(p for p in touched.leaves if not in_scope(p, owned))]
    removals = [
        entry
        for entry in dict.fromkeys(candidates)
        if any(under(path, entry) for path in current)
        and not any(under(path, entry) for path in pre_image)
    ]
    # Inside entries that were there before: what the change added (a new address entry, a
    # new leaf) goes, as a whole entry when the entry itself is new.
    for path in current:
        if path in pre_image or in_scope(path, removals):
            continue
        if path not in touched.leaves and not in_scope(path, scope):
            continue
        entry = _innermost_entry(path)
        gone = entry is not None and not any(under(p, entry) for p in pre_image)
        removals.append(entry if gone and entry is not None else path)
    removals = [
        r for r in dict.fromkeys(removals) if not in_scope(r, [x for x in removals if x != r])
    ]
    leaves = {
        path: value
        for path, value in pre_image.items()
        if path not in current or text(current[path]) != text(value)
    }
    return Intent(leaves, tuple(removals))


def _innermost_entry(path: str) -> str | None:
    """`a/b[k=1]/c[j=2]/d/e` -> `a/b[k=1]/c[j=2]`; None when no list entry is on the path."""
    parts = elements(path)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].endswith("]"):
            return "/".join(parts[: i + 1])
    return None

"""containerlab topology files: parse them into inventory models and export the inventory back.

We read the subset of the format that describes the network: nodes (kind, image, management
address, labels) and links in the brief `endpoints: ["r1:eth1", "r2:eth1"]` form. Everything else
containerlab knows (startup-config, binds, env, ports, ...) is accepted and ignored. Inventory
facts containerlab has no field for travel as `oss.*` node labels and link `vars`.

A file is rejected as a whole: every problem is collected, each with its file and line, so an
engineer fixes them all in one pass. Lines come from the node tree the kernel's
`oss.yaml_lines.compose_yaml` reads, which keeps the position of every node and every duplicate
key; this module walks it itself, since a node name may hold dots (no dotted key paths here).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from oss.errors import InvalidInput, Problem, TopologyFileError
from oss.yaml_lines import YamlSyntaxError, compose_yaml
from topology.graph import natural_key
from topology.model import (
    Device,
    DeviceState,
    Endpoint,
    Interface,
    Link,
    LinkState,
    Site,
    parse_latency_us,
    parse_rate,
)

# Our node labels and the Device field each one fills.
LABELS = {
    "oss.role": "role",
    "oss.site": "site",
    "oss.platform": "platform",
    "oss.credentials-ref": "credentials_ref",
    "oss.state": "state",
    "oss.loopback": "loopback",
}
# Labels that fill no Device field: the namespace lab (lab.netns) reads them from the source.
LAB_LABELS = ("oss.bgp-asn", "oss.lab-profile")

_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_NAME_HINT = "use letters, digits, '_', '.' and '-', starting with a letter or digit (max 63)"
_PATTERN_HINTS = {
    "name": _NAME_HINT,
    "role": _NAME_HINT,
    "site": _NAME_HINT,
    "platform": _NAME_HINT,
    "device": _NAME_HINT,
    "credentials_ref": "must be env:VAR, file:/path or vault:path",
    "interface": "use letters, digits and '_', '.', ':', '/', '-' (max 64)",
}


@dataclass(frozen=True)
class ClabNodeSource:
    """A node as written: what the inventory models keep no trace of."""

    line: int  # of the node's key
    labels: Mapping[str, str]  # every label with a plain value (containerlab's, ours, users')
    mgmt_ipv4: tuple[str, int] | None  # the text and its line


@dataclass(frozen=True)
class ClabLinkSource:
    a: str  # "r1:eth1", as written
    b: str
    line: int
    vars: Mapping[str, str]  # every var with a plain value (capacity, latency, ospf-cost, ...)


@dataclass(frozen=True)
class ClabSource:
    """The file as written, in file order, with lines: the namespace lab plans from it."""

    filename: str
    nodes: Mapping[str, ClabNodeSource]
    links: tuple[ClabLinkSource, ...]
    mgmt_ipv4_subnet: tuple[str, int] | None  # top-level `mgmt: {ipv4-subnet: ...}`


@dataclass(frozen=True)
class ClabTopology:
    """The inventory described by one topology file (links carry no ids yet)."""

    name: str
    sites: list[Site]
    devices: list[Device]
    interfaces: list[Interface]
    links: list[Link]
    source: ClabSource | None = dataclasses.field(default=None, compare=False)  # set by parse_clab


def parse_clab(text: str, filename: str) -> ClabTopology:
    """Parse a containerlab file; raise TopologyFileError listing every problem with its line."""
    reader = _Reader(filename)
    try:
        root = compose_yaml(text)
    except YamlSyntaxError as exc:
        if exc.line is None:  # no position: a reader error (a character YAML forbids, ...)
            raise TopologyFileError(filename, [reader.problem(1, f"YAML: {exc}")]) from None
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise TopologyFileError(
            filename, [reader.problem(exc.line, f"YAML syntax: {reason}")]
        ) from None
    topology = reader.read(root)
    if reader.problems:
        raise TopologyFileError(filename, reader.sorted_problems())
    assert topology is not None  # read() only returns None after recording a problem
    return topology


def export_clab(
    name: str,
    devices: Iterable[Device],
    links: Iterable[Link],
    sites: Iterable[Site] | None = None,
) -> str:
    """Write devices and links as a containerlab file that `parse_clab` reads back unchanged.

    containerlab has no place for sites, so they only appear in a header comment; interfaces
    without a link are not exported (containerlab creates interfaces from links).
    """
    nodes: dict[str, Any] = {}
    for device in sorted(devices, key=lambda d: natural_key(d.name)):
        nodes[device.name] = _node_of(device)
    entries = []
    for link in sorted(links, key=_link_key):
        for end in link.ends():
            if end.device not in nodes:
                raise InvalidInput(f"link {link.a} -- {link.b} names device '{end.device}'")
        link_vars: dict[str, Any] = {"capacity": link.capacity_bps, "latency": link.latency_us}
        if link.state is not LinkState.UP:
            link_vars["state"] = link.state.value
        entries.append({"endpoints": _Flow([str(link.a), str(link.b)]), "vars": link_vars})
    topology: dict[str, Any] = {"nodes": nodes}
    if entries:
        topology["links"] = entries
    body = yaml.dump(
        {"name": name, "topology": topology},
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    header = "# Exported from the oss inventory.\n"
    for site in sorted(sites or [], key=lambda s: natural_key(s.name)):
        header += f"# site {site.name}" + (f": {site.description}" if site.description else "")
        header += "\n"
    return header + body


# ------------------------------------------------------------------------------- export helpers


class _Flow(list[str]):
    """A list written in flow style: `endpoints: [r1:eth1, r2:eth1]`."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as containerlab's own examples do.
        super().increase_indent(flow, False)


_Dumper.add_representer(
    _Flow,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


def _node_of(device: Device) -> dict[str, Any]:
    kind = device.kind or device.platform
    node: dict[str, Any] = {"kind": kind}
    if device.image:
        node["image"] = device.image
    if device.mgmt_address:
        v6 = ipaddress.ip_address(device.mgmt_address).version == 6
        node["mgmt-ipv6" if v6 else "mgmt-ipv4"] = device.mgmt_address
    labels = {"oss.role": device.role}
    if device.site:
        labels["oss.site"] = device.site
    if device.platform != kind:
        labels["oss.platform"] = device.platform
    if device.credentials_ref:
        labels["oss.credentials-ref"] = device.credentials_ref
    if device.state is not DeviceState.ACTIVE:
        labels["oss.state"] = device.state.value
    if device.loopback:
        labels["oss.loopback"] = device.loopback
    node["labels"] = labels
    return node


def _link_key(link: Link) -> tuple[Any, ...]:
    return tuple(natural_key(part) for end in link.ends() for part in (end.device, end.interface))


# -------------------------------------------------------------------------------- the reader

_Entries = dict[str, tuple[ScalarNode, Node]]


class _Reader:
    """Walks the composed YAML tree, building models and collecting located problems."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[tuple[int, Problem]] = []
        self.node_sources: dict[str, ClabNodeSource] = {}
        self.link_sources: list[ClabLinkSource] = []

    # -- problems

    def problem(self, line: int, reason: str) -> Problem:
        return Problem(where=f"{self.filename}:{line}", reason=reason)

    def add(self, node: Node | int, reason: str) -> None:
        line = node if isinstance(node, int) else node.start_mark.line + 1
        found = self.problem(line, reason)
        if all(p != found for _, p in self.problems):  # aliases can make us see a node twice
            self.problems.append((line, found))

    def sorted_problems(self) -> list[Problem]:
        return [p for _, p in sorted(self.problems, key=lambda lp: lp[0])]

    # -- YAML shapes

    def mapping(self, node: Node, what: str) -> _Entries | None:
        """Keys to (key node, value node); duplicate keys are problems, `<<` merges are applied."""
        if not isinstance(node, MappingNode):
            self.add(node, f"{what} must be a mapping")
            return None
        entries: _Entries = {}
        merged: _Entries = {}
        for key, value in node.value:
            if key.tag == _MERGE:
                for source in value.value if isinstance(value, SequenceNode) else [value]:
                    for k, kv in (self.mapping(source, f"merge into {what}") or {}).items():
                        merged.setdefault(k, kv)
                continue
            if not isinstance(key, ScalarNode):
                self.add(key, f"{what}: keys must be plain values")
                continue
            if key.value in entries:
                first = entries[key.value][0].start_mark.line + 1
                self.add(
                    key,
                    f"{what}: '{key.value}' is defined twice, "
                    f"at lines {first} and {key.start_mark.line + 1}",
                )
                continue
            entries[key.value] = (key, value)
        return {**merged, **entries}

    def scalar(self, node: Node, what: str) -> str | None:
        """A scalar's text; None for null or empty (treated as absent)."""
        if isinstance(node, ScalarNode):
            text = str(node.value)
            return None if node.tag == _NULL or text == "" else text
        shape = "a list" if isinstance(node, SequenceNode) else "a mapping"
        self.add(node, f"{what} must be a single value, not {shape}")
        return None

    def get(self, entries: _Entries, key: str, what: str) -> tuple[Node, str] | None:
        if key not in entries:
            return None
        node = entries[key][1]
        text = self.scalar(node, f"{what}: '{key}'")
        return None if text is None else (node, text)

    # -- the file

    def read(self, root: Node | None) -> ClabTopology | None:
        if root is None:
            self.add(1, "the file is empty; expected a mapping with 'name' and 'topology'")
            return None
        top = self.mapping(root, "the file")
        if top is None:
            return None
        name_field = self.get(top, "name", "the file")
        name = name_field[1] if name_field else PurePath(self.filename).name.split(".")[0]
        if "topology" not in top:
            self.add(root, "missing 'topology'")
            return None
        topo_key, topo_node = top["topology"]
        topo = self.mapping(topo_node, "'topology'")
        if topo is None:
            return None
        defaults = self.defaults(topo)
        kind_images = self.kind_images(topo)
        if "nodes" not in topo:
            self.add(topo_key, "missing 'topology.nodes'")
            return None
        nodes = self.mapping(topo["nodes"][1], "'topology.nodes'") or {}
        devices = [
            d
            for d in (
                self.device(name, key, value, defaults, kind_images)
                for name, (key, value) in nodes.items()
            )
            if d is not None
        ]
        links = self.links(topo, set(nodes))
        interfaces = [
            Interface(device=end.device, name=end.interface, speed_bps=link.capacity_bps)
            for link in links
            for end in link.ends()
        ]
        sites = sorted({d.site for d in devices if d.site}, key=natural_key)
        source = ClabSource(
            filename=self.filename,
            nodes=self.node_sources,
            links=tuple(self.link_sources),
            mgmt_ipv4_subnet=self.mgmt_subnet(top),
        )
        return ClabTopology(
            name=name,
            sites=[Site(name=s) for s in sites],
            devices=sorted(devices, key=lambda d: natural_key(d.name)),
            interfaces=sorted(
                interfaces, key=lambda i: (natural_key(i.device), natural_key(i.name))
            ),
            links=sorted(links, key=_link_key),
            source=source,
        )

    def mgmt_subnet(self, top: _Entries) -> tuple[str, int] | None:
        if "mgmt" not in top or _is_null(top["mgmt"][1]):
            return None
        entries = self.mapping(top["mgmt"][1], "'mgmt'") or {}
        found = self.get(entries, "ipv4-subnet", "'mgmt'")
        return None if found is None else (found[1], found[0].start_mark.line + 1)

    def defaults(self, topo: _Entries) -> dict[str, str]:
        if "defaults" not in topo:
            return {}
        node = topo["defaults"][1]
        entries = {} if _is_null(node) else self.mapping(node, "'topology.defaults'") or {}
        found = {k: self.get(entries, k, "'topology.defaults'") for k in ("kind", "image")}
        return {k: v[1] for k, v in found.items() if v is not None}

    def kind_images(self, topo: _Entries) -> dict[str, str]:
        if "kinds" not in topo:
            return {}
        images = {}
        for kind, (_, value) in (self.mapping(topo["kinds"][1], "'topology.kinds'") or {}).items():
            entries = {} if _is_null(value) else self.mapping(value, f"kind '{kind}'") or {}
            image = self.get(entries, "image", f"kind '{kind}'")
            if image is not None:
                images[kind] = image[1]
        return images

    # -- nodes

    def device(
        self,
        name: str,
        key: ScalarNode,
        value: Node,
        defaults: Mapping[str, str],
        kind_images: Mapping[str, str],
    ) -> Device | None:
        what = f"node '{name}'"
        ok = True
        entries = {} if _is_null(value) else self.mapping(value, what)
        if entries is None:
            return None
        # Only what the file states goes into the model (model_fields_set), so a re-import
        # keeps inventory values the file does not mention.
        fields: dict[str, Any] = {"name": name}
        sources: dict[str, tuple[Node, str]] = {"name": (key, "invalid node name")}
        kind = self.get(entries, "kind", what)
        if kind is None and "kind" not in defaults:
            if "kind" not in entries or _is_null(entries["kind"][1]):  # else already reported
                self.add(key, f"{what} has no kind and topology.defaults sets none")
            ok = False
        kind_text = kind[1] if kind else defaults.get("kind", "")
        if kind_text:
            fields["kind"] = fields["platform"] = kind_text
            sources["kind"] = sources["platform"] = (kind[0] if kind else key, "kind")
        image = self.get(entries, "image", what)
        image_text = image[1] if image else kind_images.get(kind_text, defaults.get("image"))
        if image_text:
            fields["image"] = image_text
        ok = self.mgmt_address(entries, what, fields, sources) and ok
        ok = self.labels(entries, what, fields, sources) and ok
        try:
            device = Device(**fields)
        except ValidationError as exc:
            self.add_validation(exc, sources, key)
            return None
        mgmt = self.get(entries, "mgmt-ipv4", what)
        self.node_sources[name] = ClabNodeSource(
            line=key.start_mark.line + 1,
            labels=_plain_values(entries.get("labels")),
            mgmt_ipv4=None if mgmt is None else (mgmt[1], mgmt[0].start_mark.line + 1),
        )
        return device if ok else None

    def mgmt_address(
        self,
        entries: _Entries,
        what: str,
        fields: dict[str, Any],
        sources: dict[str, tuple[Node, str]],
    ) -> bool:
        for key, version in (("mgmt-ipv4", 4), ("mgmt-ipv6", 6)):
            found = self.get(entries, key, what)
            if found is None:
                continue
            node, text = found
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                address = None
            if address is None or address.version != version:
                self.add(node, f"{key} '{text}' is not an IPv{version} address")
                return False
            if "mgmt_address" not in fields:  # prefer IPv4 when both are given
                fields["mgmt_address"] = text
                sources["mgmt_address"] = (node, key)
        return True

    def labels(
        self,
        entries: _Entries,
        what: str,
        fields: dict[str, Any],
        sources: dict[str, tuple[Node, str]],
    ) -> bool:
        if "labels" not in entries:
            return True
        labels = self.mapping(entries["labels"][1], f"{what}: labels")
        if labels is None:
            return False
        ok = True
        for label, (label_key, node) in labels.items():
            if label.startswith("oss.") and label not in (*LABELS, *LAB_LABELS):
                known = ", ".join((*LABELS, *LAB_LABELS))
                self.add(label_key, f"unknown label '{label}' (known: {known})")
                ok = False
                continue
            if label not in LABELS:
                continue  # other labels belong to containerlab or the user
            text = self.scalar(node, f"label '{label}'")
            if text is not None:
                fields[LABELS[label]] = text
                sources[LABELS[label]] = (node, f"label {label}")
        return ok

    def add_validation(
        self, exc: ValidationError, sources: Mapping[str, tuple[Node, str]], fallback: Node
    ) -> None:
        """One readable, located problem per pydantic error."""
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            node, label = sources.get(field, (fallback, field or "value"))
            self.add(node, f"{label} {error['input']!r}: {_readable(field, error)}")

    # -- links

    def links(self, topo: _Entries, node_names: set[str]) -> list[Link]:
        if "links" not in topo:
            return []
        seq = topo["links"][1]
        if _is_null(seq):
            return []
        if not isinstance(seq, SequenceNode):
            self.add(seq, "'topology.links' must be a list")
            return []
        used: dict[Endpoint, int] = {}
        links = []
        for item in seq.value:
            link = self.link(item, node_names, used)
            if link is not None:
                links.append(link)
        return links

    def link(self, item: Node, node_names: set[str], used: dict[Endpoint, int]) -> Link | None:
        line = item.start_mark.line + 1
        entries = self.mapping(item, f"link at line {line}")
        if entries is None:
            return None
        if "endpoints" not in entries:
            self.add(item, "link without 'endpoints'")
            return None
        seq = entries["endpoints"][1]
        if not isinstance(seq, SequenceNode):
            self.add(seq, "'endpoints' must be a list of two 'node:interface' strings")
            return None
        if len(seq.value) != 2:
            self.add(seq, f"a link needs exactly two endpoints, got {len(seq.value)}")
            return None
        ends = [self.endpoint(node, node_names) for node in seq.value]
        fields = self.link_vars(entries)
        a, b = ends
        if a is None or b is None or fields is None:
            return None
        if a == b:
            self.add(seq, f"link from {a} to itself")
            return None
        ok = True
        for end, node in zip(ends, seq.value, strict=True):
            assert end is not None
            here = node.start_mark.line + 1
            if end in used:
                self.add(
                    node, f"endpoint {end} is used by two links, at lines {used[end]} and {here}"
                )
                ok = False
            else:
                used[end] = here
        try:
            link = Link(a=a, b=b, **{k: v for k, (v, _, _) in fields.items()})
        except ValidationError as exc:
            self.add_validation(exc, {k: (n, lbl) for k, (_, n, lbl) in fields.items()}, item)
            return None
        if ok:
            self.link_sources.append(
                ClabLinkSource(str(a), str(b), line, _plain_values(entries.get("vars")))
            )
        return link if ok else None

    def endpoint(self, node: Node, node_names: set[str]) -> Endpoint | None:
        text = self.scalar(node, "endpoint")
        if text is None:
            if isinstance(node, ScalarNode):
                self.add(node, "empty endpoint; expected 'node:interface'")
            return None
        try:
            end = Endpoint.parse(text)
        except ValidationError as exc:
            error = exc.errors()[0]
            self.add(node, f"endpoint '{text}': {_readable(str(error['loc'][0]), error)}")
            return None
        except ValueError as exc:
            self.add(node, str(exc))
            return None
        if end.device not in node_names:
            self.add(node, f"endpoint '{text}' names unknown node '{end.device}'")
            return None
        return end

    def link_vars(self, entries: _Entries) -> dict[str, tuple[Any, Node, str]] | None:
        """Link fields from `vars` as field -> (value, node, label); None after a problem."""
        if "vars" not in entries:
            return {}
        link_vars = self.mapping(entries["vars"][1], "link vars")
        if link_vars is None:
            return None
        parsers = {
            "capacity": ("capacity_bps", parse_rate),
            "latency": ("latency_us", parse_latency_us),
            "state": ("state", LinkState),
        }
        fields: dict[str, tuple[Any, Node, str]] = {}
        ok = True
        for key, (field, parse) in parsers.items():
            found = self.get(link_vars, key, "link vars")
            if found is None:
                continue
            node, text = found
            try:
                fields[field] = (parse(text), node, key)
            except ValueError as exc:
                reason = str(exc) if key != "state" else f"'{text}' is not up or down"
                self.add(node, f"{key}: {reason}")
                ok = False
        return fields if ok else None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _plain_values(entry: tuple[ScalarNode, Node] | None) -> dict[str, str]:
    """A mapping's plain (scalar, non-null) values as text; anything else is left out."""
    if entry is None or not isinstance(entry[1], MappingNode):
        return {}
    return {
        str(k.value): str(v.value)
        for k, v in entry[1].value
        if isinstance(k, ScalarNode) and isinstance(v, ScalarNode) and not _is_null(v)
    }


def _readable(field: str, error: Any) -> str:
    if error["type"] == "string_pattern_mismatch" and field in _PATTERN_HINTS:
        return _PATTERN_HINTS[field]
    return str(error["msg"]).removeprefix("Value error, ")

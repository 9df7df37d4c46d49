"""YAML files read with their line numbers, so a refusal names file:line: the settings file, the
notifications table, platforms, service types and the product catalogue read through here.
Imports nothing of the project but its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from oss.errors import ConfigError

# Where a node sits in a document: its keys and list indices from the top.
Loc = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    """Text that is not YAML, located: each reader phrases it its own way. `line` (1-based) is
    where the parser stopped, None when it gives no position; `context` and `problem` are its
    two parts of the reason (either may be None); str() is the parser's whole message."""

    def __init__(self, exc: yaml.YAMLError) -> None:
        super().__init__(str(exc))
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        self.line: int | None = None if mark is None else mark.line + 1
        self.context: str | None = getattr(exc, "context", None)
        self.problem: str | None = getattr(exc, "problem", None)


def compose_yaml(text: str) -> yaml.Node | None:
    """The document's node tree, each node with its position (`yaml.safe_load` drops them and
    silently keeps the last of duplicate keys); YamlSyntaxError when the text is not YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(exc) from None


def parse_yaml(path: Path, text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for lines) and its data; ConfigError naming file:line."""
    try:
        return compose_yaml(text), load_yaml(text)
    except YamlSyntaxError as exc:
        where = f"{path}:{exc.line}" if exc.line is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc}") from None


def load_yaml(text: str) -> Any:
    """The document as plain data; YamlSyntaxError when the text is not YAML (including what
    only the constructor refuses)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(exc) from None


def key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Map dotted key paths to their 1-based line in the file, for error messages."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            lines.update(key_lines(value_node, key + "."))
    return lines


def nearest_line(lines: dict[str, int], key: str) -> int | None:
    """The line of `key`, or of its nearest enclosing key that has one."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return None


def key_locations(node: yaml.Node | None) -> tuple[dict[Loc, int], list[tuple[Loc, int, int]]]:
    """The 1-based line of every key and list item by its location, and each repeated key as
    (location, first line, repeated line): YAML loaders silently keep the last one. A repeated
    key's own content is not walked."""
    lines: dict[Loc, int] = {}
    repeated: list[tuple[Loc, int, int]] = []

    def walk(node: yaml.Node | None, loc: Loc) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                here = (*loc, key_node.value)
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    repeated.append((here, lines[here], line))
                    continue
                seen.add(key_node.value)
                lines[here] = line
                walk(value_node, here)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*loc, i)] = item.start_mark.line + 1
                walk(item, (*loc, i))

    walk(node, ())
    return lines, repeated

"""YAML files read with their line numbers, so a refusal names file:line: the settings file and
the notifications table read through here. Imports nothing of the project but its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from oss.errors import ConfigError


def parse_yaml(path: Path, text: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for lines) and its data; ConfigError naming file:line."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None


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

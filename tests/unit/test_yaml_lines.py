"""oss.yaml_lines.compose_yaml: the node tree with positions, and syntax errors located once for
every reader (settings, notifications, containerlab files) to phrase its own way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from oss.errors import ConfigError, TopologyFileError
from oss.yaml_lines import YamlSyntaxError, compose_yaml, parse_yaml
from topology.clab import parse_clab


def test_the_tree_keeps_lines_and_repeated_keys() -> None:
    root = compose_yaml("a: 1\nb:\n  c: 2\na: 3\n")
    assert isinstance(root, yaml.MappingNode)
    assert [(k.value, k.start_mark.line + 1) for k, _ in root.value] == [
        ("a", 1),
        ("b", 2),
        ("a", 4),
    ]
    assert compose_yaml("") is None


def test_a_syntax_error_is_located() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        compose_yaml("a:\n  b: {c: 1\n  d: 2\n")
    error = caught.value
    assert error.line == 3
    assert (error.context, error.problem) == (
        "while parsing a flow mapping",
        "expected ',' or '}', but got ':'",
    )


def test_a_reader_error_has_no_line() -> None:
    with pytest.raises(YamlSyntaxError) as caught:
        compose_yaml("a: t\x07\n")
    assert caught.value.line is None
    assert str(caught.value).startswith("unacceptable character #x0007")


def test_each_reader_phrases_it_its_own_way() -> None:
    text = "a: 1\n---\nb: 2\n"
    with pytest.raises(
        ConfigError, match=r"^s\.yaml:2: not valid YAML: but found another document$"
    ):
        parse_yaml(Path("s.yaml"), text)
    with pytest.raises(TopologyFileError) as caught:
        parse_clab(text, "f.clab.yml")
    assert str(caught.value).endswith(
        "f.clab.yml:2: YAML syntax: expected a single document in the stream but found "
        "another document"
    )
    with pytest.raises(TopologyFileError) as caught:
        parse_clab("name: t\x07\n", "f.clab.yml")
    assert "\n  f.clab.yml:1: YAML: unacceptable character #x0007" in str(caught.value)


def test_what_only_the_constructor_refuses_is_located_too() -> None:
    with pytest.raises(
        ConfigError, match=r"^s\.yaml:1: not valid YAML: could not determine a constructor"
    ):
        parse_yaml(Path("s.yaml"), "a: !!python/name:os.system x\n")

"""Validate documents against a definition of the official TMF642 (Alarm Management v4) spec.

The spec is Swagger 2.0: its schemas live under `definitions` and refer to each other as
`#/definitions/<Name>`. Validating a definition as the `$ref` of a root that carries all the
definitions lets those references resolve within the one document. Swagger 2.0 schemas are
JSON Schema draft 4.

`date-time` formats are checked with `datetime.fromisoformat` here, because jsonschema only
checks them when the optional `rfc3339-validator` package is installed (it is not).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

from oss.errors import InvalidInput

# A byte-for-byte copy of the official spec (configs/tmf/README.md says where it comes from).
SPEC_PATH = (
    Path(__file__).resolve().parents[2] / "configs" / "tmf" / "TMF642-Alarm-v4.0.0.swagger.json"
)

_formats = FormatChecker()


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type keyword reports non-strings
    parsed = datetime.fromisoformat(value)
    # RFC 3339 date-times always carry an offset.
    return parsed.tzinfo is not None


_formats.checks("date-time", raises=ValueError)(_is_date_time)


@cache
def spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def base_path(path: Path = SPEC_PATH) -> str:
    """The spec's basePath without its trailing slash: `/tmf-api/alarm/v4`."""
    return str(spec(path)["basePath"]).rstrip("/")


@cache
def validator(definition: str, path: Path = SPEC_PATH) -> Draft4Validator:
    definitions = spec(path)["definitions"]
    if definition not in definitions:
        raise KeyError(f"{definition!r} is not a definition of {path.name}")
    root = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    return Draft4Validator(root, format_checker=_formats)


def errors(document: Any, definition: str = "Alarm", path: Path = SPEC_PATH) -> list[str]:
    """Every way `document` breaks the definition, as readable lines (empty when it is valid)."""
    found = validator(definition, path).iter_errors(document)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in found]


def validate(document: Any, definition: str = "Alarm", path: Path = SPEC_PATH) -> None:
    problems = errors(document, definition, path)
    if problems:
        raise InvalidInput(f"not a valid TMF642 {definition}: " + "; ".join(problems[:5]))

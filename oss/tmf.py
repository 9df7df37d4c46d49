"""The official TM Forum Open API specifications (Swagger 2.0, vendored byte for byte in
configs/tmf/) as validators: every TMF-shaped response is checked against the real schema.

Swagger 2.0 keeps its schemas under `definitions`, referring to each other as
`#/definitions/<Name>`; validating a definition as the `$ref` of a root that carries all the
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

from oss.bounds import in_calendar
from oss.errors import InvalidInput
from oss.paths import configs_dir


def tmf_dir() -> Path:
    """configs/tmf of the configs folder in use (looked up now: the folder is a setting)."""
    return configs_dir() / "tmf"


_formats = FormatChecker()


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the type keyword reports non-strings
    parsed = datetime.fromisoformat(value)
    # RFC 3339 date-times always carry an offset; years past ours overflow in UTC.
    return parsed.tzinfo is not None and in_calendar(parsed)


_formats.checks("date-time", raises=ValueError)(_is_date_time)


class TmfSpec:
    """One vendored spec file, e.g. `TmfSpec("TMF622-ProductOrdering-v4.0.0.swagger.json")`."""

    def __init__(self, file_name: str, spec_dir: Path | None = None) -> None:
        self.file_name = file_name
        self._spec_dir = spec_dir  # None: the configs folder in use, looked up at each use
        self.api = file_name.split("-", 1)[0]  # "TMF622"

    def __repr__(self) -> str:
        return f"TmfSpec({self.file_name!r})"

    @property
    def path(self) -> Path:
        folder = self._spec_dir if self._spec_dir is not None else tmf_dir()
        return folder / self.file_name

    @property
    def document(self) -> dict[str, Any]:
        return _document(self.path)

    @property
    def base_path(self) -> str:
        """The spec's basePath without its trailing slash, e.g. `/tmf-api/alarm/v4`."""
        return str(self.document["basePath"]).rstrip("/")

    def validator(self, definition: str) -> Draft4Validator:
        return _validator(self.path, definition)

    def errors(self, document: Any, definition: str) -> list[str]:
        """Every way `document` breaks the definition, as readable lines (empty when valid)."""
        found = self.validator(definition).iter_errors(document)
        return [
            f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in found
        ]

    def validate(self, document: Any, definition: str) -> None:
        problems = self.errors(document, definition)
        if problems:
            raise InvalidInput(f"not a valid {self.api} {definition}: " + "; ".join(problems[:5]))


@cache
def spec(file_name: str) -> TmfSpec:
    """The shared instance for a vendored file, read from the configs folder in use."""
    return TmfSpec(file_name)


# Keyed by the file's path, so another configs folder never gets this one's documents.
@cache
def _document(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@cache  # a handful of definitions per spec, built once each
def _validator(path: Path, definition: str) -> Draft4Validator:
    definitions = _document(path)["definitions"]
    if definition not in definitions:
        raise KeyError(f"{definition!r} is not a definition of {path.name}")
    root = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    return Draft4Validator(root, format_checker=_formats)


ALARM = "TMF642-Alarm-v4.0.0.swagger.json"
PRODUCT_ORDERING = "TMF622-ProductOrdering-v4.0.0.swagger.json"
USAGE = "TMF635-Usage-v4.0.0.swagger.json"
SERVICE_INVENTORY = "TMF638-ServiceInventory-v4.0.0.swagger.json"
SERVICE_ORDERING = "TMF641-ServiceOrdering-v4.0.0.swagger.json"
CUSTOMER_BILL = "TMF678-CustomerBill-v4.0.0.swagger.json"

"""Output for people (rich tables) and for scripts (`-o json`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    t = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*(_cell(row.get(c)) for c in columns))
    Console().print(t)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict) and {"device", "interface"} <= value.keys():
        return f"{value['device']}:{value['interface']}"
    return str(value)


def show(
    data: Any, fmt: Format, columns: Sequence[str] | None = None, title: str | None = None
) -> None:
    """Lists become tables with `columns`; single objects become key/value tables."""
    if fmt is Format.JSON:
        emit_json(data)
    elif isinstance(data, list):
        table(data, columns or (list(data[0]) if data else []), title=title)
    elif isinstance(data, dict):
        table(
            [{"field": k, "value": _cell(v)} for k, v in data.items()],
            ["field", "value"],
            title=title,
        )
    else:
        Console().print(str(data))


def error(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {message}", highlight=False)

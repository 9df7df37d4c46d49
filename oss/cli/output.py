"""Output for people (rich tables) and for scripts (`-o json`).

Everything shown comes from the daemon, devices, files or users: it is data, never Rich markup.
Every console made here has markup, emoji codes and highlighting off, and every cell, title and
message is a `Text`, so `[/x]`, `:link:` or `[name=gold-eth1]` print exactly as they are.
Tables format values for people (10G, 1.3 ms, yes/no, a, b); JSON output stays raw.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from topology.units import format_rate


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def console(*, stderr: bool = False, soft_wrap: bool = False) -> Console:
    """A console for data: no markup, no emoji codes, no highlighting of numbers or words."""
    return Console(stderr=stderr, soft_wrap=soft_wrap, markup=False, emoji=False, highlight=False)


def text(value: Any, style: str = "") -> Text:
    """`value` as plain text (never parsed as markup), optionally styled."""
    return Text(str(value), style=style)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def new_table(
    columns: Sequence[str],
    *,
    title: str | None = None,
    whole: Collection[str] = (),
) -> Table:
    """A table whose title and headers are text. Cells that do not fit fold onto more lines
    (nothing is cut off); columns in `whole` never wrap (states, severities, ids), so the
    others give way first."""
    t = Table(title=text(title) if title else None, header_style="bold")
    for column in columns:
        t.add_column(text(header(column)), overflow="fold", no_wrap=column in whole)
    return t


def table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    whole: Collection[str] = (),
) -> None:
    t = new_table(columns, title=title, whole=whole)
    for row in rows:
        t.add_row(*(text(cell(c, row.get(c))) for c in columns))
    print_data(t)


def print_data(renderable: RenderableType, *, stderr: bool = False) -> None:
    console(stderr=stderr).print(renderable)


def header(column: str) -> str:
    """`capacity_bps` -> `capacity`: the unit is in the formatted value."""
    for suffix in ("_bps", "_us"):
        if column.endswith(suffix):
            return column.removesuffix(suffix)
    return column


def cell(column: str, value: Any) -> str:
    """A value as people read it; the column's unit suffix says how to format numbers."""
    if isinstance(value, int) and not isinstance(value, bool):
        if column.endswith("_bps"):
            return format_rate(value)
        if column.endswith("_us"):
            return format_duration_us(value)
    return plain(value)


def plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if {"device", "interface"} <= value.keys():
            return f"{value['device']}:{value['interface']}"
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(plain(v) for v in value) or "-"
    return str(value)


def format_duration_us(us: int) -> str:
    """500 -> 500 µs, 1300 -> 1.3 ms, 2500000 -> 2.5 s."""
    if abs(us) < 1000:
        return f"{us} µs"
    if abs(us) < 1_000_000:
        return f"{us / 1000:g} ms"
    return f"{us / 1_000_000:g} s"


def show(
    data: Any, fmt: Format, columns: Sequence[str] | None = None, title: str | None = None
) -> None:
    """Lists become tables with `columns`; single objects become key/value tables."""
    if fmt is Format.JSON:
        emit_json(data)
    elif isinstance(data, list):
        table(data, columns or (list(data[0]) if data else []), title=title)
    elif isinstance(data, dict):
        fields = new_table(["field", "value"], title=title, whole={"field"})
        for key, value in data.items():
            fields.add_row(text(key), text(cell(str(key), value)))
        print_data(fields)
    else:
        print_data(text(data))


def error(message: str) -> None:
    line = Text.assemble(("error:", "red"), " ", str(message))
    console(stderr=True, soft_wrap=True).print(line)

"""Indented CLI configuration (FRR's vtysh, IOS-like: a platform's `cli.syntax: blocks`) read
as leaves and written back as lines.

A line with lines indented under it opens a block (`router bgp 65001`); every other line is a
leaf, its path the headers of the blocks around it and then the line's own name:

    router bgp 65001                          router bgp 65001/neighbor 10.0.0.1/remote-as 65002
     neighbor 10.0.0.1 remote-as 65002   ->     = ""
    ip prefix-list p seq 5 permit 10.9.0.0/24  ip prefix-list p/seq 5 = "permit 10.9.0.0/24"

The platform's `entries` split a line's name in two (the entry, then the rest), so the lines of
one neighbor or one prefix-list fall under one entry that a service can own and remove whole;
its `values` patterns split off the words that are a value (so a changed value is a change,
not a removal and an addition). A line in a template that matches `delete_line` (`no ...`) is
a removal; a device's running configuration has none (its `no ...` lines are configuration).
Path elements are percent-escaped (`/`, `[`, `]`, `%`) so prefixes do not split them.

This module knows paths as lists of elements only (oss.provisioning.leaves joins them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from drivers.platforms import CliOptions
from oss.errors import InvalidInput

_ESCAPES = {"%": "%25", "/": "%2F", "[": "%5B", "]": "%5D"}
_UNESCAPE = re.compile(r"%(25|2F|5B|5D)")


def escape(element: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in element)


def unescape(element: str) -> str:
    return _UNESCAPE.sub(lambda m: chr(int(m[1], 16)), element)


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based, in the text read
    indent: int
    text: str


@dataclass(frozen=True)
class _Rules:
    skip: re.Pattern[str]
    delete: re.Pattern[str]
    entries: tuple[re.Pattern[str], ...]
    values: tuple[re.Pattern[str], ...]


@cache
def _rules(options: CliOptions) -> _Rules:
    before, _, after = options.delete_line.partition("{path}")
    return _Rules(
        skip=re.compile(options.skip_line),
        delete=re.compile(f"^{re.escape(before)}(?P<path>.+?){re.escape(after)}$"),
        entries=tuple(re.compile(p) for p in options.entries),
        values=tuple(re.compile(p) for p in options.values),
    )


def _lines(text: str, rules: _Rules) -> list[_Line]:
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n\t ").expandtabs(1)
        stripped = line.lstrip(" ")
        if stripped and not rules.skip.match(stripped):
            found.append(_Line(number, len(line) - len(stripped), stripped))
    return found


def _name(words: str, rules: _Rules) -> list[str]:
    """A line's name as elements: `[entry, rest]` when an entry pattern starts it, else one."""
    for entry in rules.entries:
        match = entry.match(words)
        if match is not None and match.end() < len(words) and words[match.end()] == " ":
            return [match.group(0), words[match.end() + 1 :].strip()]
    return [words]


def _split(text: str, rules: _Rules) -> tuple[str, str]:
    """(the words naming a line, its value; "" when it has none)."""
    for pattern in rules.values:
        match = pattern.match(text)
        if match is not None:
            return match["path"].strip(), match["value"].strip()
    return text, ""


def parse(
    text: str, options: CliOptions, *, removals: bool
) -> tuple[dict[tuple[str, ...], str], list[tuple[str, ...]]]:
    """The leaves (escaped elements -> value) and removals of an indented configuration;
    `removals`: lines matching `delete_line` are removals and a line set twice is refused (a
    template), else every line is a leaf and the last of a repeated one counts (a device's
    running configuration)."""
    rules = _rules(options)
    lines = _lines(text, rules)
    leaves: dict[tuple[str, ...], str] = {}
    removed: list[tuple[str, ...]] = []
    blocks: list[tuple[int, str]] = []  # (indent, header) of the blocks around the line
    for i, line in enumerate(lines):
        while blocks and blocks[-1][0] >= line.indent:
            blocks.pop()
        following = lines[i + 1] if i + 1 < len(lines) else None
        if following is not None and following.indent > line.indent:
            blocks.append((line.indent, line.text))
            continue
        headers = tuple(escape(h) for _, h in blocks)
        deleting = rules.delete.match(line.text) if removals else None
        if deleting is not None:
            removed.append((*headers, *(escape(e) for e in _name(deleting["path"], rules))))
            continue
        words, value = _split(line.text, rules)
        path = (*headers, *(escape(e) for e in _name(words, rules)))
        if removals and path in leaves and leaves[path] != value:
            # a template's mistake; a device may print a line twice (FRR: each daemon's
            # `hostname`, then vtysh's own), the last one standing
            raise InvalidInput(
                f"line {line.number}: {line.text!r} sets {' / '.join(map(unescape, path))} again"
                f" (to {value!r}, after {leaves[path]!r})"
            )
        leaves[path] = value
    return leaves, removed


def _line_of(path: tuple[str, ...], rules: _Rules) -> tuple[tuple[str, ...], str]:
    """(the block headers, the line's own words) of an escaped path."""
    elements = [unescape(e) for e in path]
    if len(elements) >= 2 and any(p.fullmatch(elements[-2]) for p in rules.entries):
        return tuple(elements[:-2]), f"{elements[-2]} {elements[-1]}"
    return tuple(elements[:-1]), elements[-1]


def render(
    leaves: Iterable[tuple[tuple[str, ...], str]],
    removals: Iterable[tuple[str, ...]],
    options: CliOptions,
) -> list[str]:
    """Lines that remove `removals` (the innermost blocks' first: a neighbor's address-family
    lines before the neighbor), then set `leaves` in their order, each inside its blocks."""
    rules = _rules(options)
    removing = [_line_of(p, rules) for p in removals]
    removing.sort(key=lambda item: -len(item[0]))  # stable: same depth keeps its order
    items = [(h, options.delete_line.format(path=words)) for h, words in removing]
    for path, value in leaves:
        headers, words = _line_of(path, rules)
        line = options.set_line.format(path=words, value=value) if value else words
        items.append((headers, line.strip()))
    return list(_in_blocks(items, options.exit_line))


def _in_blocks(items: Iterable[tuple[tuple[str, ...], str]], exit_line: str) -> Iterator[str]:
    """The lines indented inside their blocks, entering and leaving blocks only as needed."""
    open_: tuple[str, ...] = ()
    for headers, line in items:
        common = 0
        while common < min(len(open_), len(headers)) and open_[common] == headers[common]:
            common += 1
        for depth in range(len(open_) - 1, common - 1, -1):
            yield " " * depth + exit_line
        for depth in range(common, len(headers)):
            yield " " * depth + headers[depth]
        open_ = headers
        yield " " * len(headers) + line
    for depth in range(len(open_) - 1, -1, -1):
        yield " " * depth + exit_line

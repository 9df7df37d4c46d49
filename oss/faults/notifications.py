"""The well-known SNMP notifications (`configs/notifications.yaml`): what a trap of each means for
alarms. See that file for the kinds (link-down, link-up, alarm, event) and `clears`.

    table = load_notifications()
    table.by_oid("1.3.6.1.4.1.8072.4.0.2")   # Notification(name="nsNotifyShutdown", ...)

The file is read like the settings file (`oss.settings`): every problem is reported with the
file, the line and the key (`notifications.yaml:31: notifications.nsNotifyShutdown.severity:
...`), all at once, and a file with any problem is refused as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oss.errors import ConfigError
from oss.paths import configs_dir
from oss.yaml_lines import key_lines, nearest_line, parse_yaml

FILE_NAME = "notifications.yaml"  # in the configs folder (oss.paths)

Kind = Literal["link-down", "link-up", "alarm", "event"]
Severity = Literal["critical", "major", "minor", "warning", "indeterminate"]
# X.733 event types, as TMF642's alarmType spells them.
AlarmType = Literal[
    "communicationsAlarm",
    "processingErrorAlarm",
    "environmentalAlarm",
    "qualityOfServiceAlarm",
    "equipmentAlarm",
    "integrityViolation",
    "operationalViolation",
    "physicalViolation",
    "securityServiceOrMechanismViolation",
    "timeDomainViolation",
]
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    oid: str = Field(pattern=r"^\.?[0-9]+(\.[0-9]+)+$")
    kind: Kind
    clears: tuple[str, ...] = ()
    problem: str | None = Field(default=None, min_length=1)
    alarm_type: AlarmType | None = None
    severity: Severity = "warning"
    probable_cause: str | None = Field(default=None, min_length=1)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notifications: dict[str, _Entry]


@dataclass(frozen=True)
class Notification:
    name: str
    oid: str
    kind: Kind
    clears: tuple[str, ...] = ()
    problem: str = ""
    alarm_type: str = ""
    severity: str = "warning"
    probable_cause: str = ""


class Notifications:
    """The table, by OID and by name."""

    def __init__(self, entries: Mapping[str, Notification]) -> None:
        self._by_name = dict(entries)
        self._by_oid = {n.oid: n for n in entries.values()}

    def by_oid(self, oid: str) -> Notification | None:
        return self._by_oid.get(oid.lstrip("."))

    def by_name(self, name: str) -> Notification | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self._by_name)


def load_notifications(path: Path | None = None) -> Notifications:
    """The table in `path` (default: the configs folder's, looked up now, not at import: the
    folder is a setting); ConfigError naming every problem with its line."""
    return _load(path if path is not None else configs_dir() / FILE_NAME)


@cache
def _load(path: Path) -> Notifications:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the notifications table: {exc.strerror}") from None
    node, raw = parse_yaml(path, text)
    lines = key_lines(node)
    try:
        data = _File.model_validate(raw)
    except ValidationError as exc:
        problems = [
            (
                ".".join(str(p) for p in e["loc"]),
                "unknown key" if e["type"] == "extra_forbidden" else e["msg"],
            )
            for e in exc.errors()
        ]
        raise ConfigError(_describe(path, problems, lines)) from None
    problems = _check(data)
    if problems:
        raise ConfigError(_describe(path, problems, lines))
    return Notifications({name: _notification(name, e) for name, e in data.notifications.items()})


def _check(data: _File) -> list[tuple[str, str]]:
    """What the schema cannot say: names, unique OIDs, what an alarm needs, what `clears` names."""
    problems: list[tuple[str, str]] = []
    oids: dict[str, str] = {}
    entries = data.notifications
    for name, entry in entries.items():
        where = f"notifications.{name}"
        if not re.match(NAME_PATTERN, name):
            problems.append((where, "a name is letters, digits, - and _ (a letter first)"))
        oid = entry.oid.lstrip(".")
        if oid in oids:
            problems.append((f"{where}.oid", f"{oid} is also {oids[oid]}'s"))
        oids.setdefault(oid, name)
        if entry.kind == "alarm":
            for needed in ("problem", "alarm_type"):
                if getattr(entry, needed) is None:
                    problems.append((where, f"an alarm needs `{needed}`"))
        for cleared in entry.clears:
            target = entries.get(cleared)
            if target is None:
                problems.append((f"{where}.clears", f"no notification {cleared!r} in this table"))
            elif target.kind != "alarm":
                problems.append((f"{where}.clears", f"{cleared} raises no alarm to clear"))
    return problems


def _notification(name: str, entry: _Entry) -> Notification:
    return Notification(
        name=name,
        oid=entry.oid.lstrip("."),
        kind=entry.kind,
        clears=entry.clears,
        problem=entry.problem or "",
        alarm_type=entry.alarm_type or "",
        severity=entry.severity,
        probable_cause=entry.probable_cause or name,
    )


def _describe(path: Path, problems: list[tuple[str, str]], lines: dict[str, int]) -> str:
    described = []
    for key, reason in problems:
        line = nearest_line(lines, key)
        described.append(f"{path}:{line}: {key}: {reason}" if line else f"{path}: {key}: {reason}")
    if len(described) == 1:
        return described[0]
    return f"invalid notifications table ({len(described)} problems):\n  " + "\n  ".join(described)

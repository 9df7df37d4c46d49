"""Platform definitions: vendor differences as data (`configs/platforms/<name>.yaml`).

A platform says which protocol pushes configuration, which one carries interface telemetry
(`telemetry: snmp | gnmi`, SNMP by default), which ports each protocol listens on, the netmiko
device type for CLI access, and what the device can do. Code asks the platform; it never
branches on a vendor name.

Errors name the file and line. A platform that pushes configuration must key every list its
templates (`configs/templates/<templates>/`) write in `model.list_keys`: without the key, the
entries would be read back as one container and every verify would fail later, far from the
cause. The lists are found in the templates' text: `name[key=` in gNMI and CLI paths, and in
XML an element removed with `nc:operation` or repeated by a `{% for %}`, with its first child
as the key.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from oss.errors import ConfigError, InvalidInput
from oss.paths import configs_dir
from oss.yaml_lines import key_lines, nearest_line, parse_yaml


def platforms_dir() -> Path:
    """configs/platforms of the configs folder in use (looked up now: the folder is a setting)."""
    return configs_dir() / "platforms"


Protocol = Literal["netconf", "gnmi", "snmp", "cli"]
# How assurance collects a device's interface telemetry: SNMP polling or gNMI streaming.
Telemetry = Literal["snmp", "gnmi"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ProtocolOptions(_Strict):
    """A protocol's section of a platform; the fields named in DRIVER_OPTIONS go into the
    connection target's options, for the protocol's driver."""

    DRIVER_OPTIONS: ClassVar[tuple[str, ...]] = ()

    def driver_options(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.DRIVER_OPTIONS}


class NetconfOptions(_ProtocolOptions):
    datastore: Literal["candidate", "running"] = "candidate"
    confirmed_commit: bool = True
    validate_config: bool = Field(default=True, alias="validate")


class GnmiOptions(_ProtocolOptions):
    DRIVER_OPTIONS = ("encoding",)
    encoding: Literal["json", "json_ietf", "proto"] = "json_ietf"
    origin: str | None = None


class SnmpOptions(_ProtocolOptions):
    DRIVER_OPTIONS = ("bulk_repetitions",)
    version: Literal["2c", "3"] = "2c"
    bulk_repetitions: int = Field(default=25, ge=1, le=200)


class CliOptions(_ProtocolOptions):
    DRIVER_OPTIONS = ("device_type",)
    device_type: str = "linux"  # netmiko's name
    commit: bool = False  # the platform has a commit step (Junos, IOS-XR)
    rollback_command: str | None = None
    show_config_command: str | None = None  # prints the running configuration (get_config)
    # How provisioning reads and writes configuration lines: `{path}`/`{value}` placeholders,
    # and a regex with named groups `path` and `value` for the lines the device shows.
    set_line: str = "set {path} {value}"
    delete_line: str = "delete {path}"
    config_line: str = r"^set (?P<path>\S+) (?P<value>.+)$"
    error_pattern: str = ""  # output matching this regex is a refused line
    # `lines`: one `set_line` per leaf, the path in the line (Junos-like, the lab's CLI).
    # `blocks`: the device's own indented configuration (FRR vtysh, IOS-like): a line with
    # lines indented under it opens a block (`router bgp 65001`), and `set_line` /
    # `delete_line` are written inside their blocks, `{path}` being the line's own words.
    syntax: Literal["lines", "blocks"] = "lines"
    # blocks: regexes matched at the start of a line that name a list entry, so that the
    # entry's lines are one entry (`neighbor \S+`: removed whole by `no neighbor 10.0.0.1`).
    # They must not match a block's header.
    entries: tuple[str, ...] = ()
    # blocks: regexes with named groups `path` and `value` splitting a line into the words
    # that name it and its value (`ip prefix-list \S+ seq \d+` / `permit 10.0.0.0/24`); the
    # device must accept `delete_line` with the path alone. Other lines are named by all their
    # words and hold no value.
    values: tuple[str, ...] = ()
    # blocks: lines that only close a block or separate ones (`exit`, `!`): not configuration
    skip_line: str = r"^(?:!.*|exit|exit-.*|end)$"
    exit_line: str = "exit"  # blocks: leaves a block, back to the one around it
    # A command persisting the running configuration once a change is confirmed (`write
    # memory`); none: the running configuration is the device's only one.
    save_command: str | None = None

    @field_validator("entries", "values")
    @classmethod
    def _regexes(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for pattern in value:
            try:
                groups = set(re.compile(pattern).groupindex)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
            if info.field_name == "values" and not {"path", "value"} <= groups:
                raise ValueError(f"{pattern!r} needs the named groups path and value")
        return value


# iputils' (and BusyBox's) summary lines; FRR's vtysh runs iputils' ping.
IPUTILS_RTT = (
    r"(?:rtt|round-trip) min/avg/max/(?:mdev|stddev) = "
    r"(?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+)/(?P<mdev>[\d.]+) ms"
)
IPUTILS_LOSS = r"(?P<loss>[\d.]+)% packet loss"
_PROBE_FIELDS = frozenset({"address", "count"})


class ProbeOptions(_Strict):
    """How the device's own CLI measures the round trip and loss to an address (the active
    latency probes, oss.assurance.probes): a ping whose summary the two patterns read."""

    # `{address}` (and `{count}` where the command takes one), run at the CLI's normal prompt
    command: str
    count: int = Field(default=5, ge=1, le=100)  # echo requests a probe sends
    # A command that runs until interrupted (FRR vtysh's `ping WORD` has no count): Ctrl-C
    # after this long; ping prints its summary on SIGINT, as on the last reply.
    interrupt_after_s: float | None = Field(default=None, gt=0, le=60)
    rtt_pattern: str = IPUTILS_RTT  # named groups avg and mdev (milliseconds)
    loss_pattern: str = IPUTILS_LOSS  # named group loss (percent)
    timeout_s: float = Field(default=20.0, gt=0, le=300)  # a probe's bound, end to end

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name}
        except ValueError as exc:
            raise ValueError(f"not a command template: {exc}") from None
        if "address" not in fields:
            raise ValueError("the command needs an {address} placeholder")
        unknown = fields - _PROBE_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholders {sorted(unknown)} (known: address, count)")
        return value

    @field_validator("rtt_pattern", "loss_pattern")
    @classmethod
    def _pattern(cls, value: str, info: ValidationInfo) -> str:
        try:
            groups = set(re.compile(value).groupindex)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        needed = {"avg", "mdev"} if info.field_name == "rtt_pattern" else {"loss"}
        if not needed <= groups:
            raise ValueError(f"needs the named groups {', '.join(sorted(needed))}")
        return value


class ModelOptions(_Strict):
    """The device's configuration model as provisioning needs it: the XML namespace of each
    top-level container, and the key leaf of each YAML list, by the shortest unambiguous
    suffix of its schema path (`interfaces/interface`, `network-instance/interfaces/interface`);
    the longest matching suffix wins."""

    namespaces: dict[str, str] = Field(default_factory=dict)
    list_keys: dict[str, str] = Field(default_factory=dict)


class Platform(_Strict):
    name: str
    description: str = ""
    config_protocol: Protocol | None = None  # which protocol pushes configuration
    telemetry: Telemetry = "snmp"  # which protocol assurance collects interface data with
    ports: dict[Protocol, int] = Field(default_factory=dict)
    netconf: NetconfOptions = NetconfOptions()
    gnmi: GnmiOptions = GnmiOptions()
    snmp: SnmpOptions = SnmpOptions()
    cli: CliOptions = CliOptions()
    model: ModelOptions = ModelOptions()
    probe: ProbeOptions | None = None  # active latency probes from this device's CLI
    # configs/templates/<templates>/: several platforms may share one template set.
    templates: str | None = None
    confirm_timeout_s: int = Field(default=120, ge=1)  # NETCONF confirmed-commit timeout

    @property
    def template_dir(self) -> str:
        return self.templates or self.name

    def driver_options(self, protocol: Protocol) -> dict[str, object]:
        """What this platform tells `protocol`'s driver (its section is named after it)."""
        section: _ProtocolOptions = getattr(self, protocol)
        return section.driver_options()

    def port(self, protocol: Protocol) -> int:
        try:
            return self.ports[protocol]
        except KeyError:
            raise ConfigError(f"platform {self.name}: no port for {protocol}") from None


def load_platform(name: str, directory: Path | None = None) -> Platform:
    return _load(name, directory if directory is not None else platforms_dir())


@cache
def _load(name: str, directory: Path) -> Platform:
    path = directory / f"{name}.yaml"
    node, data = parse_yaml(path, _read(name, path))
    lines = key_lines(node)
    parent = data.pop("extends", None) if isinstance(data, dict) else None
    if parent == name:
        raise ConfigError(f"{path}: a platform cannot extend itself")
    if parent is not None:
        # A variant of another platform: its definition, with this file's keys on top.
        base = _load(str(parent), directory).model_dump(by_alias=True, exclude={"name"})
        data = _deep_merge(base, data)
    try:
        platform = Platform.model_validate(data)
    except ValidationError as exc:
        problems = [(tuple(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise ConfigError(
            "; ".join(f"{path}:{_line_of(lines, loc)}: {'.'.join(loc)}: {m}" for loc, m in problems)
        ) from None
    if platform.name != name:
        raise ConfigError(f"{path}: name {platform.name!r} differs from the file name")
    if platform.config_protocol is not None:
        templates = directory.parent / "templates" / platform.template_dir
        _check_list_keys(platform, path, lines, templates)
    return platform


# A list entry in a gNMI or CLI path: `name[key=` (the path text before it, back to a quote,
# space or brace on its line, gives the list's parents).
_PATH_ENTRY = re.compile(r"([A-Za-z_][\w.-]*)\[([A-Za-z_][\w.-]*)=")
# In XML: an element removed by nc:operation, or the first element after a `{% for %}`; its
# first child element is the list's key.
_XML_REMOVED = re.compile(
    r"<([\w.-]+)\b[^>]*\bnc:operation=\"(?:remove|delete)\"[^>]*>\s*<([\w.-]+)"
)
_XML_LOOPED = re.compile(r"\{%-?\s*for\b[^%]*%\}\s*<([\w.-]+)>\s*<([\w.-]+)")


def _check_list_keys(
    platform: Platform, path: Path, lines: dict[str, int], templates: Path
) -> None:
    """Every list the platform's templates write has its key in `model.list_keys`."""
    keys = {tuple(k.split("/")): v for k, v in platform.model.list_keys.items()}
    for template, line, trail, key in _written_lists(templates):
        if not any(value == key and _suffix_of(trail, known) for known, value in keys.items()):
            where = f"{path}:{_line_of(lines, ('model', 'list_keys'))}"
            raise ConfigError(
                f"{where}: model.list_keys: no key {key!r} for the list {'/'.join(trail)!r} "
                f"that {template.relative_to(templates.parent)}:{line} writes "
                f"(add `{'/'.join(trail[-2:])}: {key}`)"
            )


def _written_lists(templates: Path) -> Iterator[tuple[Path, int, tuple[str, ...], str]]:
    """(template, line, the list's schema path as far as known, its key) for every list entry
    the templates under `templates` write."""
    for template in sorted(templates.rglob("*.j2")):
        text = template.read_text(encoding="utf-8")
        if template.name.endswith(".xml.j2"):
            for pattern in (_XML_REMOVED, _XML_LOOPED):
                for match in pattern.finditer(text):
                    line = text.count("\n", 0, match.start(1)) + 1
                    yield template, line, (match[1],), match[2]
            continue
        for match in _PATH_ENTRY.finditer(text):
            line_start = text.rfind("\n", 0, match.start()) + 1
            before = re.split(r"[\"'\s{]", text[line_start : match.start()])[-1]
            parents = re.sub(r"\[[^\]]*\]", "", before).split("/")
            trail = (*(p for p in parents if re.fullmatch(r"[A-Za-z_][\w.-]*", p)), match[1])
            yield template, text.count("\n", 0, match.start()) + 1, trail, match[2]


def _suffix_of(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether one schema path ends the other (a template may know only a path's end)."""
    n = min(len(a), len(b))
    return a[-n:] == b[-n:]


def _line_of(lines: dict[str, int], loc: tuple[str, ...]) -> int:
    """1-based line of the deepest key of `loc` found in the file (1 when none is)."""
    return nearest_line(lines, ".".join(loc)) or 1


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(name: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"platform {name!r}: no definition at {path}") from None


def platform_names(directory: Path | None = None) -> list[str]:
    folder = directory if directory is not None else platforms_dir()
    return sorted(p.stem for p in folder.glob("*.yaml"))


def check_platform_name(name: str, where: str = "platform", directory: Path | None = None) -> None:
    """Refuse a device's platform that no file defines, or whose file is refused at load
    (`where` names the field)."""
    known = platform_names(directory)
    if name not in known:
        reason = f"unknown platform {name!r} (known: {', '.join(known) or 'none'})"
        raise InvalidInput(f"{where}: {reason}", problems=[{"where": where, "reason": reason}])
    try:
        load_platform(name, directory)
    except ConfigError as exc:
        reason = f"platform {name!r} cannot be used: {exc}"
        problems = [{"where": where, "reason": reason}]
        raise InvalidInput(f"{where}: {reason}", problems=problems) from None

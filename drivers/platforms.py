"""Platform definitions: vendor differences as data (`configs/platforms/<name>.yaml`).

A platform says which protocol pushes configuration, which one carries interface telemetry
(`telemetry: snmp | gnmi`, SNMP by default), which ports each protocol listens on, the netmiko
device type for CLI access, and what the device can do. Code asks the platform; it never
branches on a vendor name.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oss.errors import ConfigError

PLATFORMS_DIR = Path(__file__).resolve().parent.parent / "configs" / "platforms"

Protocol = Literal["netconf", "gnmi", "snmp", "cli"]
# How assurance collects a device's interface telemetry: SNMP polling or gNMI streaming.
Telemetry = Literal["snmp", "gnmi"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetconfOptions(_Strict):
    datastore: Literal["candidate", "running"] = "candidate"
    confirmed_commit: bool = True
    validate_config: bool = Field(default=True, alias="validate")


class GnmiOptions(_Strict):
    encoding: Literal["json", "json_ietf", "proto"] = "json_ietf"
    origin: str | None = None


class SnmpOptions(_Strict):
    version: Literal["2c", "3"] = "2c"
    bulk_repetitions: int = Field(default=25, ge=1, le=200)


class CliOptions(_Strict):
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
    # configs/templates/<templates>/: several platforms may share one template set.
    templates: str | None = None
    confirm_timeout_s: int = Field(default=120, ge=1)  # NETCONF confirmed-commit timeout

    @property
    def template_dir(self) -> str:
        return self.templates or self.name

    def port(self, protocol: Protocol) -> int:
        try:
            return self.ports[protocol]
        except KeyError:
            raise ConfigError(f"platform {self.name}: no port for {protocol}") from None


def load_platform(name: str, directory: Path = PLATFORMS_DIR) -> Platform:
    return _load(name, directory)


@cache
def _load(name: str, directory: Path) -> Platform:
    path = directory / f"{name}.yaml"
    data = _read(name, path)
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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    if platform.name != name:
        raise ConfigError(f"{path}: name {platform.name!r} differs from the file name")
    return platform


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read(name: str, path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"platform {name!r}: no definition at {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML") from None


def platform_names(directory: Path = PLATFORMS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))

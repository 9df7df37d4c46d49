"""Service types as data: `configs/services/<type>.yaml`.

A service type declares its parameters (type, default, constraints), the fields of its SLA
profile, how it is realised on the network (`endpoints`: each listed endpoint device is
configured; `path`: a path is placed between endpoints a and z and every hop is configured),
which of its parameters play the parts the realisation knows (`uses:` and, for attachment
lists, `attachment:`; see PARTS) and which template renders each service role of a device.
Adding a service type is adding a file: the code knows no parameter by name.

Parameter values are validated here, all at once: `InvalidInput` lists every problem with its
location (`parameters.endpoints[1].vlan: must be 1..4094`). A malformed service file raises
`ConfigError` naming the file, the line and the key.

A default or an SLA value written `$name` refers to the (validated) value of parameter `name`;
`$$` at the start writes a literal `$`.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from oss.errors import ConfigError, InvalidInput, NotFound, Problem
from oss.paths import configs_dir
from oss.yaml_lines import Loc, key_locations, parse_yaml
from topology.model import IFNAME_PATTERN, NAME_PATTERN, parse_latency_us, parse_rate


def services_dir() -> Path:
    """configs/services of the configs folder in use (looked up now: the folder is a setting)."""
    return configs_dir() / "services"


Realisation = Literal["endpoints", "path"]
PATH_ROLES = ("endpoint", "transit")  # the roles a path realisation configures
ENDPOINTS_ROLES = ("pe",)  # the role an endpoints realisation gives each device
# The parts a realisation takes from a service's parameters, and the parameter types that can
# play each. A type file binds a part to one of its parameters in `uses:`; an unbound part (or
# an absent value) takes its default: no customer, no bandwidth, no latency budget, protection
# none, no QoS class, a VLAN allocated from the pool, VRF `<type>-<id>`, RD `<asn>:<id>`.
PARTS: Mapping[str, tuple[str, ...]] = {
    "customer": ("string",),
    "bandwidth": ("rate",),
    "latency": ("latency",),
    "protection": ("enum",),
    "qos_class": ("enum", "string"),
    "vlan": ("integer",),
    "vrf": ("string",),
    "rd": ("route_target",),
}
PATH_PARTS = ("latency", "protection")  # what only a path realisation uses
PROTECTIONS = ("none", "link", "node")
VLAN_RANGE = (1, 4094)
# The fields of each item of an attachment list (a list endpoint of an endpoints realisation),
# bound in `attachment:`: their parameter types and whether the part must be bound. An item
# without its own VLAN takes the service's.
ATTACHMENT_PARTS: Mapping[str, tuple[tuple[str, ...], bool]] = {
    "device": (("string",), True),
    "interface": (("string",), True),
    "vlan": (("integer",), False),
    "address": (("ipv4_interface",), False),
}

FileProblem = tuple[Loc, str, int | None]  # where in the file, why, and the line when known


@dataclass(frozen=True)
class ParamSpec:
    """One parameter (or a field of an object parameter, or the items of a list)."""

    type: str
    required: bool = False
    default: Any = None  # normalised; a string "$name" refers to parameter `name`
    constraints: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def check(self, value: Any, where: str, problems: list[Problem]) -> Any:
        """The normalised value, or None after appending what is wrong to `problems`."""
        return _CHECKS[self.type](self, value, where, problems)


@dataclass(frozen=True)
class ServiceType:
    name: str
    description: str
    realisation: Realisation
    endpoint_roles: tuple[str, ...]  # inventory roles eligible when an endpoint is a site
    templates: Mapping[str, str]  # service role of a device -> template stem
    parameters: Mapping[str, ParamSpec]
    sla: Mapping[str, Any]
    # The parameters that name the endpoints: a and z for a path realisation; for an endpoints
    # realisation, endpoint parameters or attachment lists (items with the `attachment` fields).
    endpoint_params: tuple[str, ...] = ()
    uses: Mapping[str, str] = field(default_factory=dict)  # part (PARTS) -> parameter
    attachment: Mapping[str, str] = field(default_factory=dict)  # part -> field of an item
    example: Mapping[str, Any] | None = None  # valid parameters, for documentation and tests
    # What a new service owns must not exist on its devices yet: a create never takes over
    # another service's entries or hand-made configuration (a BGP neighbor already there).
    exclusive: bool = False

    def value_of(self, part: str, values: Mapping[str, Any]) -> Any:
        """The value of the parameter that plays `part`, None when unbound or absent."""
        name = self.uses.get(part)
        return None if name is None else values.get(name)

    def customer_of(self, values: Mapping[str, Any]) -> str:
        return str(self.value_of("customer", values) or "")

    def item_value(self, part: str, item: Mapping[str, Any]) -> Any:
        """The value of an attachment item's field that plays `part` (None when unbound)."""
        name = self.attachment.get(part)
        return None if name is None else item.get(name)

    @property
    def needs_vlan(self) -> bool:
        """Whether a service of this type has a VLAN of its own: path services do, and so do
        endpoints whose attachments do not each give one (an endpoint that names devices only
        attaches nothing)."""
        return self.realisation == "path" or any(
            "vlan" not in self.attachment
            if self.parameters[name].type == "list"
            else not self.parameters[name].constraints.get("devices_only")
            for name in self.endpoint_params
        )

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter, normalised, defaults filled in (None for an absent optional one).
        Idempotent: validating the result again gives the same result."""
        if not isinstance(params, Mapping):
            raise InvalidInput(f"{self.name}: parameters must be a mapping of names to values")
        problems: list[Problem] = []
        values = _check_fields(self.parameters, params, "parameters", "parameter", problems)
        for name, spec in self.parameters.items():
            ref = _reference(spec.default)
            if ref is not None and params.get(name) is None:
                values[name] = copy.deepcopy(values.get(ref))
        if problems:
            raise invalid_parameters(self.name, problems)
        return values

    def merge(self, current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH semantics (RFC 7396 merge patch): a change replaces a value, null removes it
        (back to its default), objects merge field by field, lists are replaced whole. The
        result is validated again."""
        if not isinstance(changes, Mapping):
            raise InvalidInput(f"{self.name}: changes must be a mapping of names to values")
        base = dict(current)
        # A value equal to the parameter its default refers to was (most likely) defaulted:
        # let it follow that parameter, so changing `rd` also moves a defaulted `import_rt`.
        for name, spec in self.parameters.items():
            ref = _reference(spec.default)
            if ref is not None and name in base and base[name] == base.get(ref):
                del base[name]
        return self.validate(_merge_patch(base, changes))

    def sla_profile(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The SLA fields with parameter references resolved: `$bandwidth` -> 200000000."""
        values = self.validate(params)
        return {key: _resolve(value, values) for key, value in self.sla.items()}

    def endpoints(self, params: Mapping[str, Any]) -> list[str]:
        """The endpoints named by validated parameters, in order: a site, a device or
        `device:interface` each (list items give `device:interface`)."""
        found: list[str] = []
        for name in self.endpoint_params:
            value = params.get(name)
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, list):
                found.extend(
                    f"{self.item_value('device', item)}:{self.item_value('interface', item)}"
                    for item in value
                )
        return found

    def template(self, role: str, platform: str, kind: str) -> str:
        """The template (relative to configs/templates) for a device of this service role;
        `kind` is the template kind of the platform's config protocol (its registry entry)."""
        try:
            stem = self.templates[role]
        except KeyError:
            raise ConfigError(
                f"service type {self.name}: no template for role {role!r} "
                f"(roles: {', '.join(self.templates)})"
            ) from None
        return f"{platform}/{stem}.{kind}.j2"


def invalid_parameters(service_type: str, problems: list[Problem]) -> InvalidInput:
    lines = "\n".join(f"  {p}" for p in problems)
    return InvalidInput(
        f"invalid parameters for service type {service_type} ({len(problems)} problem(s)):\n"
        f"{lines}",
        problems=[{"where": p.where, "reason": p.reason} for p in problems],
    )


def load_service_types(directory: Path | None = None) -> dict[str, ServiceType]:
    folder = directory if directory is not None else services_dir()
    return {path.stem: _load_file(path) for path in sorted(folder.glob("*.yaml"))}


def load_service_type(name: str, directory: Path | None = None) -> ServiceType:
    directory = directory if directory is not None else services_dir()
    path = directory / f"{name}.yaml"
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name) or not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
        raise NotFound(f"no service type {name!r} (known: {known or 'none'})")
    return _load_file(path)


# --- parameter values -------------------------------------------------------------------------


def _check_fields(
    specs: Mapping[str, ParamSpec],
    given: Mapping[str, Any],
    prefix: str,
    what: str,
    problems: list[Problem],
) -> dict[str, Any]:
    """Validate a mapping against its field specs; absent (or null) values take defaults.
    Defaults that refer to another parameter are left None for the caller to resolve."""
    for key in given:
        if key not in specs:
            close = difflib.get_close_matches(str(key), list(specs), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(Problem(f"{prefix}.{key}", f"unknown {what}{hint}"))
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        value = given.get(name)
        where = f"{prefix}.{name}"
        if value is not None:
            values[name] = spec.check(value, where, problems)
        elif spec.required:
            problems.append(Problem(where, "required"))
            values[name] = None
        elif _reference(spec.default) is not None:
            values[name] = None
        else:
            values[name] = copy.deepcopy(spec.default)
    return values


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "a boolean", str: "a string"}.get(
        type(value), type(value).__name__
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range_text(low: Any, high: Any, unit: str = "") -> str:
    if low is not None and high is not None:
        return f"must be {low}..{high}{unit}"
    if low is not None:
        return f"must be at least {low}{unit}"
    return f"must be at most {high}{unit}"


def _in_range(spec: ParamSpec, number: int, where: str, problems: list[Problem], unit: str) -> Any:
    low, high = spec.constraints.get("min"), spec.constraints.get("max")
    if (low is not None and number < low) or (high is not None and number > high):
        problems.append(Problem(where, _range_text(low, high, unit)))
        return None
    return number


def _check_string(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    if not isinstance(value, str):
        problems.append(Problem(where, f"must be a string, not {_kind(value)}"))
        return None
    c = spec.constraints
    if "min_length" in c and len(value) < c["min_length"]:
        problems.append(Problem(where, f"must be at least {c['min_length']} characters"))
    elif "max_length" in c and len(value) > c["max_length"]:
        problems.append(Problem(where, f"must be at most {c['max_length']} characters"))
    elif "pattern" in c and not re.fullmatch(c["pattern"], value):
        problems.append(Problem(where, f"{_short(value)} does not match {c['pattern']}"))
    else:
        return value
    return None


def _check_integer(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    number: int | None = None
    if _is_int(value):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        number = int(value)  # from a command-line flag
    if number is None:
        problems.append(Problem(where, f"must be an integer, not {_short(value)}"))
        return None
    return _in_range(spec, number, where, problems, "")


def _check_boolean(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    problems.append(Problem(where, f"must be true or false, not {_short(value)}"))
    return None


def _check_enum(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    values = spec.constraints["values"]
    if value not in values:
        problems.append(Problem(where, f"must be one of {', '.join(values)}, not {_short(value)}"))
        return None
    return value


def _quantity(
    parse: Callable[[int | float | str], int], unit: str
) -> Callable[[ParamSpec, Any, str, list[Problem]], Any]:
    def check(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            problems.append(Problem(where, f"must be a number or a string, not {_kind(value)}"))
            return None
        try:
            number = parse(value)
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            return None
        if number <= 0:
            problems.append(Problem(where, f"must be more than 0{unit}"))
            return None
        return _in_range(spec, number, where, problems, unit)

    return check


_ENDPOINT = re.compile(
    rf"(?P<device>{NAME_PATTERN.strip('^$')})(?::(?P<interface>{IFNAME_PATTERN.strip('^$')}))?"
)


def _check_endpoint(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    match = _ENDPOINT.fullmatch(value) if isinstance(value, str) else None
    if spec.constraints.get("needs_interface"):
        if match is None or match["interface"] is None:
            problems.append(
                Problem(where, f"must be device:interface (e.g. pe1:eth3), not {_short(value)}")
            )
            return None
    elif spec.constraints.get("devices_only"):
        if match is None or match["interface"] is not None:
            problems.append(Problem(where, f"must be a site or a device, not {_short(value)}"))
            return None
    elif match is None:
        problems.append(
            Problem(where, f"must be a site, a device or device:interface, not {_short(value)}")
        )
        return None
    return value


def _check_ipv4_interface(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    example = "an IPv4 address with its prefix length, e.g. 10.0.0.1/30"
    if not isinstance(value, str) or "/" not in value:
        problems.append(Problem(where, f"must be {example}, not {_short(value)}"))
        return None
    try:
        iface = ipaddress.IPv4Interface(value.strip())
    except ValueError:
        problems.append(Problem(where, f"must be {example}, not {_short(value)}"))
        return None
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        which = "network" if iface.ip == net.network_address else "broadcast"
        problems.append(Problem(where, f"{iface} is the {which} address of {net}; give a host"))
        return None
    return str(iface)


def _check_ipv4_prefix(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    example = "an IPv4 prefix, e.g. 198.51.100.0/24"
    if not isinstance(value, str) or "/" not in value:
        problems.append(Problem(where, f"must be {example}, not {_short(value)}"))
        return None
    try:
        network = ipaddress.IPv4Network(value.strip(), strict=False)
    except ValueError:
        problems.append(Problem(where, f"must be {example}, not {_short(value)}"))
        return None
    if str(network) != value.strip():
        # a device would store the network address: the intent would never read back as set
        problems.append(
            Problem(where, f"{value.strip()} has host bits set; the prefix is {network}")
        )
        return None
    return str(network)


_ROUTE_TARGET = re.compile(r"(\d{1,10}):(\d{1,10})")
_U16, _U32 = 0xFFFF, 0xFFFF_FFFF


def _check_route_target(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    match = _ROUTE_TARGET.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        hint = " (in YAML, quote it: unquoted, 65000:100 reads as a base-60 number)"
        hint = hint if _is_int(value) else ""
        problems.append(
            Problem(where, f"must be ASN:NN, e.g. 65000:100, not {_short(value)}{hint}")
        )
        return None
    asn, number = int(match[1]), int(match[2])
    # Type 0 is a 2-byte ASN with a 4-byte number, type 2 a 4-byte ASN with a 2-byte number.
    if asn > _U32 or number > _U32 or (asn > _U16 and number > _U16):
        problems.append(
            Problem(where, f"{value}: a 2-byte ASN takes a 4-byte number, a 4-byte ASN 0..65535")
        )
        return None
    return f"{asn}:{number}"


def _check_list(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    if not isinstance(value, list | tuple):
        problems.append(Problem(where, f"must be a list, not {_kind(value)}"))
        return None
    c = spec.constraints
    if "min_items" in c and len(value) < c["min_items"]:
        problems.append(Problem(where, f"needs at least {c['min_items']} item(s)"))
    if "max_items" in c and len(value) > c["max_items"]:
        problems.append(Problem(where, f"takes at most {c['max_items']} item(s)"))
    items: ParamSpec = c["items"]
    checked = [items.check(item, f"{where}[{i}]", problems) for i, item in enumerate(value)]
    unique_by: tuple[str, ...] = c.get("unique_by", ())
    if unique_by:
        seen: dict[tuple[Any, ...], int] = {}
        for i, item in enumerate(checked):
            if not isinstance(item, dict) or any(item.get(f) is None for f in unique_by):
                continue
            key = tuple(item[f] for f in unique_by)
            if key in seen:
                problems.append(
                    Problem(
                        f"{where}[{i}]",
                        f"same {', '.join(unique_by)} as {where.rpartition('.')[2]}[{seen[key]}]",
                    )
                )
            seen.setdefault(key, i)
    return checked


def _check_object(spec: ParamSpec, value: Any, where: str, problems: list[Problem]) -> Any:
    if not isinstance(value, Mapping):
        problems.append(Problem(where, f"must be a mapping of fields, not {_kind(value)}"))
        return None
    return _check_fields(spec.constraints["fields"], value, where, "field", problems)


_CHECKS: dict[str, Callable[[ParamSpec, Any, str, list[Problem]], Any]] = {
    "string": _check_string,
    "integer": _check_integer,
    "boolean": _check_boolean,
    "enum": _check_enum,
    "rate": _quantity(parse_rate, " bit/s"),
    "latency": _quantity(parse_latency_us, " us"),
    "endpoint": _check_endpoint,
    "ipv4_interface": _check_ipv4_interface,
    "ipv4_prefix": _check_ipv4_prefix,
    "route_target": _check_route_target,
    "list": _check_list,
    "object": _check_object,
}


def _reference(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith("$") and not value.startswith("$$"):
        return value[1:]
    return None


def _resolve(value: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(value, Mapping):
        return {k: _resolve(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, params) for v in value]
    ref = _reference(value)
    if ref is not None:
        return copy.deepcopy(params.get(ref))
    if isinstance(value, str) and value.startswith("$$"):
        return value[1:]
    return value


def _merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# --- service files ----------------------------------------------------------------------------

_COMMON_KEYS = frozenset({"type", "required", "default", "description"})
_TYPE_KEYS: dict[str, frozenset[str]] = {
    "string": frozenset({"pattern", "min_length", "max_length"}),
    "integer": frozenset({"min", "max"}),
    "boolean": frozenset(),
    "enum": frozenset({"values"}),
    "rate": frozenset({"min", "max"}),
    "latency": frozenset({"min", "max"}),
    # devices_only: a device or a site, never device:interface (the service attaches no
    # interface, so it needs no VLAN: a BGP peering between two routers)
    "endpoint": frozenset({"needs_interface", "devices_only"}),
    "ipv4_interface": frozenset(),
    "ipv4_prefix": frozenset(),
    "route_target": frozenset(),
    "list": frozenset({"items", "min_items", "max_items", "unique_by"}),
    "object": frozenset({"fields"}),
}
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_STEM = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")


class _File(BaseModel):
    """The shape of a service file; parameter specs are parsed by `_SpecParser`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    realisation: Realisation
    endpoint_roles: list[str] = Field(default_factory=list)
    endpoints: list[str] = Field(min_length=1)
    uses: dict[str, str] = Field(default_factory=dict)
    attachment: dict[str, str] = Field(default_factory=dict)
    templates: dict[str, str] = Field(min_length=1)
    parameters: dict[str, dict[str, Any]] = Field(min_length=1)
    sla: dict[str, Any] = Field(default_factory=dict)
    example: dict[str, Any] | None = None
    exclusive: bool = False


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _plain_int(value: Any) -> int:
    if not _is_int(value):
        raise ValueError(value)
    return int(value)


_BOUND_PARSERS: dict[str, Callable[[Any], int]] = {
    "integer": _plain_int,
    "rate": parse_rate,
    "latency": parse_latency_us,
}


class _SpecParser:
    """Parameter specs from a file, collecting every problem with its location."""

    def __init__(self) -> None:
        self.problems: list[FileProblem] = []

    def problem(self, loc: Loc, reason: str) -> None:
        self.problems.append((loc, reason, None))

    def fields(self, raw: Any, loc: Loc, top: bool) -> dict[str, ParamSpec]:
        if not isinstance(raw, Mapping) or not raw:
            self.problem(loc, "must be a non-empty mapping of names to parameter definitions")
            return {}
        specs: dict[str, ParamSpec] = {}
        for name, spec_raw in raw.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                self.problem((*loc, str(name)), "names are lower-case letters, digits and _")
            spec = self.spec(spec_raw, (*loc, str(name)), top)
            if spec is not None:
                specs[str(name)] = spec
        return specs

    def spec(self, raw: Any, loc: Loc, top: bool) -> ParamSpec | None:
        if not isinstance(raw, Mapping):
            self.problem(loc, "must be a mapping with at least a type")
            return None
        type_ = raw.get("type")
        if type_ not in _TYPE_KEYS:
            self.problem((*loc, "type"), f"must be one of {', '.join(_TYPE_KEYS)}, not {type_!r}")
            return None
        allowed = _COMMON_KEYS | _TYPE_KEYS[type_]
        for key in raw:
            if key not in allowed:
                self.problem((*loc, key), f"unknown key for {_a(type_)} parameter")
        constraints = {
            key: self.constraint(type_, key, raw[key], (*loc, key))
            for key in _TYPE_KEYS[type_]
            if key in raw
        }
        if None in constraints.values():
            return None
        if not self.consistent(type_, constraints, loc):
            return None
        required = raw.get("required", False)
        if not isinstance(required, bool):
            self.problem((*loc, "required"), "must be true or false")
        description = raw.get("description", "")
        if not isinstance(description, str):
            self.problem((*loc, "description"), "must be a string")
        bare = ParamSpec(type=type_, constraints=constraints)  # checks the default
        spec = ParamSpec(
            type=type_,
            required=required is True,
            default=self.default(bare, raw.get("default"), (*loc, "default"), top),
            constraints=constraints,
            description=str(description),
        )
        if spec.required and spec.default is not None:
            self.problem((*loc, "default"), "a required parameter takes no default")
        return spec

    def default(self, spec: ParamSpec, raw: Any, loc: Loc, top: bool) -> Any:
        if raw is None:
            return None
        if _reference(raw) is not None:
            if not top:
                self.problem(loc, "only top-level parameters may default to another parameter")
            return raw
        if isinstance(raw, str) and raw.startswith("$$"):
            raw = raw[1:]
        problems: list[Problem] = []
        value = spec.check(raw, "default", problems)
        for p in problems:
            self.problem(loc, f"invalid default: {p.reason}")
        return value

    def constraint(self, type_: str, key: str, raw: Any, loc: Loc) -> Any:
        if key in ("min_length", "max_length", "min_items", "max_items"):
            if not _is_int(raw) or raw < 0:
                self.problem(loc, "must be a non-negative integer")
                return None
            return raw
        if key in ("min", "max"):
            return self.bound(type_, raw, loc)
        if key == "pattern":
            try:
                re.compile(raw)
            except (re.error, TypeError) as exc:
                self.problem(loc, f"not a regular expression: {exc}")
                return None
            return raw
        if key == "values":
            if not isinstance(raw, list) or not raw or not all(isinstance(v, str) for v in raw):
                self.problem(loc, "must be a non-empty list of strings")
                return None
            return tuple(raw)
        if key in ("needs_interface", "devices_only"):
            if not isinstance(raw, bool):
                self.problem(loc, "must be true or false")
                return None
            return raw
        if key == "items":
            return self.spec(raw, loc, top=False)
        if key == "fields":
            return self.fields(raw, loc, top=False) or None
        if key == "unique_by":
            if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
                self.problem(loc, "must be a list of field names")
                return None
            return tuple(raw)
        raise AssertionError(key)  # every key of _TYPE_KEYS is handled above

    def bound(self, type_: str, raw: Any, loc: Loc) -> int | None:
        try:
            return _BOUND_PARSERS[type_](raw)
        except ValueError:
            self.problem(loc, f"must be {_a(type_)} bound, not {raw!r}")
            return None

    def consistent(self, type_: str, c: Mapping[str, Any], loc: Loc) -> bool:
        ok = True
        for low, high in (("min", "max"), ("min_length", "max_length"), ("min_items", "max_items")):
            if low in c and high in c and c[low] > c[high]:
                self.problem((*loc, low), f"{low} {c[low]} is above {high} {c[high]}")
                ok = False
        for key, needed in (("enum", "values"), ("list", "items"), ("object", "fields")):
            if type_ == key and needed not in c:
                self.problem(loc, f"{_a(type_)} parameter needs {needed}")
                ok = False
        if c.get("needs_interface") and c.get("devices_only"):
            self.problem((*loc, "devices_only"), "contradicts needs_interface")
            ok = False
        unique_by = c.get("unique_by", ())
        items = c.get("items")
        if unique_by and items is not None:
            fields = items.constraints.get("fields", {}) if items.type == "object" else {}
            missing = [f for f in unique_by if f not in fields]
            if missing:
                self.problem((*loc, "unique_by"), f"not fields of the items: {', '.join(missing)}")
                ok = False
        return ok


def _check_file(data: _File, specs: Mapping[str, ParamSpec], parser: _SpecParser) -> None:
    """What the shape alone does not say: references, endpoints, roles and templates."""
    for name, spec in specs.items():
        ref = _reference(spec.default)
        if ref is None:
            continue
        target = specs.get(ref)
        if target is None:
            parser.problem(("parameters", name, "default"), f"no parameter {ref!r}")
        elif _reference(target.default) is not None:
            parser.problem(("parameters", name, "default"), f"{ref!r} is itself a reference")
    _check_sla_references(data.sla, ("sla",), specs, parser)
    if data.realisation == "path" and len(data.endpoints) != 2:
        parser.problem(("endpoints",), "a path realisation names exactly two parameters, a and z")
    any_site = False
    for i, name in enumerate(data.endpoints):
        endpoint = specs.get(name)
        if endpoint is None:
            parser.problem(("endpoints", i), f"no parameter {name!r}")
        elif endpoint.type == "endpoint":
            any_site = any_site or not endpoint.constraints.get("needs_interface", False)
            if data.realisation == "path" and not endpoint.required:
                parser.problem(("endpoints", i), f"{name!r}: the ends of a path are required")
        elif data.realisation == "path" or not _is_object_list(endpoint):
            parser.problem(
                ("endpoints", i),
                f"{name!r} must be an endpoint parameter"
                + ("" if data.realisation == "path" else " or a list of objects (attachments)"),
            )
    if any_site and not data.endpoint_roles:
        parser.problem(("endpoint_roles",), "endpoints may be sites: say which device roles")
    roles = PATH_ROLES if data.realisation == "path" else ENDPOINTS_ROLES
    for role in roles:
        if role not in data.templates:
            parser.problem(
                ("templates",), f"{_a(data.realisation)} realisation needs a {role!r} template"
            )
    _check_uses(data, specs, parser)
    _check_attachment(data, specs, parser)
    for role, stem in data.templates.items():
        if not _NAME.fullmatch(role):
            parser.problem(("templates", role), "role names are lower-case letters, digits, _")
        if not _STEM.fullmatch(stem):
            parser.problem(("templates", role), f"{stem!r} is not a template stem like slice/pe")


def _is_object_list(spec: ParamSpec) -> bool:
    items = spec.constraints.get("items") if spec.type == "list" else None
    return items is not None and items.type == "object"


def _check_uses(data: _File, specs: Mapping[str, ParamSpec], parser: _SpecParser) -> None:
    """Each part the realisation takes is played by a parameter of a fitting type."""
    for part, name in data.uses.items():
        loc: Loc = ("uses", part)
        if part not in PARTS:
            parser.problem(loc, f"unknown part (parts: {', '.join(PARTS)})")
            continue
        if part in PATH_PARTS and data.realisation != "path":
            parser.problem(loc, f"only a path realisation uses {part}")
        spec = specs.get(name)
        if spec is None:
            parser.problem(loc, f"no parameter {name!r}")
        elif spec.type not in PARTS[part]:
            parser.problem(loc, _wrong_type(name, spec, PARTS[part]))
        elif part == "protection":
            extra = [v for v in spec.constraints["values"] if v not in PROTECTIONS]
            if extra:
                parser.problem(
                    loc,
                    f"{name!r} allows {', '.join(extra)}; protection is one of "
                    f"{', '.join(PROTECTIONS)}",
                )
        elif part == "vlan":
            _check_vlan_bounds(spec, loc, name, parser)


def _check_attachment(data: _File, specs: Mapping[str, ParamSpec], parser: _SpecParser) -> None:
    """An attachment list's items have the fields `attachment:` binds, of fitting types."""
    lists = [n for n in data.endpoints if n in specs and specs[n].type == "list"]
    for part in data.attachment:
        if part not in ATTACHMENT_PARTS:
            parser.problem(("attachment", part), f"unknown part ({', '.join(ATTACHMENT_PARTS)})")
    if not lists:
        if data.attachment:
            parser.problem(("attachment",), "no endpoint is a list of attachments")
        return
    where: Loc = ("attachment",) if data.attachment else ("endpoints",)
    for part, (_, required) in ATTACHMENT_PARTS.items():
        if required and part not in data.attachment:
            parser.problem(
                where,
                f"the items of {lists[0]!r} are attachments: say which field is the {part}"
                f" (attachment: {{{part}: FIELD}})",
            )
    for list_name in lists:
        _check_items(list_name, specs[list_name], data.attachment, parser)


def _check_items(
    list_name: str, spec: ParamSpec, bound: Mapping[str, str], parser: _SpecParser
) -> None:
    items = spec.constraints.get("items")
    fields = items.constraints.get("fields", {}) if items is not None else {}
    for part, name in bound.items():
        if part not in ATTACHMENT_PARTS:
            continue
        types, required = ATTACHMENT_PARTS[part]
        loc: Loc = ("attachment", part)
        field_spec = fields.get(name)
        if field_spec is None:
            parser.problem(loc, f"the items of {list_name!r} have no field {name!r}")
        elif field_spec.type not in types:
            parser.problem(loc, _wrong_type(f"{list_name}[].{name}", field_spec, types))
        elif required and not field_spec.required:
            parser.problem(loc, f"{list_name}[].{name} names the {part}: make it required")
        elif part == "vlan":
            _check_vlan_bounds(field_spec, loc, f"{list_name}[].{name}", parser)


def _wrong_type(name: str, spec: ParamSpec, types: tuple[str, ...]) -> str:
    return f"{name!r} is {_a(spec.type)} parameter; this part takes {' or '.join(types)}"


def _check_vlan_bounds(spec: ParamSpec, loc: Loc, name: str, parser: _SpecParser) -> None:
    low, high = spec.constraints.get("min"), spec.constraints.get("max")
    if low is None or high is None or low < VLAN_RANGE[0] or high > VLAN_RANGE[1]:
        parser.problem(
            loc, f"{name!r} is a VLAN: give it min and max within {VLAN_RANGE[0]}..{VLAN_RANGE[1]}"
        )


def _check_sla_references(
    value: Any, loc: Loc, specs: Mapping[str, ParamSpec], parser: _SpecParser
) -> None:
    if isinstance(value, Mapping):
        for key, child in value.items():
            _check_sla_references(child, (*loc, key), specs, parser)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _check_sla_references(child, (*loc, i), specs, parser)
    else:
        ref = _reference(value)
        if ref is not None and ref not in specs:
            parser.problem(loc, f"no parameter {ref!r}")


def _load_file(path: Path) -> ServiceType:
    node, raw = parse_yaml(path, _read(path))
    lines, repeated = key_locations(node)
    duplicates: list[FileProblem] = [
        (loc, f"duplicate key (first on line {first})", line) for loc, first, line in repeated
    ]
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a service type file is a mapping of keys")
    try:
        data = _File.model_validate(raw)
    except ValidationError as exc:
        problems: list[FileProblem] = [
            (tuple(e["loc"]), "unknown key" if e["type"] == "extra_forbidden" else e["msg"], None)
            for e in exc.errors()
        ]
        raise ConfigError(_describe(path, [*duplicates, *problems], lines)) from None
    parser = _SpecParser()
    parser.problems.extend(duplicates)
    specs = parser.fields(data.parameters, ("parameters",), top=True)
    if data.name != path.stem:
        parser.problem(("name",), f"{data.name!r} differs from the file name {path.stem!r}")
    _check_file(data, specs, parser)
    if parser.problems:
        raise ConfigError(_describe(path, parser.problems, lines))
    stype = ServiceType(
        name=data.name,
        description=data.description,
        realisation=data.realisation,
        endpoint_roles=tuple(data.endpoint_roles),
        templates=dict(data.templates),
        parameters=specs,
        sla=data.sla,
        endpoint_params=tuple(data.endpoints),
        uses=dict(data.uses),
        attachment=dict(data.attachment),
        example=data.example,
        exclusive=data.exclusive,
    )
    _check_example(stype, parser)
    if parser.problems:
        raise ConfigError(_describe(path, parser.problems, lines))
    _check_template_params(stype, path, path.parent.parent / "templates")
    return stype


def _check_template_params(stype: ServiceType, path: Path, templates: Path) -> None:
    """A template of the type reads only parameters the type has (`service.params.x`), so a
    renamed or dropped parameter is found at load, not at a service's first dry run."""
    for stem in dict.fromkeys(stype.templates.values()):
        for template in sorted(templates.glob(f"*/{stem}.*.j2")):
            for name, line in _params_read(template):
                if name not in stype.parameters:
                    raise ConfigError(
                        f"{template}:{line}: service.params.{name}: {path.name} has no "
                        f"parameter {name!r} (parameters: {', '.join(stype.parameters)})"
                    )


def _params_read(template: Path) -> list[tuple[str, int]]:
    """(parameter, line) for each `service.params.<name>` / `service.params["name"]`."""
    try:
        tree = SandboxedEnvironment().parse(template.read_text(encoding="utf-8"))
    except TemplateSyntaxError as exc:
        raise ConfigError(f"{template}:{exc.lineno}: {exc.message}") from None
    found = []
    for attr in tree.find_all(nodes.Getattr):
        if _is_service_params(attr.node):
            found.append((attr.attr, attr.lineno))
    for item in tree.find_all(nodes.Getitem):
        key = item.arg
        if _is_service_params(item.node) and isinstance(key, nodes.Const):
            found.append((str(key.value), item.lineno))
    return sorted(found, key=lambda f: f[1])


def _is_service_params(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Getattr)
        and node.attr == "params"
        and isinstance(node.node, nodes.Name)
        and node.node.name == "service"
    )


def _check_example(stype: ServiceType, parser: _SpecParser) -> None:
    """The example, when given, is valid parameters (it documents the type and tests use it)."""
    if stype.example is None:
        return
    try:
        stype.validate(stype.example)
    except InvalidInput as exc:
        for p in exc.extra.get("problems", []):
            parser.problem(("example", *_loc_of(p["where"])), p["reason"])


def _loc_of(where: str) -> Loc:
    """`parameters.endpoints[1].vlan` -> ("endpoints", 1, "vlan")."""
    parts = re.findall(r"\[(\d+)\]|([^.\[\]]+)", where.removeprefix("parameters"))
    return tuple(int(index) if index else name for index, name in parts)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read service type file: {exc.strerror}") from None


def _describe(path: Path, problems: list[FileProblem], lines: Mapping[Loc, int]) -> str:
    described = []
    for loc, reason, known_line in problems:
        line = known_line or next(
            (lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None
        )
        where = f"{path}:{line}" if line else str(path)
        described.append(f"{where}: {_dotted(loc) or '(top)'}: {reason}")
    if len(described) == 1:
        return described[0]
    return f"{path}: invalid service type ({len(described)} problems):\n  " + "\n  ".join(described)


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text

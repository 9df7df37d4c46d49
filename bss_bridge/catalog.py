"""Product offerings as data: `configs/catalog/*.yaml`.

An offering says which service type it realises and with which fixed parameters, what an order
gives (`order_parameters`), its monthly price, usage tariff, tax rate and SLA terms. A file holds
a list under `offerings:`; ids are unique across all files. Adding a product is adding YAML.

Every number is exact: prices, rates and percentages are written as strings ("500.00") or
integers, never floats. A bad file raises InvalidInput listing every problem with the file, the
line and the field (`slices.yaml:14: offerings[0].usage.tiers[1].up_to: ...`).

When the service types are given to `Catalog.load` (a mapping name -> ServiceTypeSpec, the
provisioning port's `service_types()`), each offering is checked against its type: fixed
parameters are declared and valid, order parameters are declared, and every required parameter
is either fixed, given by the order or `customer` (which the order's customer fills in).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError

from bss_bridge.money import decimals, minor_units, parse_decimal
from bss_bridge.ports import ServiceTypeSpec
from oss.errors import InvalidInput, NotFound, Problem
from oss.paths import configs_dir
from oss.yaml_lines import Loc, YamlSyntaxError, compose_yaml, key_locations, load_yaml


def catalog_dir() -> Path:
    """configs/catalog of the configs folder in use (looked up now: the folder is a setting)."""
    return configs_dir() / "catalog"


# Filled in from the ordering customer, never fixed by an offering nor given by the order.
RESERVED_PARAMETERS = ("customer",)
USAGE_PRICE_DECIMALS = 6  # usage may be priced below the minor unit: 0.000125 EUR per GB
PERCENT_DECIMALS = 4  # 99.9999 %
TAX_RATE_DECIMALS = 4  # 0.1925

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"

Unit = Literal["GB", "hour"]


@dataclass(frozen=True)
class Tier:
    """Prices the quantity above the previous tier's `up_to` up to this one's (inclusive);
    `up_to` None (the last tier only) prices everything above."""

    up_to: Decimal | None
    price: Decimal  # per unit


@dataclass(frozen=True)
class UsageTariff:
    usage_type: str  # "data"
    unit: Unit
    tiers: tuple[Tier, ...]  # ascending up_to; the last one open-ended


@dataclass(frozen=True)
class CreditTier:
    below_percent: Decimal  # availability strictly under this ...
    credit_percent: Decimal  # ... credits this percentage of the period's recurring charge


@dataclass(frozen=True)
class SlaTerms:
    availability_target_percent: Decimal
    latency_target_ms: Decimal | None
    latency_window_minutes: int
    credit_tiers: tuple[CreditTier, ...]  # descending below_percent
    credit_cap_percent: Decimal


@dataclass(frozen=True)
class Offering:
    id: str
    name: str
    description: str
    service_type: str
    parameters: Mapping[str, Any]  # fixed service parameters, as written (read-only)
    order_parameters: tuple[str, ...]  # what an order must (required ones) or may give
    currency: str
    recurring_price: Decimal  # per month
    usage: UsageTariff | None
    tax_rate: Decimal  # 0.19 = 19 %
    sla: SlaTerms | None
    source: str = field(default="", compare=False)  # the file it came from

    def service_parameters(self, given: Mapping[str, Any], customer: str) -> dict[str, Any]:
        """The service's parameters for an order: the fixed ones, the order's and the customer.
        An order parameter the offering does not list raises InvalidInput (the service type
        validates the values themselves)."""
        unknown = sorted(str(key) for key in given if key not in self.order_parameters)
        if unknown:
            allowed = ", ".join(self.order_parameters) or "none"
            raise InvalidInput(
                f"offering {self.id}: not an order parameter: {', '.join(unknown)} "
                f"(an order gives: {allowed})",
                problems=[
                    {"where": f"parameters.{key}", "reason": "not an order parameter"}
                    for key in unknown
                ],
            )
        params = copy.deepcopy(dict(self.parameters))
        params.update(copy.deepcopy(dict(given)))
        params["customer"] = customer
        return params


class Catalog:
    """The offerings, by id."""

    def __init__(self, offerings: Collection[Offering] = ()) -> None:
        self._offerings: dict[str, Offering] = {}
        for offering in offerings:
            if offering.id in self._offerings:
                raise InvalidInput(f"duplicate offering id {offering.id!r}")
            self._offerings[offering.id] = offering

    @classmethod
    def load(
        cls,
        directory: Path | None = None,
        service_types: Collection[str] | Mapping[str, ServiceTypeSpec] | None = None,
    ) -> Catalog:
        """Every `*.yaml` in the directory (default configs/catalog). `service_types`: the
        known type names, or a mapping name -> ServiceTypeSpec to check the parameters as well."""
        directory = catalog_dir() if directory is None else Path(directory)
        if not directory.is_dir():
            raise InvalidInput(f"{directory}: the catalog directory does not exist")
        problems: list[Problem] = []
        offerings: list[Offering] = []
        first_seen: dict[str, str] = {}
        for path in sorted(directory.glob("*.yaml")):
            try:
                loaded = _load_file(path, service_types)
            except InvalidInput as exc:
                problems.extend(
                    Problem(p["where"], p["reason"]) for p in exc.extra.get("problems", [])
                )
                continue
            for offering, where in loaded:
                if offering.id in first_seen:
                    first = first_seen[offering.id]
                    reason = f"duplicate offering id {offering.id!r} (first in {first})"
                    problems.append(Problem(where, reason))
                    continue
                first_seen[offering.id] = where
                offerings.append(offering)
        if problems:
            raise _invalid(directory, problems)
        return cls(offerings)

    def get(self, offering_id: str) -> Offering:
        try:
            return self._offerings[offering_id]
        except KeyError:
            known = ", ".join(sorted(self._offerings)) or "none"
            raise NotFound(f"no product offering {offering_id!r} (known: {known})") from None

    def all(self) -> list[Offering]:
        return [self._offerings[key] for key in sorted(self._offerings)]

    def __len__(self) -> int:
        return len(self._offerings)

    def __contains__(self, offering_id: object) -> bool:
        return offering_id in self._offerings


# --- the file's shape (pydantic) ---------------------------------------------------------------


def _number(value: Any) -> Decimal:
    # pydantic reports a ValueError with its location; parse_decimal's message says why
    try:
        return parse_decimal(value, "value")
    except InvalidInput as exc:
        raise ValueError(str(exc).removeprefix("value: ")) from None


Number = Annotated[Decimal, BeforeValidator(_number)]
Text = Annotated[str, Field(min_length=1)]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _TierIn(_Shape):
    up_to: Number | None = None
    price: Number


class _UsageIn(_Shape):
    usage_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    unit: Unit
    tiers: list[_TierIn] = Field(min_length=1)


class _CreditTierIn(_Shape):
    below_percent: Number
    credit_percent: Number


class _SlaIn(_Shape):
    availability_target_percent: Number
    latency_target_ms: Number | None = None
    latency_window_minutes: Annotated[StrictInt, Field(ge=1, le=1440)] = 5
    credit_tiers: list[_CreditTierIn] = Field(default_factory=list)
    credit_cap_percent: Number = Decimal(100)


class _OfferingIn(_Shape):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    name: Text
    description: str = ""
    service_type: Text
    parameters: dict[str, Any] = Field(default_factory=dict)
    order_parameters: list[str] = Field(default_factory=list)
    currency: Text
    recurring_price: Number
    usage: _UsageIn | None = None
    tax_rate: Number
    sla: _SlaIn | None = None


class _FileIn(_Shape):
    offerings: list[_OfferingIn] = Field(min_length=1)


# --- loading -------------------------------------------------------------------------------------


class _Problems:
    """The problems of one file, each located by its path in the file (and so its line)."""

    def __init__(self, path: Path, lines: Mapping[Loc, int]) -> None:
        self.path = path
        self.lines = lines
        self.found: list[Problem] = []

    def where(self, loc: Loc) -> str:
        known = (self.lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in self.lines)
        line = next(known, None)
        prefix = f"{self.path}:{line}" if line else str(self.path)
        return f"{prefix}: {_dotted(loc) or '(top)'}"

    def add(self, loc: Loc, reason: str) -> None:
        self.found.append(Problem(self.where(loc), reason))


def _load_file(
    path: Path, service_types: Collection[str] | Mapping[str, ServiceTypeSpec] | None
) -> list[tuple[Offering, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _invalid(path, [Problem(str(path), f"cannot read: {exc.strerror}")]) from None
    try:
        node, raw = compose_yaml(text), load_yaml(text)
    except YamlSyntaxError as exc:
        where = f"{path}:{exc.line}" if exc.line is not None else str(path)
        raise _invalid(path, [Problem(where, f"not valid YAML: {exc.problem or exc}")]) from None
    lines, repeated = key_locations(node)
    problems = _Problems(path, lines)
    for loc, _first, again in repeated:  # YAML loaders silently keep the last one
        problems.add(loc, f"duplicate key (again on line {again})")
    if not isinstance(raw, dict):
        problems.add((), "a catalog file is a mapping with a list under `offerings:`")
        raise _invalid(path, problems.found)
    try:
        data = _FileIn.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            problems.add(tuple(error["loc"]), _reason(error))
        raise _invalid(path, problems.found) from None
    loaded: list[tuple[Offering, str]] = []
    for i, item in enumerate(data.offerings):
        offering = _check_offering(item, ("offerings", i), problems, service_types, path)
        loaded.append((offering, problems.where(("offerings", i, "id"))))
    if problems.found:
        raise _invalid(path, problems.found)
    return loaded


def _reason(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _check_offering(
    item: _OfferingIn,
    loc: Loc,
    problems: _Problems,
    service_types: Collection[str] | Mapping[str, ServiceTypeSpec] | None,
    path: Path,
) -> Offering:
    try:
        places = minor_units(item.currency)
    except InvalidInput as exc:
        problems.add((*loc, "currency"), str(exc))
        places = 2  # keep checking the rest against the common case
    _check_amount(item.recurring_price, places, (*loc, "recurring_price"), problems)
    _check_places(item.tax_rate, TAX_RATE_DECIMALS, (*loc, "tax_rate"), problems)
    if not Decimal(0) <= item.tax_rate < Decimal(1):
        problems.add((*loc, "tax_rate"), "must be a fraction 0 <= rate < 1 (0.19 is 19 %)")
    usage = _check_usage(item.usage, (*loc, "usage"), problems) if item.usage else None
    sla = _check_sla(item.sla, (*loc, "sla"), problems) if item.sla else None
    _check_parameters(item, loc, problems, service_types)
    return Offering(
        id=item.id,
        name=item.name,
        description=item.description,
        service_type=item.service_type,
        parameters=MappingProxyType(copy.deepcopy(item.parameters)),
        order_parameters=tuple(item.order_parameters),
        currency=item.currency,
        recurring_price=item.recurring_price,
        usage=usage,
        tax_rate=item.tax_rate,
        sla=sla,
        source=str(path),
    )


def _check_places(value: Decimal, places: int, loc: Loc, problems: _Problems) -> None:
    if decimals(value) > places:
        problems.add(loc, f"{value} has more than {places} decimal(s)")


def _check_amount(value: Decimal, places: int, loc: Loc, problems: _Problems) -> None:
    if value < 0:
        problems.add(loc, "must not be negative")
    _check_places(value, places, loc, problems)


def _check_percent(value: Decimal, loc: Loc, problems: _Problems) -> None:
    if not Decimal(0) <= value <= Decimal(100):
        problems.add(loc, f"{value} is not a percentage 0..100")
    _check_places(value, PERCENT_DECIMALS, loc, problems)


def _check_usage(usage: _UsageIn, loc: Loc, problems: _Problems) -> UsageTariff:
    previous = Decimal(0)
    last = len(usage.tiers) - 1
    for i, tier in enumerate(usage.tiers):
        here = (*loc, "tiers", i)
        _check_amount(tier.price, USAGE_PRICE_DECIMALS, (*here, "price"), problems)
        if tier.up_to is None:
            if i != last:
                problems.add((*here, "up_to"), "only the last tier may leave up_to out")
            continue
        if i == last:
            problems.add((*here, "up_to"), "the last tier has no up_to: it prices everything above")
        if tier.up_to <= previous:
            problems.add(
                (*here, "up_to"),
                f"tiers must ascend: {tier.up_to} is not above the previous bound {previous}",
            )
        previous = max(previous, tier.up_to)
    return UsageTariff(
        usage_type=usage.usage_type,
        unit=usage.unit,
        tiers=tuple(Tier(up_to=t.up_to, price=t.price) for t in usage.tiers),
    )


def _check_sla(sla: _SlaIn, loc: Loc, problems: _Problems) -> SlaTerms:
    target = sla.availability_target_percent
    _check_percent(target, (*loc, "availability_target_percent"), problems)
    _check_percent(sla.credit_cap_percent, (*loc, "credit_cap_percent"), problems)
    if sla.latency_target_ms is not None and sla.latency_target_ms <= 0:
        problems.add((*loc, "latency_target_ms"), "must be more than 0")
    previous: CreditTier | None = None
    for i, tier in enumerate(sla.credit_tiers):
        here = (*loc, "credit_tiers", i)
        _check_percent(tier.below_percent, (*here, "below_percent"), problems)
        _check_percent(tier.credit_percent, (*here, "credit_percent"), problems)
        if i == 0 and tier.below_percent > target:
            problems.add(
                (*here, "below_percent"),
                f"{tier.below_percent} is above the availability target {target}: "
                "a met SLA would earn a credit",
            )
        if previous is not None:
            if tier.below_percent >= previous.below_percent:
                problems.add(
                    (*here, "below_percent"),
                    f"credit tiers must descend: {tier.below_percent} is not below "
                    f"the previous tier's {previous.below_percent}",
                )
            if tier.credit_percent < previous.credit_percent:
                problems.add(
                    (*here, "credit_percent"),
                    f"a deeper miss cannot earn less: {tier.credit_percent} is below the "
                    f"previous tier's {previous.credit_percent}",
                )
        previous = CreditTier(tier.below_percent, tier.credit_percent)
    return SlaTerms(
        availability_target_percent=target,
        latency_target_ms=sla.latency_target_ms,
        latency_window_minutes=sla.latency_window_minutes,
        credit_tiers=tuple(CreditTier(t.below_percent, t.credit_percent) for t in sla.credit_tiers),
        credit_cap_percent=sla.credit_cap_percent,
    )


def _check_parameters(
    item: _OfferingIn,
    loc: Loc,
    problems: _Problems,
    service_types: Collection[str] | Mapping[str, ServiceTypeSpec] | None,
) -> None:
    seen: set[str] = set()
    for i, name in enumerate(item.order_parameters):
        here = (*loc, "order_parameters", i)
        if name in seen:
            problems.add(here, f"{name!r} is listed twice")
        seen.add(name)
        if name in item.parameters:
            problems.add(here, f"{name!r} is also a fixed parameter: it is one or the other")
    for name in RESERVED_PARAMETERS:
        if name in item.parameters:
            problems.add((*loc, "parameters", name), "set from the ordering customer")
        if name in seen:
            index = item.order_parameters.index(name)
            problems.add((*loc, "order_parameters", index), "set from the ordering customer")
    if service_types is None:
        return
    if item.service_type not in service_types:
        known = ", ".join(sorted(service_types)) or "none"
        problems.add((*loc, "service_type"), f"no service type {item.service_type!r} ({known})")
        return
    if not isinstance(service_types, Mapping):
        return
    stype = service_types[item.service_type]
    if not isinstance(stype, ServiceTypeSpec):
        return
    declared = stype.parameters
    for name, value in item.parameters.items():
        spec = declared.get(name)
        if spec is None:
            problems.add((*loc, "parameters", name), f"not a parameter of {stype.name}")
            continue
        checked: list[Problem] = []
        spec.check(value, name, checked)
        for problem in checked:
            inner = "" if problem.where == name else f"{problem.where}: "
            problems.add((*loc, "parameters", name), inner + problem.reason)
    for i, name in enumerate(item.order_parameters):
        if name not in declared:
            problems.add((*loc, "order_parameters", i), f"not a parameter of {stype.name}")
    covered = {*item.parameters, *item.order_parameters, *RESERVED_PARAMETERS}
    missing = [n for n, spec in declared.items() if spec.required and n not in covered]
    if missing:
        problems.add(
            (*loc, "order_parameters"),
            f"{stype.name} requires {', '.join(missing)}: fix it or let the order give it",
        )


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _invalid(source: Path, problems: list[Problem]) -> InvalidInput:
    lines = "\n".join(f"  {p}" for p in problems)
    return InvalidInput(
        f"{source}: invalid product catalog ({len(problems)} problem(s)):\n{lines}",
        problems=[{"where": p.where, "reason": p.reason} for p in problems],
    )

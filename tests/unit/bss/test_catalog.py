from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from bss_bridge.catalog import (
    Catalog,
    CreditTier,
    Offering,
    SlaTerms,
    Tier,
    UsageTariff,
    catalog_dir,
)
from oss.errors import InvalidInput, NotFound
from oss.provisioning.service_types import ServiceType, load_service_types

D = Decimal


@pytest.fixture(scope="module")
def types() -> dict[str, ServiceType]:
    return load_service_types()


# A valid file; the tests below break one thing at a time.
GOOD = """\
offerings:
  - id: test-slice
    name: Test slice
    service_type: slice
    parameters:
      bandwidth: 100M
      qos_class: assured
    order_parameters: [from, to]
    currency: EUR
    recurring_price: "100.00"
    tax_rate: "0.19"
    usage:
      usage_type: data
      unit: GB
      tiers:
        - {up_to: "100", price: "0.00"}
        - {up_to: "1000", price: "0.02"}
        - {price: "0.01"}
    sla:
      availability_target_percent: "99.9"
      latency_target_ms: "5"
      credit_tiers:
        - {below_percent: "99.9", credit_percent: "10"}
        - {below_percent: "99", credit_percent: "25"}
      credit_cap_percent: "50"
"""


def write(directory: Path, text: str, name: str = "test.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def rejected(directory: Path, service_types: object = None) -> str:
    with pytest.raises(InvalidInput) as info:
        Catalog.load(directory, service_types)  # type: ignore[arg-type]
    return str(info.value)


# --- the real catalog ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(catalog_dir().glob("*.yaml")), ids=lambda p: p.name)
def test_every_catalog_file_loads_against_the_real_service_types(
    path: Path, types: dict[str, ServiceType], tmp_path: Path
) -> None:
    write(tmp_path, path.read_text(), path.name)
    catalog = Catalog.load(tmp_path, types)
    assert len(catalog) >= 1


def test_real_catalog_has_the_metro_slice(types: dict[str, ServiceType]) -> None:
    offering = Catalog.load(None, types).get("metro-slice-200")
    assert offering.service_type == "slice"
    assert dict(offering.parameters) == {
        "bandwidth": "200M",
        "latency": "5ms",
        "qos_class": "expedited",
    }
    assert offering.order_parameters == ("from", "to")
    assert offering.currency == "EUR"
    assert offering.recurring_price == D("500.00")
    assert offering.tax_rate == D("0.19")
    assert offering.usage == UsageTariff(
        usage_type="data",
        unit="GB",
        tiers=(Tier(D(1000), D("0.00")), Tier(D(10000), D("0.02")), Tier(None, D("0.01"))),
    )
    assert offering.sla == SlaTerms(
        availability_target_percent=D("99.9"),
        latency_target_ms=D(10),  # round trip; the 5ms budget is one way
        latency_window_minutes=5,
        credit_tiers=(
            CreditTier(D("99.9"), D(10)),
            CreditTier(D(99), D(25)),
            CreditTier(D(95), D(50)),
        ),
        credit_cap_percent=D(50),
    )
    assert offering.source.endswith("slices.yaml")


def test_real_catalog_has_the_business_vpn(types: dict[str, ServiceType]) -> None:
    catalog = Catalog.load(None, types)
    offering = catalog.get("business-vpn")
    assert offering.service_type == "l3vpn"
    assert offering.usage is None
    assert offering.sla is not None
    assert offering.sla.availability_target_percent == D("99.5")
    assert offering.sla.latency_target_ms is None
    assert [o.id for o in catalog.all()] == ["business-vpn", "metro-slice-200"]


def test_real_catalog_loads_with_type_names_only() -> None:
    assert "metro-slice-200" in Catalog.load(None, ["slice", "l3vpn", "l2vpn"])


# --- lookups and orders --------------------------------------------------------------------------


def test_get_unknown_offering_is_not_found(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    with pytest.raises(NotFound, match=r"no product offering 'nope' \(known: test-slice\)"):
        Catalog.load(tmp_path).get("nope")


def test_offering_is_frozen_and_its_parameters_read_only(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    offering = Catalog.load(tmp_path).get("test-slice")
    with pytest.raises(dataclasses.FrozenInstanceError):
        offering.currency = "USD"  # type: ignore[misc]
    with pytest.raises(TypeError):
        offering.parameters["bandwidth"] = "1G"  # type: ignore[index]


def test_service_parameters_merge_fixed_order_and_customer(
    tmp_path: Path, types: dict[str, ServiceType]
) -> None:
    write(tmp_path, GOOD)
    offering = Catalog.load(tmp_path, types).get("test-slice")
    params = offering.service_parameters({"from": "site-a", "to": "site-b"}, "acme")
    assert params == {
        "bandwidth": "100M",
        "qos_class": "assured",
        "from": "site-a",
        "to": "site-b",
        "customer": "acme",
    }
    types["slice"].validate(params)  # what the order hands provisioning is valid
    with pytest.raises(InvalidInput, match="not an order parameter: bandwidth"):
        offering.service_parameters({"from": "a", "to": "b", "bandwidth": "10G"}, "acme")


def test_empty_directory_is_an_empty_catalog(tmp_path: Path) -> None:
    assert Catalog.load(tmp_path).all() == []


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        Catalog.load(tmp_path / "nope")


# --- bad files: each names the file, the line and the field --------------------------------------


def test_unknown_key_names_file_line_and_field(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("    currency: EUR\n", "    currency: EUR\n    colour: red\n"))
    message = rejected(tmp_path)
    assert f"{tmp_path / 'test.yaml'}:10: offerings[0].colour: unknown key" in message


def test_unknown_key_in_a_tier(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('{price: "0.01"}', '{price: "0.01", per: GB}'))
    assert "offerings[0].usage.tiers[2].per: unknown key" in rejected(tmp_path)


def test_float_price_is_refused_with_how_to_write_it(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('recurring_price: "100.00"', "recurring_price: 100.50"))
    message = rejected(tmp_path)
    assert "test.yaml:10: offerings[0].recurring_price:" in message
    assert "float" in message
    assert '"100.5"' in message


def test_float_percentage_is_refused_too(tmp_path: Path) -> None:
    write(
        tmp_path,
        GOOD.replace('availability_target_percent: "99.9"', "availability_target_percent: 99.9"),
    )
    assert "offerings[0].sla.availability_target_percent: must be written as a string" in (
        rejected(tmp_path)
    )


def test_tiers_must_ascend(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('up_to: "1000"', 'up_to: "50"'))
    message = rejected(tmp_path)
    assert "offerings[0].usage.tiers[1].up_to: tiers must ascend: 50 is not above" in message


def test_equal_tier_bounds_do_not_ascend(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('up_to: "1000"', 'up_to: "100"'))
    assert "usage.tiers[1].up_to: tiers must ascend" in rejected(tmp_path)


def test_open_tier_must_be_last(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('{up_to: "1000", price: "0.02"}', '{price: "0.02"}'))
    assert "usage.tiers[1].up_to: only the last tier may leave up_to out" in rejected(tmp_path)


def test_last_tier_must_be_open(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('{price: "0.01"}', '{up_to: "5000", price: "0.01"}'))
    assert "usage.tiers[2].up_to: the last tier has no up_to" in rejected(tmp_path)


def test_credit_tiers_must_descend(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('below_percent: "99", credit', 'below_percent: "99.95", credit'))
    message = rejected(tmp_path)
    assert "sla.credit_tiers[1].below_percent: credit tiers must descend" in message


def test_deeper_miss_cannot_earn_less(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('credit_percent: "25"', 'credit_percent: "5"'))
    assert "sla.credit_tiers[1].credit_percent: a deeper miss cannot earn less" in rejected(
        tmp_path
    )


def test_first_credit_tier_above_target_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        GOOD.replace('availability_target_percent: "99.9"', 'availability_target_percent: "99.5"'),
    )
    assert "sla.credit_tiers[0].below_percent: 99.9 is above the availability target" in (
        rejected(tmp_path)
    )


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('credit_cap_percent: "50"', 'credit_cap_percent: "150"', "sla.credit_cap_percent"),
        ('credit_percent: "10"', 'credit_percent: "-1"', "sla.credit_tiers[0].credit_percent"),
        ('availability_target_percent: "99.9"', 'availability_target_percent: "100.1"',
         "sla.availability_target_percent"),
    ],
)  # fmt: skip
def test_percentages_are_0_to_100(tmp_path: Path, old: str, new: str, field: str) -> None:
    write(tmp_path, GOOD.replace(old, new))
    assert f"offerings[0].{field}: " in rejected(tmp_path)
    assert "is not a percentage 0..100" in rejected(tmp_path)


def test_unknown_currency(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("currency: EUR", "currency: EUX"))
    assert "test.yaml:9: offerings[0].currency: unknown currency 'EUX'" in rejected(tmp_path)


def test_recurring_price_has_at_most_the_minor_unit(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('"100.00"', '"100.001"'))
    assert "recurring_price: 100.001 has more than 2 decimal(s)" in rejected(tmp_path)
    write(tmp_path, GOOD.replace("currency: EUR", "currency: JPY"))
    assert "recurring_price: 100.00 has more than 0 decimal(s)" in rejected(tmp_path)


def test_usage_price_may_go_below_the_minor_unit_up_to_6_decimals(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('price: "0.02"', 'price: "0.000125"'))
    tiers = Catalog.load(tmp_path).get("test-slice").usage.tiers  # type: ignore[union-attr]
    assert tiers[1].price == D("0.000125")
    write(tmp_path, GOOD.replace('price: "0.02"', 'price: "0.0000001"'))
    assert "usage.tiers[1].price: 1E-7 has more than 6 decimal(s)" in rejected(tmp_path)


def test_negative_price(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('"100.00"', '"-1.00"'))
    assert "recurring_price: must not be negative" in rejected(tmp_path)


def test_tax_rate_is_a_fraction(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('tax_rate: "0.19"', 'tax_rate: "19"'))
    assert "offerings[0].tax_rate: must be a fraction" in rejected(tmp_path)


def test_order_parameter_also_fixed(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("[from, to]", "[from, to, bandwidth]"))
    message = rejected(tmp_path)  # caught without the service types too
    assert "order_parameters[2]: 'bandwidth' is also a fixed parameter" in message


def test_customer_is_neither_fixed_nor_ordered(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("[from, to]", "[from, to, customer]"))
    assert "order_parameters[2]: set from the ordering customer" in rejected(tmp_path)


def test_order_parameter_the_service_type_does_not_declare(
    tmp_path: Path, types: dict[str, ServiceType]
) -> None:
    write(tmp_path, GOOD.replace("[from, to]", "[from, to, colour]"))
    Catalog.load(tmp_path)  # without the service types nobody can tell
    assert "order_parameters[2]: not a parameter of slice" in rejected(tmp_path, types)


def test_fixed_parameter_the_service_type_does_not_declare(
    tmp_path: Path, types: dict[str, ServiceType]
) -> None:
    write(tmp_path, GOOD.replace("qos_class: assured", "colour: red"))
    assert "offerings[0].parameters.colour: not a parameter of slice" in rejected(tmp_path, types)


def test_fixed_parameter_value_is_checked_by_the_service_type(
    tmp_path: Path, types: dict[str, ServiceType]
) -> None:
    write(tmp_path, GOOD.replace("qos_class: assured", "qos_class: gold"))
    assert "test.yaml:7: offerings[0].parameters.qos_class: must be one of" in rejected(
        tmp_path, types
    )


def test_required_parameter_nobody_gives(tmp_path: Path, types: dict[str, ServiceType]) -> None:
    write(tmp_path, GOOD.replace("[from, to]", "[from]"))
    assert "offerings[0].order_parameters: slice requires to" in rejected(tmp_path, types)


def test_unknown_service_type(tmp_path: Path, types: dict[str, ServiceType]) -> None:
    write(tmp_path, GOOD.replace("service_type: slice", "service_type: teleport"))
    assert "offerings[0].service_type: no service type 'teleport'" in rejected(tmp_path, types)
    assert "no service type 'teleport' (l3vpn)" in rejected(tmp_path, ["l3vpn"])


def test_duplicate_offering_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    message = rejected(tmp_path)
    assert "b.yaml:2: offerings[0].id: duplicate offering id 'test-slice'" in message
    assert "first in " in message and "a.yaml:2" in message


def test_duplicate_offering_ids_in_one_file(tmp_path: Path) -> None:
    body = GOOD.removeprefix("offerings:\n")
    write(tmp_path, "offerings:\n" + body + body)
    assert "offerings[1].id: duplicate offering id 'test-slice'" in rejected(tmp_path)


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("    currency: EUR\n", "    currency: EUR\n    currency: USD\n"))
    assert "offerings[0].currency: duplicate key (again on line 10)" in rejected(tmp_path)


def test_bad_id(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("id: test-slice", "id: Test Slice"))
    assert "offerings[0].id: String should match pattern" in rejected(tmp_path)


def test_missing_field(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("    currency: EUR\n", ""))
    assert "offerings[0].currency: Field required" in rejected(tmp_path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("offerings: [", "not valid YAML"),
        ("- a\n- b\n", "a catalog file is a mapping"),
        ("offerings: []\n", "offerings: List should have at least 1 item"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, reason: str) -> None:
    write(tmp_path, text)
    message = rejected(tmp_path)
    assert "test.yaml" in message
    assert reason in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        GOOD.replace("currency: EUR", "currency: EUX")
        .replace('tax_rate: "0.19"', 'tax_rate: "2"')
        .replace('up_to: "1000"', 'up_to: "50"'),
    )
    message = rejected(tmp_path)
    assert "(3 problem(s))" in message
    for field in ("currency", "tax_rate", "usage.tiers[1].up_to"):
        assert f"offerings[0].{field}: " in message


def test_problems_are_structured(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("currency: EUR", "currency: EUX"))
    with pytest.raises(InvalidInput) as info:
        Catalog.load(tmp_path)
    problems = info.value.extra["problems"]
    assert len(problems) == 1
    assert problems[0]["where"].endswith("test.yaml:9: offerings[0].currency")
    assert problems[0]["reason"].startswith("unknown currency")


def test_catalog_refuses_duplicate_offerings_built_in_code() -> None:
    offering = Offering(
        id="x", name="X", description="", service_type="slice", parameters={},
        order_parameters=(), currency="EUR", recurring_price=D("1.00"), usage=None,
        tax_rate=D(0), sla=None,
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="duplicate offering id 'x'"):
        Catalog([offering, offering])

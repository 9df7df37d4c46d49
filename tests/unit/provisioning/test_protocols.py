"""The configuration-protocol registry: every protocol a platform pushes configuration with is
registered with its driver, adapter, template kind and payload parser/writer; provisioning
looks protocols up here instead of branching on their names."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.platforms import load_platform, platform_names
from oss.errors import ConfigError
from oss.provisioning.leaves import Intent
from oss.provisioning.protocols import (
    PROTOCOLS,
    build_drivers,
    config_protocol,
    parse_payload,
    template_kind,
)

INTENT = Intent(
    {
        "interfaces/interface[name=eth3]/config/description": "svc-12 access",
        "interfaces/interface[name=eth3]/config/mtu": "9000",
    },
    ("network-instances/network-instance[name=vrf-a]",),
)


def test_every_shipped_config_protocol_is_registered() -> None:
    for name in platform_names():
        platform = load_platform(name)
        if platform.config_protocol is not None:
            assert config_protocol(platform).name == platform.config_protocol


def test_a_platform_without_a_config_protocol_is_refused(tmp_path: Path) -> None:
    (tmp_path / "box.yaml").write_text("name: box\n")
    with pytest.raises(ConfigError, match=r"^platform box: no protocol pushes configuration$"):
        config_protocol(load_platform("box", tmp_path))


def test_template_kinds_are_distinct_and_unknown_protocols_have_none() -> None:
    kinds = [template_kind(name) for name in PROTOCOLS]
    assert sorted(kinds) == sorted(set(kinds))
    assert template_kind("netconf") == "xml"
    with pytest.raises(ConfigError, match=r"^no template kind renders configuration for snmp$"):
        template_kind("snmp")


@pytest.mark.parametrize("platform_name", ["lab-sim", "lab-sim-gnmi", "lab-sim-cli"])
def test_write_is_the_inverse_of_parse(platform_name: str) -> None:
    """Services rewrite a plan from leaves (stale entries to remove): the payload written must
    read back as the same leaves and removals."""
    platform = load_platform(platform_name)
    payload = config_protocol(platform).write(INTENT, platform)
    assert parse_payload(platform, payload) == INTENT


def test_only_a_confirmed_commit_reverts_by_itself() -> None:
    """The engine reports a device unreachable for undo as reverting (not stuck) only when its
    protocol's unconfirmed commit reverts on the device: NETCONF's confirmed commit."""
    assert {name for name, p in PROTOCOLS.items() if p.reverts_unconfirmed} == {"netconf"}


async def test_build_drivers_gives_one_driver_per_protocol() -> None:
    drivers = build_drivers(max_workers=2)
    try:
        assert set(drivers) == set(PROTOCOLS)
        for name, driver in drivers.items():
            assert isinstance(driver, PROTOCOLS[name].driver)
    finally:
        for driver in drivers.values():
            await driver.close()

"""State checks: parsed from a rendered `.checks.yaml.j2`, polled within their bound, and
rendered for bgp-peering on frr from the type's example."""

from __future__ import annotations

import json

import pytest

from drivers.platforms import load_platform
from oss.errors import DriverError, InvalidInput
from oss.provisioning.plan import template_context
from oss.provisioning.protocols import render_device, state_checks_template
from oss.provisioning.realise import DeviceRole, service_names
from oss.provisioning.render import Renderer
from oss.provisioning.service_types import load_service_types
from oss.provisioning.state_checks import StateCheck, parse_checks, run_checks
from topology.model import Device

CHECK = StateCheck("show bgp neighbors 10.0.0.1 json", ("10.0.0.1", "bgpState"), "Established", 5)


def test_checks_parse_with_their_defaults() -> None:
    text = "- command: show x json\n  path: [a, 0, b]\n  equals: true\n"
    assert parse_checks(text, "t.checks.yaml.j2") == (
        StateCheck("show x json", ("a", 0, "b"), "true", 30.0),
    )
    assert parse_checks("", "t") == ()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("command: x", "a list of checks, not dict"),
        ("- command: x\n  equals: 1\n", r"check 1: path: Field required"),
        ("- {command: x, path: [a], equals: 1, within_s: 900}", "check 1: within_s"),
        ("- {command: x, path: [a], equals: 1, wait: 3}", "check 1: wait: Extra inputs"),
        ("- [", "not YAML"),
    ],
)
def test_a_bad_check_names_the_template(text: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=rf"template t\.checks\.yaml\.j2: .*{why}"):
        parse_checks(text, "t.checks.yaml.j2")


async def test_a_check_is_polled_until_it_holds() -> None:
    answers = iter(["% no such neighbor", "{}", '{"10.0.0.1": {"bgpState": "Established"}}'])
    asked: list[str] = []

    async def command(text: str) -> str:
        asked.append(text)
        return next(answers)

    await run_checks([CHECK], command, device="r1", protocol="cli")
    assert asked == [CHECK.command] * 3


async def test_a_check_that_never_holds_fails_with_what_was_last_seen() -> None:
    check = StateCheck(CHECK.command, CHECK.path, "Established", 0.2)

    async def command(text: str) -> str:
        return json.dumps({"10.0.0.1": {"bgpState": "Active"}})

    with pytest.raises(DriverError) as failed:
        await run_checks([check], command, device="r1", protocol="cli")
    assert str(failed.value) == (
        f"r1 (cli): state check: {check.describe()} did not hold within 0.2 s (last seen: Active)"
    )


def test_the_checks_template_sits_beside_the_configuration_template() -> None:
    assert state_checks_template("frr/bgp-peering/peer.cli.j2") == (
        "frr/bgp-peering/peer.checks.yaml.j2"
    )


def test_bgp_peering_on_frr_checks_each_end_s_session() -> None:
    stype = load_service_types()["bgp-peering"]
    assert stype.example is not None
    values = stype.validate(stype.example)
    names = service_names(stype, values, 7, None, 65000)
    platform = load_platform("frr")
    sessions = {}
    for name in ("r1", "r2"):
        role = DeviceRole(Device(name=name, role="pe", site="north", platform="frr"), "pe")
        context = template_context(stype, values, names, role, platform)
        template = stype.template("pe", platform.template_dir, "cli")
        merge = render_device(Renderer(), platform, template, context, mode="merge", device=name)
        delete = render_device(Renderer(), platform, template, context, mode="delete", device=name)
        assert delete.checks == ()  # nothing to wait for once it is gone
        (check,) = merge.checks
        sessions[name] = (check.command, check.path, check.equals)
    assert sessions == {
        "r1": ("show bgp neighbors 10.254.0.1 json", ("10.254.0.1", "bgpState"), "Established"),
        "r2": ("show bgp neighbors 10.254.0.0 json", ("10.254.0.0", "bgpState"), "Established"),
    }

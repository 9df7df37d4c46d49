"""Indented CLI configuration (platform `cli.syntax: blocks`, FRR's vtysh) as leaves and back:
the shipped frr platform's rules, against FRR 8.4's own `show running-config` text."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.platforms import CliOptions, load_platform
from oss.errors import ConfigError, InvalidInput
from oss.provisioning.cli_blocks import escape, unescape
from oss.provisioning.leaves import (
    Intent,
    cli_intent,
    cli_render,
    cli_running,
    diff,
    restore_intent,
)
from oss.provisioning.plan import DevicePlan
from oss.provisioning.protocols.cli import _lines_for

FRR = load_platform("frr").cli
BGP = "router bgp 65001"
AF = f"{BGP}/address-family ipv4 unicast"
PEER = f"{BGP}/neighbor 10.254.0.1"

# As FRR 8.4.4's vtysh prints it (the lines netmiko hands over, before and after included).
RUNNING = """Building configuration...

Current configuration:
!
frr version 8.4.4
frr defaults traditional
hostname r1
no ip forwarding
!
interface eth1
 ip address 10.254.0.0/31
exit
!
router bgp 65001
 bgp router-id 10.255.0.1
 neighbor 10.254.0.1 remote-as 65002
 neighbor 10.254.0.1 description oss svc-7 bgp-peering acme
 !
 address-family ipv4 unicast
  network 10.255.0.1/32
  neighbor 10.254.0.1 prefix-list svc-7-in in
 exit-address-family
exit
!
ip prefix-list svc-7-in seq 5 permit 10.255.0.2/32
ip prefix-list svc-7-in seq 10 permit 10.255.0.3/32
!
end"""


def test_running_config_reads_as_leaves_inside_their_blocks() -> None:
    leaves = cli_running(RUNNING, FRR)
    assert leaves == {
        "frr version 8.4.4": "",
        "frr defaults traditional": "",
        "hostname": "r1",
        "no ip forwarding": "",  # a device's `no` line is configuration, not a removal
        "interface eth1/ip address 10.254.0.0%2F31": "",
        f"{BGP}/bgp router-id": "10.255.0.1",
        f"{PEER}/remote-as 65002": "",
        f"{PEER}/description": "oss svc-7 bgp-peering acme",
        f"{AF}/network 10.255.0.1%2F32": "",
        f"{AF}/neighbor 10.254.0.1/prefix-list svc-7-in in": "",
        "ip prefix-list svc-7-in/seq 5": "permit 10.255.0.2/32",
        "ip prefix-list svc-7-in/seq 10": "permit 10.255.0.3/32",
    }


def test_written_back_the_leaves_read_the_same() -> None:
    leaves = cli_running(RUNNING, FRR)
    lines = cli_render(Intent(leaves), FRR)
    assert lines[lines.index(BGP) :][:9] == [
        BGP,
        " bgp router-id 10.255.0.1",
        " neighbor 10.254.0.1 remote-as 65002",
        " neighbor 10.254.0.1 description oss svc-7 bgp-peering acme",
        " address-family ipv4 unicast",
        "  network 10.255.0.1/32",
        "  neighbor 10.254.0.1 prefix-list svc-7-in in",
        " exit",
        "exit",
    ]
    assert cli_running("\n".join(lines), FRR) == leaves


def test_a_template_s_no_lines_are_removals_inner_blocks_first() -> None:
    template = f"""{BGP}
 no neighbor 10.254.0.1
 address-family ipv4 unicast
  no network 10.255.0.1/32
 exit-address-family
exit
no ip prefix-list svc-7-in
"""
    intent = cli_intent(template, FRR)
    assert intent == Intent({}, (PEER, f"{AF}/network 10.255.0.1%2F32", "ip prefix-list svc-7-in"))
    # the address-family's lines go before the neighbor's block line, which would take them
    assert cli_render(intent, FRR) == [
        BGP,
        " address-family ipv4 unicast",
        "  no network 10.255.0.1/32",
        " exit",
        " no neighbor 10.254.0.1",
        "exit",
        "no ip prefix-list svc-7-in",
    ]


def test_an_owned_entry_covers_its_lines_so_drift_and_undo_see_them() -> None:
    running = cli_running(RUNNING, FRR)
    changed = {**running, "ip prefix-list svc-7-in/seq 5": "permit 10.9.0.0/24"}
    changed[f"{PEER}/timers connect 5"] = ""  # an out-of-band line in the owned neighbor
    intended = Intent({k: v for k, v in running.items() if "svc-7" in k or "10.254.0.1" in k})
    owned = (PEER, "ip prefix-list svc-7-in")
    changes = {(c.op, c.path) for c in diff(intended, owned, changed)}
    assert changes == {
        ("change", "ip prefix-list svc-7-in/seq 5"),
        ("remove", f"{PEER}/timers connect 5"),
    }
    restore = restore_intent(running, changed, intended, owned)
    assert restore.removals == (f"{PEER}/timers connect 5",)
    assert cli_render(restore, FRR) == [
        BGP,
        " no neighbor 10.254.0.1 timers connect 5",
        "exit",
        "ip prefix-list svc-7-in seq 5 permit 10.255.0.2/32",
    ]


def test_a_template_line_set_twice_to_different_values_is_refused_with_its_line() -> None:
    text = "ip prefix-list p seq 5 permit 10.0.0.0/8\nip prefix-list p seq 5 deny 10.0.0.0/8\n"
    with pytest.raises(InvalidInput, match=r"line 2: .*ip prefix-list p / seq 5 again"):
        cli_intent(text, FRR)


def test_a_device_printing_a_line_twice_is_read_with_the_last() -> None:
    """FRR 8.4's vtysh prints each daemon's `hostname`, then its own (vtysh.conf)."""
    assert cli_running("hostname r1\nhostname vm\n", FRR) == {"hostname": "vm"}


@pytest.mark.parametrize("element", ["10.0.0.0/24", "a[b]", "100%", "plain words"])
def test_path_elements_escape_what_splits_paths(element: str) -> None:
    escaped = escape(element)
    assert "/" not in escaped and "[" not in escaped and "]" not in escaped
    assert unescape(escaped) == element


def test_values_patterns_need_path_and_value_groups() -> None:
    with pytest.raises(ValueError, match="needs the named groups path and value"):
        CliOptions(syntax="blocks", values=(r"^(?P<path>hostname) \S+$",))
    with pytest.raises(ValueError, match="not a regular expression"):
        CliOptions(syntax="blocks", entries=("neighbor (",))


def test_the_frr_platform_loads_with_its_dialect() -> None:
    platform = load_platform("frr")
    assert platform.config_protocol == "cli"
    assert platform.cli.device_type == "cisco_ios"
    assert platform.cli.syntax == "blocks"
    assert not platform.cli.commit and platform.cli.rollback_command is None


def test_a_bad_syntax_in_a_platform_file_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "bad.yaml").write_text("name: bad\nconfig_protocol: cli\ncli:\n  syntax: tree\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:4: cli\.syntax"):
        load_platform("bad", folder)


def test_a_commit_leaves_out_removals_of_what_the_device_does_not_hold() -> None:
    """FRR refuses `no network X` when X is not there: a delete after an out-of-band removal
    must still go through."""
    platform = load_platform("frr")
    payload = (
        f"{BGP}\n address-family ipv4 unicast\n  no network 10.255.0.1/32\n"
        " no neighbor 10.254.0.1\n"
    )
    intent = cli_intent(payload, platform.cli)
    plan = DevicePlan("r1", platform, payload, intent, owned=intent.removals)
    plan.pre_image = {f"{PEER}/remote-as 65002": ""}  # the network statement is gone already
    assert _lines_for(plan) == [BGP, " no neighbor 10.254.0.1", "exit"]
    plan.pre_image[f"{AF}/network 10.255.0.1%2F32"] = ""
    assert _lines_for(plan) == [line.strip() for line in payload.splitlines()]


def test_a_line_without_a_value_shows_in_a_diff_as_its_path_alone() -> None:
    intended = Intent({f"{PEER}/remote-as 65002": "", f"{PEER}/description": "x"})
    lines = [c.line() for c in diff(intended, (PEER,), {f"{PEER}/timers connect 5": ""})]
    assert lines == [
        f"+ {PEER}/remote-as 65002",
        f"+ {PEER}/description = x",
        f"- {PEER}/timers connect 5",
    ]

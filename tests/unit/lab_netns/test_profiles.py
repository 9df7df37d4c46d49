"""Node profiles as data: the shipped ones load, match rules pick them, bad files are refused
with file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lab.netns.profiles import load_profile, load_profiles, profile_of, profiles_dir
from oss.errors import ConfigError
from topology.model import Device


def _folder(tmp_path: Path, text: str, name: str = "p") -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    for template in ("a.j2", "b.j2"):
        (tmp_path / "templates" / template).write_text("x\n")
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path


def test_the_shipped_profiles_load_with_their_daemons_in_start_order() -> None:
    profiles = {p.name: p for p in load_profiles()}
    assert set(profiles) >= {"frr", "frr-isis"}
    frr = profiles["frr"]
    assert frr.igp == "ospf"
    assert [d.name for d in frr.daemons] == [
        "snmpd",
        "zebra",
        "staticd",
        "ospfd",
        "bgpd",
        "lldpd",
        "sshd",
    ]
    assert [d.name for d in frr.daemons_for(has_asn=False)] == [
        "snmpd",
        "zebra",
        "staticd",
        "ospfd",
        "lldpd",
        "sshd",
    ]
    assert {d.name for d in frr.daemons if d.agentx} == {"zebra", "ospfd", "bgpd", "lldpd"}
    isis = profiles["frr-isis"]
    assert isis.igp == "isis" and "isisd" in [d.name for d in isis.daemons]
    assert "ospfd" not in [d.name for d in isis.daemons]


def test_match_rules_pick_frr_for_linux_and_frr_images_and_nothing_for_others() -> None:
    assert profile_of(Device(name="r1", kind="linux", image="ghcr.io/x/multitool"), {}) == "frr"
    assert profile_of(Device(name="r1", kind="frr", image=""), {}) == "frr"
    assert profile_of(Device(name="r1", kind="x", image="quay.io/frrouting/frr:8.4"), {}) == "frr"
    assert (
        profile_of(Device(name="r1", kind="nokia_srlinux", image="ghcr.io/nokia/srl"), {}) is None
    )


def test_an_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no file .*nope.yaml \(profiles: .*frr-isis"):
        load_profile("nope")
    with pytest.raises(ConfigError, match="not a profile name"):
        load_profile("../etc/passwd")


def test_every_problem_of_a_bad_profile_is_named_with_its_line(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        """
        description: broken
        igp: rip
        colour: blue
        match:
          - {kind: linux, os: x}
        daemons:
          - {name: zebra, run: frr, config: a.j2, agentx: true}
          - {name: snmpd, run: snmpd, config: b.j2}
          - {name: ospfd, run: quagga, config: a.j2}
          - {name: bgpd, run: frr, config: missing.j2, when: sometimes}
          - {name: zebra, run: frr, config: a.j2}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_profile("p", folder)
    text = str(caught.value)
    path = folder / "p.yaml"
    assert f"{path}:2: igp 'rip'" in text
    assert f"{path}:3: unknown key 'colour'" in text
    assert f"{path}:5: a match rule" in text
    assert f"{path}:9: run 'quagga'" in text
    assert f"{path}:10: config 'missing.j2'" in text and f"{path}:10: when 'sometimes'" in text
    assert f"{path}:11: daemon 'zebra' is listed twice" in text
    assert "snmpd (the AgentX master) must start before zebra" in text


def test_a_profile_that_is_not_yaml_or_not_a_mapping_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "daemons: [\n", name="bad")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: not valid YAML"):
        load_profile("bad", folder)
    folder = _folder(tmp_path, "- just a list\n", name="list")
    with pytest.raises(ConfigError, match="a profile is a mapping"):
        load_profile("list", folder)


def test_frr_daemons_need_zebra_and_agentx_needs_snmpd(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        """
        daemons:
          - {name: ospfd, run: frr, config: a.j2, agentx: true}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_profile("p", folder)
    assert "need zebra" in str(caught.value) and "needs snmpd" in str(caught.value)


def test_profiles_dir_is_the_lab_package_s() -> None:
    assert (profiles_dir() / "frr.yaml").is_file()
    assert (profiles_dir() / "templates" / "ospfd.conf.j2").is_file()

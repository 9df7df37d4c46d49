"""Platform files as provisioning needs them: every list a platform's templates write is keyed
in its `model.list_keys` (refused at load with the file and line otherwise, instead of a wrong
verify error at the first transaction), errors carry lines, and a device's platform must be
one that exists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drivers.platforms import (
    check_platform_name,
    load_platform,
    platform_names,
    platforms_dir,
)
from oss.errors import ConfigError, InvalidInput

CONFIGS = platforms_dir().parent


@pytest.mark.parametrize("name", platform_names())
def test_every_shipped_platform_keys_the_lists_its_templates_write(name: str) -> None:
    assert load_platform(name).name == name


def configs_copy(tmp_path: Path, platform: str, template_set: str) -> Path:
    """A configs folder holding one shipped platform file and its template set."""
    (tmp_path / "platforms").mkdir()
    shutil.copy(platforms_dir() / f"{platform}.yaml", tmp_path / "platforms")
    shutil.copytree(CONFIGS / "templates" / template_set, tmp_path / "templates" / template_set)
    return tmp_path / "platforms"


def without_line(path: Path, text: str) -> int:
    """Drop the line holding `text`; the line number of `list_keys:` in what is left."""
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if text not in line]
    assert len(kept) == len(lines) - 1, text
    path.write_text("".join(kept))
    return next(i for i, line in enumerate(kept, 1) if line.strip() == "list_keys:")


def test_a_list_written_in_gnmi_and_cli_paths_needs_its_key(tmp_path: Path) -> None:
    platforms = configs_copy(tmp_path, "lab-sim", "lab-sim")
    line = without_line(platforms / "lab-sim.yaml", "addresses/address: ip")
    with pytest.raises(ConfigError) as err:
        load_platform("lab-sim", platforms)
    message = str(err.value)
    assert message.startswith(f"{platforms / 'lab-sim.yaml'}:{line}: model.list_keys: ")
    assert "no key 'ip' for the list 'ipv4/addresses/address'" in message
    assert "lab-sim/_lib/openconfig." in message and "(add `addresses/address: ip`)" in message


def test_a_list_removed_in_xml_needs_its_key(tmp_path: Path) -> None:
    platforms = configs_copy(tmp_path, "netconfd-lab", "netconfd-lab")
    line = without_line(platforms / "netconfd-lab.yaml", "vrfs/vrf: name")
    with pytest.raises(
        ConfigError,
        match=rf"netconfd-lab\.yaml:{line}: model\.list_keys: no key 'name' for the list 'vrf'"
        r" that netconfd-lab/l3vpn/pe\.xml\.j2:\d+ writes",
    ):
        load_platform("netconfd-lab", platforms)


def test_a_list_repeated_by_a_loop_in_xml_needs_its_key(tmp_path: Path) -> None:
    platforms = configs_copy(tmp_path, "netconfd-lab", "netconfd-lab")
    without_line(platforms / "netconfd-lab.yaml", "interfaces/interface: name")
    with pytest.raises(ConfigError, match=r"no key 'name' for the list 'interface'"):
        load_platform("netconfd-lab", platforms)


def test_a_platform_without_templates_or_config_protocol_needs_no_keys(tmp_path: Path) -> None:
    (tmp_path / "platforms").mkdir()
    (tmp_path / "platforms" / "box.yaml").write_text("name: box\nconfig_protocol: netconf\n")
    assert load_platform("box", tmp_path / "platforms").model.list_keys == {}


def test_shape_errors_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "box.yaml").write_text("name: box\nports:\n  netconf: many\n")
    with pytest.raises(ConfigError) as err:
        load_platform("box", tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'box.yaml'}:3: ports.netconf: ")


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "box.yaml").write_text("name: box\nports: [netconf\n")
    with pytest.raises(ConfigError) as err:
        load_platform("box", tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'box.yaml'}:3: not valid YAML")


def test_an_unknown_platform_name_is_refused_with_the_known_ones() -> None:
    check_platform_name("lab-sim")
    with pytest.raises(InvalidInput) as err:
        check_platform_name("nosuch")
    known = ", ".join(platform_names())
    assert str(err.value) == f"platform: unknown platform 'nosuch' (known: {known})"
    assert err.value.extra["problems"][0]["where"] == "platform"


def test_a_platform_whose_file_is_refused_cannot_be_given_to_a_device(tmp_path: Path) -> None:
    platforms = configs_copy(tmp_path, "netconfd-lab", "netconfd-lab")
    without_line(platforms / "netconfd-lab.yaml", "vrfs/vrf: name")
    with pytest.raises(InvalidInput) as err:
        check_platform_name("netconfd-lab", directory=platforms)
    assert str(err.value).startswith(
        f"platform: platform 'netconfd-lab' cannot be used: {platforms / 'netconfd-lab.yaml'}:"
    )

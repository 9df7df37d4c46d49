from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from drivers.credentials import resolve_credentials
from drivers.platforms import load_platform, platform_names
from oss.errors import ConfigError
from topology.model import Device
from topology.targets import parse_networks, target_for


def test_every_shipped_platform_loads() -> None:
    names = platform_names()
    assert {"lab-sim", "linux", "srlinux", "frr"} <= set(names)
    for name in names:
        platform = load_platform(name)
        assert platform.config_protocol is None or platform.config_protocol in platform.ports


def test_target_takes_port_and_options_from_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("R1_CREDS", '{"username": "oss", "password": "s3cret"}')
    device = Device(
        name="r1", platform="lab-sim", mgmt_address="127.10.0.1", credentials_ref="env:R1_CREDS"
    )
    target = target_for(device, "netconf")
    assert (target.host, target.port) == ("127.10.0.1", 830)
    assert target.credentials.username == "oss"
    assert target.credentials.password is not None
    assert target.credentials.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(target)
    cli = target_for(device, "cli", port=10022)
    assert (cli.port, cli.options["device_type"]) == (10022, "linux")


def test_allow_list_refuses_addresses_outside_it() -> None:
    device = Device(name="r1", platform="lab-sim", mgmt_address="192.0.2.1")
    with pytest.raises(ConfigError, match="outside the allowed networks"):
        target_for(device, "snmp", allowed=parse_networks(["127.0.0.0/8"]))
    inside = device.model_copy(update={"mgmt_address": "127.10.0.7"})
    assert target_for(inside, "snmp", allowed=[ipaddress.ip_network("127.0.0.0/8")]).port == 161


def test_missing_address_and_unknown_platform() -> None:
    with pytest.raises(ConfigError, match="no management address"):
        target_for(Device(name="r1", platform="lab-sim"), "netconf")
    with pytest.raises(ConfigError, match="platform 'nope'"):
        target_for(Device(name="r1", platform="nope", mgmt_address="127.0.0.1"), "netconf")
    with pytest.raises(ConfigError, match="no port for gnmi"):
        target_for(Device(name="r1", platform="linux", mgmt_address="127.0.0.1"), "gnmi")


def test_file_credentials_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "creds.yaml"
    path.write_text("username: oss\npassword: hunter2\nsnmp: {version: '2c', community: c0mm}\n")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        resolve_credentials(f"file:{path}", device="r1")
    os.chmod(path, 0o600)
    creds = resolve_credentials(f"file:{path}", device="r1")
    assert creds.snmp is not None and creds.snmp.community is not None
    assert creds.snmp.community.get_secret_value() == "c0mm"
    assert "c0mm" not in str(creds) and "hunter2" not in str(creds)


def test_bad_credentials_never_echo_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAD", "username: [oss\npassword: hunter2")
    with pytest.raises(ConfigError) as err:
        resolve_credentials("env:BAD", device="r1")
    assert "hunter2" not in str(err.value) and "env:BAD" in str(err.value)
    monkeypatch.setenv("BAD2", "{username: oss, pasword: hunter2}")
    with pytest.raises(ConfigError, match="1 unexpected field") as err2:
        resolve_credentials("env:BAD2", device="r1")
    assert "hunter2" not in str(err2.value) and "pasword" not in str(err2.value)  # a key is data
    with pytest.raises(ConfigError, match="unset"):
        resolve_credentials("env:NOT_SET_ANYWHERE", device="r1")
    with pytest.raises(ConfigError, match="not supported"):
        resolve_credentials("vault:secret/r1", device="r1")

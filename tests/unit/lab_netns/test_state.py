"""The namespace lab's state file and secrets: intent first, whole-file writes, private."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from drivers.credentials import resolve_credentials
from lab.netns.plan import plan_lab
from lab.netns.state import (
    LabSecrets,
    LabState,
    LabStateError,
    ProcessRecord,
    credentials_file,
    state_file,
)
from topology.clab import parse_clab

TRIANGLE = Path(__file__).resolve().parents[3] / "tests" / "data" / "netns" / "triangle.clab.yml"


def _state(tmp_path: Path) -> LabState:
    plan = plan_lab(parse_clab(TRIANGLE.read_text(), TRIANGLE.name), "oss-tunit")
    return LabState.new(tmp_path / "lab", plan, topology=str(TRIANGLE))


def test_each_intent_is_on_disk_before_the_call_returns(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.add_namespaces(["oss-tunit-triangle-mgmt", "oss-tunit-triangle-r1"])
    on_disk = json.loads(state_file(state.state_dir).read_text())
    assert on_disk["namespaces"] == ["oss-tunit-triangle-mgmt", "oss-tunit-triangle-r1"]
    state.record(ProcessRecord("r1", "zebra", 4242, "oss-tunit-triangle-r1", "/usr/lib/frr/zebra"))
    loaded = LabState.load(state.state_dir)
    assert loaded is not None
    assert loaded.namespaces == ["oss-tunit-triangle-mgmt", "oss-tunit-triangle-r1"]
    assert loaded.processes == [
        ProcessRecord("r1", "zebra", 4242, "oss-tunit-triangle-r1", "/usr/lib/frr/zebra")
    ]
    assert loaded.plan == state.plan
    assert stat.S_IMODE(state_file(state.state_dir).stat().st_mode) == 0o600
    loaded.forget_processes([4242])
    assert LabState.load(state.state_dir).processes == []  # type: ignore[union-attr]


def test_no_state_is_none_and_a_foreign_file_is_refused(tmp_path: Path) -> None:
    assert LabState.load(tmp_path) is None
    state_file(tmp_path).write_text('{"pid": 1}')
    with pytest.raises(LabStateError, match="not a namespace lab's state file"):
        LabState.load(tmp_path)
    state_file(tmp_path).write_text("{")
    with pytest.raises(LabStateError, match="unreadable"):
        LabState.load(tmp_path)


def test_secrets_are_per_lab_private_and_readable_by_the_daemon(tmp_path: Path) -> None:
    one, two = LabSecrets.generate(), LabSecrets.generate()
    assert one.snmp_community != two.snmp_community and one.ssh_password != two.ssh_password
    assert one.snmp_community not in repr(one) and one.ssh_password not in repr(one)
    path = one.write(tmp_path)
    assert path == credentials_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    creds = resolve_credentials(f"file:{path}", device="r1")
    assert creds.username == one.ssh_user
    assert creds.password is not None and creds.password.get_secret_value() == one.ssh_password
    assert creds.snmp is not None and creds.snmp.community is not None
    assert creds.snmp.community.get_secret_value() == one.snmp_community
    assert LabSecrets.load(tmp_path) == one


def test_damaged_credentials_name_the_file_not_the_content(tmp_path: Path) -> None:
    credentials_file(tmp_path).write_text("username: x\npassword: hunter2\n")
    with pytest.raises(LabStateError) as caught:
        LabSecrets.load(tmp_path)
    assert "credentials.yaml" in str(caught.value) and "hunter2" not in str(caught.value)

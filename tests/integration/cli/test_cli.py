"""The CLI driver (netmiko `linux`) against a real sshd: commands with parsing hooks,
configuration mode, the ConfigSession methods a plain Linux host can honour, host-key checking
and error translation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drivers.cli import CliDriver
from oss.errors import AuthError, ConnectError, DeviceTimeout, Unsupported
from tests.peers.ports import free_port
from tests.peers.sshd import SshServer

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="netmiko's linux config mode is `sudo -s`: only root skips sudo"
)


async def test_send_command(sshd: SshServer, driver: CliDriver) -> None:
    async with driver.connect(sshd.target()) as session:
        output = await session.send_command("uname -a")
    assert output.startswith("Linux ")
    assert os.uname().release in output  # the same kernel: it ran on this machine


async def test_parse_hook(sshd: SshServer, driver: CliDriver) -> None:
    def parse_id(output: str) -> dict[str, int]:
        uid, gid = output.split()
        return {"uid": int(uid), "gid": int(gid)}

    async with driver.connect(sshd.target()) as session:
        ids = await session.send_command("echo $(id -u) $(id -g)", parse=parse_id)
    assert ids == {"uid": os.getuid(), "gid": os.getgid()}


async def test_session_is_reused(sshd: SshServer, driver: CliDriver) -> None:
    async with driver.connect(sshd.target()) as first:
        pid = await first.send_command("echo $$")
    async with driver.connect(sshd.target()) as second:
        assert second is first
        assert await second.send_command("echo $$") == pid  # the same remote shell


@as_root
async def test_send_config_set(sshd: SshServer, driver: CliDriver, tmp_path: Path) -> None:
    marker = tmp_path / "configured"
    async with driver.connect(sshd.target()) as session:
        await session.send_config_set([f"echo vlan 10 > {marker}", f"echo vlan 20 >> {marker}"])
        # the session is still usable after configuration mode
        assert await session.send_command(f"wc -l < {marker}") == "2"
    assert marker.read_text() == "vlan 10\nvlan 20\n"


@as_root
async def test_config_session_methods(sshd: SshServer, driver: CliDriver, tmp_path: Path) -> None:
    config = tmp_path / "device.conf"
    config.write_text("hostname r1\n")
    target = sshd.target(options={"device_type": "linux", "show_config_command": f"cat {config}"})
    async with driver.connect(target) as session:
        assert await session.get_config() == "hostname r1"
        # no commit step on linux: edits go to running
        await session.edit_config(f"echo ntp server 127.0.0.1 >> {config}\n", target="running")
        assert await session.get_config() == "hostname r1\nntp server 127.0.0.1"
        with pytest.raises(Unsupported):
            await session.edit_config("x", target="candidate")
        with pytest.raises(Unsupported):
            await session.edit_config("x", target="running", operation="replace")


async def test_commit_and_rollback_unsupported_on_linux(sshd: SshServer, driver: CliDriver) -> None:
    async with driver.connect(sshd.target(options={"platform": "linux"})) as session:
        assert session.options.device_type == "linux"
        with pytest.raises(Unsupported, match="commit"):
            await session.commit()
        with pytest.raises(Unsupported, match="rollback"):
            await session.rollback()
        with pytest.raises(Unsupported):
            await session.get_config()
        with pytest.raises(Unsupported):
            await session.discard_changes()


async def test_command_timeout(sshd: SshServer, driver: CliDriver) -> None:
    target = sshd.target(timeout_s=1.0)
    async with driver.connect(target) as session:
        with pytest.raises(DeviceTimeout):
            await session.send_command("sleep 4")
    # the timed-out session left the pool; the next borrow opens a fresh one
    async with driver.connect(target) as fresh:
        assert fresh is not session
        assert await fresh.send_command("echo ok") == "ok"


# --- host keys and authentication ---------------------------------------------------------------


async def test_unknown_host_key_is_refused(sshd: SshServer, driver: CliDriver) -> None:
    with pytest.raises(AuthError, match="host key"):
        async with driver.connect(sshd.target(known_hosts=sshd.empty_known_hosts)):
            pass


async def test_pinned_host_key(sshd: SshServer, driver: CliDriver) -> None:
    pinned = sshd.target(known_hosts=sshd.empty_known_hosts, host_key=sshd.host_key_line)
    async with driver.connect(pinned) as session:
        assert await session.send_command("echo pinned") == "pinned"
    other = (sshd.base / "other_key.pub").read_text().strip()
    wrong = sshd.target(name="sshd-wrong-pin", host_key=other)
    with pytest.raises(AuthError, match="host key"):
        async with driver.connect(wrong):
            pass


async def test_host_key_check_off_only_when_asked(sshd: SshServer, driver: CliDriver) -> None:
    unchecked = sshd.target(
        known_hosts=sshd.empty_known_hosts,
        options={"device_type": "linux", "host_key_verify": False},
    )
    async with driver.connect(unchecked) as session:
        assert await session.send_command("echo unchecked") == "unchecked"


async def test_wrong_client_key(sshd: SshServer, driver: CliDriver) -> None:
    with pytest.raises(AuthError, match="authentication failed"):
        async with driver.connect(sshd.target(private_key_file=sshd.other_key)):
            pass


async def test_closed_port(sshd: SshServer, driver: CliDriver) -> None:
    with pytest.raises(ConnectError):
        async with driver.connect(sshd.target(port=free_port())):
            pass


async def test_a_refused_password_never_shows(sshd: SshServer, driver: CliDriver) -> None:
    target = sshd.target(private_key_file=None, password="hunter2-not-shown")
    with pytest.raises(AuthError) as caught:
        async with driver.connect(target):
            pass
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value.extra)

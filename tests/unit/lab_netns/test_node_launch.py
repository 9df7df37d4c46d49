"""How lab.netns.node launches a node's daemons (argv, views, files), without a namespace."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.netns import node
from lab.netns.plan import LabPlan, plan_lab
from lab.netns.profiles import DaemonSpec, load_profile
from lab.netns.render import node_paths
from lab.netns.state import LabSecrets
from topology.clab import parse_clab

ROOT = Path(__file__).resolve().parents[3]
TRIANGLE = ROOT / "tests" / "data" / "netns" / "triangle.clab.yml"
SECRETS = LabSecrets(snmp_community="lab-c0mmunity", ssh_user="osslab", ssh_password="pw-s3cret")


def _plan() -> LabPlan:
    return plan_lab(parse_clab(TRIANGLE.read_text(), TRIANGLE.name), "oss-t2")


def _spec(name: str) -> DaemonSpec:
    return next(d for d in load_profile("frr").daemons if d.name == name)


def test_frr_daemons_see_their_node_directory_as_run_frr(tmp_path: Path) -> None:
    r1 = _plan().node("r1")
    paths = node_paths(tmp_path, r1)
    launch = node._launch(_spec("ospfd"), r1, paths, "frr")
    argv = launch.argv
    assert argv[:5] == ["/usr/lib/frr/ospfd", "-u", "frr", "-g", "frr"]
    assert argv[argv.index("-f") + 1] == "/run/frr/ospfd.conf"
    assert argv[argv.index("--vty_socket") + 1] == "/run/frr"
    assert argv[argv.index("-z") + 1] == "/run/frr/zserv.api"
    assert argv[-2:] == ["-M", "snmp"]  # an AgentX sub-agent
    assert launch.binds == ((paths.frr, Path("/run/frr")),)
    assert launch.env["SNMPCONFPATH"] == "/run/frr/netsnmp"
    assert "-M" not in node._launch(_spec("staticd"), r1, paths, "frr").argv


def test_lldpd_sees_its_directory_as_its_chroot_and_sshd_its_own_passwd(tmp_path: Path) -> None:
    r1 = _plan().node("r1")
    paths = node_paths(tmp_path, r1)
    lldpd = node._launch(_spec("lldpd"), r1, paths, "frr")
    assert lldpd.argv[lldpd.argv.index("-u") + 1] == "/run/lldpd/lldpd.sock"
    assert lldpd.argv[lldpd.argv.index("-I") + 1] == "*,!eth0"  # data interfaces only
    assert lldpd.argv[lldpd.argv.index("-X") + 1] == f"unix:{paths.agentx}"
    assert lldpd.binds == ((paths.lldp, Path("/run/lldpd")),)
    sshd = node._launch(_spec("sshd"), r1, paths, "frr")
    assert sshd.binds == (
        (paths.ssh / "passwd", Path("/etc/passwd")),
        (paths.ssh / "shadow", Path("/etc/shadow")),
    )
    argv = node.lldpcli_argv(tmp_path, r1)
    assert argv[:4] == ["ip", "netns", "exec", r1.namespace]
    assert argv[-3:] == ["/usr/sbin/lldpcli", "-u", "/run/lldpd/lldpd.sock"]


def test_the_ssh_user_exists_only_in_the_node_s_own_passwd_with_vtysh_as_shell(
    tmp_path: Path,
) -> None:
    r2 = _plan().node("r2")
    paths = node_paths(tmp_path, r2)
    paths.ssh.mkdir(parents=True)
    node._ssh_files(paths, SECRETS)
    users = {
        line.split(":")[0]: line.split(":")
        for line in (paths.ssh / "passwd").read_text().splitlines()
    }
    assert set(users) <= {"root", "sshd", "nobody", "osslab"} and "osslab" in users
    assert users["osslab"][6] == str(paths.vtysh_shell)
    shell = paths.vtysh_shell.read_text()
    assert f"--vty_socket {paths.frr}" in shell and '"$@"' in shell
    shadow = paths.ssh / "shadow"
    assert shadow.stat().st_mode & 0o077 == 0
    hashed = next(line for line in shadow.read_text().splitlines() if line.startswith("osslab:"))
    digest = hashed.split(":")[1]
    assert digest.startswith("$6$") and SECRETS.ssh_password not in shadow.read_text()
    salt = digest.split("$")[2]
    again = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
        input=SECRETS.ssh_password,
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout.strip() == digest  # the lab's password, and only it, logs in


def test_a_daemon_that_exits_at_start_is_named_with_its_log_secrets_blanked(
    tmp_path: Path,
) -> None:
    r1 = _plan().node("r1")
    log = tmp_path / "zebra.out"
    log.write_text(f"bad config near community {SECRETS.snmp_community}\n")
    process = subprocess.Popen(["true"])
    process.wait()
    with pytest.raises(node.NodeStartError) as caught:
        node._wait_for(tmp_path / "never.sock", process, r1, _spec("zebra"), log, SECRETS)
    message = str(caught.value)
    assert "node r1: zebra exited" in message and "bad config near community ***" in message
    assert SECRETS.snmp_community not in message

"""The software on a namespace-lab node: its profile's daemons, started inside its namespace.

Every file of a node lives under `run_dir/<node>/` (lab.netns.render.NodePaths):

- `frr/`: one configuration file per FRR daemon (`write memory` in vtysh has each daemon write
  its own back; a restarted node keeps them, as a router keeps its startup configuration),
  their pid files, vty sockets, `zserv.api`, logs, and the AgentX master's socket. Each FRR
  daemon runs as user `frr` in a mount namespace of its own (`ip netns exec` makes one) where
  this directory is bind-mounted on /run/frr, FRR's compiled-in run directory: its paths
  (`-f -i --vty_socket -z`, the AgentX socket, ospfd's graceful-restart state) are spelled
  there, which user frr reaches wherever run_dir lives (a 0700 temporary directory included);
  vtysh, run as root, uses the real paths (`vtysh_argv`). `-M snmp` for AgentX sub-agents;
  `netsnmp/frr.conf` tells them (SNMPCONFPATH) where the master is.
- `snmp/`: snmpd.conf (the community: 0600), snmpd's persistent state and log.
- `lldp/`: bind-mounted on /run/lldpd (lldpd's privilege-separation chroot) for that lldpd
  alone: its control socket (`lldpcli_argv`: lldpcli is setuid _lldpd and talks to it in the
  same view), its start-up commands; its pid file.
- `ssh/`: sshd_config, the host key, and the passwd/shadow pair bind-mounted over /etc's in
  sshd's own mount namespace: the lab's SSH user exists for that sshd only (nothing under /etc
  is written). Its shell, `ssh/vtysh-shell`, is vtysh for this node, so `ssh user@node` opens
  vtysh and `ssh user@node 'show ip route'` runs one command.
- `node.json`: what was started, for `node_ready` (whose snmpget reads the community from
  `snmp/client/snmp.conf`, 0600, not from its command line).

`start_node` calls `record` for each process as soon as it exists, before waiting on anything,
so a start that fails half-way is still cleaned up by pid (lab.netns.build).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

from lab.files import write_private
from lab.netns.plan import LabPlan, NodePlan
from lab.netns.profiles import DaemonSpec, Profile, load_profile
from lab.netns.render import (
    CONFIG_FILES,
    FRR_VIEW,
    NodePaths,
    link_problem,
    node_context,
    node_paths,
    render_configs,
)
from lab.netns.state import LabSecrets, ProcessRecord
from oss.errors import ConfigError, OssError, Problem, TopologyFileError
from topology.clab import ClabSource

DEFAULT_TRAP_PORT = 162
FRR_DIR = Path("/usr/lib/frr")
SNMPD, LLDPD, LLDPCLI = Path("/usr/sbin/snmpd"), Path("/usr/sbin/lldpd"), Path("/usr/sbin/lldpcli")
SSHD, VTYSH = Path("/usr/sbin/sshd"), Path("/usr/bin/vtysh")
LLDPD_VIEW = Path("/run/lldpd")  # lldpd's privilege-separation chroot (Debian's build)
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
START_WAIT_S = 10.0  # for the AgentX master's and zebra's sockets before their clients start
CHECK_TIMEOUT_S = 3.0  # one readiness probe
NODE_FILE = "node.json"
# A process's /proc/<pid>/cmdline starts with this once it runs: sshd and lldpd rewrite theirs.
_TITLES = {"sshd": "sshd: " + str(SSHD), "lldpd": "lldpd: monitor"}


class NodeStartError(OssError, RuntimeError):
    """A node's daemon did not start; the message names the node, the daemon and its log."""


Record = Callable[[ProcessRecord], None]


@dataclass(frozen=True)
class _Launch:
    argv: list[str]
    env: dict[str, str]
    binds: tuple[tuple[Path, Path], ...]  # (source, target) bind mounts before exec
    log: Path


def start_node(
    lab: LabPlan,
    node: NodePlan,
    run_dir: Path,
    secrets: LabSecrets,
    record: Record,
    *,
    trap_port: int = DEFAULT_TRAP_PORT,
    profiles: Path | None = None,
) -> None:
    """Start every daemon of `node`'s profile inside its namespace (which holds its interfaces,
    addresses and eth0 already). Returns once each has been started and snmpd's and zebra's
    sockets exist; `node_ready` says when they answer."""
    profile = load_profile(node.profile, profiles)
    paths = node_paths(run_dir, node)
    user = _frr_user()
    daemons = profile.daemons_for(node.asn is not None)
    _write_files(lab, node, profile, paths, secrets, trap_port, user, daemons)
    waits = {"snmpd": paths.agentx, "zebra": paths.zserv}
    for stale in waits.values():  # a killed node's old sockets would pass for new ones
        stale.unlink(missing_ok=True)
    for spec in daemons:
        launch = _launch(spec, node, paths, user)
        process = _spawn(node.namespace, launch)
        record(
            ProcessRecord(
                node=node.name,
                daemon=spec.name,
                pid=process.pid,
                namespace=node.namespace,
                argv0=_TITLES.get(spec.run, launch.argv[0]),
            )
        )
        socket = waits.get(spec.run if spec.run != "frr" else spec.name)
        if socket is not None:
            _wait_for(socket, process, node, spec, launch.log, secrets)


@dataclass(frozen=True)
class NodeSoftware:
    """The lab's node software for lab.netns.build (its NodeSoftware protocol): `start_node` and
    `node_ready` with the lab's trap port and profiles folder bound."""

    trap_port: int = DEFAULT_TRAP_PORT
    profiles: Path | None = None

    def start_node(
        self, lab: LabPlan, node: NodePlan, run_dir: Path, secrets: LabSecrets, record: Record
    ) -> None:
        start_node(
            lab, node, run_dir, secrets, record, trap_port=self.trap_port, profiles=self.profiles
        )

    def node_ready(self, lab: LabPlan, node: NodePlan, run_dir: Path) -> dict[str, bool]:
        return node_ready(lab, node, run_dir)


def check_lab(
    lab: LabPlan, run_dir: Path, *, profiles: Path | None = None, source: ClabSource | None = None
) -> None:
    """Every node's profile loads and renders (link vars such as `bgp` and `ospf-cost`, socket
    path lengths): call before making anything, so a bad file leaves nothing behind. With the
    file as written (`source`), every problem is refused at once with its file:line."""
    problems = []
    for index, link in enumerate(lab.links):
        reason = link_problem(lab, link)
        if reason is not None:
            where = f"{source.filename}:{source.links[index].line}" if source else lab.name
            problems.append(Problem(where=where, reason=reason))
    for node in lab.nodes:
        try:
            load_profile(node.profile, profiles)
        except ConfigError as exc:
            where = f"{source.filename}:{source.nodes[node.name].line}" if source else lab.name
            problems.append(Problem(where=where, reason=f"node {node.name}: {exc}"))
    if problems:
        raise TopologyFileError(source.filename if source else lab.name, problems)
    for node in lab.nodes:
        profile = load_profile(node.profile, profiles)
        paths = node_paths(run_dir, node)
        context = node_context(
            lab, node, profile, paths, community="-", ssh_user="-", trap_port=0, frr_user="-"
        )
        render_configs(profile, profile.daemons_for(node.asn is not None), context)


def node_ready(lab: LabPlan, node: NodePlan, run_dir: Path) -> dict[str, bool]:
    """Which of the node's daemons answer: FRR's through vtysh (`show version`), snmpd with
    sysName from inside the namespace, lldpd through its control socket, sshd with its banner
    on the management address."""
    paths = node_paths(run_dir, node)
    try:
        started = json.loads((paths.root / NODE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    answers: dict[str, bool] = {}
    for name, run in started["daemons"]:
        if run == "frr":
            answers[name] = _ok([*vtysh_argv(run_dir, node), "-d", name, "-c", "show version"])
        elif run == "snmpd":
            answers[name] = _snmp_answers(node, paths)
        elif run == "lldpd":
            answers[name] = _ok([*lldpcli_argv(run_dir, node), "show", "neighbors"])
        elif run == "sshd":
            answers[name] = _ssh_banner(node)
    return answers


def wait_node_ready(lab: LabPlan, node: NodePlan, run_dir: Path, timeout_s: float = 30.0) -> None:
    """Until every daemon of the node answers; NodeStartError naming the silent ones after
    `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answers = node_ready(lab, node, run_dir)
        silent = [name for name, ok in answers.items() if not ok]
        if answers and not silent:
            return
        if time.monotonic() > deadline:
            what = ", ".join(silent) or "all (nothing started)"
            raise NodeStartError(
                f"node {node.name}: no answer within {timeout_s:.0f} s from {what}"
            )
        time.sleep(0.2)


def vtysh_argv(run_dir: Path, node: NodePlan) -> list[str]:
    """vtysh for this node (add `-c COMMAND`); it talks to the daemons over their vty sockets,
    so it runs from any namespace."""
    paths = node_paths(run_dir, node)
    return [str(VTYSH), "--vty_socket", str(paths.frr), "--config_dir", str(paths.frr)]


def lldpcli_argv(run_dir: Path, node: NodePlan) -> list[str]:
    """lldpcli for this node (add its command). lldpcli is setuid _lldpd, which may not reach
    run_dir: it runs where the node's lldp/ is mounted on /run/lldpd, as lldpd sees it."""
    paths = node_paths(run_dir, node)
    socket = LLDPD_VIEW / paths.lldpd_socket.name
    enter = ["ip", "netns", "exec", node.namespace, "/bin/sh", "-c", _BIND_THEN_EXEC, "sh"]
    return [*enter, str(paths.lldp), str(LLDPD_VIEW), "--", str(LLDPCLI), "-u", str(socket)]


# ------------------------------------------------------------------------------ the files


def _frr_user() -> str:
    """FRR's daemons run as `frr` (the package's user, in group frrvty for the vty sockets)."""
    try:
        pwd.getpwnam("frr")
    except KeyError:
        raise NodeStartError("there is no user frr: install the frr package") from None
    FRR_VIEW.mkdir(mode=0o755, exist_ok=True)  # the bind mount's target, normally there already
    shutil.chown(FRR_VIEW, "frr", "frr")
    return "frr"


def _write_files(
    lab: LabPlan,
    node: NodePlan,
    profile: Profile,
    paths: NodePaths,
    secrets: LabSecrets,
    trap_port: int,
    user: str,
    daemons: Iterable[DaemonSpec],
) -> None:
    daemons = tuple(daemons)
    folders = (paths.root, paths.frr, paths.frr / "netsnmp", paths.snmp / "state", paths.lldp)
    for folder in (*folders, paths.snmp, paths.ssh):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
    context = node_context(
        lab,
        node,
        profile,
        paths,
        community=secrets.snmp_community,
        ssh_user=secrets.ssh_user,
        trap_port=trap_port,
        frr_user=user,
        iquery_user="oss-iq-" + token_hex(6),  # a name nobody outside guesses
    )
    for relative, text in render_configs(profile, daemons, context).items():
        target = paths.root / relative
        if relative.startswith("frr/") and target.exists():
            continue  # the node's startup config, as `write memory` left it: a restart keeps it
        # snmpd.conf holds the community: private; the rest is readable (FRR's user reads it)
        if relative == CONFIG_FILES["snmpd"]:
            write_private(target, text)
        else:
            target.write_text(text)
    if any(spec.run == "snmpd" for spec in daemons):
        # FRR's sub-agents read net-snmp's `frr.conf` (SNMPCONFPATH) for the master's socket
        agentx = FRR_VIEW / paths.agentx.relative_to(paths.frr)
        (paths.frr / "netsnmp" / "frr.conf").write_text(f"agentXSocket unix:{agentx}\n")
        # The readiness probe's client settings: the community stays out of any argv (ps)
        client = paths.snmp / "client"
        client.mkdir(mode=0o700, exist_ok=True)
        write_private(
            client / "snmp.conf", f"defVersion 2c\ndefCommunity {secrets.snmp_community}\n"
        )
    if any(spec.run == "sshd" for spec in daemons):
        _ssh_files(paths, secrets)
    for path in (paths.frr, *paths.frr.rglob("*")):
        shutil.chown(path, user, user)
    started = {
        "profile": profile.name,
        "daemons": [[spec.name, spec.run] for spec in daemons],
    }
    write_private(paths.root / NODE_FILE, json.dumps(started, indent=2) + "\n")


def _ssh_files(paths: NodePaths, secrets: LabSecrets) -> None:
    key = paths.ssh / "host_key"
    if not key.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "oss-lab", "-f", str(key)])
    shell = paths.vtysh_shell
    shell.write_text(
        "#!/bin/sh\n# vtysh for this node: the lab's SSH login shell (`-c CMD` runs one command)\n"
        f'exec {VTYSH} --vty_socket {paths.frr} --config_dir {paths.frr} "$@"\n'
    )
    shell.chmod(0o755)
    hashed = _run(["openssl", "passwd", "-6", "-stdin"], stdin=secrets.ssh_password).strip()
    system = [
        line
        for line in Path("/etc/passwd").read_text().splitlines()
        if line.split(":", 1)[0] in ("root", "sshd", "nobody")
    ]
    user = secrets.ssh_user
    write_private(
        paths.ssh / "passwd",
        "\n".join([*system, f"{user}:x:0:0:oss lab vtysh:{paths.ssh}:{shell}"]) + "\n",
    )
    paths.ssh.joinpath("passwd").chmod(0o644)
    write_private(
        paths.ssh / "shadow", f"root:*:19000:0:99999:7:::\n{user}:{hashed}:19000:0:99999:7:::\n"
    )


# ------------------------------------------------------------------------------ launching


def _launch(spec: DaemonSpec, node: NodePlan, paths: NodePaths, user: str) -> _Launch:
    base_env = {"PATH": PATH, "HOME": str(paths.root), "LANG": "C"}
    if spec.run == "frr":
        # Spelled in FRR_VIEW, where run_dir/<node>/frr is bind-mounted for the daemon alone.
        view = FRR_VIEW
        argv = [str(FRR_DIR / spec.name), "-u", user, "-g", user]
        argv += ["-f", str(view / f"{spec.name}.conf"), "-i", str(view / f"{spec.name}.pid")]
        argv += ["--vty_socket", str(view), "-z", str(view / paths.zserv.name)]
        if spec.agentx:
            argv += ["-M", "snmp"]
        env = {**base_env, "SNMPCONFPATH": str(view / "netsnmp"), "MIBS": ""}
        return _Launch(argv, env, ((paths.frr, view),), paths.frr / f"{spec.name}.out")
    if spec.run == "snmpd":
        argv = [str(SNMPD), "-f", "-Lf", str(paths.snmp / "snmpd.log"), "-C"]
        argv += ["-c", str(paths.snmp / "snmpd.conf"), "-m", "", "-I", "-smux"]
        argv += ["-p", str(paths.snmp / "snmpd.pid")]
        env = {**base_env, "SNMP_PERSISTENT_DIR": str(paths.snmp / "state"), "MIBS": ""}
        return _Launch(argv, env, (), paths.snmp / "snmpd.out")
    if spec.run == "lldpd":
        # lldp/ is bind-mounted on lldpd's chroot directory for this lldpd alone: its
        # unprivileged side and the lldpcli it runs at start reach the control socket there.
        view = LLDPD_VIEW
        argv = [str(LLDPD), "-d", "-u", str(view / paths.lldpd_socket.name)]
        argv += ["-p", str(paths.lldp / "lldpd.pid"), "-I", "*,!eth0"]
        argv += ["-O", str(view / "lldpd.conf"), "-L", str(LLDPCLI)]
        if spec.agentx:  # the privileged side connects: the socket's real path
            argv += ["-x", "-X", f"unix:{paths.agentx}"]
        LLDPD_VIEW.mkdir(mode=0o755, exist_ok=True)  # lldpd's own; normally made by lldpd
        return _Launch(argv, base_env, ((paths.lldp, view),), paths.lldp / "lldpd.log")
    if spec.run == "sshd":
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        argv = [
            str(SSHD),
            "-D",
            "-f",
            str(paths.ssh / "sshd_config"),
            "-E",
            str(paths.ssh / "sshd.log"),
        ]
        binds = (
            (paths.ssh / "passwd", Path("/etc/passwd")),
            (paths.ssh / "shadow", Path("/etc/shadow")),
        )
        return _Launch(argv, base_env, binds, paths.ssh / "sshd.out")
    raise NodeStartError(f"node {node.name}: no launcher '{spec.run}' for {spec.name}")


# Bind mounts in the mount namespace `ip netns exec` made for this process alone, then exec:
# the pid stays the daemon's.
_BIND_THEN_EXEC = (
    'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec "$@"'
)


def _spawn(namespace: str, launch: _Launch) -> subprocess.Popen[bytes]:
    argv = ["ip", "netns", "exec", namespace]
    if launch.binds:
        pairs = [str(p) for bind in launch.binds for p in bind]
        argv += ["/bin/sh", "-c", _BIND_THEN_EXEC, "sh", *pairs, "--"]
    with launch.log.open("ab") as log:
        return subprocess.Popen(
            [*argv, *launch.argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=launch.env,
            start_new_session=True,  # not ended by a terminal's ^C meant for `oss lab up`
        )


def _wait_for(
    socket: Path,
    process: subprocess.Popen[bytes],
    node: NodePlan,
    spec: DaemonSpec,
    log: Path,
    secrets: LabSecrets,
) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            state = "exited" if process.poll() is not None else "did not open its socket"
            raise NodeStartError(
                f"node {node.name}: {spec.name} {state} ({socket}); {log}:\n" + _tail(log, secrets)
            )
        time.sleep(0.02)


def _tail(log: Path, secrets: LabSecrets, lines: int = 15) -> str:
    """The end of a log, the lab's secrets blanked out."""
    try:
        text = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
    for secret in (secrets.snmp_community, secrets.ssh_password):
        text = text.replace(secret, "***")
    return text


# ------------------------------------------------------------------------------ readiness


def _run(argv: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise NodeStartError(f"{argv[0]} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _ok(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=CHECK_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _snmp_answers(node: NodePlan, paths: NodePaths) -> bool:
    """sysName from inside the namespace, version and community from snmp/client/snmp.conf."""
    argv = ["ip", "netns", "exec", node.namespace, "snmpget", "-t", "1", "-r", "0", "-Oqv"]
    argv += ["-m", "", "127.0.0.1", "1.3.6.1.2.1.1.5.0"]
    env = {"PATH": PATH, "MIBS": "", "HOME": str(paths.root)}
    env["SNMPCONFPATH"] = str(paths.snmp / "client")
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip().strip('"') == node.name


def _ssh_banner(node: NodePlan) -> bool:
    script = 'exec 3<>"/dev/tcp/$0/22" && head -c 8 <&3'
    argv = ["ip", "netns", "exec", node.namespace, "timeout", "2", "bash", "-c", script]
    try:
        done = subprocess.run(
            [*argv, node.mgmt_address], capture_output=True, timeout=CHECK_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.stdout.startswith(b"SSH-2.0")

"""A real NETCONF server for the tests: netconfd (yuma123) loaded with the project's YANG module,
reached as the `netconf` subsystem of its own sshd on a free loopback port, all in a temporary
directory.

How the pieces meet: netconfd listens on a unix socket (`--ncxserver-sockname`, in the temporary
directory so several servers can run side by side); sshd runs `netconf-subsystem
--ncxserver-sockname=PORT@SOCKET` for each session, which relays the SSH channel to that socket.
netconfd only accepts subsystem connections for the ports listed with `--port`. The SSH user is
the current user (root in CI), authenticated with a generated key; netconfd treats that user as
its superuser, so NACM does not get in the way. Its startup and confirmed-commit backup files
live in the temporary directory; it still writes `~/.yuma/startup-cfg-txid.txt` in the real
home directory (no option moves that).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import Target
from tests.peers.ports import free_port
from tests.peers.sshd import key_login_target, keygen, start_sshd, stop_process

REPO = Path(__file__).resolve().parents[2]
YANG_MODULE = REPO / "configs" / "yang" / "oss-lab.yang"
NETCONFD = Path("/usr/sbin/netconfd")
SUBSYSTEM = Path("/usr/sbin/netconf-subsystem")
SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class NetconfServer:
    host: str
    port: int
    username: str
    private_key: Path  # the client key sshd accepts
    host_key_line: str  # "ssh-ed25519 AAAA..." of the server
    known_hosts: Path  # a known_hosts file that trusts the server
    base: Path
    netconfd: subprocess.Popen[bytes] = field(repr=False, compare=False)
    sshd: subprocess.Popen[bytes] = field(repr=False, compare=False)

    def target(self, name: str = "netconfd", **overrides: Any) -> Target:
        """A Target for this server; keyword arguments replace Target fields or credentials."""
        return key_login_target(name, self, overrides, timeout_s=10.0)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """netconfd stops answering (SIGSTOP) until the block ends: calls in flight hang."""
        os.kill(self.netconfd.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.netconfd.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for name in ("netconfd.log", "sshd.log"):
            path = self.base / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(parts)


def _wait_until(ready: Any, what: str, proc: subprocess.Popen[bytes], base: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_logs(base)}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready in 15 s:\n{_logs(base)}")


def _logs(base: Path) -> str:
    out = []
    for name in ("netconfd.log", "netconfd.out", "sshd.log"):
        path = base / name
        if path.exists():
            out.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
    return "\n".join(out)


def missing_tools() -> list[str]:
    return [str(p) for p in (NETCONFD, SUBSYSTEM, SSHD) if not p.exists()]


@contextmanager
def running_netconfd(host: str = "127.0.0.1") -> Iterator[NetconfServer]:
    missing = missing_tools()
    if missing:
        raise RuntimeError(
            f"missing {', '.join(missing)}: run `make system-deps` (Debian netconfd, "
            "openssh-server)"
        )
    base = Path(tempfile.mkdtemp(prefix="oss-netconfd-"))
    port = free_port(host)
    user = getpass.getuser()
    host_key_line = keygen(base / "host_key", "oss-test-netconfd")
    user_key_line = keygen(base / "client_key", "oss-test-client")
    authorized = base / "authorized_keys"
    authorized.write_text(user_key_line + "\n")
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"[{host}]:{port} {host_key_line}\n")
    sock = base / "ncxserver.sock"
    # netconfd saves running to its startup file at each commit, and a confirmed commit backs
    # running up to the first backup-cfg.xml on its data path (by default both in ~/.yuma): keep
    # both here, so that servers running side by side never share them.
    (base / "backup-cfg.xml").write_text("")
    startup = base / "startup-cfg.xml"
    startup.write_text('<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>\n')
    env = {**os.environ, "YUMA_DATAPATH": str(base)}

    with (base / "netconfd.out").open("wb") as out:
        netconfd = subprocess.Popen(
            [
                str(NETCONFD),
                f"--module={YANG_MODULE}",
                f"--startup={startup}",
                "--target=candidate",
                f"--superuser={user}",
                f"--port={port}",
                f"--ncxserver-sockname={sock}",
                f"--log={base / 'netconfd.log'}",
                "--log-level=info",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=base,
            env=env,
        )
    sshd: subprocess.Popen[bytes] | None = None
    try:
        _wait_until(sock.exists, "netconfd", netconfd, base)
        sshd = start_sshd(
            base,
            host=host,
            port=port,
            authorized=authorized,
            extra=[f'Subsystem netconf "{SUBSYSTEM} --ncxserver-sockname={port}@{sock}"'],
        )
        yield NetconfServer(
            host=host,
            port=port,
            username=user,
            private_key=base / "client_key",
            host_key_line=host_key_line,
            known_hosts=known_hosts,
            base=base,
            netconfd=netconfd,
            sshd=sshd,
        )
    finally:
        if sshd is not None:
            stop_process(sshd)
        stop_process(netconfd)
        shutil.rmtree(base, ignore_errors=True)

"""A real OpenSSH server for the CLI driver's tests (netmiko `linux`): sshd on a free loopback
port, everything in a temporary directory.

The SSH user is the current user (root in CI), authenticated with a generated ed25519 key; a
second generated key is NOT authorized (for the wrong-key test). sshd needs absolute paths
(`-f`), `/run/sshd` when run as root, `UsePAM no`, and `StrictModes no` because the temporary
directory's modes are not what it demands of a home directory.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from drivers.base import Target
from drivers.credentials import Credentials
from tests.peers.ports import free_port

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    username: str
    private_key: Path  # authorized
    other_key: Path  # a valid key sshd does not accept
    host_key_line: str  # "ssh-ed25519 AAAA..." of the server
    known_hosts: Path  # trusts this server
    empty_known_hosts: Path  # trusts nothing
    base: Path
    process: subprocess.Popen[bytes] = field(repr=False, compare=False)

    def target(self, name: str = "sshd", **overrides: Any) -> Target:
        """A Target for this server; keyword arguments replace Target fields or credentials."""
        return key_login_target(
            name, self, overrides, timeout_s=15.0, options={"device_type": "linux"}
        )

    def log_tail(self, lines: int = 40) -> str:
        path = self.base / "sshd.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class KeyLogin(Protocol):
    host: str
    port: int
    username: str
    private_key: Path
    known_hosts: Path


def key_login_target(
    name: str, server: KeyLogin, overrides: dict[str, Any], **defaults: Any
) -> Target:
    """A Target that logs in to `server` with its client key; `overrides` replace Target fields
    or credentials, `defaults` fill Target fields the overrides leave out."""
    cred_fields = set(Credentials.model_fields)
    cred_kwargs: dict[str, Any] = {
        "username": server.username,
        "private_key_file": server.private_key,
        "known_hosts": server.known_hosts,
    }
    cred_kwargs.update({k: v for k, v in overrides.items() if k in cred_fields})
    target_kwargs = {k: v for k, v in overrides.items() if k not in cred_fields}
    target_kwargs = {"host": server.host, "port": server.port, **defaults, **target_kwargs}
    return Target(name=name, credentials=Credentials(**cred_kwargs), **target_kwargs)


def keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path.with_suffix(".pub").read_text().strip()


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server this harness started (by its own handle), paused or not."""
    if proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)  # a paused (SIGSTOP) server cannot handle SIGTERM
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def start_sshd(
    base: Path,
    *,
    host: str,
    port: int,
    authorized: Path,
    extra: Sequence[str] = (),
    ready: Callable[[], bool] | None = None,
) -> subprocess.Popen[bytes]:
    """Start an OpenSSH sshd for tests: key login only, config and logs in `base` (which holds
    `host_key`), listening on host:port; returns once it accepts connections."""
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    config = base / "sshd_config"
    lines = [
        f"Port {port}",
        f"ListenAddress {host}",
        f"HostKey {base / 'host_key'}",
        f"PidFile {base / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "UsePAM no",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "MaxStartups 100:30:200",
        "MaxSessions 100",
        "LogLevel VERBOSE",
        *extra,
    ]
    config.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(
        [str(SSHD), "-D", "-f", str(config), "-E", str(base / "sshd.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    is_ready = ready or (lambda: port_open(host, port))
    deadline = time.monotonic() + 15
    while not is_ready():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            log = base / "sshd.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"sshd did not start (exit {process.returncode}):\n{text}")
        time.sleep(0.05)
    return process


@contextmanager
def running_sshd(host: str = "127.0.0.1") -> Iterator[SshServer]:
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        raise RuntimeError("sshd or ssh-keygen is missing: run `make system-deps` (openssh-server)")
    base = Path(tempfile.mkdtemp(prefix="oss-sshd-"))
    port = free_port(host)
    host_key_line = keygen(base / "host_key", "oss-test-sshd")
    user_key_line = keygen(base / "client_key", "oss-test-client")
    keygen(base / "other_key", "oss-test-not-authorized")
    authorized = base / "authorized_keys"
    authorized.write_text(user_key_line + "\n")
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"[{host}]:{port} {host_key_line}\n")
    empty_known_hosts = base / "empty_known_hosts"
    empty_known_hosts.write_text("")
    try:
        process = start_sshd(base, host=host, port=port, authorized=authorized)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        yield SshServer(
            host=host,
            port=port,
            username=getpass.getuser(),
            private_key=base / "client_key",
            other_key=base / "other_key",
            host_key_line=host_key_line,
            known_hosts=known_hosts,
            empty_known_hosts=empty_known_hosts,
            base=base,
            process=process,
        )
    finally:
        stop_process(process)
        shutil.rmtree(base, ignore_errors=True)

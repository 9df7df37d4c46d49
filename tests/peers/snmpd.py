"""A real Net-SNMP agent for the tests: `snmpd -f -Lo -C -c CONF -m ""` on a free loopback UDP
port, with its persistent state (USM users, engine boots) in a temporary directory.

The agent serves v2c (a read-only and a read-write community) and SNMPv3 authPriv users
(SHA-1 + AES-128 and SHA-256 + AES-256), and can send its own notifications (coldStart at
start-up, authenticationFailure on a wrong community) to trap and inform sinks.

The Net-SNMP command-line tools (`snmpbulkwalk`, `snmptrap`, `snmpinform`) are run through
`cli_env()` so they read no user configuration and write their state into the temp dir too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SNMPD = "/usr/sbin/snmpd"
# snmpd prefixes a text engineId with the Net-SNMP enterprise and format octets.
_TEXT_ENGINE_ID_PREFIX = bytes.fromhex("80001f8804")


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SnmpdUser:
    """An SNMPv3 authPriv user, in Net-SNMP's `createUser` spelling of the protocols."""

    name: str
    auth_protocol: str  # "SHA", "SHA-256", ...
    auth_key: str
    priv_protocol: str  # "AES", "AES256", ...
    priv_key: str
    writable: bool = False

    def cli_args(self) -> list[str]:
        """The security options of the Net-SNMP tools for this user."""
        return [
            "-v3",
            "-l",
            "authPriv",
            "-u",
            self.name,
            "-a",
            self.auth_protocol,
            "-A",
            self.auth_key,
            "-x",
            self.priv_protocol,
            "-X",
            self.priv_key,
        ]


DEFAULT_USERS = (
    SnmpdUser("oss-sha", "SHA", "sha-auth-secret-1", "AES", "aes-priv-secret-1"),
    SnmpdUser(
        "oss-sha256", "SHA-256", "sha256-auth-secret-2", "AES256", "aes256-priv-secret-2", True
    ),
)


@dataclass(frozen=True)
class Sink:
    """Where snmpd sends its own notifications (v2c)."""

    host: str
    port: int
    community: str
    inform: bool = False

    def directive(self) -> str:
        kind = "informsink" if self.inform else "trap2sink"
        return f"{kind} udp:{self.host}:{self.port} {self.community}"


@dataclass(frozen=True)
class SnmpdServer:
    host: str
    port: int
    ro_community: str
    rw_community: str
    users: tuple[SnmpdUser, ...]
    engine_id: bytes
    directory: Path
    log: Path
    sys_name: str
    sys_location: str

    @property
    def address(self) -> str:
        return f"udp:{self.host}:{self.port}"

    def user(self, name: str) -> SnmpdUser:
        return next(u for u in self.users if u.name == name)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cli_env(self) -> dict[str, str]:
        return cli_env(self.directory)


def cli_env(directory: Path) -> dict[str, str]:
    """Environment for the Net-SNMP tools: no MIB loading, no user config, state in `directory`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNMP")}
    env.update(
        {
            "MIBS": "",
            "MIBDIRS": "/nonexistent",
            "SNMPCONFPATH": str(directory / "cliconf"),
            "SNMP_PERSISTENT_DIR": str(directory / "clistate"),
            "HOME": str(directory),
        }
    )
    return env


def _config(
    *,
    host: str,
    port: int,
    ro_community: str,
    rw_community: str,
    users: Sequence[SnmpdUser],
    engine_text: str,
    sinks: Sequence[Sink],
    sys_name: str,
    sys_location: str,
) -> str:
    lines = [
        f"engineId {engine_text}",
        f"rocommunity {ro_community} 127.0.0.1",
        f"rwcommunity {rw_community} 127.0.0.1",
        f"sysName {sys_name}",
        f"sysLocation {sys_location}",
        "sysServices 72",
        # A wrong community is dropped silently, and reported with an authenticationFailure trap.
        "authtrapenable 1",
        # Not one log line per request (the bench sends thousands).
        "dontLogTCPWrappersConnects yes",
    ]
    for user in users:
        lines.append(
            f"createUser {user.name} {user.auth_protocol} {user.auth_key} "
            f"{user.priv_protocol} {user.priv_key}"
        )
        lines.append(f"{'rwuser' if user.writable else 'rouser'} {user.name} priv")
    lines.extend(sink.directive() for sink in sinks)
    return "\n".join(lines) + "\n"


@contextmanager
def running_snmpd(
    *,
    host: str = "127.0.0.1",
    ro_community: str = "oss-ro-community",
    rw_community: str = "oss-rw-community",
    users: Sequence[SnmpdUser] = DEFAULT_USERS,
    sinks: Sequence[Sink] = (),
    sys_name: str = "snmpd-peer",
    sys_location: str = "test rack 1",
    start_timeout_s: float = 15.0,
) -> Iterator[SnmpdServer]:
    if not Path(SNMPD).exists() and shutil.which("snmpd") is None:
        raise RuntimeError("snmpd is not installed: run `make system-deps` (Debian snmpd, snmp)")
    snmpd = SNMPD if Path(SNMPD).exists() else str(shutil.which("snmpd"))
    directory = Path(tempfile.mkdtemp(prefix="oss-snmpd-"))
    (directory / "state").mkdir()
    (directory / "cliconf").mkdir()
    (directory / "clistate").mkdir()
    port = free_udp_port(host)
    engine_text = f"oss{port}"
    conf = directory / "snmpd.conf"
    conf.write_text(
        _config(
            host=host,
            port=port,
            ro_community=ro_community,
            rw_community=rw_community,
            users=users,
            engine_text=engine_text,
            sinks=sinks,
            sys_name=sys_name,
            sys_location=sys_location,
        )
    )
    log = directory / "snmpd.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "SNMP_PERSISTENT_DIR": str(directory / "state"),
        "SNMPCONFPATH": str(directory / "state"),
        "MIBS": "",
        "HOME": str(directory),
    }
    # -I -smux: as root snmpd would also listen on TCP 199 for SMUX subagents; not needed.
    argv = [
        *(snmpd, "-f", "-Lo", "-C", "-c", str(conf), "-m", "", "-I", "-smux"),
        f"udp:{host}:{port}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    server = SnmpdServer(
        host=host,
        port=port,
        ro_community=ro_community,
        rw_community=rw_community,
        users=tuple(users),
        engine_id=_TEXT_ENGINE_ID_PREFIX + engine_text.encode(),
        directory=directory,
        log=log,
        sys_name=sys_name,
        sys_location=sys_location,
    )
    try:
        _wait_ready(proc, server, start_timeout_s)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen[bytes], server: SnmpdServer, timeout_s: float) -> None:
    """snmpd prints its version banner once it listens; then one real GET proves it answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"snmpd exited with {proc.returncode}:\n{server.log_text()}")
        if "NET-SNMP version" in server.log_text() and _answers(server):
            return
        time.sleep(0.05)
    raise RuntimeError(f"snmpd did not answer within {timeout_s}s:\n{server.log_text()}")


def _answers(server: SnmpdServer) -> bool:
    out = subprocess.run(
        [
            "snmpget",
            "-v2c",
            "-c",
            server.ro_community,
            "-On",
            "-t",
            "1",
            "-r",
            "0",
            server.address,
            "1.3.6.1.2.1.1.5.0",
        ],
        capture_output=True,
        text=True,
        env=server.cli_env(),
        check=False,
        timeout=10,
    )
    return out.returncode == 0


def snmp_cli(server: SnmpdServer, tool: str, *args: str, timeout_s: float = 30.0) -> str:
    """Run one Net-SNMP tool against nothing in particular (args name the target); return stdout."""
    out = subprocess.run(
        [tool, *args],
        capture_output=True,
        text=True,
        env=server.cli_env(),
        check=False,
        timeout=timeout_s,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{tool} failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def bulkwalk(server: SnmpdServer, oid: str, security: Sequence[str] | None = None) -> list[str]:
    """`snmpbulkwalk -On -Oq -Oe -Ot` lines ("OID VALUE") of one subtree."""
    sec = list(security) if security is not None else ["-v2c", "-c", server.ro_community]
    out = snmp_cli(
        server, "snmpbulkwalk", *sec, "-On", "-Oq", "-Oe", "-Ot", "-Cr25", server.address, oid
    )
    return [line for line in out.splitlines() if line.strip()]

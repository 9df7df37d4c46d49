"""A real Mosquitto broker for the tests: its own config in a temporary directory, a free
loopback port, persistence on (retained messages and persistent sessions survive `restart()`),
anonymous or password mode (`mosquitto_passwd`), optionally TLS (with client certificates).
As root the broker runs as Debian's `mosquitto` user, which owns the temporary directory, so it
never writes as root."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.ports import free_port

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = Path("/usr/bin/mosquitto_passwd")
START_TIMEOUT_S = 15.0


@dataclass
class MosquittoServer:
    host: str
    port: int
    base: Path
    users: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.base / "mosquitto.conf"

    @property
    def log(self) -> Path:
        return self.base / "mosquitto.log"

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("mosquitto is already running")
        self.process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                self.process = None
                raise RuntimeError(f"mosquitto exited at start: {err}\n{self._log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port}")

    def stop(self) -> None:
        """SIGTERM: mosquitto writes its persistence file on the way out."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        return None


@dataclass(frozen=True)
class MosquittoTls:
    """The listener's TLS: its CA (also the one client certificates must come from), its
    certificate and key (PEM files; copied where the broker may read them)."""

    ca: Path
    cert: Path
    key: Path
    require_client_cert: bool = False


@contextmanager
def running_mosquitto(
    users: dict[str, str] | None = None, tls: MosquittoTls | None = None
) -> Iterator[MosquittoServer]:
    """Start a broker; with `users` ({name: password}) only those may connect; with `tls` the
    listener speaks TLS only."""
    if not MOSQUITTO.exists():
        raise RuntimeError("mosquitto is not installed: run `make system-deps` (Debian mosquitto)")
    base = Path(tempfile.mkdtemp(prefix="oss-mosquitto-"))
    server = MosquittoServer(host="127.0.0.1", port=free_port(), base=base, users=dict(users or {}))
    lines = [
        f"listener {server.port} {server.host}",
        "persistence true",
        f"persistence_location {base}/",
        "persistence_file mosquitto.db",
        f"log_dest file {server.log}",
        "log_type error",
        # As a NOC broker would be: small messages go out at once, not after a delayed ACK.
        "set_tcp_nodelay true",
        "log_type warning",
        "log_type notice",
        "max_queued_messages 10000",
    ]
    if users:
        passwd = base / "passwd"
        passwd.touch(mode=0o600)
        for name, password in users.items():
            subprocess.run(
                [str(MOSQUITTO_PASSWD), "-b", str(passwd), name, password],
                check=True,
                capture_output=True,
                timeout=30,
            )
        lines += ["allow_anonymous false", f"password_file {passwd}"]
    else:
        lines.append("allow_anonymous true")
    if tls is not None:
        for name, source in (("ca.pem", tls.ca), ("server.pem", tls.cert), ("server.key", tls.key)):
            shutil.copyfile(source, base / name)
        lines += [f"cafile {base}/ca.pem", f"certfile {base}/server.pem"]
        lines.append(f"keyfile {base}/server.key")
        lines.append(f"require_certificate {str(tls.require_client_cert).lower()}")
    owner = _server_user()
    if owner is not None:
        lines.append("user mosquitto")
    elif os.geteuid() == 0:
        lines.append("user root")
    server.conf.write_text("\n".join(lines) + "\n")
    if owner is not None:
        for path in [base, *base.iterdir()]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)

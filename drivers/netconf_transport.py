"""The byte transports under ncclient for drivers/netconf.py's threaded path: SSH by the OpenSSH
client (a subprocess) or by paramiko (ncclient's own SSH session). Both write each request from
the thread that sends it, so neither inherits ncclient's send-queue poll (below). (OpenSSH with
key authentication normally runs on the event loop instead, drivers/netconf_async.py; this
OpenSSH session serves targets that name an ncclient device handler.)

ncclient itself still builds the requests, frames and parses the replies and matches them to
requests; only the bytes travel differently.

- OpenSSH (`OpenSshSession`): `ssh -s HOST netconf` with
  pipes. Encryption runs in the ssh process, in C and on another core, which makes a session
  about 1.6x faster than over paramiko here; host keys are checked by OpenSSH itself
  (StrictHostKeyChecking=yes against the known_hosts file, or a file holding just the pinned
  key); it never prompts (BatchMode), so it cannot use a password.
- paramiko (`ParamikoSession`): ncclient's SSH session; used for password authentication.

Why the direct write: stock ncclient queues outgoing messages for its transport thread, which
checks the queue only between `select()` calls that wait up to `ncclient.transport.session.TICK`
(0.1 s) for input, so a request queued while the thread waits sits there until the wait ends:
about 10 RPC/s per session. The reading side (ncclient's thread, parser and listeners) is
unchanged, and no ncclient module state is modified, so other ncclient users are unaffected.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import paramiko
from ncclient.capabilities import Capabilities
from ncclient.transport import SSHSession
from ncclient.transport.errors import TransportError
from ncclient.transport.parser import DefaultXMLParser
from ncclient.transport.session import END_DELIM, MSG_DELIM, NetconfBase, Session

log = logging.getLogger(__name__)

_READ_SIZE = 65536


def frame(message: str, base: int) -> bytes:
    """One NETCONF message framed for the wire: chunked (base:1.1) or end-of-message (1.0)."""
    data = message.encode()
    if base == NetconfBase.BASE_11:
        return b"\n#%d\n%s%s" % (len(data), data, bytes(END_DELIM))
    return data + bytes(MSG_DELIM)


class KnownHostsUnreadable(TransportError):  # type: ignore[misc]
    pass


class OpenSshFailed(TransportError):  # type: ignore[misc]
    """ssh ended before the NETCONF hello; `stderr` holds its last words."""

    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


# --- paramiko ------------------------------------------------------------------------------


class ParamikoSession(SSHSession):  # type: ignore[misc]
    """ncclient's SSH session with direct writes, the target's known_hosts file instead of
    ~/.ssh/known_hosts, and an abort that works from any thread."""

    def __init__(self, device_handler: Any, known_hosts: Path | None, pinned: bool) -> None:
        super().__init__(device_handler)
        self._send_lock = threading.Lock()
        self._known_hosts_file = known_hosts
        self._pinned = pinned
        self.aborted = False

    def send(self, message: str) -> None:
        channel = self._channel
        if not self.connected or channel is None or self.aborted:
            raise TransportError("Not connected to NETCONF server")
        data = frame(message, self._base)
        with self._send_lock:  # keeps frames from concurrent senders whole
            try:
                channel.sendall(data)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                raise TransportError(f"sending failed: {exc}") from exc

    def _auth(
        self,
        username: str,
        password: str | None,
        key_filenames: list[str],
        allow_agent: bool,
        look_for_keys: bool,
    ) -> None:
        # ncclient hands the password to every key as its passphrase, and paramiko refuses a
        # passphrase for a key that has none: offer unencrypted keys as they are first.
        for key_filename in key_filenames:
            try:
                key = paramiko.PKey.from_path(key_filename)
            except (OSError, ValueError, TypeError, paramiko.SSHException):
                continue  # encrypted, or unreadable: ncclient tries it below
            try:
                self._transport.auth_publickey(username, key)
                return
            except paramiko.SSHException as exc:
                log.debug("key %s was refused: %s", key_filename, exc)
        super()._auth(username, password, key_filenames, allow_agent, look_for_keys)

    def load_known_hosts(self, filename: str | None = None) -> None:
        # ncclient calls this without a file name and then reads ~/.ssh/known_hosts; read the
        # target's file instead. A pinned key needs no file.
        if self._pinned:
            return
        if filename is None and self._known_hosts_file is None:
            super().load_known_hosts()
            return
        path = filename or str(self._known_hosts_file)
        try:
            self._host_keys.load(path)
        except OSError as exc:
            raise KnownHostsUnreadable(f"known_hosts file {path}: {exc.strerror}") from None

    def abort(self) -> None:
        """Break the connection now, from any thread, without waiting: the transport threads see
        the socket shut down, and every request still waiting for a reply fails at once."""
        self.aborted = True
        transport = self._transport
        if transport is not None:
            with suppress(OSError):
                transport.sock.shutdown(socket.SHUT_RDWR)

    def close_quietly(self) -> None:
        """Close the SSH connection and join ncclient's thread (blocking: worker threads only)."""
        if self._transport is None:
            return
        try:
            self.close()
        except (OSError, EOFError, paramiko.SSHException, TransportError) as exc:
            log.debug("closing an SSH transport failed: %s", exc)


# --- OpenSSH -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenSshOptions:
    host: str
    port: int
    username: str | None
    private_key_file: Path | None
    known_hosts: Path | None  # None: OpenSSH's own defaults
    verify_host_key: bool
    connect_timeout_s: float
    allow_agent: bool = False
    look_for_keys: bool = False


def ssh_binary() -> str | None:
    return shutil.which("ssh")


def openssh_argv(ssh: str, opts: OpenSshOptions) -> list[str]:
    """The ssh command line for a NETCONF session; no configuration file is read (-F /dev/null)
    so that nothing outside the target changes how we connect."""
    if opts.host.startswith("-"):
        raise ValueError(f"not a host name: {opts.host!r}")
    argv = [ssh, "-F", "/dev/null", "-p", str(opts.port), "-T"]
    if opts.username:
        argv += ["-l", opts.username]
    settings = {
        "BatchMode": "yes",  # never prompt: no password, no host key questions
        "ConnectTimeout": str(max(1, round(opts.connect_timeout_s))),
        "LogLevel": "ERROR",
        "CheckHostIP": "no",
        "UpdateHostKeys": "no",
        "ServerAliveInterval": "30",
        "ServerAliveCountMax": "3",
    }
    if not opts.allow_agent:
        settings["IdentityAgent"] = "none"
    if not opts.look_for_keys:
        settings["IdentitiesOnly"] = "yes"
    if opts.private_key_file is not None:
        settings["IdentityFile"] = str(opts.private_key_file)
    if opts.verify_host_key:
        settings["StrictHostKeyChecking"] = "yes"
        if opts.known_hosts is not None:
            settings["UserKnownHostsFile"] = str(opts.known_hosts)
            settings["GlobalKnownHostsFile"] = "/dev/null"
    else:
        settings["StrictHostKeyChecking"] = "no"  # ok-insecure: the target's explicit choice
        settings["UserKnownHostsFile"] = "/dev/null"
    for key, value in settings.items():
        argv += ["-o", f"{key}={value}"]
    return [*argv, "-s", opts.host, "netconf"]


def pinned_known_hosts_line(host: str, port: int, key_b64: str) -> str:
    """A known_hosts line that trusts exactly `key_b64` for host:port."""
    blob = base64.b64decode(key_b64)
    (name_len,) = struct.unpack(">I", blob[:4])
    key_type = blob[4 : 4 + name_len].decode("ascii")
    where = host if port == 22 else f"[{host}]:{port}"
    return f"{where} {key_type} {key_b64}\n"


class OpenSshSession(Session):  # type: ignore[misc]
    """An ncclient session whose bytes go through an `ssh -s HOST netconf` subprocess."""

    def __init__(self, device_handler: Any) -> None:
        super().__init__(Capabilities(device_handler.get_capabilities()))
        self._device_handler = device_handler
        # what ncclient's reading loop and parser expect of a transport session
        self._buffer = BytesIO()
        self._message_list: list[str] = []
        self._closing = threading.Event()
        self.parser = DefaultXMLParser(self)
        self._send_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        # ssh's complaints go to an unlinked file: it never fills up like a pipe would
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close())
        self._stderr_text = ""
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._closed = False
        self.aborted = False

    def connect(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        pinned_known_hosts: str | None = None,
        allow_agent: bool = False,
    ) -> None:
        """Start ssh and exchange hellos (blocking: worker threads only). `pinned_known_hosts`
        is the one known_hosts line to trust; OpenSSH takes the first value it gets for an
        option, so these come before anything in `argv`."""
        argv = list(argv)
        if pinned_known_hosts is not None:
            # a known_hosts file holding only the pinned key; it lives as long as the session
            self._scratch = tempfile.TemporaryDirectory(prefix="oss-netconf-")
            path = Path(self._scratch.name) / "known_hosts"
            path.write_text(pinned_known_hosts)
            argv[1:1] = [
                "-o",
                f"UserKnownHostsFile={path}",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
            ]
        keep = ("PATH", "HOME", "USER", "LANG", *(("SSH_AUTH_SOCK",) if allow_agent else ()))
        env = {k: v for k, v in os.environ.items() if k in keep}
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C is the daemon's to handle, not ssh's
        )
        self._connected = True
        try:
            self._post_connect(timeout)
        except Exception as exc:
            self.close_quietly()
            raise OpenSshFailed(self._stderr_text) from exc
        if self.aborted:
            self.close_quietly()
            raise TransportError("connect aborted")
        # as ncclient's SSH session does: the device handler picks the parser for replies
        self.parser = self._device_handler.get_xml_parser(self)

    def send(self, message: str) -> None:
        proc = self._proc
        if not self.connected or proc is None or proc.stdin is None or self.aborted:
            raise TransportError("Not connected to NETCONF server")
        data = memoryview(frame(message, self._base))
        fd = proc.stdin.fileno()
        with self._send_lock:  # keeps frames from concurrent senders whole
            try:
                while data:
                    data = data[os.write(fd, data) :]
            except OSError as exc:
                raise TransportError(f"sending failed: {exc}") from exc

    def _transport_read(self) -> bytes:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return b""
        try:
            return os.read(proc.stdout.fileno(), _READ_SIZE)
        except (OSError, ValueError):  # closed under us: the end of the stream
            return b""

    def _transport_register(self, selector: Any, event: Any) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        selector.register(self._proc.stdout.fileno(), event)

    def _send_ready(self) -> bool:
        return True

    def abort(self) -> None:
        """Kill ssh now, from any thread, without waiting: ncclient's reader sees the end of the
        stream and every request still waiting for a reply fails at once."""
        self.aborted = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with suppress(ProcessLookupError):
                proc.kill()

    def close(self) -> None:
        """End ssh (EOF first, then a kill) and keep what it said on stderr. Idempotent; also
        called by ncclient's reader thread when the stream ends.

        The reader's pipe is closed only once the reader has stopped: a pipe closed under its
        `select()` vanishes from the poll set, and the reader would wait on it forever."""
        self._closing.set()
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._end_process()
        reader_is_me = self is threading.current_thread()
        if self.is_alive() and not reader_is_me:
            self.join(5)  # it sees the end of the stream now that ssh is gone
        with self._close_lock:
            stdout = self._proc.stdout if self._proc is not None else None
            reader_done = reader_is_me or not self.is_alive()
            if stdout is not None and not stdout.closed and reader_done:
                stdout.close()
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None
        self._connected = False

    def _end_process(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            with suppress(OSError):
                proc.stdin.close()  # ssh sends EOF and exits
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        self._stderr.seek(0)
        self._stderr_text = self._stderr.read()[-2000:].decode(errors="replace").strip()
        self._stderr.close()

    def close_quietly(self) -> None:
        try:
            self.close()
        except (OSError, subprocess.SubprocessError) as exc:
            log.debug("closing ssh failed: %s", exc)

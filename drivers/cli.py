"""SSH command-line driver on netmiko, for devices without NETCONF or gNMI.

    async with CliDriver() as driver:
        async with driver.connect(target) as session:
            version = await session.send_command("show version", parse=parse_version)
            await session.send_config_set(["interface eth1", "description uplink"])
            await session.commit()  # only where the platform has a commit step

netmiko blocks, so every call runs in a bounded pool of worker threads (`BlockingCalls`); a call
that times out or is cancelled closes the SSH transport, and the session leaves the pool.

The netmiko device type and what the platform can do (commit, a rollback command, the command
that prints the configuration) come from the platform definition named in
`target.options["platform"]` (`configs/platforms/*.yaml`), or from `target.options` itself
(`device_type`, default "linux"). Code never branches on a vendor.

Host keys are verified by default (netmiko `ssh_strict=True`, paramiko's RejectPolicy): against
`credentials.host_key` when pinned, else `credentials.known_hosts`, else the user's
`~/.ssh/known_hosts`. `target.options["host_key_verify"] = False` turns that off explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import paramiko
from netmiko import ConnectHandler
from netmiko.exceptions import (
    ConfigInvalidException,
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadException,
    ReadTimeout,
)

from drivers.base import BlockingCalls, Datastore, EditOperation, PooledDriver, SessionPool, Target
from drivers.platforms import CliOptions, load_platform
from oss.errors import (
    AuthError,
    ConnectError,
    DeviceTimeout,
    DriverError,
    RpcError,
    Unsupported,
)

log = logging.getLogger(__name__)

PROTOCOL = "cli"
T = TypeVar("T")
_CLOSE_TIME_LIMIT_S = 5.0
# netmiko's own read timeout fires first; the worker's limit is a backstop a little later.
_BACKSTOP_S = 5.0
_INTERRUPT = "\x03"  # Ctrl-C: the terminal sends SIGINT to the running command
_SETTLE_S = 0.2  # after an interrupt, for a second prompt to arrive before the buffer is cleared


def cli_options(target: Target) -> CliOptions:
    """The platform's CLI options, with any explicit `target.options` on top."""
    options = target.options
    name = options.get("platform")
    base = load_platform(str(name)).cli if name else CliOptions()
    overrides = {
        key: options[key]
        for key in ("device_type", "commit", "rollback_command", "show_config_command")
        if key in options
    }
    return base.model_copy(update=overrides) if overrides else base


# --- errors -------------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _is_host_key_problem(exc: BaseException) -> bool:
    """netmiko reports paramiko's host-key refusals as a timeout; the cause tells them apart."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, paramiko.BadHostKeyException):
        return True
    text = f"{exc} {cause or ''}".lower()
    return "known_hosts" in text or "host key" in text


def _translate_connect(exc: BaseException, target: Target) -> DriverError:
    where = {"device": target.name, "protocol": PROTOCOL}
    if isinstance(exc, NetmikoAuthenticationException):
        cause = exc.__cause__ or exc.__context__
        detail = f": {_first_line(cause)}" if cause else ""
        return AuthError(f"authentication failed{detail}", **where)
    if _is_host_key_problem(exc):
        cause = exc.__cause__ or exc.__context__ or exc
        return AuthError(f"host key not trusted: {_first_line(cause)}", **where)
    if isinstance(exc, NetmikoTimeoutException):
        text = str(exc)
        if "TCP connection to device failed" in text or "DNS failure" in text:
            return ConnectError(f"cannot connect: {_first_line(exc)}", **where)
        return DeviceTimeout(f"connect: {_first_line(exc)}", **where)
    return ConnectError(f"connect: {_first_line(exc)}", **where)


def _translate_call(exc: BaseException, target: Target, what: str) -> DriverError:
    where = {"device": target.name, "protocol": PROTOCOL}
    if isinstance(exc, ReadTimeout | NetmikoTimeoutException):
        limit = f"no answer within {target.timeout_s:g} s"
        return DeviceTimeout(f"{what}: {limit} ({_first_line(exc)})", **where)
    if isinstance(exc, ConfigInvalidException):
        return RpcError(what, device_error=str(exc).strip(), **where)
    return ConnectError(f"{what}: the session broke: {_first_line(exc)}", **where)


def _is_broken(exc: BaseException) -> bool:
    return isinstance(exc, ConnectError | DeviceTimeout)


# --- connecting ---------------------------------------------------------------------------------


def _connect_blocking(target: Target, options: CliOptions, opened: list[Any]) -> Any:
    """Connect with netmiko; the connection object lands in `opened` before any I/O, so a
    timed-out connect can be aborted from the event loop."""
    creds = target.credentials
    if not creds.username:
        raise ConnectError("SSH needs credentials.username", device=target.name, protocol=PROTOCOL)
    params: dict[str, Any] = {
        "device_type": options.device_type,
        "host": target.host,
        "port": target.port,
        "username": creds.username,
        # None, not "": paramiko would otherwise try an empty password after the key
        "password": creds.password.get_secret_value() if creds.password else None,
        # config mode (sudo -s, enable) asks for a password: the login one
        "secret": creds.password.get_secret_value() if creds.password else "",
        "allow_agent": False,
        "use_keys": False,  # no scan of ~/.ssh: only the key the credentials name
        "conn_timeout": target.timeout_s,
        "auth_timeout": target.timeout_s,
        "banner_timeout": target.timeout_s,
        "read_timeout_override": None,
        "ssh_strict": True,
        "auto_connect": False,
    }
    if creds.private_key_file is not None:
        params["pkey"] = paramiko.PKey.from_path(creds.private_key_file)
    pinned: Path | None = None
    if not target.options.get("host_key_verify", True):
        log.warning("cli %s: host key verification is off for this target", target)
        params["ssh_strict"] = False  # ok-insecure: the target's explicit choice
    elif creds.host_key:
        pinned = _pinned_known_hosts(target, creds.host_key)
        params.update(alt_host_keys=True, alt_key_file=str(pinned))
    elif creds.known_hosts is not None:
        params.update(alt_host_keys=True, alt_key_file=str(creds.known_hosts))
    else:
        params["system_host_keys"] = True
    try:
        connection = ConnectHandler(**params)
        opened.append(connection)
        connection._open()  # auto_connect=False above: connect now, abortable
        return connection
    finally:
        if pinned is not None:
            pinned.unlink(missing_ok=True)


def _pinned_known_hosts(target: Target, host_key: str) -> Path:
    """A one-line known_hosts file for a pinned key, so netmiko's loader can read it."""
    host = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    fd, name = tempfile.mkstemp(prefix="oss-pinned-", suffix=".known_hosts")
    with os.fdopen(fd, "w") as file:
        file.write(f"{host} {host_key.strip()}\n")
    return Path(name)


def _abort(connection: Any) -> None:
    """Close the SSH transport from another thread: the worker's blocked read then returns."""
    client = getattr(connection, "remote_conn_pre", None)
    if client is not None:
        client.close()


# --- the session --------------------------------------------------------------------------------


class CliSession:
    """One SSH CLI session; get_config, edit_config, commit and discard_changes where the
    platform makes them meaningful."""

    def __init__(
        self, target: Target, connection: Any, options: CliOptions, calls: BlockingCalls
    ) -> None:
        self.target = target
        self.options = options
        self._connection = connection
        self._calls = calls
        # Set after a timeout or a broken transport: a command may still be running and its
        # output would be read as the next command's, so the session is not lent out again.
        self._broken = False

    def __repr__(self) -> str:
        return f"CliSession({self.target})"

    @property
    def is_alive(self) -> bool:
        """The session is usable: not broken by a timeout, and its SSH transport is up (no I/O:
        safe to ask from the event loop)."""
        if self._broken:
            return False
        client = getattr(self._connection, "remote_conn_pre", None)
        transport = client.get_transport() if client is not None else None
        return bool(transport is not None and transport.is_active())

    async def _run(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await self._calls.run(
                fn,
                *args,
                time_limit=self.target.timeout_s + _BACKSTOP_S,
                abort=lambda: _abort(self._connection),
                **kwargs,
            )
        except TimeoutError as exc:
            self._broken = True
            raise DeviceTimeout(
                f"{what}: no answer within {self.target.timeout_s:g} s",
                device=self.target.name,
                protocol=PROTOCOL,
            ) from exc
        except asyncio.CancelledError:
            self._broken = True  # the abort hook closed the transport
            raise
        except (
            ReadException,
            ConfigInvalidException,
            paramiko.SSHException,  # NetmikoTimeoutException is one
            OSError,
            EOFError,
        ) as exc:
            error = _translate_call(exc, self.target, what)
            self._broken = _is_broken(error)
            raise error from exc

    async def send_command(
        self, command: str, *, parse: Callable[[str], T] | None = None, expect: str | None = None
    ) -> str | T:
        """Run one command and return its output (without leading or trailing line breaks), or
        `parse(output)` when a parser is given (the parser runs in the worker thread too, so a
        heavy one does not stall the loop). `expect` is a regex ending the output instead of
        the prompt."""
        connection, timeout = self._connection, self.target.timeout_s

        def work() -> str | T:
            raw = connection.send_command(command, expect_string=expect, read_timeout=timeout)
            # netmiko leaves the line break that followed the command's echo: not output.
            output = str(raw).strip("\r\n")
            return parse(output) if parse is not None else output

        return await self._run(f"command {command!r}", work)

    async def send_interrupted(self, command: str, *, after_s: float) -> str:
        """Run a command that runs until interrupted (a ping without a count, as FRR vtysh's
        `ping WORD`): send it, let it run `after_s`, send Ctrl-C and return what it printed
        up to the prompt (ping prints its summary on SIGINT). A command that ended sooner
        leaves the Ctrl-C to the prompt, whose fresh prompt is read away."""
        connection = self._connection
        timeout = max(self.target.timeout_s - after_s, 1.0)  # the whole call within the bound

        def work() -> str:
            prompt = connection.find_prompt()
            connection.write_channel(command + connection.RETURN)
            time.sleep(after_s)
            connection.write_channel(_INTERRUPT)
            raw = connection.read_until_pattern(re.escape(prompt), read_timeout=timeout)
            time.sleep(_SETTLE_S)
            connection.clear_buffer()  # a second prompt, when the command had ended already
            output = str(raw)
            echo = output.find(command)
            if echo >= 0:
                output = output[echo + len(command) :]
            return output.removesuffix(prompt).strip("\r\n")

        return await self._run(f"command {command!r}", work)

    async def send_config_set(
        self, lines: Sequence[str], *, error_pattern: str = "", exit_config_mode: bool = True
    ) -> str:
        """Enter configuration mode, send `lines`, leave it; returns the device's echo.
        `error_pattern` (a regex) turns matching output into an RpcError. After a refused
        line the session leaves configuration mode (netmiko stays in the refused line's block,
        where the next lines sent, the undo's, would land)."""
        connection, timeout = self._connection, self.target.timeout_s

        def work() -> str:
            try:
                return str(
                    connection.send_config_set(
                        list(lines),
                        read_timeout=timeout,
                        error_pattern=error_pattern,
                        exit_config_mode=exit_config_mode,
                    )
                )
            except ConfigInvalidException:
                if exit_config_mode:
                    connection.exit_config_mode()
                raise

        return await self._run("configuration", work)

    async def commit(self) -> None:
        if not self.options.commit:
            raise Unsupported(
                "this platform has no commit step", device=self.target.name, protocol=PROTOCOL
            )
        await self._run("commit", self._connection.commit)

    async def rollback(self) -> None:
        """The platform's rollback command in configuration mode, then a commit if it has one."""
        command = self.options.rollback_command
        if command is None:
            raise Unsupported(
                "this platform has no rollback command", device=self.target.name, protocol=PROTOCOL
            )
        await self.send_config_set([command], exit_config_mode=not self.options.commit)
        if self.options.commit:
            await self.commit()

    # --- configuration, in NETCONF terms ------------------------------------------------------

    async def get_config(self, source: Datastore = "running", filter: str | None = None) -> str:
        command = self.options.show_config_command
        if command is None or source != "running":
            raise Unsupported(
                f"no command shows the {source} configuration on this platform",
                device=self.target.name,
                protocol=PROTOCOL,
            )
        if filter:
            command = f"{command} {filter}"
        return str(await self.send_command(command))

    async def edit_config(
        self, config: str, *, target: Datastore = "candidate", operation: EditOperation = "merge"
    ) -> None:
        """Configuration lines, sent in configuration mode. CLI edits merge; a platform with a
        commit step edits its candidate, one without edits running."""
        if operation != "merge":
            raise Unsupported(
                f"CLI edits cannot {operation}", device=self.target.name, protocol=PROTOCOL
            )
        wanted = "candidate" if self.options.commit else "running"
        if target != wanted:
            raise Unsupported(
                f"CLI edits go to {wanted} on this platform, not {target}",
                device=self.target.name,
                protocol=PROTOCOL,
            )
        lines = [line for line in config.splitlines() if line.strip()]
        await self.send_config_set(lines, exit_config_mode=not self.options.commit)

    async def discard_changes(self) -> None:
        raise Unsupported(
            "CLI sessions have no generic discard", device=self.target.name, protocol=PROTOCOL
        )

    def close_blocking(self) -> None:
        self._connection.disconnect()


# --- the driver ---------------------------------------------------------------------------------


class CliDriver(PooledDriver[CliSession]):
    """SSH CLI sessions to many devices: `async with driver.connect(target) as session`.
    One session per device (a CLI channel carries one command at a time)."""

    protocol = PROTOCOL

    def __init__(self, *, max_workers: int = 16) -> None:
        self._calls = BlockingCalls("cli", max_workers=max_workers)
        self._pool: SessionPool[CliSession] = SessionPool(
            self._open,
            self._close,
            per_device=1,
            is_broken=_is_broken,
            is_alive=lambda session: session.is_alive,
        )

    async def _open(self, target: Target) -> CliSession:
        options = cli_options(target)
        opened: list[Any] = []

        def abort() -> None:
            for connection in opened:
                _abort(connection)

        try:
            connection = await self._calls.run(
                _connect_blocking,
                target,
                options,
                opened,
                # TCP connect, banner and authentication each have timeout_s of their own
                time_limit=target.timeout_s * 3 + _BACKSTOP_S,
                abort=abort,
            )
        except TimeoutError as exc:
            raise DeviceTimeout(
                f"connect: no answer within {target.timeout_s:g} s",
                device=target.name,
                protocol=PROTOCOL,
            ) from exc
        except DriverError:
            raise
        except (NetmikoAuthenticationException, paramiko.SSHException) as exc:
            # NetmikoTimeoutException is a paramiko SSHException
            raise _translate_connect(exc, target) from exc
        except (OSError, EOFError, ValueError) as exc:
            # ValueError: an unknown netmiko device_type; OSError: an unreadable key file.
            raise ConnectError(
                f"connect: {_first_line(exc)}", device=target.name, protocol=PROTOCOL
            ) from exc
        log.info("cli session opened to %s", target)
        return CliSession(target, connection, options, self._calls)

    async def _close(self, session: CliSession) -> None:
        with contextlib.suppress(TimeoutError):
            await self._calls.run(
                session.close_blocking,
                time_limit=_CLOSE_TIME_LIMIT_S,
                abort=lambda: _abort(session._connection),
            )

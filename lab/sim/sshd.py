"""SSH plumbing shared by the simulated NETCONF and CLI servers.

One lab has one host key and one login; every device's listener reuses one
`SSHServerConnectionOptions` per service (building options is the costly part of asyncssh's
`listen`), so hundreds of devices cost one listening socket each. A listener tracks its
connections so a node set down closes them, as a powered-off device would.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncssh

log = logging.getLogger(__name__)

ProcessHandler = Callable[[asyncssh.SSHServerProcess[Any]], Awaitable[None]]


@dataclass(frozen=True)
class LabLogin:
    """The lab's one username and password (kept out of reprs)."""

    username: str
    password: str = field(repr=False)

    def accepts(self, username: str, password: str) -> bool:
        user_ok = hmac.compare_digest(username.encode(), self.username.encode())
        pass_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user_ok and pass_ok


def server_options(
    host_keys: list[asyncssh.SSHKey], *, encoding: str | None, allow_pty: bool
) -> asyncssh.SSHServerConnectionOptions:
    """Options built once per lab and service, shared by every device's listener."""
    return asyncssh.SSHServerConnectionOptions(
        server_host_keys=host_keys,
        config=None,  # never read the host's sshd/ssh configuration
        encoding=encoding,
        allow_pty=allow_pty,
        agent_forwarding=False,
        x11_forwarding=False,
        keepalive_interval=0,
        login_timeout=30,
    )


class _PasswordServer(asyncssh.SSHServer):
    """Password authentication against the lab login; remembers its connection."""

    def __init__(self, login: LabLogin, connections: set[asyncssh.SSHServerConnection]) -> None:
        self._login = login
        self._connections = connections
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._login.accepts(username, password)


class SshListener:
    """One device's SSH listener for one service (NETCONF or CLI)."""

    def __init__(
        self,
        *,
        login: LabLogin,
        options: asyncssh.SSHServerConnectionOptions,
        handler: ProcessHandler,
    ) -> None:
        self._login = login
        self._options = options
        self._handler = handler
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self.port = 0

    @property
    def running(self) -> bool:
        return self._acceptor is not None

    async def start(self, host: str, port: int) -> None:
        self._acceptor = await asyncssh.listen(
            host,
            port,
            options=self._options,
            server_factory=lambda: _PasswordServer(self._login, self._connections),
            process_factory=self._handler,
            reuse_address=True,
        )
        self.port = self._acceptor.get_port()

    async def stop(self) -> None:
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            await acceptor.wait_closed()
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        if connections:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(conn.wait_closed() for conn in connections)), timeout=5
                )
            except TimeoutError:
                # A peer that never answers must not hold up the lab: closing is best effort.
                log.warning("%d SSH connections did not close within 5 s", len(connections))
        self._connections.clear()


class SshService:
    """A lab server on its own SshListener (`self._listener`): start, stop, port, running."""

    _listener: SshListener

    @property
    def port(self) -> int:
        return self._listener.port

    @property
    def running(self) -> bool:
        return self._listener.running

    async def start(self, host: str, port: int) -> None:
        await self._listener.start(host, port)

    async def stop(self) -> None:
        await self._listener.stop()

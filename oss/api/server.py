"""The REST API as a daemon component: uvicorn's `Server.serve()` on a socket bound up front."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from oss.components import Stage, cannot_listen
from oss.errors import ConfigError
from oss.settings import ApiSettings

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Signals belong to the runtime, which stops the server through `should_exit`.
        yield


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket now, so a busy port fails start-up with a clear message."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"api.host {host!r}: cannot resolve: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise cannot_listen("api.port", host, port, "tcp", exc) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ApiServer:
    name = "api"
    stage = Stage.INGRESS

    def __init__(self, app: FastAPI, settings: ApiSettings) -> None:
        self._settings = settings
        self._socket = bind(settings.host, settings.port)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=int(settings.graceful_timeout_s),
            server_header=False,
        )
        self._server = _Server(config)
        if not is_loopback(settings.host):
            log.warning("the REST API listens on %s, reachable from the network", settings.host)

    async def run(self, stop: asyncio.Event) -> None:
        serving = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if serving in done:
                serving.result()  # a failure surfaces here, with its traceback
                if not self._server.started:
                    raise RuntimeError("the REST server failed to start")
                return
            self._server.should_exit = True
            await serving
        finally:
            stopping.cancel()
            if not serving.done():
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
            self._socket.close()

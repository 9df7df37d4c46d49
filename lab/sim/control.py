"""The running lab's control channel: JSON lines over a Unix socket in the lab's state directory.

The socket file is mode 0600 in a 0700 directory, so only the user who started the lab can
talk to it; no token is needed. One request per line, one response per line:

    {"op": "status"}
    {"op": "link", "endpoint": "r1:eth1", "up": false}
    {"op": "impair", "endpoint": "r1:eth1", "latency_us": 5000, "loss": 0.01}
    {"op": "node", "name": "r3", "up": false}
    {"op": "delay", "name": "r1", "seconds": 5}      (a slow management plane; 0 ends it)
    {"op": "stop"}

    -> {"ok": true, "result": ...} or {"ok": false, "error": "...", "input_error": true|false}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from oss.errors import InvalidInput, OssError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
MAX_REQUEST = 64 * 1024


class ControlError(OssError, RuntimeError):
    """The lab could not be reached, or refused the request."""


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket of a lab that died
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            response = await self._answer(line)
            writer.write(json.dumps(response, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            log.info("control connection failed: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise InvalidInput("a control request is a JSON object")
            return {"ok": True, "result": await self._handler(request)}
        except json.JSONDecodeError:
            return {"ok": False, "error": "not JSON", "input_error": True}
        except InvalidInput as exc:
            return {"ok": False, "error": str(exc), "input_error": True}
        except OssError as exc:
            return {"ok": False, "error": str(exc), "input_error": False}


def control_request(path: Path, request: dict[str, Any], *, timeout_s: float = 30.0) -> Any:
    """Send one request to a running lab (blocking; for the CLI) and return its result."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"no lab is running (nothing listens on {path})") from None
        except OSError as exc:
            raise ControlError(f"cannot talk to the lab at {path}: {exc}") from None
    try:
        response = json.loads(data)
    except json.JSONDecodeError:
        raise ControlError(f"the lab at {path} gave no valid answer") from None
    if not response.get("ok"):
        message = str(response.get("error", "request refused"))
        if response.get("input_error"):
            raise InvalidInput(message)
        raise ControlError(message)
    return response.get("result")

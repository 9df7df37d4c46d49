"""The request body limit: a body larger than `api.max_body_bytes` is refused with a 413
problem document before it is read whole.

A declared `Content-Length` over the limit is refused before the application runs; a body
without one (chunked) is counted as it streams in and cut off at the limit. Paths may have a
limit of their own (a topology file import). FastAPI's own `max_body_size` is not used: its 413
is plain text when the route answers without reading the body, and a declared length is only
checked once the body is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oss.api.problems import problem


@dataclass(frozen=True)
class Limit:
    bytes: int
    setting: str  # named in the refusal, so the operator knows what to raise

    def refusal(self) -> str:
        return f"the request body is larger than {self.bytes} bytes (setting {self.setting})"


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit. An HTTPException, so
    FastAPI's body parsing lets it through to the problem handlers (413)."""

    def __init__(self, limit: Limit) -> None:
        super().__init__(413, limit.refusal())


def declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length", "")
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
    return int(value) if value.isascii() and value.isdigit() else None


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: Limit, per_path: Mapping[str, Limit]) -> None:
        self.app = app
        self.limit = limit
        self.per_path = dict(per_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.limit)
        length = declared_length(scope)
        if length is not None and length > limit.bytes:
            refused = problem(
                Request(scope), 413, "too-large", "Content too large", limit.refusal()
            )
            await refused(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.bytes:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)

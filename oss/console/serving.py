"""The console's static files under `/ui/`, with the security and cache headers on every
response of that prefix (404s and the `/ui` redirect included).

The index names the vendored library with its version (`?v=3.35.0`), so the vendor files can be
cached for a year (`immutable`) while the index and the console's own modules are revalidated on
every load (`no-cache`: StaticFiles answers 304 from the ETag)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oss.console.manifest import SCRIPT, STATIC_DIR, read_manifest

PREFIX = "/ui"

VENDOR_PREFIX = f"{PREFIX}/vendor/"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"


def mount(app: FastAPI) -> None:
    """Serve the console at /ui/ (the one line `oss.api.app.create_app` calls)."""
    index = _index_html()

    async def redirect() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=308)

    async def show_index() -> Response:
        return HTMLResponse(index)

    app.add_api_route(PREFIX, redirect, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(f"{PREFIX}/", show_index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(
        f"{PREFIX}/index.html", show_index, methods=["GET", "HEAD"], include_in_schema=False
    )
    app.mount(PREFIX, StaticFiles(directory=STATIC_DIR), name="console")
    app.add_middleware(ConsoleHeaders)


def _index_html() -> str:
    """index.html with the vendored script's version in its URL (the cache key)."""
    version = read_manifest().version
    text = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return text.replace(f"vendor/{SCRIPT}", f"vendor/{SCRIPT}?v={version}")


class ConsoleHeaders:
    """Adds the console's headers to every response under /ui (pure ASGI: the API's streams
    pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(f"{PREFIX}/"):
            await self.app(scope, receive, send)
            return
        cache = IMMUTABLE if path.startswith(VENDOR_PREFIX) else REVALIDATE

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                headers.extend(SECURITY_HEADERS)
                headers.append((b"cache-control", cache))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

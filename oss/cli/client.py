"""A small synchronous REST client for the CLI; API problems become ClientError.

Built on the standard library's `http.client`, not httpx: a CLI command makes a handful of
requests, and importing httpx alone took longer than Python and typer together (issue 15, "a
fast CLI"; `bench/cli_startup.py`); http.client itself loads with the first request (`oss
--help` makes none). One connection per request: nothing to keep alive between a command's few
calls, and no stale keep-alive socket to retry on. Problems reaching the daemon are OSErrors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from oss import __version__

if TYPE_CHECKING:
    import http.client


class ClientError(Exception):
    """The request failed; `exit_code` says whether the input (2) or the operation (1) was bad."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Response:
    status_code: int
    content: bytes
    headers: http.client.HTTPMessage

    @property
    def text(self) -> str:
        return self.content.decode(self.headers.get_content_charset() or "utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass(frozen=True)
class LineStream:
    """A response read line by line as it arrives (server-sent events)."""

    status_code: int
    raw: http.client.HTTPResponse

    def iter_lines(self) -> Iterator[str]:
        for line in iter(self.raw.readline, b""):
            yield line.decode("utf-8", "replace").rstrip("\r\n")


@dataclass(frozen=True)
class Endpoint:
    """The daemon's URL taken apart: what a connection needs and the path prefix of every
    request."""

    url: str
    https: bool
    host: str
    port: int | None
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        url = url.rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"cannot reach the daemon at {url}: expected http://HOST[:PORT]")
        try:
            port = parts.port
        except ValueError as exc:
            raise ClientError(f"cannot reach the daemon at {url}: {exc}") from None
        return cls(url, parts.scheme == "https", parts.hostname, port, parts.path)

    @contextmanager
    def connection(self, timeout: float) -> Iterator[http.client.HTTPConnection]:
        """A connection, closed after use; an answer that is not HTTP raises ConnectionError."""
        import http.client  # the first request loads it (see the module's docstring)

        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = kind(self.host, self.port, timeout=timeout)
        try:
            yield connection
        except http.client.HTTPException as exc:
            raise ConnectionError(str(exc) or type(exc).__name__) from exc
        finally:
            connection.close()

    def target(self, path: str, params: Mapping[str, Any] | None) -> str:
        query = _query(params or {})
        if not query:
            return self.base_path + path
        return f"{self.base_path}{path}{'&' if '?' in path else '?'}{query}"


class ApiClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self._headers = {"User-Agent": f"oss-cli/{__version__}", "Accept": "*/*"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._endpoint = Endpoint.parse(url)
        self._url = self._endpoint.url
        self._timeout = timeout

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body, body_headers = _body(json, content)
        sent = {**self._headers, **body_headers, **(headers or {})}
        try:
            with self._endpoint.connection(self._timeout) as connection:
                connection.request(method, self._endpoint.target(path, params), body, sent)
                raw = connection.getresponse()
                response = Response(raw.status, raw.read(), raw.headers)
        except OSError as exc:
            raise ClientError(f"cannot reach the daemon at {self._url}: {exc}") from None
        if response.status_code >= 400:
            raise ClientError(
                _describe(response), exit_code=2 if response.status_code == 422 else 1
            )
        return response

    @contextmanager
    def stream(
        self, path: str, *, accept: str, connect_timeout: float, read_timeout: float
    ) -> Iterator[LineStream]:
        """GET `path` and read the answer as it comes; transport problems raise OSError."""
        with self._endpoint.connection(connect_timeout) as connection:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(read_timeout)
            target = self._endpoint.target(path, None)
            connection.request("GET", target, headers={**self._headers, "Accept": accept})
            raw = connection.getresponse()
            yield LineStream(raw.status, raw)

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def get_all(self, path: str, *, limit: int | None = None, **params: Any) -> list[Any]:
        """Every item of a paginated list (or the first `limit`): by its `next_cursor` where
        the list has one (the inventory's large lists: no item twice or missed when the list
        changes meanwhile), else by offset."""
        items: list[Any] = []
        paging: dict[str, Any] = {"offset": 0}
        while True:
            want = 1000 if limit is None else min(1000, limit - len(items))
            page = self.get(path, limit=want, **paging, **params)
            items.extend(page["items"])
            if limit is not None and len(items) >= limit:
                return items
            if "next_cursor" in page:
                if page["next_cursor"] is None:
                    return items
                paging = {"cursor": page["next_cursor"]}
            elif not page["items"] or len(items) >= page["total"]:
                return items
            else:
                paging = {"offset": len(items)}

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.request("POST", path, json=body, **kwargs)
        return response.json() if response.content else None

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)


def _query(params: Mapping[str, Any]) -> str:
    """Query parameters as the API reads them: booleans lower case, a list repeats its key."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs += [(key, _query_value(v)) for v in values if v is not None]
    return urlencode(pairs)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _body(payload: Any, content: bytes | None) -> tuple[bytes | None, dict[str, str]]:
    if content is not None:
        return content, {}
    if payload is None:
        return None, {}
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return encoded.encode("utf-8"), {"Content-Type": "application/json"}


def _describe(response: Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if isinstance(body, dict) and "detail" in body:
        return f"{body.get('title', 'error')} ({response.status_code}): {body['detail']}"
    return f"HTTP {response.status_code}: {body}"

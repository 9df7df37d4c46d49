"""A small synchronous REST client for the CLI; API problems become ClientError."""

from __future__ import annotations

from typing import Any

import httpx

from oss import __version__


class ClientError(Exception):
    """The request failed; `exit_code` says whether the input (2) or the operation (1) was bad."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"User-Agent": f"oss-cli/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._url = url.rstrip("/")
        self._http = httpx.Client(base_url=self._url, headers=headers, timeout=timeout)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(f"cannot reach the daemon at {self._url}: {exc}") from None
        if response.status_code >= 400:
            raise ClientError(
                _describe(response), exit_code=2 if response.status_code == 422 else 1
            )
        return response

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def get_all(self, path: str, *, limit: int | None = None, **params: Any) -> list[Any]:
        """Every item of a paginated list (or the first `limit`)."""
        items: list[Any] = []
        while True:
            want = 1000 if limit is None else min(1000, limit - len(items))
            page = self.get(path, limit=want, offset=len(items), **params)
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items
            if limit is not None and len(items) >= limit:
                return items

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.request("POST", path, json=body, **kwargs)
        return response.json() if response.content else None

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str) -> None:
        self.request("DELETE", path)


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if isinstance(body, dict) and "detail" in body:
        return f"{body.get('title', 'error')} ({response.status_code}): {body['detail']}"
    return f"HTTP {response.status_code}: {body}"

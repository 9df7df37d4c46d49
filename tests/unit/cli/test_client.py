"""The CLI's REST client (http.client underneath) against a stub HTTP server on loopback: what
it sends, and how answers and transport problems become results or ClientErrors."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from oss.cli.client import ApiClient, ClientError


class Recorder(BaseHTTPRequestHandler):
    """Answers with what the test queued and keeps what it received."""

    seen: list[dict[str, Any]]
    answers: list[tuple[int, str, bytes]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": self.rfile.read(length),
            }
        )
        status, content_type, body = self.answers.pop(0)
        if status == 0:  # not HTTP at all
            self.wfile.write(b"garbage\r\n\r\n")
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"seen": [], "answers": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/base/", handler
    server.shutdown()
    server.server_close()


def test_a_request_carries_the_token_the_query_and_the_json_body(
    stub: tuple[str, type[Recorder]],
) -> None:
    url, handler = stub
    handler.answers.append((201, "application/json", b'{"ok": true}'))
    with ApiClient(url, "s3cret") as api:
        result = api.request(
            "POST",
            "/api/v1/x",
            params={"dry_run": True, "tag": ["a", "b"], "skip": None},
            json={"name": "é"},
        )
    assert result.json() == {"ok": True}
    sent = handler.seen[0]
    assert sent["path"] == "/base/api/v1/x?dry_run=true&tag=a&tag=b"
    assert sent["headers"]["Authorization"] == "Bearer s3cret"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert json.loads(sent["body"]) == {"name": "é"}


def test_a_422_problem_is_exit_code_2_naming_the_detail(stub: tuple[str, type[Recorder]]) -> None:
    url, handler = stub
    problem = {"title": "Invalid input", "detail": "capacity_bps: too large"}
    handler.answers.append((422, "application/problem+json", json.dumps(problem).encode()))
    with pytest.raises(ClientError) as caught, ApiClient(url, None) as api:
        api.get("/api/v1/links")
    assert caught.value.exit_code == 2
    assert str(caught.value) == "Invalid input (422): capacity_bps: too large"


def test_a_404_without_json_is_exit_code_1(stub: tuple[str, type[Recorder]]) -> None:
    url, handler = stub
    handler.answers.append((404, "text/plain", b"nothing here"))
    with pytest.raises(ClientError) as caught, ApiClient(url, None) as api:
        api.get("/nowhere")
    assert (caught.value.exit_code, str(caught.value)) == (1, "HTTP 404: nothing here")


def test_an_answer_that_is_not_http_is_unreachable(stub: tuple[str, type[Recorder]]) -> None:
    url, handler = stub
    handler.answers.append((0, "", b""))
    with pytest.raises(ClientError, match="cannot reach the daemon at") as caught:
        ApiClient(url, None).get("/x")
    assert caught.value.exit_code == 1


def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(ClientError, match="Connection refused"):
            ApiClient(f"http://127.0.0.1:{port}", None).get("/x")


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://host", "http://host:port"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ClientError, match="cannot reach the daemon at") as caught:
        ApiClient(url, None)
    assert caught.value.exit_code == 1


def _page(items: list[int], total: int, **extra: Any) -> tuple[int, str, bytes]:
    body = {"items": items, "total": total, "limit": 1000, "offset": 0, **extra}
    return 200, "application/json", json.dumps(body).encode()


def test_get_all_follows_next_cursor_where_the_list_has_one(
    stub: tuple[str, type[Recorder]],
) -> None:
    url, handler = stub
    handler.answers += [
        _page([1, 2], 5, next_cursor="c1"),
        _page([3, 4], 5, next_cursor="c2"),
        _page([5], 5, next_cursor=None),
    ]
    assert ApiClient(url, None).get_all("/api/v1/devices", role="pe") == [1, 2, 3, 4, 5]
    paths = [seen["path"] for seen in handler.seen]
    assert paths == [
        "/base/api/v1/devices?limit=1000&offset=0&role=pe",
        "/base/api/v1/devices?limit=1000&cursor=c1&role=pe",
        "/base/api/v1/devices?limit=1000&cursor=c2&role=pe",
    ]


def test_get_all_pages_by_offset_where_the_list_has_no_cursor(
    stub: tuple[str, type[Recorder]],
) -> None:
    url, handler = stub
    handler.answers += [_page([1, 2], 3), _page([3], 3)]
    assert ApiClient(url, None).get_all("/api/v1/links", limit=5) == [1, 2, 3]
    paths = [seen["path"] for seen in handler.seen]
    assert paths == ["/base/api/v1/links?limit=5&offset=0", "/base/api/v1/links?limit=3&offset=2"]

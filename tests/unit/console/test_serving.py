"""/ui/ serves the console with its security headers on every response (pages, modules, vendor
files, the redirect, a 404), a year's cache for the versioned vendor file and revalidation for
the rest; the index names the vendored version and holds no inline script or style."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from oss import console
from oss.console.manifest import SCRIPT, STATIC_DIR, read_manifest
from oss.console.serving import CSP


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()

    @app.get("/api/v1/thing")
    def thing() -> dict[str, str]:
        return {"ok": "yes"}

    console.mount(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://oss.test") as client:
        yield client


def _secured(headers: httpx.Headers) -> None:
    assert headers.get("content-security-policy") == CSP
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"


async def test_the_index_names_the_vendored_version(client: httpx.AsyncClient) -> None:
    r = await client.get("/ui/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    _secured(r.headers)
    assert r.headers["cache-control"] == "no-cache"
    assert f"vendor/{SCRIPT}?v={read_manifest().version}" in r.text


async def test_ui_redirects_to_the_folder(client: httpx.AsyncClient) -> None:
    r = await client.get("/ui", follow_redirects=False)
    assert r.status_code == 308
    assert r.headers["location"] == "/ui/"
    _secured(r.headers)


@pytest.mark.parametrize(
    ("path", "kind", "cache"),
    [
        (f"/ui/vendor/{SCRIPT}", "javascript", "public, max-age=31536000, immutable"),
        ("/ui/js/main.js", "javascript", "no-cache"),
        ("/ui/css/console.css", "text/css", "no-cache"),
    ],
)
async def test_files_carry_headers_by_kind(
    client: httpx.AsyncClient, path: str, kind: str, cache: str
) -> None:
    r = await client.get(path)
    assert r.status_code == 200, path
    assert kind in r.headers["content-type"]
    assert r.headers["cache-control"] == cache
    _secured(r.headers)


async def test_a_missing_file_is_a_404_with_the_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/ui/nosuch.js")
    assert r.status_code == 404
    _secured(r.headers)


async def test_the_api_is_left_alone(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/thing")
    assert r.status_code == 200
    assert "content-security-policy" not in r.headers


def test_no_inline_script_or_style_in_the_pages() -> None:
    for page in STATIC_DIR.rglob("*.html"):
        text = page.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), page
        assert "<style" not in text and " style=" not in text, page
        assert not re.search(r"\son[a-z]+=", text), page


def test_no_module_writes_html_from_data() -> None:
    """Names are data: the console's modules never assign innerHTML / outerHTML or use
    insertAdjacentHTML / document.write (textContent and DOM nodes only)."""
    for module in (STATIC_DIR / "js").rglob("*.js"):
        text = module.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{module.name}: {sink}"

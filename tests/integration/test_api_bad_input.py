"""Bad input gets a clear 4xx problem document naming what was wrong, never a 5xx, and nothing
is written: numbers past 64 bits, months outside the calendar, bodies past the size limit,
overlong text; a 405 says which methods the path allows; the OpenAPI document says so."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oss.bounds import INT64_MAX, LABEL_MAX, TEXT_MAX
from tests.integration.conftest import Api
from tests.peers.daemon import Daemon

PROBLEM = "application/problem+json"
TOO_BIG = INT64_MAX + 1
HUGE_ID = "99999999999999999999999"
MIB = 1024 * 1024
PO = "/tmf-api/productOrderingManagement/v4"
BILLS = "/tmf-api/customerBillManagement/v4"


def assert_problem(r: httpx.Response, status: int, *names: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    for name in names:
        assert name in body["detail"], body
    return body


async def two_devices(api: Api) -> None:
    for name in ("r1", "r2"):
        r = await api.operator.post("/api/v1/devices", json={"name": name})
        assert r.status_code == 201, r.text


# --- numbers past what a 64-bit column holds ----------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit",
        "/api/v1/devices",
        "/api/v1/customers",
        "/tmf-api/alarm/v4/alarm",
        f"{PO}/productOrder",
        "/tmf-api/serviceOrdering/v4/serviceOrder",
        "/tmf-api/usageManagement/v4/usage",
        f"{BILLS}/customerBill",
        f"{BILLS}/appliedCustomerBillingRate",
    ],
)
async def test_an_offset_past_64_bits_is_refused_naming_it(api: Api, path: str) -> None:
    r = await api.viewer.get(path, params={"offset": TOO_BIG})
    assert_problem(r, 422, "offset")
    r = await api.viewer.get(path, params={"offset": INT64_MAX})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/transactions/{HUGE_ID}"),
        ("GET", f"{BILLS}/customerBill/{HUGE_ID}"),
        ("PATCH", f"{BILLS}/customerBill/{HUGE_ID}"),
        ("GET", f"{BILLS}/appliedCustomerBillingRate/{HUGE_ID}"),
        ("GET", f"/tmf-api/alarm/v4/alarm/{HUGE_ID}"),
        ("PATCH", f"/tmf-api/alarm/v4/alarm/{HUGE_ID}"),
        ("GET", f"/tmf-api/usageManagement/v4/usage/{HUGE_ID}"),
        ("GET", f"/api/v1/links/{HUGE_ID}"),
        ("DELETE", f"/api/v1/tokens/{HUGE_ID}"),
        ("GET", f"/api/v1/topology/impact?link={HUGE_ID}"),
        ("GET", f"{BILLS}/appliedCustomerBillingRate?bill.id={HUGE_ID}"),
    ],
)
async def test_an_id_past_64_bits_is_a_client_error(api: Api, method: str, path: str) -> None:
    body = {"state": "cleared"} if method == "PATCH" else None
    r = await api.admin.request(method, path, json=body)
    assert r.status_code in (404, 422), r.text
    assert r.headers["content-type"] == PROBLEM


async def test_bit_rates_past_64_bits_are_refused_and_nothing_is_written(api: Api) -> None:
    await two_devices(api)
    link = {"a": {"device": "r1", "interface": "e1"}, "b": {"device": "r2", "interface": "e1"}}
    r = await api.operator.post("/api/v1/links", json={**link, "capacity_bps": TOO_BIG})
    assert_problem(r, 422, "capacity_bps")
    assert (await api.viewer.get("/api/v1/links")).json()["total"] == 0
    assert (await api.viewer.get("/api/v1/interfaces")).json()["total"] == 0

    r = await api.operator.post("/api/v1/links", json=link)
    assert r.status_code == 201, r.text
    link_id = r.json()["id"]
    for body in ({"capacity_bps": TOO_BIG}, {"latency_us": TOO_BIG}):
        r = await api.operator.patch(f"/api/v1/links/{link_id}", json=body)
        assert_problem(r, 422, next(iter(body)))
    assert (await api.viewer.get(f"/api/v1/links/{link_id}")).json()["capacity_bps"] < TOO_BIG

    r = await api.operator.post(
        "/api/v1/interfaces", json={"device": "r1", "name": "e2", "speed_bps": TOO_BIG}
    )
    assert_problem(r, 422, "speed_bps")
    r = await api.operator.patch("/api/v1/interfaces/r1/e1", json={"speed_bps": TOO_BIG})
    assert_problem(r, 422, "speed_bps")
    assert (await api.viewer.get("/api/v1/interfaces/r1/e1")).json()["speed_bps"] < TOO_BIG


# --- months outside the calendar ----------------------------------------------------------


@pytest.mark.parametrize("period", ["0000-01", "9999-12", "2026-13", "26-11"])
async def test_a_bill_run_for_a_month_outside_the_calendar_is_refused(
    api: Api, period: str
) -> None:
    r = await api.operator.post("/api/v1/bill-runs", json={"period": period})
    assert_problem(r, 422, "period")
    r = await api.viewer.get(f"{BILLS}/customerBill", params={"period": period})
    assert_problem(r, 422, "period")


# --- request size ---------------------------------------------------------------------------


async def test_a_body_past_the_limit_is_refused_413_and_not_stored(api: Api) -> None:
    site = {"name": "big", "description": "x" * (2 * MIB)}
    r = await api.operator.post("/api/v1/sites", json=site)
    body = assert_problem(r, 413, "1048576 bytes", "api.max_body_bytes")
    assert body["type"] == "urn:oss:problem:too-large"
    assert (await api.viewer.get("/api/v1/sites")).json()["total"] == 0


async def test_a_streamed_body_is_cut_off_at_the_limit_not_read_whole(api: Api) -> None:
    chunk = b" " * (64 * 1024)
    sent = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"name": "big", "description": "'
        for _ in range(50 * 16):
            sent += len(chunk)
            yield chunk
        yield b'"}'

    r = await api.operator.post(
        "/api/v1/sites",
        content=fifty_megabytes(),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers  # chunked: only counting can catch it
    assert_problem(r, 413, "1048576 bytes")
    assert sent <= MIB + len(chunk)  # refused while streaming, the rest never read
    assert (await api.viewer.get("/api/v1/sites")).json()["total"] == 0


async def test_a_topology_import_has_its_own_larger_limit(api: Api) -> None:
    comment = b"# " + b"x" * (2 * MIB) + b"\n"
    r = await api.operator.post(
        "/api/v1/topology/import",
        content=comment + b"name: x\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == 422, r.text  # read and judged as a file, not refused for size
    r = await api.operator.post(
        "/api/v1/topology/import",
        content=b"# " + b"x" * (9 * MIB),
        headers={"Content-Type": "application/yaml"},
    )
    assert_problem(r, 413, "api.max_import_bytes")


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/api/v1/sites",
            {"name": "s1", "description": "x" * (TEXT_MAX + 1)},
            "description",
        ),
        ("PATCH", "/api/v1/sites/s0", {"description": "x" * (TEXT_MAX + 1)}, "description"),
        ("POST", "/api/v1/devices", {"name": "r9", "kind": "k" * (LABEL_MAX + 1)}, "kind"),
        ("POST", "/api/v1/devices", {"name": "r9", "image": "i" * (LABEL_MAX + 1)}, "image"),
        ("PATCH", "/api/v1/devices/r1", {"image": "i" * (LABEL_MAX + 1)}, "image"),
        (
            "POST",
            "/api/v1/interfaces",
            {"device": "r1", "name": "e9", "description": "d" * (TEXT_MAX + 1)},
            "description",
        ),
    ],
)
async def test_overlong_text_is_refused_naming_the_field(
    api: Api, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    await two_devices(api)
    assert (await api.operator.post("/api/v1/sites", json={"name": "s0"})).status_code == 201
    r = await api.operator.request(method, path, json=body)
    assert_problem(r, 422, field, "at most")
    assert all(
        len(s["description"]) <= TEXT_MAX
        for s in (await api.viewer.get("/api/v1/sites")).json()["items"]
    )


# --- 405 and the OpenAPI document ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/sites", "GET, POST"),
        ("PUT", "/api/v1/sites/s1", "GET, PATCH, DELETE"),
        ("POST", "/api/v1/interfaces/r1/ge-0/0/0", "GET, PATCH, DELETE"),
        ("DELETE", "/tmf-api/alarm/v4/alarm", "GET"),
    ],
)
async def test_a_405_names_every_allowed_method(
    api: Api, method: str, path: str, allow: str
) -> None:
    r = await api.operator.request(method, path)
    assert_problem(r, 405)
    assert r.headers["allow"] == allow


async def test_the_openapi_document_says_errors_are_problem_documents(api: Api) -> None:
    spec = (await api.anonymous.get("/api/v1/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"type", "title", "status", "detail", "instance"} <= set(schemas["Problem"]["required"])
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    checked = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            expected = set()
            if op.get("security"):
                expected |= {"401", "403"}
            if op.get("parameters") or "requestBody" in op:
                expected.add("422")
            if "requestBody" in op:
                expected.add("413")
            if method != "get":
                expected |= {"404", "409"}
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in expected:
                assert responses[status]["content"][PROBLEM]["schema"] == problem_ref
                checked += 1
    assert checked > 200


async def test_an_unexpected_error_is_a_logged_problem_500(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    from oss.api import create_app

    app = create_app(api.daemon)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://oss.test") as client:
        with caplog.at_level(logging.ERROR, logger="oss.api.problems"):
            r = await client.get("/boom")
    body = assert_problem(r, 500)
    assert "a bug" not in r.text
    assert body["type"] == "urn:oss:problem:internal-error"
    assert any(rec.exc_info and "a bug" in str(rec.exc_info[1]) for rec in caplog.records)


@pytest.mark.parametrize("ref", ["²", HUGE_ID, "٣"])
@pytest.mark.parametrize(
    "path",
    ["/api/v1/services/{}", "/api/v1/services/{}/diff", "/tmf-api/serviceInventory/v4/service/{}"],
)
async def test_a_service_ref_that_cannot_be_an_id_is_not_found(
    api: Api, path: str, ref: str
) -> None:
    r = await api.viewer.get(path.format(ref))
    assert r.status_code == 404, r.text  # '²'.isdigit() but int('²') fails; HUGE_ID overflows


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/audit", "since"),
        ("/api/v1/kpis", "until"),
        ("/tmf-api/usageManagement/v4/usage", "usageDate.lt"),
    ],
)
async def test_a_moment_must_be_a_date_and_time_not_a_number(
    api: Api, path: str, name: str
) -> None:
    r = await api.viewer.get(path, params={name: "0.5"})
    assert_problem(r, 422, name)
    r = await api.viewer.get(path, params={name: "2026-11-01T00:00:00Z"})
    assert r.status_code == 200, r.text


def test_a_real_server_refuses_large_bodies_declared_or_streamed(tmp_path: Path) -> None:
    """Over the wire to `oss serve` (uvicorn): a declared Content-Length past the limit, and a
    chunked body that passes it while streaming, both get the 413 problem document."""
    daemon = Daemon(tmp_path, env={"OSS_API__MAX_BODY_BYTES": "4096"}).start()
    try:
        token = daemon.create_token("operator")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        site = json.dumps({"name": "big", "description": "x" * 1000}).encode()

        def chunked() -> Iterator[bytes]:
            yield site[:-2]
            for _ in range(64):
                yield b"x" * 1024
            yield b'"}'

        with httpx.Client(base_url=daemon.url, headers=headers, timeout=30) as client:
            declared = client.post("/api/v1/sites", content=site + b" " * 8192)
            streamed = client.post("/api/v1/sites", content=chunked())
            small = client.post("/api/v1/sites", content=site)
            listed = client.get("/api/v1/sites").json()
        assert_problem(declared, 413, "4096 bytes")
        assert "content-length" not in streamed.request.headers
        assert_problem(streamed, 413, "4096 bytes")
        assert small.status_code == 201, small.text
        assert [s["name"] for s in listed["items"]] == ["big"]
    finally:
        code, log = daemon.stop()
    assert code == 0, log


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
async def test_a_moment_at_the_ends_of_the_calendar_is_refused(api: Api, moment: str) -> None:
    """Moved to UTC, these overflow `datetime` (was OverflowError, 500)."""
    usage = {
        "usageDate": moment,
        "usageType": "data",
        "ratedProductUsage": [{"productRef": {"id": "p1"}}],
        "usageCharacteristic": [
            {"name": "quantity", "value": "1"},
            {"name": "unit", "value": "GB"},
            {"name": "key", "value": "k1"},
        ],
    }
    r = await api.operator.post("/tmf-api/usageManagement/v4/usage", json=usage)
    assert r.status_code == 422, r.text
    assert "usageDate" in r.json()["detail"]
    for path, name in (
        ("/tmf-api/usageManagement/v4/usage", "usageDate.lt"),
        ("/api/v1/audit", "since"),
        ("/api/v1/kpis", "since"),
    ):
        r = await api.viewer.get(path, params={name: moment})
        assert_problem(r, 422, name, "year")

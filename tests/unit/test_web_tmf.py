"""The TMF conventions every TMF route shares (oss.web.tmf): `fields=`, paging headers, the
TMF Error document."""

from __future__ import annotations

import json

from fastapi import Request, Response

from oss.errors import NotFound, Unauthorized
from oss.web.tmf import paged, select_fields, tmf_error

DOC = {"id": "7", "href": "/x/7", "state": "raised", "severity": "major", "note": "n"}


def test_fields_keep_what_they_name_and_always_id_and_href() -> None:
    assert select_fields(DOC, " state , ,severity") == {
        "id": "7",
        "href": "/x/7",
        "state": "raised",
        "severity": "major",
    }
    assert select_fields(DOC, "unknown") == {"id": "7", "href": "/x/7"}


def test_no_fields_is_the_whole_document() -> None:
    assert select_fields(DOC, None) == DOC
    assert select_fields(DOC, "") == DOC


def test_a_page_says_how_many_match_and_how_many_it_holds() -> None:
    response = Response()
    docs = paged(response, [DOC, {**DOC, "id": "8"}], 12, "note")
    assert docs == [
        {"id": "7", "href": "/x/7", "note": "n"},
        {"id": "8", "href": "/x/7", "note": "n"},
    ]
    assert response.headers["X-Total-Count"] == "12"
    assert response.headers["X-Result-Count"] == "2"


def _request(path: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "headers": []})


def test_an_error_is_a_tmf_error_document_with_the_problem_members() -> None:
    answer = tmf_error(_request("/tmf-api/x/7"), NotFound("bill 7 not found"))
    assert answer.status_code == 404
    assert json.loads(answer.body) == {
        "code": "not-found",
        "reason": "Not found",
        "message": "bill 7 not found",
        "status": "404",
        "@type": "Error",
        "type": "urn:oss:problem:not-found",
        "title": "Not found",
        "detail": "bill 7 not found",
        "instance": "/tmf-api/x/7",
    }
    assert "WWW-Authenticate" not in answer.headers


def test_a_401_asks_for_a_bearer_token() -> None:
    answer = tmf_error(_request("/tmf-api/x"), Unauthorized("a bearer token is required"))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"

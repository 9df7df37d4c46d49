"""The OpenAPI document says what the API answers on errors, not FastAPI's defaults.

Every error is a problem document (`application/problem+json`, `Problem`); the TMF resources
answer the errors their handlers raise with the TMF `Error` document (`application/json`,
carrying the problem members too). Which statuses an operation documents follows from its
shape: a token (401, 403), parameters or a body (422), a body (400 unreadable, 413), something
named (404), a change (409); operations that reach devices add 502 and 504. FastAPI's own 422 schema
(`HTTPValidationError`) describes a body this API never sends, so it is replaced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from oss.api.problems import PROBLEM_JSON, Problem

TMF_PREFIX = "/tmf-api/"
REF = "#/components/schemas/{model}"

DESCRIPTIONS = {
    400: "the body could not be read as what its Content-Type says (e.g. not UTF-8 JSON)",
    401: "no bearer token, or one that is unknown, expired or revoked",
    403: "the token's role does not allow this",
    404: "what the request names does not exist",
    409: "the change collides with what exists or with what uses it",
    413: "the request body is larger than the limit (api.max_body_bytes)",
    422: "the input is invalid: the detail (and `errors`) names each field and why",
    502: "a device refused or failed; the detail names the device and its own words",
    503: "the daemon is starting or stopping",
    504: "a device did not answer in time",
}
# Statuses the TMF handlers answer with a TMF Error document (those FastAPI and the
# authentication answer stay problem documents).
TMF_HANDLER_STATUSES = {404, 409, 422}
DEVICE_STATUSES = {502, 504}
# Operations that talk to devices, by tag.
DEVICE_TAGS = {"services"}
EXTRA_BY_PATH = {"/readyz": {503}}
WRITES = {"post", "put", "patch", "delete"}


class TmfError(BaseModel):
    """The TMF630 `Error` document, with the members of a problem document too (`status` is
    a string here, as TMF630 has it)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    code: str
    reason: str
    message: str
    status: str
    type_: str = Field(alias="@type")
    type: str
    title: str
    detail: str
    instance: str


def install(app: FastAPI) -> None:
    """Post-process the generated document once, when it is first asked for."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_errors(schema: dict[str, Any]) -> None:
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(path, method, operation)):
                responses[str(status)] = error_response(status, path.startswith(TMF_PREFIX))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    add_models(components, (Problem, TmfError))


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    statuses = set(EXTRA_BY_PATH.get(path, ()))
    if operation.get("security"):
        statuses |= {401, 403}
    if parameters or has_body:
        statuses |= {404, 422}
    if has_body:
        statuses |= {400, 413}
    if method in WRITES:
        statuses |= {404, 409}
    if DEVICE_TAGS & set(operation.get("tags", ())):
        statuses |= DEVICE_STATUSES
    return statuses


def error_response(status: int, tmf: bool) -> dict[str, Any]:
    content: dict[str, Any] = {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}}
    if tmf and status in TMF_HANDLER_STATUSES:
        content["application/json"] = {"schema": {"$ref": REF.format(model="TmfError")}}
    response: dict[str, Any] = {"description": DESCRIPTIONS[status], "content": content}
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
        }
    return response


def add_models(components: dict[str, Any], models: Iterable[type[BaseModel]]) -> None:
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema

"""Validate documents against a definition of the official TMF642 (Alarm Management v4) spec:
the alarm routes' view of oss.tmf."""

from __future__ import annotations

from typing import Any

from oss import tmf

SPEC = tmf.spec(tmf.ALARM)


def base_path() -> str:
    """The spec's basePath without its trailing slash: `/tmf-api/alarm/v4`."""
    return SPEC.base_path


def spec() -> dict[str, Any]:
    return SPEC.document


def errors(document: Any, definition: str = "Alarm") -> list[str]:
    """Every way `document` breaks the definition, as readable lines (empty when it is valid)."""
    return SPEC.errors(document, definition)


def validate(document: Any, definition: str = "Alarm") -> None:
    SPEC.validate(document, definition)

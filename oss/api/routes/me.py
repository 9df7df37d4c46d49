"""Who the caller is: the token's name and role (the console enables its buttons by it; the
API still checks the role of every request)."""

from __future__ import annotations

from fastapi import APIRouter

from oss.api.console_schemas import Me
from oss.api.deps import Viewer

router = APIRouter(prefix="/api/v1/me", tags=["console"])


@router.get("", summary="The caller's token name and role")
async def me(who: Viewer) -> Me:
    return Me(name=who.name, role=who.role, actor=who.actor)

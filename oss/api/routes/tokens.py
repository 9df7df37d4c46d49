"""API tokens: admins create, list and revoke them. A new token is shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict

from oss.api.deps import Admin, DaemonDep
from oss.auth import TokenInfo
from oss.auth_roles import Role
from oss.bounds import Int64
from topology.model import Name

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    role: Role
    replace: bool = False


class TokenCreated(BaseModel):
    token: str
    info: TokenInfo


@router.get("")
async def list_tokens(
    daemon: DaemonDep,
    _: Admin,
    include_revoked: Annotated[bool, Query()] = False,
) -> list[TokenInfo]:
    return await daemon.tokens.list(include_revoked=include_revoked)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenCreate, daemon: DaemonDep, who: Admin) -> TokenCreated:
    token, info = await daemon.tokens.create(
        name=body.name, role=body.role, actor=who.actor, replace=body.replace
    )
    return TokenCreated(token=token, info=info)


@router.delete("/{token_id}")
async def revoke_token(token_id: Int64, daemon: DaemonDep, who: Admin) -> TokenInfo:
    return await daemon.tokens.revoke(token_id, actor=who.actor)

"""Request dependencies: the runtime, the caller's identity and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from oss.auth import Principal
from oss.auth_roles import Role
from oss.errors import Forbidden, Unauthorized
from oss.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="a token from `oss token create`")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def check(
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        principal = await runtime.tokens.authenticate(credentials.credentials)
        if not principal.role.allows(role):
            raise Forbidden(
                f"this needs the {role.value} role; the token has {principal.role.value}"
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


class PageParams:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 100,
        offset: Annotated[int, Query(ge=0, description="items to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


PageDep = Annotated[PageParams, Depends()]

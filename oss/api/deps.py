"""Request dependencies: the assembled daemon, the caller's identity and role checks. Every refusal
(401, 403) is audited, rate-limited (`oss.audit.RefusalLog`), with the token's id, never the
token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bss_bridge.bridge import Bss
from oss.audit import Refusal
from oss.auth import Principal, TokenRefused
from oss.auth_roles import Role
from oss.daemon import Daemon
from oss.errors import Forbidden, Unauthorized
from oss.web.paging import CursorPageDep as CursorPageDep
from oss.web.paging import PageDep as PageDep  # the BSS's routes share it (oss.web)
from oss.web.paging import PageParams as PageParams

_bearer = HTTPBearer(auto_error=False, description="a token from `oss token create`")


def get_daemon(request: Request) -> Daemon:
    daemon: Daemon = request.app.state.daemon
    return daemon


DaemonDep = Annotated[Daemon, Depends(get_daemon)]


def get_bss(daemon: DaemonDep) -> Bss:
    """The BSS, for its own routes (bss_bridge/api), which cannot import this module."""
    return daemon.bss


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def check(
        daemon: DaemonDep,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            await _refused(daemon, request, 401, "no bearer token", None, "anonymous")
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        try:
            principal = await daemon.tokens.authenticate(credentials.credentials)
        except TokenRefused as exc:
            await _refused(daemon, request, 401, exc.reason, exc.token_id, exc.actor)
            raise
        if not principal.role.allows(role):
            reason = f"needs {role.value}, token has {principal.role.value}"
            await _refused(daemon, request, 403, reason, principal.token_id, principal.actor)
            raise Forbidden(
                f"this needs the {role.value} role; the token has {principal.role.value}"
            )
        return principal

    return check


async def _refused(
    daemon: Daemon,
    request: Request,
    status: int,
    reason: str,
    token_id: int | None,
    actor: str,
) -> None:
    route = request.scope.get("route")
    await daemon.tokens.refusals.refused(
        Refusal(
            status=status,
            reason=reason,
            method=request.method,
            route=str(getattr(route, "path", request.url.path)),
            token_id=token_id,
            actor=actor,
        )
    )


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

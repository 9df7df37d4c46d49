"""Bearer tokens with roles. Tokens are random, shown once, and stored only as SHA-256 hashes
(a fast hash is right here: the token has 256 bits of entropy, unlike a password)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update

from oss import audit
from oss.audit import RefusalLog
from oss.auth_roles import Role
from oss.errors import NotFound, Unauthorized
from oss.store import Database
from oss.store.base import utcnow
from oss.store.tables import TokenRow

TOKEN_PREFIX = "oss_"
# last_used_at is bookkeeping, not security: write it at most this often per token.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names whoever acted."""
        return f"token:{self.name}#{self.token_id}"


class TokenRefused(Unauthorized):
    """A token the daemon does not accept. `reason` (a fixed phrase), `token_id` and `actor`
    (of a revoked token; None and "anonymous" for a token that is not ours) are for the audit
    log, not the client: the client is told the same for unknown and revoked tokens."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        token_id: int | None = None,
        actor: str = "anonymous",
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.token_id = token_id
        self.actor = actor


class TokenInfo(BaseModel):
    """A token as shown to admins: never the token, never its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, db: Database, *, refusals: RefusalLog | None = None) -> None:
        self._db = db
        self._last_used: dict[int, datetime] = {}
        self.refusals = refusals or RefusalLog(db)  # refused requests, rate-limited

    async def create(
        self, *, name: str, role: Role, actor: str, replace: bool = False
    ) -> tuple[str, TokenInfo]:
        """Make a token; returns the secret (to show once) and its public record.
        With `replace`, live tokens of the same name are revoked in the same transaction."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self._db.transaction() as session:
            if replace:
                now = utcnow()
                revoked = await session.scalars(
                    update(TokenRow)
                    .where(TokenRow.name == name, TokenRow.revoked_at.is_(None))
                    .values(revoked_at=now)
                    .returning(TokenRow.id)
                )
                for token_id in revoked:
                    audit.record(
                        session,
                        actor=actor,
                        action="revoke",
                        object_type="token",
                        object_id=str(token_id),
                        before={"name": name},
                        after=None,
                    )
            row = TokenRow(
                name=name,
                role=role.value,
                token_hash=hash_token(token),
                prefix=token[: len(TOKEN_PREFIX) + 6],
                created_by=actor,
                created_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            info = TokenInfo.model_validate(row)
            audit.record(
                session,
                actor=actor,
                action="create",
                object_type="token",
                object_id=str(row.id),
                after=info.model_dump(mode="json"),
            )
        return token, info

    async def authenticate(self, token: str) -> Principal:
        if not token.startswith(TOKEN_PREFIX):
            raise TokenRefused("not an oss bearer token", reason="not an oss token")
        async with self._db.sessions() as session:
            row = await session.scalar(
                select(TokenRow).where(TokenRow.token_hash == hash_token(token))
            )
        if row is None:
            raise TokenRefused("unknown or revoked token", reason="unknown token")
        if row.revoked_at is not None:
            raise TokenRefused(
                "unknown or revoked token",
                reason="revoked token",
                token_id=row.id,
                actor=Principal(row.id, row.name, Role(row.role)).actor,
            )
        await self._touch(row.id)
        return Principal(token_id=row.id, name=row.name, role=Role(row.role))

    async def _touch(self, token_id: int) -> None:
        now = utcnow()
        last = self._last_used.get(token_id)
        if last is not None and now - last < _LAST_USED_RESOLUTION:
            return
        self._last_used[token_id] = now
        # Bookkeeping, not work done under a lease: unfenced, so that an instance between two
        # memberships (a lost lease, registering again) still answers its readers.
        async with self._db.transaction(fenced=False) as session:
            await session.execute(
                update(TokenRow).where(TokenRow.id == token_id).values(last_used_at=now)
            )

    async def list(self, *, include_revoked: bool = False) -> list[TokenInfo]:
        query = select(TokenRow).order_by(TokenRow.id)
        if not include_revoked:
            query = query.where(TokenRow.revoked_at.is_(None))
        async with self._db.sessions() as session:
            return [TokenInfo.model_validate(r) for r in await session.scalars(query)]

    async def revoke(self, token_id: int, *, actor: str) -> TokenInfo:
        async with self._db.transaction() as session:
            row = await session.get(TokenRow, token_id)
            if row is None:
                raise NotFound(f"token {token_id} not found")
            if row.revoked_at is None:
                before = TokenInfo.model_validate(row).model_dump(mode="json")
                row.revoked_at = utcnow()
                await session.flush()
                audit.record(
                    session,
                    actor=actor,
                    action="revoke",
                    object_type="token",
                    object_id=str(token_id),
                    before=before,
                    after=TokenInfo.model_validate(row).model_dump(mode="json"),
                )
            return TokenInfo.model_validate(row)

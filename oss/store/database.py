"""The async database handle: engine, sessions and migrations at start-up."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from oss.errors import StorageError
from oss.store.fencing import Fence, check_fences, current_fences

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


T = TypeVar("T")
_SQLITE_BEGIN = "oss_sqlite_begin"
SQLITE_BUSY_TIMEOUT_MS = 5000
_MEMBER_POLL_S = 0.05


class Database:
    """One engine per daemon. `migrate()` brings the schema to head with Alembic; the schema is
    never made with `create_all`, so SQLite and PostgreSQL run the very same migrations."""

    def __init__(
        self, url: str, *, echo: bool = False, idle_in_transaction_s: float | None = None
    ) -> None:
        """`idle_in_transaction_s` (PostgreSQL, cluster mode: the lease period): the server ends
        a session left idle inside a transaction that long, so a paused process cannot hold a
        lease row (or any lock) past its lease."""
        self.url = make_url(url)
        connect_args: dict[str, Any] = {}
        if idle_in_transaction_s is not None and self.url.get_backend_name() == "postgresql":
            timeout_ms = str(max(1, round(idle_in_transaction_s * 1000)))
            connect_args["server_settings"] = {"idle_in_transaction_session_timeout": timeout_ms}
        self.engine: AsyncEngine = create_async_engine(
            self.url, echo=echo, pool_pre_ping=True, connect_args=connect_args
        )
        # Cluster mode: the membership lease every write of this process carries (set once the
        # instance registered, replaced when it registers again). See oss.store.fencing.
        self.member_fence: Fence | None = None
        self.lease_s = idle_in_transaction_s  # cluster mode: the lease period
        if self.url.get_backend_name() == "sqlite":
            self._prepare_sqlite()
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._sync_engine: Engine | None = None  # SQLite: for write() (made on first use)
        self._write_conn: Connection | None = None  # SQLite: write()'s own connection
        self._write_conn_lock = threading.Lock()  # held while it is in use, and to close it
        self._sync_lock = threading.Lock()

    @property
    def safe_url(self) -> str:
        """The URL with any password masked: fit for logs and error messages."""
        return self.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    async def write(
        self,
        fn: Callable[[Connection], T],
        *,
        fenced: bool = True,
        first: Callable[[Connection], None] | None = None,
    ) -> T:
        """`fn` in one write transaction on a synchronous connection (Core statements only).
        On PostgreSQL the transaction first checks the fences it carries (`fences()`); only
        the lease bookkeeping itself writes with `fenced=False`. `first` runs before that check
        (a cluster-wide lock the write waits its turn on: the fences are judged after the wait,
        so a lease lost while waiting refuses the write).

        SQLite: in a worker thread, on a connection of its own, after this process's write
        turn: the whole transaction is one hand-over to a thread, where aiosqlite makes
        several per statement (each wakes the event loop: about 1 ms of CPU per small
        transaction here, a trap storm's batches spent most of their time on it). Other
        backends: through the async engine's connection (statements go to the server one by
        one, as they would anyway)."""
        fences = self.fences() if fenced else ()  # read here, in the caller's context
        if first is not None or fences:
            work = fn

            def fn(conn: Connection) -> T:
                _begin_checked(conn, first, fences)
                return work(conn)

        if self.backend != "sqlite":
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        async with self._write_turn():
            return await asyncio.to_thread(self._write_sync, fn)

    def _write_sync(self, fn: Callable[[Connection], T]) -> T:
        # One connection kept for all of them (writes take turns, so it is never shared at
        # once): a checkout, its reset on return and a close cost more than a small storm
        # batch's statements.
        with self._write_conn_lock:
            return self._write_on_own_connection(fn)

    def _write_on_own_connection(self, fn: Callable[[Connection], T]) -> T:
        conn = self._write_conn
        if conn is not None and conn.invalidated:  # the driver's connection broke: open anew
            conn.close()
            conn = None
        if conn is None:
            options = {_SQLITE_BEGIN: "IMMEDIATE"}
            conn = self._sqlite_sync_engine().connect().execution_options(**options)
            self._write_conn = conn
        with conn.begin():
            return fn(conn)

    @property
    def write_engine(self) -> Engine:
        """The engine `write()` runs on (SQLite: its own synchronous one; statement hooks
        belong on it as well as on `engine.sync_engine`)."""
        if self.backend != "sqlite":
            return self.engine.sync_engine
        return self._sqlite_sync_engine()

    def _sqlite_sync_engine(self) -> Engine:
        with self._sync_lock:
            if self._sync_engine is None:
                engine = create_engine(
                    self.url.set(drivername="sqlite"),
                    connect_args={"check_same_thread": False},
                )
                _sqlite_listeners(engine)
                self._sync_engine = engine
            return self._sync_engine

    def _prepare_sqlite(self) -> None:
        if self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _sqlite_listeners(self.engine.sync_engine)

    async def migrate(self) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(_upgrade_to_head)
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(f"cannot migrate database {self.safe_url}: {exc}") from exc
        log.info("database ready", extra={"database": self.safe_url})

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    async def member_again(self, refused: Fence | None) -> bool:
        """After a write refused under the membership fence `refused`: wait (up to two lease
        periods) for the instance to be a member again under a new token; False if it is not.
        What the instance received meanwhile (traps) is still its to process."""
        deadline = time.monotonic() + 2 * (self.lease_s or 0.0)
        while time.monotonic() < deadline:
            current = self.member_fence
            if current is not None and current != refused:
                return True
            await asyncio.sleep(_MEMBER_POLL_S)
        return False

    def fences(self) -> tuple[Fence, ...]:
        """The fences a write made now carries: the membership's and the running code's
        (`oss.store.fencing.fenced`). None on SQLite (one instance)."""
        if self.backend == "sqlite":
            return ()
        member = (self.member_fence,) if self.member_fence is not None else ()
        return (*member, *current_fences())

    @asynccontextmanager
    async def transaction(
        self, *, fenced: bool = True, first: Callable[[Connection], None] | None = None
    ) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on any error.
        On PostgreSQL it first checks the fences it carries, after `first` (see `write`)."""
        fences = self.fences() if fenced else ()
        if self.backend != "sqlite":
            async with self.sessions() as session, session.begin():
                if first is not None or fences:
                    await session.run_sync(
                        lambda sync: _begin_checked(sync.connection(), first, fences)
                    )
                yield session
            return
        async with self._write_turn(), self.sessions() as session, session.begin():
            await session.connection(execution_options={_SQLITE_BEGIN: "IMMEDIATE"})
            if first is not None:
                await session.run_sync(lambda sync: first(sync.connection()))
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading, in one transaction that takes no write turn, so reads (the
        API's, the CLI's) do not queue behind a storm's write batches. Anything written in it
        is rolled back (closing the session ends its transaction)."""
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """SQLite has one writer at a time. Within this process the write transactions take
        turns on an asyncio lock: SQLite's own busy handler, which the others would otherwise
        wait in, sleeps with a back-off of up to 100 ms (a trap storm's alarm batches and the
        NOC publisher's bookkeeping lost seconds to it). Other processes (the CLI) still meet
        the busy handler. After the busy timeout the turn is not waited for any longer, so a
        transaction that awaits another one fails as SQLite would, rather than hanging."""
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer[0] is not loop:
            self._writer = (loop, asyncio.Lock())
        lock = self._writer[1]
        try:
            await asyncio.wait_for(lock.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000)
        except TimeoutError:
            log.warning("database: waited %d ms for a write turn", SQLITE_BUSY_TIMEOUT_MS)
            yield
            return
        try:
            yield
        finally:
            lock.release()

    async def close(self) -> None:
        await self.engine.dispose()
        # A write whose caller was cancelled may still be running in its thread.
        await asyncio.to_thread(self._write_conn_lock.acquire)
        try:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        finally:
            self._write_conn_lock.release()
        if self._sync_engine is not None:
            self._sync_engine.dispose()


def _sqlite_listeners(engine: Engine) -> None:
    """Pragmas on every new connection; BEGIN issued by us (DEFERRED, or IMMEDIATE on
    request)."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # Foreign keys are off by default in SQLite; cascades and RESTRICT rely on them.
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()
        # The driver would only BEGIN before the first write, leaving the reads before it
        # outside the transaction; we BEGIN ourselves (SQLAlchemy's documented recipe).
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A write transaction takes the write lock at BEGIN, waiting its turn (busy_timeout).
        # Deferred, a transaction that read first fails at once with "database is locked"
        # when another one wrote meanwhile (WAL cannot upgrade a stale snapshot).
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade_to_head(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _begin_checked(
    conn: Connection, first: Callable[[Connection], None] | None, fences: tuple[Fence, ...]
) -> None:
    """A write transaction's opening: `first` (a lock to wait for), then the fences."""
    if first is not None:
        first(conn)
    check_fences(conn, fences)

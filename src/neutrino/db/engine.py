"""Engines, transactions and the retry-on-conflict helper.

Every write runs in one transaction through :meth:`Database.write`, which retries the whole unit
of work when it loses a race (unique-constraint violation, deadlock, serialization failure). Races
are therefore settled by database constraints, so several server processes on one database stay
correct; on retry the service's own pre-checks turn a lost race into the right typed error.

Round trips are the cost that matters per request, so pooled connections are pinged only after
sitting idle (not on every checkout), and PostgreSQL reads run without BEGIN/COMMIT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import event, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from neutrino.errors import Conflict, RetryableConflict, ServiceUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# Error codes that mean "lost a race, try again": PostgreSQL SQLSTATEs, MySQL error numbers.
_PG_RETRY = {"40001", "40P01", "23505", "23503", "55P03"}
_MYSQL_RETRY = {1213, 1205, 1062, 1452, 1020}

# A pooled connection unused for longer than this is pinged before use, and replaced if dead.
# Busier connections are not: a ping costs a round trip (three on asyncpg) per checkout. One that
# died while busy (the database restarted) fails its statement; SQLAlchemy then invalidates the
# whole pool, and a write transaction is retried on a fresh connection.
IDLE_PING_SECONDS = 5.0


# SQLSTATEs of a database that is going away or not back yet (admin shutdown, crash shutdown,
# cannot connect now): PostgreSQL says so when it restarts.
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"}
# How often a write that lost its connection is tried again before the client gets a 503.
DISCONNECT_RETRIES = 3


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (not a problem of the request)."""
    if isinstance(exc, DisconnectionError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc.orig, OSError):
            return True
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return code in _PG_UNAVAILABLE
    return False


def _closed_by_server(dbapi_conn: Any) -> bool:
    """Whether the driver already knows the server closed this connection (asyncpg: no round trip)."""
    inner = getattr(dbapi_conn, "driver_connection", None) or getattr(dbapi_conn, "_connection", None)
    is_closed = getattr(inner, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


def database_unavailable(exc: BaseException) -> ServiceUnavailable:
    log.warning("database unavailable: %s", exc)
    return ServiceUnavailable("The database is unavailable; retry the request.")


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryableConflict | IntegrityError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code in _PG_RETRY:
            return True
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRY:
            return True
        if isinstance(exc, OperationalError) and "locked" in str(orig).lower():
            return True
    return False


def _race_kind(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    kind = type(orig).__name__
    return f"{kind}:ipallocations" if "ipallocations" in str(orig) else kind


def sqlite_path(url: str) -> Path | None:
    """The file of a file-backed SQLite URL (``sqlite+aiosqlite:///PATH``), else None."""
    if not url.startswith("sqlite"):
        return None
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def make_private(url: str) -> None:
    """Create (or narrow) a SQLite database file to mode 0600, whatever the umask.

    It holds the token signing keys and password hashes: only the server's user may read it.
    SQLite gives its journal and WAL files the database file's mode.
    """
    path = sqlite_path(url)
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except FileNotFoundError:
        return  # no such directory: SQLite will say so itself
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Database:
    """One engine plus the transaction discipline every service uses."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False, max_retries: int = 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.dialect_name = url.split(":", 1)[0].split("+", 1)[0]
        make_private(url)
        # JSON columns (fixed IPs, binding profiles) are decoded for every listed row: orjson
        # reads what the default encoder wrote, several times faster than the json module.
        kwargs: dict[str, Any] = {"echo": echo, "json_deserializer": orjson.loads}
        if self.dialect_name == "sqlite":
            # SQLite: one writer at a time. BEGIN IMMEDIATE takes the write lock up front, so two
            # writers queue on busy_timeout instead of deadlocking on lock upgrade.
            kwargs["connect_args"] = {"timeout": 30}
            if ":memory:" not in url:
                # Pooled: every new aiosqlite connection starts a thread, opens the file and runs
                # the PRAGMAs below, which cost more than the statements of a typical request.
                kwargs["pool_size"] = pool_size
                kwargs["max_overflow"] = pool_size
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_recycle"] = 3600
        if self.dialect_name == "mysql":
            kwargs["isolation_level"] = "READ COMMITTED"
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.max_retries = max_retries
        # Whole-transaction reruns by what lost the race (the driver's error class, and the table
        # when it is the allocation key): for tests and benchmarks that must see none of a kind.
        self.reruns: Counter[str] = Counter()
        if self.dialect_name == "sqlite":
            self._install_sqlite_hooks()
        else:
            self._install_idle_ping(clock)
        # PostgreSQL at READ COMMITTED gives each statement its own snapshot even inside a
        # transaction, so a read-only BEGIN/COMMIT pair would buy nothing but two round trips.
        self._autocommit_reads = self.dialect_name == "postgresql"
        self._sqlite_write_lock = asyncio.Lock() if self.dialect_name == "sqlite" else None

    def _install_sqlite_hooks(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.info.get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

    def _install_idle_ping(self, clock: Callable[[], float]) -> None:
        sync_engine = self.engine.sync_engine
        dialect = sync_engine.dialect

        @event.listens_for(sync_engine, "checkin")
        def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
            record.info["idle_since"] = clock()

        @event.listens_for(sync_engine, "checkout")
        def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            if _closed_by_server(dbapi_conn):  # the database restarted meanwhile: free to notice
                raise DisconnectionError("connection closed by the database")  # the pool reconnects
            idle_since = record.info.get("idle_since")
            if idle_since is None or clock() - idle_since <= IDLE_PING_SECONDS:
                return
            try:
                dialect.do_ping(dbapi_conn)
            except Exception as exc:  # noqa: BLE001 - any failure means "this connection is gone"
                raise DisconnectionError("idle connection failed its ping") from exc  # the pool reconnects

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit of work; one consistent snapshot on SQLite (WAL), per statement elsewhere."""
        try:
            async with self.engine.connect() as conn:
                if self._autocommit_reads:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                async with conn.begin():
                    yield conn
        except Exception as exc:
            if is_unavailable(exc):
                raise database_unavailable(exc) from exc
            raise

    @asynccontextmanager
    async def _write_tx(self) -> AsyncIterator[AsyncConnection]:
        if self._sqlite_write_lock is not None:
            # One writer per process keeps aiosqlite threads from spinning on the file lock;
            # other processes still serialise through SQLite's own lock.
            async with self._sqlite_write_lock:
                async with self.engine.connect() as conn:
                    conn.sync_connection.info["sqlite_begin"] = "IMMEDIATE"  # type: ignore[union-attr]
                    try:
                        async with conn.begin():
                            yield conn
                    finally:
                        conn.sync_connection.info.pop("sqlite_begin", None)  # type: ignore[union-attr]
        else:
            async with self.engine.connect() as conn:
                async with conn.begin():
                    yield conn

    async def write(self, work: Callable[[AsyncConnection], Awaitable[T]], *, rng: random.Random | None = None) -> T:
        """Run ``work(conn)`` in one write transaction, retrying it whole when it loses a race."""
        rng = rng or random.Random()
        disconnects = 0
        for attempt in range(self.max_retries):
            try:
                async with self._write_tx() as conn:
                    return await work(conn)
            except Exception as exc:  # noqa: BLE001 - classified below
                if is_unavailable(exc):
                    # A dropped connection is replaced by the pool; a database that stays away is
                    # the client's 503 after a few tries, not a 500 nor a long hang.
                    disconnects += 1
                    if disconnects > DISCONNECT_RETRIES:
                        raise database_unavailable(exc) from exc
                    await asyncio.sleep(0.1 * disconnects)
                    continue
                if not is_retryable(exc):
                    raise
                log.debug("transaction lost a race (attempt %d): %s", attempt + 1, exc)
                self.reruns[_race_kind(exc)] += 1
                await asyncio.sleep(min(0.002 * (2 ** attempt), 0.2) * rng.random())
        raise Conflict("The request could not be completed because of concurrent changes; retry it.")

    async def dispose(self) -> None:
        await self.engine.dispose()

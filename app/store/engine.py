"""Engine and session factories; the only place (with ``app.geo``) that knows dialects."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlalchemy.util import greenlet_spawn
from sqlmodel.ext.asyncio.session import AsyncSession

from app.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (see sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def sqlite_begin(conn: Any) -> None:
    """SQLAlchemy's "begin" on SQLite: an explicit BEGIN (DEFERRED, or IMMEDIATE for
    ``write_transaction``)."""
    # Write transactions take the write lock up front (BEGIN IMMEDIATE): two deferred
    # transactions that both read and then write would deadlock, and SQLite answers one of
    # them with "database is locked" at once instead of waiting busy_timeout.
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # each statement commits by itself (reads, single atomic writes)
    conn.exec_driver_sql(f"BEGIN {options.get('sqlite_begin', 'DEFERRED')}")


_SQLITE_WRITERS: dict[int, asyncio.Lock] = {}

# True while ``write_transaction`` checks out a connection: the embedded store's engine then
# lends its writer lane (app.store.sqlite), other engines ignore it.
WANTS_WRITER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "open311_wants_writer", default=False
)


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-write transaction: committed on success, rolled back on error.

    On SQLite, writers of this process also queue on a lock: one database file has one
    writer at a time, and waiting here is fairer and faster than SQLite's busy back-off.
    """
    if engine.dialect.name != "sqlite":
        async with engine.connect() as conn, conn.begin():
            yield conn
        return
    lock = _SQLITE_WRITERS.setdefault(id(engine.sync_engine), asyncio.Lock())
    async with lock:
        conn = engine.connect()
        token = WANTS_WRITER.set(True)
        try:
            await conn.start()
        finally:
            WANTS_WRITER.reset(token)
        try:
            await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                yield conn
        finally:
            await conn.close()


@asynccontextmanager
async def autocommit_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """An autocommit connection: no BEGIN/COMMIT round trips.

    For reads, and for writes that are one atomic statement.
    """
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


read_connection = autocommit_connection


def make_engine(settings: Settings, *, null_pool: bool = False) -> AsyncEngine:
    """The async engine for the configured database (asyncpg or aiosqlite)."""
    url = settings.database_url
    kwargs: dict[str, Any] = {"echo": settings.db.echo}
    if url.startswith("sqlite"):
        settings.db.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", sqlite_begin)
        return engine
    kwargs["connect_args"] = {
        "server_settings": {
            "statement_timeout": str(settings.db.statement_timeout_ms),
            "application_name": "open311",
        },
        "timeout": settings.db.connect_timeout_s,
    }
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(
            pool_size=settings.db.pool_size,
            max_overflow=settings.db.max_overflow,
            pool_timeout=settings.db.pool_timeout,
            # No pre-ping (it costs three round trips a checkout): a connection that died
            # with the server fails its statement, the call gets a 503, and SQLAlchemy
            # invalidates the whole pool, so service resumes as soon as the server is back.
            pool_recycle=settings.db.pool_recycle_s,
            # The connection given back last is lent next: the hot path keeps using the few
            # connections whose statements are prepared and whose server processes are warm,
            # and connections a burst opened stay idle until the recycle age retires them.
            pool_use_lifo=True,
        )
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """One trivial statement: raises when the database cannot be used."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def is_postgres(engine: AsyncEngine | Engine) -> bool:
    """True on PostgreSQL/PostGIS, False on the embedded SQLite default."""
    return engine.dialect.name == "postgresql"


async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One session, one transaction: commit on success, roll back on error."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def is_unavailable(exc: BaseException) -> bool:
    """True when a failure means the database is unreachable, restarting or overloaded.

    Such failures become a 503 with Retry-After instead of a 500.
    """
    import asyncpg
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.TimeoutError | ConnectionError | TimeoutError):
            return True
        if isinstance(
            current,
            asyncpg.CannotConnectNowError
            | asyncpg.ConnectionDoesNotExistError
            | asyncpg.TooManyConnectionsError
            | asyncpg.QueryCanceledError
            | asyncpg.AdminShutdownError
            | asyncpg.InterfaceError,
        ):
            return True
        if isinstance(current, OSError) and not isinstance(current, FileNotFoundError):
            return True
        if (
            isinstance(current, sa_exc.OperationalError | sqlite3.OperationalError)
            and "locked" in str(current).lower()
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


# ---------------------------------------------------------------------------------------
# Direct statements (hot paths)


class CompiledStatement:
    """A statement compiled once for a DBAPI of positional parameters (asyncpg, sqlite3): its
    SQL, how to order and convert its parameters and, if asked, how to convert its rows."""

    def __init__(self, statement: Any, dialect: Dialect, *, results: bool = False) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        binds = compiled.binds
        # Values the statement carries itself (literals, LIMIT constants); the rest are given.
        self.defaults = {
            name: bind.effective_value
            for name, bind in binds.items()
            if not bind.required and not bind.expanding
        }
        self.processors = tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names
        )
        # (column index, converter) of the result columns whose values the DBAPI does not
        # give as Python values (SQLite: datetimes and JSON are text).
        self.results: tuple[tuple[int, Any], ...] = ()
        if results:
            columns = getattr(statement, "exported_columns", ())
            converters = (
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            )
            self.results = tuple(
                (index, converter)
                for index, converter in enumerate(converters)
                if converter is not None
            )

    def args(self, params: dict[str, Any]) -> list[Any]:
        """The positional arguments for ``params`` (literals of the statement included)."""
        out = []
        for name, processor in zip(self.names, self.processors, strict=True):
            value = params[name] if name in params else self.defaults[name]
            out.append(processor(value) if processor is not None else value)
        return out

    def rows(self, raw: list[Any]) -> list[Any]:
        """Rows as SQLAlchemy would give them (the result converters applied)."""
        if not self.results:
            return raw
        out = []
        for row in raw:
            values = list(row)
            for index, converter in self.results:
                values[index] = converter(values[index])
            out.append(values)
        return out


class Direct:
    """Runs the hot one-statement calls with the least overhead: the reads of GET requests and
    GET requests/{id}, and the single autocommit statement of a realtime POST (PostgreSQL).

    A statement is compiled once (statements are built once per shape, with bound
    parameters) and run by asyncpg itself on a connection borrowed from the engine's pool
    (the process's one pool), in autocommit: no SQLAlchemy execution layer, one round trip.
    These statements leave no session state but the session time zone, which the reads set
    only when it differs. A connection that fails with the server (``is_unavailable``: a 503)
    is invalidated, so the pool opens a fresh one and service resumes by itself; a cancelled
    call's statement is cancelled on the server by asyncpg, and the connection's next statement
    waits for that. A wait for a free connection is bounded by ``pool_timeout``. With
    ``speed.direct_pool`` off (to measure what this buys), SQLAlchemy executes the statement.
    """

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.postgres = is_postgres(engine)
        self.pooled = self.postgres and settings.speed.direct_pool  # asyncpg runs them
        self._compiled: dict[int, tuple[Any, CompiledStatement]] = {}
        self.statements = 0  # statements sent by asyncpg itself (each one round trip)

    def compiled(self, statement: Any) -> CompiledStatement:
        """The compiled form of a (long-lived) statement."""
        entry = self._compiled.get(id(statement))
        if entry is None or entry[0] is not statement:
            entry = (statement, CompiledStatement(statement, self.engine.dialect))
            self._compiled[id(statement)] = entry
        return entry[1]

    async def fetch(
        self,
        statement: Any,
        params: dict[str, Any],
        *,
        timezone: str | None = None,
        record_class: type[Any] | None = None,
        plan_per_call: bool = False,
    ) -> Sequence[Any]:
        """Every row of ``statement`` with ``params`` (rows index like tuples).

        ``timezone``: the session time zone the statement renders datetimes in (PostgreSQL);
        set on the connection only when it differs from the one it has (a round trip per
        switch, none for a server with one jurisdiction's zone). ``record_class``: asyncpg's
        row class. ``plan_per_call``: the statement's best plan depends on its values (a
        box's size: a whole-city box wants the list's index walked newest first, a small one
        the spatial index), so it is prepared for this call alone and PostgreSQL plans it with
        them; asyncpg's cached statements switch to one generic plan after five runs (a
        whole-city box then took 0.2-0.4 s at 1,000,000 rows instead of a few ms). One more
        round trip.
        """
        if not self.pooled:
            async with read_connection(self.engine) as conn:
                if self.postgres and timezone is not None:
                    raw = await conn.get_raw_connection()
                    if _session_zone(raw.driver_connection) != timezone:
                        await conn.exec_driver_sql(SET_TIMEZONE, (timezone,))
                return (await conn.execute(statement, params)).all()
        compiled = self.compiled(statement)
        from sqlalchemy import exc as sa_exc

        try:
            borrowed = await self.engine.raw_connection()
        except sa_exc.TimeoutError as exc:
            raise TimeoutError(str(exc)) from exc
        try:
            connection: Any = borrowed.driver_connection
            if timezone is not None and _session_zone(connection) != timezone:
                self.statements += 1
                await connection.execute(SET_TIMEZONE, timezone)
            self.statements += 1
            if plan_per_call:
                self.statements += 1
                prepared = await connection.prepare(compiled.sql, record_class=record_class)
                planned: Sequence[Any] = await prepared.fetch(*compiled.args(params))
                return planned
            rows: Sequence[Any] = await connection.fetch(
                compiled.sql, *compiled.args(params), record_class=record_class
            )
            return rows
        except Exception as exc:
            if is_unavailable(exc):
                await greenlet_spawn(borrowed.invalidate)
            raise
        finally:
            # A give-back that closes the connection (one over the pool's size, after a
            # burst) awaits asyncpg's close, so it runs in a greenlet, as the borrowing did:
            # called bare, that close cannot run and the connection is left open (leaked).
            # Any other give-back only queues it (these statements run in autocommit: no
            # rollback to send), so it stays a plain call.
            if _closes_on_return(self.engine):
                await greenlet_spawn(borrowed.close)
            else:
                borrowed.close()


def _closes_on_return(engine: AsyncEngine) -> bool:
    """Whether a connection given back now may be closed rather than kept (a pool over its
    size, or one that keeps none)."""
    overflow = getattr(engine.pool, "overflow", None)
    return overflow is None or overflow() > 0


def _session_zone(connection: Any) -> str | None:
    # asyncpg keeps the server's ParameterStatus reports: the session's time zone now.
    zone: str | None = connection.get_settings().TimeZone
    return zone


SET_TIMEZONE = "SELECT set_config('TimeZone', $1, false)"


async def fetch_all(
    source: AsyncConnection | Direct,
    statement: Any,
    params: dict[str, Any],
    *,
    timezone: str | None = None,
) -> Sequence[Any]:
    """Every row of one statement, run by ``Direct`` (the app) or on a connection (tools,
    tests, statements inside a transaction). ``timezone``: see ``Direct.fetch``; on a
    PostgreSQL connection it is set for the session (no SQL of ours depends on it otherwise).
    """
    if isinstance(source, Direct):
        return await source.fetch(statement, params, timezone=timezone)
    if timezone is not None and source.dialect.name == "postgresql":
        await source.exec_driver_sql(SET_TIMEZONE, (timezone,))
    return (await source.execute(statement, params)).all()

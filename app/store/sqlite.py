"""The embedded store: SQLite through the standard library's ``sqlite3``.

Every connection is a *lane*: one ``sqlite3`` connection and the one thread that uses it
(aiosqlite's connection thread, which queues work for it). The store keeps one writer lane and a
few reader lanes, all in WAL mode, and runs each hot call as a single unit of work on a lane:
the whole statement and its ``fetchall`` for a read, the whole POST transaction (``BEGIN
IMMEDIATE``, Idempotency-Key claim, ``INSERT``, outcome, ``COMMIT``) for a write. That is one
thread hop per call; the event loop never runs SQLite itself, so it is never blocked for
longer than it takes to hand work over. Statements are compiled once by SQLAlchemy (sqlite
dialect, positional ``?`` parameters) and prepared once per connection by ``sqlite3``'s own
statement cache.

SQLAlchemy's engine (``SqliteStore.engine``, for everything that is not a hot path) borrows the
same lanes: its pool is a ``NullPool`` whose connections are the store's, lent on checkout and
given back when SQLAlchemy closes them, so the process has one set of connections (one pool).
A connection lent by ``write_transaction`` is the writer lane.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import aiosqlite
from sqlalchemy import Integer, String, bindparam, event, insert, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.georeport.datetimes import format_w3c
from app.models.requests import (
    BoundingBox,
    IdempotencyClaim,
    NewRequest,
    RequestPage,
    RequestRead,
    RequestRow,
)
from app.settings import Settings
from app.store import where_sql
from app.store.base import Created, TokenBucket, WardIndexes
from app.store.engine import WANTS_WRITER, CompiledStatement, sqlite_begin, write_transaction
from app.store.keys import ACTIVE, CANDIDATES, KeyCandidate, candidates
from app.store.requests import ALWAYS_SELECTED, last_position, read_plan, read_with_sqlalchemy
from app.store.tables import IdempotencyRecord, ServiceRequest

RECORD = IdempotencyRecord.__table__
REQUEST = ServiceRequest.__table__

T = TypeVar("T")


MMAP_SIZE = 256 * 1024 * 1024
# Hot reads running at once, each on its reader connection's thread. A read holds the GIL while
# it builds its rows (and takes it again after every row SQLite steps to), so reads running
# together mostly stall one another: GET requests/{id} (one row) runs up to 4 at once, GET
# requests (up to 1000 rows) one at a time, which serves 8 clients 27-40 % more lists a second
# than 4 at once (bench/, interleaved). SQLAlchemy may borrow up to pool_size + max_overflow
# reader connections besides.
HOT_READS = 4


def connect(path: str) -> sqlite3.Connection:
    """A connection as every lane has it (run on the lane's own thread)."""
    # isolation_level=None: no implicit BEGIN; transactions are explicit (BEGIN IMMEDIATE
    # for writes here, SQLAlchemy's "begin" event for its own, see sqlite_begin).
    connection = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    for pragma in (
        "PRAGMA foreign_keys=ON",
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=5000",
        # Reads of the database file through a memory map (no read() copy per page): a
        # 1000-row list reads about a third faster (bench). WAL pages are read as usual.
        f"PRAGMA mmap_size={MMAP_SIZE}",
    ):
        connection.execute(pragma)
    return connection


class Lane(aiosqlite.Connection):
    """One ``sqlite3`` connection and the thread that runs everything on it (aiosqlite's)."""

    def __init__(self, path: str) -> None:
        super().__init__(partial(connect, path), iter_chunk_size=64)
        # SQL functions SQLAlchemy registered on this connection (once per lane, not per loan).
        self.functions: set[tuple[str, int]] = set()

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on this lane's thread: one hop, however much it does."""
        # aiosqlite queues every call of its own for the connection's thread the same way.
        result: T = await self._execute(work, self._conn)  # type: ignore[no-untyped-call]
        return result


class Lanes:
    """A bounded set of lanes: lent one caller at a time, opened on first need."""

    def __init__(self, path: str, size: int, timeout: float) -> None:
        self._path = path
        self._size = max(1, size)
        self._timeout = timeout
        self._idle: asyncio.Queue[Lane] = asyncio.Queue()
        self._all: list[Lane] = []
        self._opening = 0

    async def acquire(self) -> Lane:
        """An idle lane, a new one while fewer than ``size`` exist, else the next one given
        back (TimeoutError, a 503, after ``pool_timeout``)."""
        try:
            return self._idle.get_nowait()
        except asyncio.QueueEmpty:
            pass
        if len(self._all) + self._opening < self._size:
            self._opening += 1
            try:
                lane = Lane(self._path)
                await lane
            finally:
                self._opening -= 1
            self._all.append(lane)
            return lane
        async with asyncio.timeout(self._timeout):
            return await self._idle.get()

    def release(self, lane: Lane) -> None:
        """Give a lane back (its work, if still running, finishes before the next one's)."""
        self._idle.put_nowait(lane)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` on a lane of this set (one hop)."""
        lane = await self.acquire()
        try:
            return await lane.call(work)
        finally:
            self.release(lane)

    async def close(self) -> None:
        """Close every lane (at shutdown)."""
        lanes, self._all = self._all, []
        self._idle = asyncio.Queue()
        for lane in lanes:
            await lane.close()


def _reset(connection: sqlite3.Connection) -> None:
    # A lane goes back as it came: no open transaction, no implicit BEGIN (SQLAlchemy sets
    # isolation_level "" when it resets an AUTOCOMMIT connection).
    if connection.in_transaction:
        connection.rollback()
    if connection.isolation_level is not None:
        connection.isolation_level = None


def _run(
    sql: str, parameters: Any, many: bool, connection: sqlite3.Connection
) -> tuple[Any, int, int | None, list[Any], bool]:
    # One statement and all its rows, on the lane's thread; and whether a transaction is open.
    cursor = (
        connection.executemany(sql, parameters) if many else connection.execute(sql, parameters)
    )
    rows = cursor.fetchall() if cursor.description else []
    return cursor.description, cursor.rowcount, cursor.lastrowid, rows, connection.in_transaction


# What SQLAlchemy's SQLite dialect sends to set an isolation level: it matters only with a
# shared cache, which lanes never use, so it is not sent.
_ISOLATION_PRAGMA = re.compile(r"PRAGMA read_uncommitted = [01]")


class _Cursor:
    """The cursor SQLAlchemy gets on a lent lane: ``execute`` runs the statement and fetches
    all its rows in one hop (aiosqlite's own cursor takes one hop each to open, execute,
    fetch and close); the rows are then read here."""

    arraysize = 1

    def __init__(self, loan: _Loan) -> None:
        self._loan = loan
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None

    async def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        """Run one statement (its rows are kept for the fetch calls)."""
        if _ISOLATION_PRAGMA.fullmatch(sql):
            return self
        done = await self._loan.run(partial(_run, sql, parameters, False))
        self.description, self.rowcount, self.lastrowid, self._rows = done
        return self

    async def executemany(self, sql: str, parameters: Any) -> _Cursor:
        """Run one statement for every parameter set."""
        done = await self._loan.run(partial(_run, sql, list(parameters), True))
        self.description, self.rowcount, self.lastrowid, self._rows = done
        return self

    async def fetchall(self) -> list[Any]:
        """The rows not read yet."""
        rows, self._rows = self._rows, []
        return rows

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` of the rows not read yet."""
        size = self.arraysize if size is None else size
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchone(self) -> Any:
        """The next row, or None."""
        return self._rows.pop(0) if self._rows else None

    def __aiter__(self) -> _Cursor:
        return self

    async def __anext__(self) -> Any:
        if not self._rows:
            raise StopAsyncIteration
        return self._rows.pop(0)

    async def close(self) -> None:
        """Nothing to close: the sqlite3 cursor ended with its hop."""
        self._rows = []


class _IsolationKept:
    """Stands for aiosqlite's queue where SQLAlchemy sets a lent lane's isolation level."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Any]) -> None:
        """Done at once: the lane keeps its autocommit mode."""
        item[0].set_result(None)


_ISOLATION_KEPT = _IsolationKept()


class _Loan:
    """A lane lent to SQLAlchemy's engine (driven by its aiosqlite adapter as an
    ``aiosqlite.Connection``): statements take one hop each, and closing it gives the lane
    back to its set (rolled back first, if anything ran since the last rollback)."""

    def __init__(self, lane: Lane, lanes: Lanes) -> None:
        self._lane: Lane | None = lane
        self._lanes = lanes
        self._open = False  # a transaction is open on the lane (as of its last statement)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lane, name)

    async def run(
        self, work: Callable[[sqlite3.Connection], tuple[Any, int, int | None, list[Any], bool]]
    ) -> tuple[Any, int, int | None, list[Any]]:
        """One statement on the lent lane (one hop)."""
        lane = self._lane
        assert lane is not None  # noqa: S101 - SQLAlchemy uses no closed connection
        self._open = True  # until the statement says otherwise (it may fail)
        description, rowcount, lastrowid, rows, self._open = await lane.call(work)
        return description, rowcount, lastrowid, rows

    def cursor(self) -> _Cursor:
        """A cursor whose statements take one hop each."""
        return _Cursor(self)

    @property
    def _tx(self) -> _IsolationKept:
        # SQLAlchemy's aiosqlite adapter sets isolation levels through aiosqlite's queue: on a
        # lane they change nothing (it stays in autocommit mode and the engine's "begin"
        # event emits BEGIN itself, see sqlite_begin), so they take no hop.
        return _ISOLATION_KEPT

    async def create_function(self, name: str, num_params: int, *args: Any, **kw: Any) -> None:
        """Register an SQL function once per lane (SQLAlchemy does it on every checkout)."""
        lane = self._lane
        assert lane is not None  # noqa: S101 - invariant, not an input check
        if (name, num_params) not in lane.functions:
            await lane.create_function(name, num_params, *args, **kw)
            lane.functions.add((name, num_params))

    async def commit(self) -> None:
        """Commit the open transaction (none open: nothing to do, no hop)."""
        lane = self._lane
        assert lane is not None  # noqa: S101 - SQLAlchemy uses no closed connection
        if self._open:
            await lane.commit()
            self._open = False

    async def rollback(self) -> None:
        """Roll back the open transaction (none open: nothing to do, no hop)."""
        lane = self._lane
        assert lane is not None  # noqa: S101 - SQLAlchemy uses no closed connection
        if self._open:
            await lane.call(_reset)
            self._open = False

    async def close(self) -> None:
        """Give the lane back, rolled back if SQLAlchemy left a transaction open."""
        lane, self._lane = self._lane, None
        if lane is None:
            return
        try:
            if self._open:
                await lane.call(_reset)
        finally:
            self._lanes.release(lane)

    def stop(self) -> None:
        """SQLAlchemy's forced termination: the lane is reset and given back all the same."""
        if self._lane is not None:
            self._open = True
            task = asyncio.get_running_loop().create_task(self.close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Task[None]] = set()  # loans being given back after a termination


def _fetch(sql: str, args: Sequence[Any], connection: sqlite3.Connection) -> list[Any]:
    return connection.execute(sql, args).fetchall()


class SqliteStore:
    """The embedded SQLite store: its lanes, the SQLAlchemy engine over them, the hot calls."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        db = settings.db
        url = make_url(settings.database_url)
        path = url.database or str(db.sqlite_path)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.readers = Lanes(path, db.pool_size + db.max_overflow, db.pool_timeout)
        self._hot_reads = asyncio.Semaphore(min(HOT_READS, db.pool_size))
        self._list_reads = asyncio.Semaphore(1)
        self._search_reads = asyncio.Semaphore(1)
        self.writer = Lanes(path, 1, db.pool_timeout)
        self.engine: AsyncEngine = create_async_engine(
            settings.database_url,
            echo=db.echo,
            async_creator=self._lend,
            poolclass=NullPool,
        )
        event.listen(self.engine.sync_engine, "begin", sqlite_begin)
        self.dialect: Dialect = self.engine.dialect
        self._compiled: dict[int, tuple[Any, CompiledStatement]] = {}
        self._statements = 0  # statements sent by the store's own calls (not SQLAlchemy's)
        self.takes_rate_limit_token = False  # buckets are in process memory (one process)
        self.checks_key_on_write = True  # the realtime write's transaction checks the key
        # Stored text -> aware UTC datetime, as SQLAlchemy reads a UTCDateTime column.
        convert = REQUEST.c.requested_at.type.dialect_impl(self.dialect).result_processor(
            self.dialect, None
        )
        assert convert is not None  # noqa: S101 - SQLite stores datetimes as text
        self._datetime: Callable[[Any], Any] = convert
        self._zones: dict[str, W3CText] = {}

    async def _lend(self) -> Any:
        lanes = self.writer if WANTS_WRITER.get() else self.readers
        lane = await lanes.acquire()
        return _Loan(lane, lanes)

    def compiled(self, statement: Any) -> CompiledStatement:
        """The compiled form of a (long-lived) statement."""
        entry = self._compiled.get(id(statement))
        if entry is None or entry[0] is not statement:
            entry = (statement, CompiledStatement(statement, self.dialect, results=True))
            self._compiled[id(statement)] = entry
        return entry[1]

    @property
    def statements(self) -> int:
        """Statements sent by the hot calls (each write counts once: one hop)."""
        return self._statements

    def transaction(
        self, *, one_statement: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction on the writer lane (also for one statement: writes queue there)."""
        return write_transaction(self.engine)

    async def ping(self) -> None:
        """One trivial statement on a reader lane."""
        await self.readers.run(partial(_fetch, "SELECT 1", []))

    async def read_requests(self, read: RequestRead) -> RequestPage:
        """GET requests or GET requests/{id}: one hop on a reader lane (statement, rows and
        their datetimes rendered there)."""
        if not self.settings.speed.direct_pool:
            return await read_with_sqlalchemy(self.engine, read, postgres=False)
        statement, params = read_plan(read, postgres=False)
        compiled = self.compiled(statement)
        text = None if read.zone is None else self._w3c(read.zone)
        order = _AT[1] if read.by_update else _AT[0]
        work = partial(_read_rows, compiled.sql, compiled.args(params), text, self._datetime, order)
        boxes = [box for box in (read.bbox, read.near_box) if box is not None]
        if (boxes or read.text is not None) and read.request_id is None:
            # A box or q=: through the R*Tree and the full-text index, or (dense) along the
            # list's index; decided on the reader lane (_where_rows).
            variants = {}
            for spatial in (True, False) if boxes else (True,):
                for texts in (True, False) if read.text is not None else (True,):
                    plan = read_plan(read, postgres=False, spatial_index=spatial, text_index=texts)
                    variant = self.compiled(plan[0])
                    variants[spatial, texts] = partial(
                        _read_rows, variant.sql, variant.args(params), text, self._datetime, order
                    )
            # With a service filter SQLite walks the list's index already (weighing the words
            # would only cost); without, a common word would read and sort all its matches.
            words = None
            if read.text is not None and read.service_pks is None:
                words = params["q_words"]
            work = partial(_where_rows, boxes, words, read.limit + read.offset, variants)
        self._statements += 1
        if read.request_id is not None:
            slots = self._hot_reads
        elif read.bbox is not None or read.near is not None or read.text is not None:
            # A box, circle or text search may cost with the rows it matches (a common word:
            # ~0.1 s at 200,000 rows; a dense box walks the list's index, see _where_rows, but
            # a box dense overall may still hold few rows of the filters): such reads queue
            # among themselves, so a caller sending them never holds up the plain lists and
            # single requests.
            slots = self._search_reads
        else:
            slots = self._list_reads
        async with slots:
            rows, last = await self.readers.run(work)
        if last is not None:
            last = (self._datetime(last[0]), last[1])
        return RequestPage(rows, last_position(read, len(rows), last))

    async def key_candidates(self, prefix: str) -> list[KeyCandidate]:
        """Every active key with this prefix: one hop on a reader lane."""
        compiled = self.compiled(CANDIDATES)
        self._statements += 1
        async with self._hot_reads:
            rows = await self.readers.run(
                partial(_fetch, compiled.sql, compiled.args({"prefix": prefix}))
            )
        return candidates(rows)

    def _w3c(self, zone: str) -> W3CText:
        text = self._zones.get(zone)
        if text is None:
            text = self._zones[zone] = W3CText(ZoneInfo(zone), self._datetime)
        return text

    async def create_request(
        self,
        new: NewRequest,
        *,
        claim: IdempotencyClaim | None,
        bucket: TokenBucket | None,
        wards: WardIndexes,
    ) -> Created:
        """A realtime request in one hop on the writer lane: ``BEGIN IMMEDIATE``, the
        Idempotency-Key claim, the ``INSERT`` and the claim's outcome, ``COMMIT``.

        The ward comes from the in-process index, looked up before the hop; a location in no
        ward is refused after the claim (a key used before is replayed first, as by the
        transactional path). ``bucket`` is not used: the caller took the token (in memory).
        """
        row = new.columns()
        outside = False
        sub = new.submission
        if new.ward is not None and sub.lat is not None and sub.lon is not None:
            index = await wards.get(new.ward.set_id)
            hit = index.lookup(sub.lat, sub.lon, new.ward.tolerance_m)
            outside = hit is None and new.ward.required
            row["ward_id"] = hit.area_id if hit else None
        statement = self.compiled(_insert(tuple(row)))
        args = statement.args({f"v_{name}": value for name, value in row.items()})
        claimed = None
        if claim is not None:
            params = {
                "c_key_id": claim.api_key_id,
                "c_key": claim.key,
                "c_hash": claim.request_hash,
                "c_at": new.at,
                "c_status": claim.status_code,
                "c_notice": new.service_notice,
                "c_account": sub.account_id,
            }
            claimed = _Claim(self.compiled(_claim()), self.compiled(_outcome()), params)
        key_id = row.get("api_key_id")
        active = None
        if key_id is not None:
            check = self.compiled(ACTIVE)
            active = (check.sql, check.args({"key_id": key_id}))
        self._statements += 1
        return await self.writer.run(
            partial(_store_request, statement.sql, args, claimed, outside, active)
        )

    async def close(self) -> None:
        """Close every lane (at shutdown)."""
        await self.engine.dispose()
        await self.readers.close()
        await self.writer.close()


# ---------------------------------------------------------------------------------------
# GET requests: rows rendered on the lane


class W3CText:
    """W3C text (``format_w3c``) of the UTC datetimes SQLite stores, in one zone.

    A value is stored as ``YYYY-MM-DD hh:mm:ss[.ffffff]`` in UTC. Its text in the zone is that
    of its minute (a cache of minutes: zone offsets change on whole minutes) followed by its
    seconds; anything else (offsets with seconds, other text) is converted in full.
    """

    _LIMIT = 200_000  # cached minutes (about 40 MB at most); cleared when full

    def __init__(self, zone: ZoneInfo, parse: Callable[[str], datetime]) -> None:
        self._zone = zone
        self._parse = parse
        self._minutes: dict[str, tuple[str, str]] = {}
        minutes, convert = self._minutes, self._convert

        def render(raw: str) -> str:
            if len(raw) in (19, 26):
                hit = minutes.get(raw[:16])
                if hit is not None:
                    return hit[0] + raw[16:19] + hit[1]
            return convert(raw)

        # The text of one stored value (not None): a plain function, called for every
        # datetime of a list.
        self.render = render

    def __call__(self, raw: str | None) -> str | None:
        """The text of one stored value (None stays None)."""
        return None if raw is None else self.render(raw)

    def _convert(self, raw: str) -> str:
        text = format_w3c(self._parse(raw), self._zone)
        # Cached when the value is stored as usual and the offset is whole minutes (+hh:mm).
        canonical = len(raw) in (19, 26) and raw[10] == " " and raw[13] == ":" == raw[16]
        if canonical and len(text) == 25:
            if len(self._minutes) >= self._LIMIT:
                self._minutes.clear()
            self._minutes[raw[:16]] = (text[:16], text[19:])
        return text


_PUBLIC = len(ALWAYS_SELECTED)
_NOT_SELECTED = (None,) * (len(RequestRow._fields) - _PUBLIC)  # extensions, reporter fields


_AT = tuple(
    RequestRow._fields.index(name) for name in ("requested_at", "updated_at", "expected_at")
)


def _where_rows(
    boxes: list[BoundingBox],
    words: str | None,
    rows_wanted: int,
    variants: Mapping[tuple[bool, bool], Callable[[sqlite3.Connection], T]],
    connection: sqlite3.Connection,
) -> T:
    # Runs on a reader lane's thread. A box: through the R*Tree when one of the read's boxes
    # is selective, else (every box dense: a whole-city box, ~0.1-0.5 s at 200,000 rows
    # through the R*Tree) along the list's index with the exact test, which stops at the
    # page. q=: the full-text index's rows read when few, else (a common word: 50-90 ms) only
    # looked up along the list's index. ``variants``: the read by (spatial index, text index).
    # Every variant gives the same rows (the same tests; the indexes only narrow).
    table_rows = connection.execute(where_sql.TABLE_SIZE_SQL).fetchone()[0] or 0
    cap = where_sql.dense_cap(rows_wanted, table_rows)
    spatial = not boxes
    for box in boxes:
        (count,) = connection.execute(
            where_sql.RTREE_COUNT_SQL,
            (box.min_lon, box.max_lon, box.min_lat, box.max_lat, cap),
        ).fetchone()
        if count < cap:
            spatial = True
            break
    texts = True
    if words is not None:
        text_cap = where_sql.dense_text_cap(rows_wanted, table_rows)
        (count,) = connection.execute(where_sql.FTS_COUNT_SQL, (words, text_cap)).fetchone()
        texts = count < text_cap
    return variants[spatial, texts](connection)


def _read_rows(
    sql: str,
    args: list[Any],
    text: W3CText | None,
    parse: Callable[[str], datetime],
    order: int,
    connection: sqlite3.Connection,
) -> tuple[list[RequestRow], Any]:
    # Runs on a reader lane's thread: the statement, its rows and their datetimes rendered
    # (``text``: W3C text, else ``parse``: datetimes). Comes back with the last row's (sort
    # key as stored, id): ``order`` is the index of the sort column.
    raw = connection.execute(sql, args).fetchall()
    if not raw:
        return [], None
    last = (raw[-1][order], raw[-1][0])
    new, row_type = tuple.__new__, RequestRow
    if text is not None and len(raw[0]) == _PUBLIC:
        # The common read (no extensions, no reporter fields), unrolled: a list of 1000 rows
        # spends most of its time here, holding the GIL.
        render = text.render
        rows = [
            new(
                row_type,
                (  # noqa: RUF005 - concatenated: measured faster than unpacking here
                    pk,
                    status,
                    notes,
                    service_name,
                    service_code,
                    description,
                    agency,
                    notice,
                    render(requested),
                    render(updated),
                    None if expected is None else render(expected),
                    address,
                    address_id,
                    zipcode,
                    lat,
                    lon,
                    media_url,
                )
                + _NOT_SELECTED,
            )
            for (
                pk,
                status,
                notes,
                service_name,
                service_code,
                description,
                agency,
                notice,
                requested,
                updated,
                expected,
                address,
                address_id,
                zipcode,
                lat,
                lon,
                media_url,
            ) in raw
        ]
        return rows, last
    convert: Callable[[str], Any] = text if text is not None else parse
    padding = [None] * (len(RequestRow._fields) - len(raw[0]))
    rows = []
    for row in raw:
        values = list(row)
        for index in _AT:
            if values[index] is not None:
                values[index] = convert(values[index])
        values += padding
        rows.append(new(RequestRow, values))
    return rows, last


# ---------------------------------------------------------------------------------------
# POST requests: the realtime write in one hop


@cache
def _claim() -> Any:
    return (
        sqlite_insert(RECORD)
        .values(
            api_key_id=bindparam("c_key_id", type_=Integer()),
            key=bindparam("c_key", type_=String()),
            request_hash=bindparam("c_hash", type_=String()),
            created_at=bindparam("c_at", type_=RECORD.c.created_at.type),
        )
        .on_conflict_do_nothing()
        .returning(RECORD.c.key)
    )


@cache
def _outcome() -> Any:
    return (
        update(RECORD)
        .where(
            RECORD.c.api_key_id == bindparam("c_key_id", type_=Integer()),
            RECORD.c.key == bindparam("c_key", type_=String()),
        )
        .values(
            status_code=bindparam("c_status", type_=Integer()),
            response=bindparam("c_response", type_=RECORD.c.response.type),
        )
    )


@cache
def _insert(columns: tuple[str, ...]) -> Any:
    values = {name: bindparam(f"v_{name}", type_=REQUEST.c[name].type) for name in columns}
    return insert(REQUEST).values(values).returning(REQUEST.c.id)


@dataclass(frozen=True, slots=True)
class _Claim:
    """The Idempotency-Key statements of one write and their values."""

    claim: CompiledStatement
    outcome: CompiledStatement
    params: dict[str, Any]


def _store_request(
    insert_sql: str,
    insert_args: list[Any],
    claim: _Claim | None,
    outside: bool,
    active: tuple[str, list[Any]] | None,
    connection: sqlite3.Connection,
) -> Created:
    # Runs on the writer lane's thread: the whole transaction, then COMMIT or ROLLBACK.
    connection.execute("BEGIN IMMEDIATE")
    try:
        # The submitting key first (as taking its token does on PostgreSQL): a key revoked
        # since the caller's (cached) verification stores and claims nothing.
        if active is not None and connection.execute(*active).fetchone() is None:
            connection.execute("ROLLBACK")
            return Created(revoked=True)
        if claim is not None:
            sql, args = claim.claim.sql, claim.claim.args(claim.params)
            if connection.execute(sql, args).fetchone() is None:
                connection.execute("ROLLBACK")
                return Created(claimed_before=True)
        if outside:
            connection.execute("ROLLBACK")
            return Created(outside=True)
        (request_pk,) = connection.execute(insert_sql, insert_args).fetchone()
        if claim is not None:
            # The POST response item, as an ordered list of fields (as idempotency.record).
            fields = [
                ["service_request_id", str(request_pk)],
                ["service_notice", claim.params["c_notice"]],
                ["account_id", claim.params["c_account"]],
            ]
            params = {**claim.params, "c_response": {"fields": fields}}
            connection.execute(claim.outcome.sql, claim.outcome.args(params))
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return Created(request_pk=int(request_pk))

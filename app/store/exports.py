"""The SQL of exports beyond the reads of GET requests (``app.store.requests``): how many
requests an export will write (``open311 export``'s progress bar); on PostgreSQL the export
itself as a COPY of the same read, the rows formatted by PostgreSQL (``copy_requests``); and
the callers' export leases (one export per caller across server processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.georeport.exports import FORMULA_START
from app.georeport.models import CHANNELS, REQUEST_FIELDS
from app.models.requests import RequestRead
from app.store.engine import CompiledStatement, read_connection, write_transaction
from app.store.requests import read_plan
from app.store.tables import ExportLease

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

# The LIMIT of a count's inner read: none in effect (PostgreSQL's LIMIT parameter is an int4).
_NO_LIMIT = 2**31 - 1


async def count_requests(engine: AsyncEngine, read: RequestRead) -> int:
    """How many rows ``read`` (from its keyset position on, whatever its limit) matches."""
    statement, params = read_plan(
        replace(read, limit=_NO_LIMIT, zone=None, offset=0),
        postgres=engine.dialect.name == "postgresql",
    )
    counted = select(func.count()).select_from(statement.subquery())
    async with read_connection(engine) as conn:
        return int((await conn.execute(counted, params)).scalar_one())


# ---------------------------------------------------------------------------------------
# PostgreSQL formats the rows itself: COPY (SELECT ...) TO STDOUT

# The fields of an export's items, in the wire item's order (``app.domain.requests._Wire``):
# (wire name, column of the read, kind). Kinds: "id" the service_request_id (a string of
# digits), "text" written as stored, "optional" text whose "" is null, "time" W3C text
# rendered by the read, "float" a coordinate.
ITEM_FIELDS: Final = (
    ("service_request_id", "id", "id"),
    ("status", "status", "text"),
    ("status_notes", "status_notes", "optional"),
    ("service_name", "service_name", "text"),
    ("service_code", "service_code", "text"),
    ("description", "description", "optional"),
    ("agency_responsible", "agency_responsible", "optional"),
    ("service_notice", "service_notice", "optional"),
    ("requested_datetime", "requested_at", "time"),
    ("updated_datetime", "updated_at", "time"),
    ("expected_datetime", "expected_at", "time"),
    ("address", "address", "optional"),
    ("address_id", "address_id", "optional"),
    ("zipcode", "zipcode", "optional"),
    ("lat", "lat", "float"),
    ("long", "lon", "float"),
    ("media_url", "media_url", "optional"),
)
assert tuple(f[0] for f in ITEM_FIELDS) == REQUEST_FIELDS  # noqa: S101 - import-time check
# CSV text cells a spreadsheet would run as a formula get a leading apostrophe
# (``app.georeport.exports``).
# (``app.georeport.exports.FORMULA_START`` as code points: ascii() of the first character is
# much cheaper than comparing texts.)
_FORMULA_START = "(" + ", ".join(str(ord(c)) for c in FORMULA_START) + ")"
_CHANNELS = "(" + ", ".join(f"'{c}'" for c in CHANNELS) + ")"


def _float_text(column: str) -> str:
    # Shortest round-trip digits (extra_float_digits 1) as Python's repr writes them: a
    # whole number keeps ".0" ("43.0", "-0.0"); coordinates never reach the exponent forms
    # where the two differ (|x| >= 1e15).
    return (
        f"CASE WHEN {column} = trunc({column}) THEN {column}::text || '.0' ELSE {column}::text END"
    )


def _csv_text(column: str) -> str:
    # "" is written as nothing, like a null (PostgreSQL would quote a non-null ""), and the
    # formula guard of ``app.georeport.exports._cell``.
    return (
        f"CASE WHEN {column} = '' THEN NULL WHEN ascii({column}) IN {_FORMULA_START} "
        f"THEN '''' || {column} ELSE {column} END"
    )


def _csv_cell(column: str, kind: str) -> str:
    if kind == "id":
        return f"{column}::text"
    if kind == "time":
        return column
    if kind == "float":
        return _float_text(column)
    return _csv_text(column)


def _json_value(column: str, kind: str) -> str:
    # A JSON value (text, never NULL) as json.dumps(ensure_ascii=False) writes it: to_json
    # escapes exactly the characters Python escapes, in the same way.
    if kind == "id":
        return f"'\"' || {column}::text || '\"'"
    if kind == "time":
        return f"coalesce('\"' || {column} || '\"', 'null')"
    if kind == "float":
        return f"coalesce({_float_text(column)}, 'null')"
    if kind == "optional":
        column = f"nullif({column}, '')"
    return f"coalesce(to_json({column})::text, 'null')"


def _json_object(members: list[tuple[str, str]]) -> str:
    parts = []
    for n, (name, value) in enumerate(members):
        parts.append("'" + ("{" if n == 0 else ",") + f'"{name}":' + "'")
        parts.append(value)
    parts.append("'}'")
    return " || ".join(parts)


def _json_item(extensions: bool, *, located: bool) -> str:
    members = [
        (name, _json_value(f"r.{column}", kind))
        for name, column, kind in ITEM_FIELDS
        if not (located and name in ("lat", "long"))
    ]
    if extensions:
        extended = [
            ("ward", _json_value("r.ward_code", "text")),
            ("ward_name", _json_value("r.ward_name", "text")),
            (
                "channel",
                f"CASE WHEN r.channel IN {_CHANNELS} THEN to_json(r.channel)::text ELSE 'null' END",
            ),
            (
                "first_contact_resolution",
                "CASE WHEN r.first_contact_resolved THEN 'true' ELSE 'false' END",
            ),
        ]
        members.append(("extended_attributes", _json_object(extended)))
    return _json_object(members)


@cache
def _projection(fmt: str, extensions: bool) -> str:
    """The SELECT list over the read ``r`` of one export format."""
    if fmt == "csv":
        cells = [_csv_cell(f"r.{column}", kind) for _, column, kind in ITEM_FIELDS]
        if extensions:
            cells += [
                _csv_text("r.ward_code"),
                _csv_text("r.ward_name"),
                f"CASE WHEN r.channel IN {_CHANNELS} THEN r.channel END",
                "CASE WHEN r.first_contact_resolved THEN 'true' ELSE 'false' END",
            ]
        return ", ".join(cells)
    if fmt == "ndjson":
        return _json_item(extensions, located=False)
    geometry = (
        "CASE WHEN r.lat IS NULL OR r.lon IS NULL THEN 'null' ELSE "
        f'\'{{"type":"Point","coordinates":[\' || {_float_text("r.lon")} || \',\' || '
        f"{_float_text('r.lat')} || ']}}' END"
    )
    return _json_object(
        [
            ("type", "'\"Feature\"'"),
            ("id", _json_value("r.id", "id")),
            ("geometry", geometry),
            ("properties", _json_item(extensions, located=True)),
        ]
    )


# COPY options: CSV as PostgreSQL writes it (rows end in "\n"; the caller makes them "\r\n");
# a JSON line in CSV format with a quote and a delimiter that JSON text never holds raw
# (to_json escapes every control character), so each line comes out as it is, plus "\n".
_COPY_OPTIONS: Final[dict[str, dict[str, str]]] = {
    "csv": {"format": "csv"},
    "ndjson": {"format": "csv", "quote": "\x01", "delimiter": "\x02"},
    "geojson": {"format": "csv", "quote": "\x01", "delimiter": "\x02"},
}
# The session of a COPY: no statement timeout (an export lasts as long as its reader reads;
# the API cuts one that stops reading), the read's zone, the shortest float digits. Local to
# the COPY's transaction: nothing stays on the pooled connection.
_COPY_SESSION: Final = (
    "SELECT set_config('statement_timeout', '0', true), set_config('TimeZone', $1, true), "
    "set_config('extra_float_digits', '1', true)"
)


def copies(engine: AsyncEngine) -> bool:
    """Whether exports on ``engine`` can be written by the database (PostgreSQL's COPY)."""
    return engine.dialect.name == "postgresql"


def copy_statement(engine: AsyncEngine, read: RequestRead, fmt: str) -> tuple[str, list[Any]]:
    """The query of an export's COPY (every row of ``read`` from its keyset position,
    whatever its limit) in ``fmt`` (csv: the cells; ndjson: an item per line; geojson: a
    Feature per line), and its arguments. The rows are those of ``read_plan`` (the same
    filters, in the same order)."""
    statement, params = read_plan(replace(read, limit=_NO_LIMIT, offset=0), postgres=True)
    compiled = CompiledStatement(statement, engine.dialect)
    # Every part is ours (no value of the caller's: those are bound parameters).
    sql = (
        f"SELECT {_projection(fmt, read.extensions)} FROM ({compiled.sql}) AS r "  # noqa: S608
        "ORDER BY r.sort_key DESC, r.id DESC"
    )
    return sql, compiled.args(params)


async def copy_requests(
    engine: AsyncEngine,
    read: RequestRead,
    fmt: str,
    output: Callable[[bytes], Awaitable[None]],
) -> None:
    """Run an export's COPY (``copy_statement``; ``read.zone`` set) on a connection of the
    pool, in a read-only transaction; ``output`` is awaited with each chunk of whole rows (the
    COPY waits meanwhile: asyncpg stops reading the socket, so the server's send waits too).
    A COPY that fails or is cancelled leaves its connection closed, not pooled."""
    if read.zone is None:
        raise ValueError("an export's COPY renders datetimes: the read needs its zone")
    sql, args = copy_statement(engine, read, fmt)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        try:
            async with driver.transaction(readonly=True):
                await driver.execute(_COPY_SESSION, read.zone)
                # asyncpg inlines the arguments (COPY takes no parameters), each one quoted
                # by the server (quote_literal).
                await driver.copy_from_query(sql, *args, output=output, **_COPY_OPTIONS[fmt])
        except BaseException:
            await asyncio.shield(conn.invalidate())
            raise


# ---------------------------------------------------------------------------------------
# Export leases: a caller's export streaming now, seen by every server process

LEASE = ExportLease.__table__


async def take_lease(
    engine: AsyncEngine, caller: str, holder: str, now: datetime, until: datetime
) -> bool:
    """Give ``caller``'s lease to ``holder`` until ``until``, unless another holder has one
    that runs past ``now``; whether it was given (one statement: an upsert whose update only
    takes an expired lease)."""
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(LEASE).values(caller=caller, holder=holder, expires_at=until)
    statement = statement.on_conflict_do_update(
        index_elements=[LEASE.c.caller],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=LEASE.c.expires_at < now,
    )
    async with write_transaction(engine) as conn:
        row = (await conn.execute(statement.returning(LEASE.c.holder))).first()
    return row is not None


async def renew_lease(engine: AsyncEngine, caller: str, holder: str, until: datetime) -> bool:
    """Move ``holder``'s lease of ``caller`` on to ``until``; False: it holds none now."""
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(LEASE)
            .where(LEASE.c.caller == caller, LEASE.c.holder == holder)
            .values(expires_at=until)
        )
    return bool(result.rowcount)


async def drop_lease(engine: AsyncEngine, caller: str, holder: str) -> None:
    """Give ``holder``'s lease of ``caller`` back (nothing if it holds none)."""
    async with write_transaction(engine) as conn:
        await conn.execute(delete(LEASE).where(LEASE.c.caller == caller, LEASE.c.holder == holder))

"""The private ``speed`` switches (``python -m bench --layers``): each one off runs the library
path instead of its hand-made layer, and the answers stay the same.

Which code ran is seen with a profile hook on this thread (the app runs in the test's task).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import CodeType
from typing import Any

import httpx
from sqlalchemy.dialects import postgresql

from app.api.lean import _Plan
from app.georeport import codec
from app.georeport.datetimes import format_w3c
from app.settings import SpeedSettings
from app.store.requests import ReadShape, read_statement
from tests.conftest import AppFactory, Seed, engine_of
from tests.factories import make_request


@contextmanager
def ran(*codes: CodeType) -> Iterator[set[CodeType]]:
    """The ones of ``codes`` called on this thread inside the block."""
    wanted, seen = set(codes), set[CodeType]()

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code in wanted:
            seen.add(frame.f_code)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


async def _store(client: httpx.AsyncClient, seed: Seed) -> list[str]:
    """Two requests, winter and summer (both Toronto offsets), one with an expected time."""
    engine = engine_of(client)
    pothole = seed.service_pks["POTHOLE"]
    winter = datetime(2026, 1, 15, 12, 30, 5, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 3, 4, 59, 999_999, tzinfo=UTC)
    return [
        str(await make_request(engine, seed.jurisdiction_pk, pothole, requested_at=winter)),
        str(
            await make_request(
                engine,
                seed.jurisdiction_pk,
                pothole,
                requested_at=summer,
                updated_at=summer,
                expected_at=summer,
            )
        ),
    ]


LIST = "/open311/v2/requests.{fmt}?start_date=2025-12-01T00:00:00Z&end_date=2026-08-01T00:00:00Z"


async def _answers(client: httpx.AsyncClient, ids: list[str]) -> list[tuple[int, bytes]]:
    paths = [LIST.format(fmt=fmt) for fmt in ("json", "xml")]
    paths += [f"/open311/v2/requests/{i}.{fmt}" for i in ids for fmt in ("json", "xml")]
    paths += ["/open311/v2/services.json", "/open311/v2/requests/999999.xml"]
    out = []
    for path in paths:
        response = await client.get(path)
        out.append((response.status_code, response.content))
    return out


async def _pair(
    client: httpx.AsyncClient, make_client: AppFactory, seeded: Seed, **off: bool
) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]], list[str]]:
    """The answers of the default app and of one with ``off`` switched, same database."""
    ids = await _store(client, seeded)
    library = await make_client(speed=SpeedSettings(**off))
    return await _answers(client, ids), await _answers(library, ids), ids


async def test_lean_route_off_runs_fastapis_handler(
    client: httpx.AsyncClient, make_client: AppFactory, seeded: Seed
) -> None:
    ids = await _store(client, seeded)
    library = await make_client(speed=SpeedSettings(lean_route=False))
    with ran(_Plan.solve.__code__) as lean:
        default = await _answers(client, ids)
    with ran(_Plan.solve.__code__) as fastapi:
        answers = await _answers(library, ids)
    assert lean
    assert not fastapi
    assert answers == default
    assert default[0][0] == 200


async def test_direct_pool_off_runs_sqlalchemy(
    client: httpx.AsyncClient, make_client: AppFactory, seeded: Seed, backend: str
) -> None:
    default, answers, _ = await _pair(client, make_client, seeded, direct_pool=False)
    assert answers == default
    store = client.app.state.open311.store  # type: ignore[attr-defined]
    library = await make_client(speed=SpeedSettings(direct_pool=False))
    off = library.app.state.open311.store  # type: ignore[attr-defined]
    await library.get(LIST.format(fmt="json"))
    # Off: every statement ran through SQLAlchemy, none on the store's own path (the asyncpg
    # pool, or the embedded store's sqlite3 connections); on: the store's own path.
    assert off.statements == 0
    assert store.statements > 0
    if backend == "postgis":
        assert off.direct.pooled is False
        assert store.direct.pooled is True


async def test_xml_writers_off_writes_lists_with_the_plain_writer(
    client: httpx.AsyncClient, make_client: AppFactory, seeded: Seed
) -> None:
    ids = await _store(client, seeded)
    library = await make_client(speed=SpeedSettings(xml_writers=False))
    with ran(codec._list_xml.__code__) as generated:
        default = await _answers(client, ids)
    with ran(codec._list_xml.__code__) as plain:
        answers = await _answers(library, ids)
    assert generated
    assert not plain
    assert answers == default
    assert codec.generated_writers.get() is True  # the edge restored it after each call


async def test_sql_timestamps_off_formats_in_python(
    client: httpx.AsyncClient, make_client: AppFactory, seeded: Seed, backend: str
) -> None:
    ids = await _store(client, seeded)
    library = await make_client(speed=SpeedSettings(sql_timestamps=False))
    with ran(format_w3c.__code__) as in_python_by_default:
        default = await _answers(client, ids)
    with ran(format_w3c.__code__) as in_python:
        answers = await _answers(library, ids)
    assert in_python
    # On: the store renders them (PostgreSQL's to_char; the embedded store on its
    # connection's thread, see app.store.sqlite.W3CText), not format_w3c on this thread.
    assert not in_python_by_default
    assert answers == default
    assert b"2026-01-15T07:30:05-05:00" in default[0][1]
    assert b"2026-06-30T23:04:59-04:00" in default[0][1]
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    sql = str(read_statement(ReadShape(postgres=True, sql_w3c=False)).compile(dialect=dialect))
    assert "to_char" not in sql
    assert "to_char" in str(read_statement(ReadShape(postgres=True)).compile(dialect=dialect))

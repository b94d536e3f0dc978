"""The benchmark databases: a fresh PostGIS database with N synthetic Toronto requests.

Set-based loading: one pool of random points inside the Toronto wards (rejection sampling
against the subdivided ward polygons, ``ST_Covers``), then ``INSERT .. SELECT`` from
``generate_series`` in chunks, with the secondary indexes of ``service_request`` dropped
during the load and re-created afterwards from their exact definitions (the schema stays the
migrated one), then ``VACUUM (ANALYZE)``.

The embedded (SQLite) copy is built by the app's own migrations and loaders, then filled with
a slice of the PostGIS rows (same ids, wards mapped by code).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import log, with_database

JURISDICTION = "toronto.ca"
API_KEY = "bench-key-0123456789abcdef"
# The service the list benchmark filters on, and the weights of the synthetic mix (percent
# slots; the rest spread evenly). Skewed like a real 311 feed: a few types dominate.
LIST_SERVICE = "CSROWR-12"
POST_SERVICE = "TO-0007"
WEIGHTS = {
    "CSROWR-12": 24,
    "TO-0006": 12,
    "TO-0013": 10,
    "TO-0064": 8,
    "TO-0035": 7,
    "30102": 6,
    "TO-0007": 5,
    "TO-0020": 4,
}
OPEN_SHARE = 0.3
DAYS = 730
CHUNK = 1_000_000
STREETS = [
    "Yonge St",
    "Bloor St W",
    "Queen St E",
    "King St W",
    "Dundas St W",
    "College St",
    "Spadina Ave",
    "Bathurst St",
    "Danforth Ave",
    "Eglinton Ave E",
    "Finch Ave W",
    "Sheppard Ave E",
    "Lawrence Ave W",
    "Kingston Rd",
    "Jane St",
    "Keele St",
    "Dufferin St",
    "Pape Ave",
    "Victoria Park Ave",
    "Kennedy Rd",
]
DESCRIPTIONS = [
    "Large pothole in the curb lane, cars swerving around it.",
    "Bins not collected on scheduled day.",
    "Green bin missed again this week, please send a truck.",
    "Overflowing litter bin at the bus stop.",
    "Illegal dumping: mattress and furniture left on the boulevard next to the laneway.",
    "Graffiti tag on the retaining wall facing the sidewalk.",
    "Sidewalk not cleared after the snowfall, icy patches near the school crossing.",
    "",
]


@dataclass(slots=True)
class Dataset:
    """What the benchmarks need to know about a loaded database."""

    name: str
    dsn: str
    rows: int
    jurisdiction_pk: int
    ward_set_id: int
    load_seconds: float


def pg_settings(dsn: str) -> Any:
    """App settings pointing at a PostgreSQL database."""
    from app.settings import Settings

    return Settings(db={"url": dsn})


async def create_database(admin_dsn: str, name: str) -> None:
    """Drop (when present) and create database ``name``."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` when present."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def database_rows(admin_dsn: str, name: str) -> int | None:
    """Rows of service_request in an existing bench database (None when unusable)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("select 1 from pg_database where datname = $1", name)
    finally:
        await conn.close()
    if not exists:
        return None
    try:
        conn = await asyncpg.connect(with_database(admin_dsn, name))
    except Exception:
        return None
    try:
        done = await conn.fetchval("select to_regclass('bench_meta') is not null")
        if not done:
            return None
        return int(await conn.fetchval("select rows from bench_meta"))
    finally:
        await conn.close()


async def _catalogue_and_wards(settings: Any) -> None:
    """The demo catalogue on toronto.ca and its 25-ward map, with the app's own loaders."""
    from app.demo.loader import CATALOG_FILE, load_ward_map
    from app.domain.api_keys import create_key
    from app.domain.catalog_files import read_catalog
    from app.domain.catalog_import import upsert_jurisdiction, upsert_services
    from app.store.engine import make_engine

    engine = make_engine(settings, null_pool=True)
    try:
        catalog = read_catalog(CATALOG_FILE)
        async with engine.begin() as conn:
            pk = await upsert_jurisdiction(conn, catalog["jurisdiction"])
            await upsert_services(conn, pk, catalog["services"])
        await load_ward_map(engine, JURISDICTION, settings.wards.tolerance_m)
        async with engine.begin() as conn:
            await create_key(conn, "bench", API_KEY, app="bench")
    finally:
        await engine.dispose()


def migrate_and_seed(settings: Any) -> None:
    """Migrate (app.store.migrate.upgrade) and load catalogue, wards and the bench API key."""
    from app.store.migrate import upgrade

    upgrade(settings)
    asyncio.run(_catalogue_and_wards(settings))


async def _service_slots(conn: asyncpg.Connection, jurisdiction_pk: int) -> list[int]:
    rows = await conn.fetch(
        "select id, service_code from service_type where jurisdiction_id = $1 order by id",
        jurisdiction_pk,
    )
    by_code = {r["service_code"]: r["id"] for r in rows}
    slots: list[int] = []
    for code, weight in WEIGHTS.items():
        slots += [by_code[code]] * weight
    rest = [pk for code, pk in by_code.items() if code not in WEIGHTS]
    i = 0
    while len(slots) < 100:
        slots.append(rest[i % len(rest)])
        i += 1
    return slots


async def load_requests(dsn: str, rows: int, pool_points: int = 100_000) -> Dataset:
    """Fill a migrated, seeded database with ``rows`` synthetic requests (set-based)."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn, command_timeout=3600)
    try:
        jurisdiction_pk = await conn.fetchval(
            "select id from jurisdiction where code = $1", JURISDICTION
        )
        ward_set_id = await conn.fetchval(
            "select id from boundary_set where jurisdiction_id = $1 and current", jurisdiction_pk
        )
        slots = await _service_slots(conn, jurisdiction_pk)
        # Random points inside the wards: subdivided polygons make ST_Covers cheap.
        await conn.execute(
            """
            create temp table bench_wards as
              select id, st_subdivide(geom, 64) as g from area where boundary_set_id = $1;
            create index on bench_wards using gist (g);
            analyze bench_wards;
            """.replace("$1", str(int(ward_set_id)))
        )
        candidates = int(pool_points * 2)
        await conn.execute(
            f"""
            create temp table bench_points as
            with box as (
              select st_xmin(e) x0, st_xmax(e) x1, st_ymin(e) y0, st_ymax(e) y1
              from (select st_extent(g)::geometry e from bench_wards) s
            ), c as (
              select round((y0 + random() * (y1 - y0))::numeric, 6)::float8 as lat,
                     round((x0 + random() * (x1 - x0))::numeric, 6)::float8 as lon
              from box, generate_series(1, {candidates})
            )
            select (row_number() over ())::int as pid, c.lat, c.lon, w.id as ward_id
            from c
            cross join lateral (
              select id from bench_wards
              where st_covers(g, st_setsrid(st_makepoint(c.lon, c.lat), 4326))
              order by id limit 1
            ) w;
            alter table bench_points add primary key (pid);
            analyze bench_points;
            """
        )
        points = int(await conn.fetchval("select count(*) from bench_points"))
        log(f"  {points} random points inside the wards")
        indexes = await conn.fetch(
            """
            select i.indexname, i.indexdef from pg_indexes i
            where i.tablename = 'service_request' and i.schemaname = 'public'
              and i.indexname not in (
                select conname from pg_constraint
                where conrelid = 'service_request'::regclass and contype in ('p', 'u'))
            """
        )
        await conn.execute("set maintenance_work_mem = '512MB'")
        for index in indexes:
            await conn.execute(f'drop index "{index["indexname"]}"')
        # Valid by construction: skip the per-row foreign-key triggers during the load.
        superuser = await conn.fetchval(
            "select rolsuper from pg_roles where rolname = current_user"
        )
        if superuser:
            await conn.execute("set session_replication_role = replica")
        history_start = await conn.fetchval("select now() - $1 * interval '1 day'", float(DAYS))
        done = 0
        while done < rows:
            n = min(CHUNK, rows - done)
            await conn.execute(
                _INSERT,
                jurisdiction_pk,
                slots,
                n,
                points,
                OPEN_SHARE,
                DESCRIPTIONS,
                STREETS,
                float(DAYS),
                history_start,
                float(rows),
                done,
            )
            done += n
            log(f"  {done:,} / {rows:,} requests inserted")
        if superuser:
            await conn.execute("set session_replication_role = origin")
        for index in indexes:
            await conn.execute(index["indexdef"])
        log(f"  {len(indexes)} indexes re-created")
        await conn.execute(
            "create table bench_points_kept as select pid, lat, lon, ward_id from bench_points;"
            "create table bench_meta (rows bigint not null, loaded_at timestamptz not null);"
        )
        await conn.execute("insert into bench_meta values ($1, now())", rows)
        await conn.execute("vacuum (analyze) service_request")
        await conn.execute("analyze")
    finally:
        await conn.close()
    return Dataset(
        name=dsn.rsplit("/", 1)[1],
        dsn=dsn,
        rows=rows,
        jurisdiction_pk=int(jurisdiction_pk),
        ward_set_id=int(ward_set_id),
        load_seconds=time.monotonic() - started,
    )


# $1 jurisdiction, $2 service slots (100), $3 rows, $4 points in the pool, $5 open share,
# $6 descriptions, $7 streets, $8 days of history, $9 start of the history, $10 rows in all,
# $11 first row number of this chunk (from 0).
_INSERT = """
insert into service_request (
  jurisdiction_id, service_type_id, status, status_notes, description, agency_responsible,
  service_notice, requested_at, updated_at, expected_at, address, zipcode, lat, lon, location,
  media_url, ward_id, sandbox, created_at)
select $1, s.id, r.status,
  case when r.status = 'closed' then 'Completed by the crew.' end,
  nullif(($6::text[])[
    1 + (r.u3 * array_length($6::text[], 1))::int % array_length($6::text[], 1)], ''),
  s.agency_responsible, s.service_notice,
  r.requested, least(now(), r.requested + r.u4 * interval '15 days'),
  case when r.u4 < 0.2 then r.requested + interval '10 days' end,
  (1 + (r.u3 * 997)::int % 400)::text || ' '
    || ($7::text[])[1 + (r.u2 * 1000)::int % array_length($7::text[], 1)] || ', Toronto, ON',
  case when r.u4 > 0.8 then 'M5H 2N2' end,
  p.lat, p.lon, st_setsrid(st_makepoint(p.lon, p.lat), 4326),
  case when r.u2 < 0.1 then 'https://photos.example.org/' || r.g || '.jpg' end,
  p.ward_id, false, r.requested
from (
  select g,
    case when random() < $5 then 'open' else 'closed' end as status,
    ($2::int[])[1 + floor(random() * 100)::int] as service_type_id,
    1 + floor(random() * $4)::int as pid,
    -- evenly spread over the history, in order: ids grow with requested_at, as in a live
    -- table that requests are appended to
    date_trunc('second', $9::timestamptz + ((g + random()) / $10) * ($8 * interval '1 day'))
      as requested,
    random() as u2, random() as u3, random() as u4
  from generate_series($11::bigint, $11::bigint + $3 - 1) g
) r
join bench_points p on p.pid = r.pid
join service_type s on s.id = r.service_type_id
order by r.g
"""


async def sample(dsn: str, points: int = 5000, ids: int = 5000) -> tuple[list[tuple], list[int]]:
    """Points inside the wards (lat, lon) and existing request ids, for the load scripts."""
    conn = await asyncpg.connect(dsn)
    try:
        pts = await conn.fetch(
            "select lat, lon from bench_points_kept order by random() limit $1", points
        )
        lo, hi = await conn.fetchrow("select min(id), max(id) from service_request")
        rng = random.Random(311)
        found = await conn.fetch(
            "select id from service_request where id = any($1::bigint[])",
            [rng.randint(lo, hi) for _ in range(ids * 2)],
        )
    finally:
        await conn.close()
    return [(r["lat"], r["lon"]) for r in pts], [r["id"] for r in found][:ids]


# ---------------------------------------------------------------------------------------
# The embedded default (SQLite)


async def _fill_embedded(settings: Any, pg_dsn: str, rows: int) -> list[int]:
    from sqlalchemy import insert, select

    from app.store.engine import make_engine
    from app.store.tables import Area, ServiceRequest, ServiceType

    engine = make_engine(settings, null_pool=True)
    pg = await asyncpg.connect(pg_dsn)
    try:
        async with engine.connect() as conn:
            services = dict(
                (
                    await conn.execute(
                        select(ServiceType.__table__.c.service_code, ServiceType.__table__.c.id)
                    )
                ).all()
            )
            areas = dict(
                (await conn.execute(select(Area.__table__.c.code, Area.__table__.c.id))).all()
            )
            jurisdiction_pk = (
                await conn.execute(select(ServiceType.__table__.c.jurisdiction_id).limit(1))
            ).scalar_one()
        records = await pg.fetch(
            """
            select r.id, st.service_code, r.status, r.status_notes, r.description,
              r.agency_responsible, r.service_notice, r.requested_at, r.updated_at,
              r.expected_at, r.address, r.zipcode, r.lat, r.lon, r.media_url, a.code as ward,
              r.created_at
            from service_request r
            join service_type st on st.id = r.service_type_id
            left join area a on a.id = r.ward_id
            -- the loaded requests only: not those POSTed by an earlier run (--reuse)
            where r.created_at <= (select loaded_at from bench_meta)
            order by r.id desc limit $1
            """,
            rows,
        )
        table = ServiceRequest.__table__
        batch: list[dict[str, Any]] = []
        for record in records:
            item = dict(record)
            item["service_type_id"] = services[item.pop("service_code")]
            ward = item.pop("ward")
            item["ward_id"] = areas.get(ward) if ward is not None else None
            item["jurisdiction_id"] = jurisdiction_pk
            item["sandbox"] = False
            batch.append(item)
            if len(batch) == 10_000:
                async with engine.begin() as conn:
                    await conn.execute(insert(table), batch)
                batch = []
        if batch:
            async with engine.begin() as conn:
                await conn.execute(insert(table), batch)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
        return [r["id"] for r in records]
    finally:
        await pg.close()
        await engine.dispose()


def build_embedded(path: Path, pg_dsn: str, rows: int) -> tuple[Any, list[int]]:
    """A fresh embedded database at ``path`` with the newest ``rows`` requests of ``pg_dsn``.

    Returns its settings and the ids copied.
    """
    from app.settings import Settings

    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    settings = Settings(db={"url": "", "sqlite_path": path})
    migrate_and_seed(settings)
    ids = asyncio.run(_fill_embedded(settings, pg_dsn, rows))
    return settings, ids

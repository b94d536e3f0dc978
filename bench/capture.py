"""Capture the exact SQL (and bound parameters) our endpoints send, by running the app's code.

The raw asyncpg baseline replays these statements, so both sides run identical SQL. A
``before_cursor_execute`` listener records what SQLAlchemy hands to asyncpg; the live server's
statements are also checked against these through the protocol proxy (``bench.pgproxy``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import event

from bench.dataset import API_KEY, JURISDICTION, LIST_SERVICE, POST_SERVICE

# Sentinels recognised among the bound parameters of the captured INSERT.
SENTINEL_LAT = 43.7012345671
SENTINEL_LON = -79.4012345671
SENTINEL_DESCRIPTION = "bench-sentinel-description"
POST_ATTRIBUTES = [
    ("attribute[SIZE]", "SMALL"),
    ("attribute[DEPTH_CM]", "4"),
    ("attribute[LOCATION_IN_ROAD][]", "CURB_LANE"),
]
DESCRIPTION = "Deep pothole in the curb lane by the bus stop"


def list_query_string(start: str, end: str) -> str:
    """The GET requests query of the list benchmark (1000 rows with these filters)."""
    return f"start_date={start}&end_date={end}&status=open&service_code={LIST_SERVICE}"


def post_params(lat: float, lon: float, description: str) -> list[tuple[str, str]]:
    """The form fields of a benchmark POST."""
    return [
        ("api_key", API_KEY),
        ("service_code", POST_SERVICE),
        ("lat", repr(lat)),
        ("long", repr(lon)),
        ("description", description),
        *POST_ATTRIBUTES,
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    return value


def _unjson(value: Any) -> Any:
    if isinstance(value, dict) and "$datetime" in value:
        return datetime.fromisoformat(value["$datetime"])
    return value


def dump_params(params: list[Any]) -> list[Any]:
    """Parameters as JSON (datetimes tagged)."""
    return [_jsonable(p) for p in params]


def load_params(params: list[Any]) -> list[Any]:
    """Parameters from JSON."""
    return [_unjson(p) for p in params]


def bind(
    template: list[str],
    params: list[Any],
    lat: float,
    lon: float,
    description: str | None,
    tolerance_m: float,
) -> list[Any]:
    """A captured statement's parameters for another call: each filled as ``template`` says
    (lat, lon, deg: the ward window at ``lat``, now, desc; const keeps the captured value)."""
    from app.geo.wards import degrees_for

    now = datetime.now(UTC)
    out: list[Any] = []
    for kind, value in zip(template, params, strict=True):
        if kind == "lat":
            out.append(lat)
        elif kind == "lon":
            out.append(lon)
        elif kind == "now":
            out.append(now)
        elif kind == "desc":
            out.append(description)
        elif kind == "deg":
            out.append(degrees_for(tolerance_m, lat))
        else:
            out.append(value)
    return out


async def _capture(settings: Any, list_query: str, get_id: int) -> dict[str, Any]:
    from app.api.filters import parse_filters
    from app.domain.api_keys import verify_key
    from app.domain.catalog import CatalogCache
    from app.domain.jurisdictions import JurisdictionRegistry
    from app.domain.requests import (
        check_location,
        create_request,
        get_request,
        list_requests,
        validate_submission,
    )
    from app.settings import SpeedSettings
    from app.store.engine import SET_TIMEZONE
    from app.store.postgres import PostgresStore

    # The store's reads run through SQLAlchemy here (the statements are the same), so that a
    # listener sees them.
    store = PostgresStore(settings.model_copy(update={"speed": SpeedSettings(direct_pool=False)}))
    engine = store.engine
    seen: list[tuple[str, Any]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        # The session time zone the reads render datetimes in is set once per connection by
        # the server (not per request): it is not part of the replayed statement.
        if statement != SET_TIMEZONE:
            seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", listener)
    out: dict[str, Any] = {}
    try:
        registry = JurisdictionRegistry(engine, settings)
        jurisdiction = await registry.resolve(JURISDICTION)
        catalog = await CatalogCache(engine).get(jurisdiction.pk)
        limits = settings.requests

        from app.georeport.params import Parameters

        query = Parameters(parse_qsl(list_query, keep_blank_values=True))
        filters = parse_filters(query, jurisdiction.tz, limits)
        seen.clear()
        items = await list_requests(store, jurisdiction, catalog, filters, limits)
        ((sql, params),) = seen
        out["list"] = {"sql": sql, "params": list(params), "rows": len(items)}
        seen.clear()
        await get_request(store, jurisdiction, str(get_id))
        ((sql, params),) = seen
        out["get"] = {
            "sql": sql,
            "params": list(params),
            "id_index": list(params).index(get_id),
        }
        async with engine.connect() as conn:
            key = await verify_key(conn, API_KEY)

        service = catalog.get(POST_SERVICE)
        sub = validate_submission(
            post_params(SENTINEL_LAT, SENTINEL_LON, SENTINEL_DESCRIPTION), service, limits
        )
        for name, info in (
            ("insert", jurisdiction),
            ("insert_noward", dataclasses.replace(jurisdiction, ward_set_id=None)),
        ):
            async with engine.connect() as conn:
                tx = await conn.begin()
                seen.clear()
                await create_request(
                    conn,
                    jurisdiction=info,
                    service=service,
                    sub=sub,
                    key=key,
                    tolerance_m=settings.wards.tolerance_m,
                )
                await tx.rollback()
            ((sql, params),) = seen
            out[name] = {
                "sql": sql,
                "params": list(params),
                "template": _template(list(params), settings),
            }
        # The ward lookup alone, as the statement the queued (batch) POST sends to refuse an
        # outside location before queueing it (bench.wardcost).
        async with engine.connect() as conn:
            seen.clear()
            await check_location(conn, jurisdiction, sub, tolerance_m=settings.wards.tolerance_m)
            ((sql, params),) = seen
            out["lookup"] = {
                "sql": sql,
                "params": list(params),
                "template": _template(list(params), settings, whole_row=False),
            }
    finally:
        await store.close()
    return out


def _template(params: list[Any], settings: Any, *, whole_row: bool = True) -> list[str]:
    """How the raw app fills each parameter: const, lat, lon, deg (ward window), now, desc."""
    from app.geo.wards import degrees_for

    degrees = degrees_for(settings.wards.tolerance_m, SENTINEL_LAT)
    kinds = []
    for value in params:
        if isinstance(value, float) and value == SENTINEL_LAT:
            kinds.append("lat")
        elif isinstance(value, float) and value == SENTINEL_LON:
            kinds.append("lon")
        elif isinstance(value, float) and value == degrees:
            kinds.append("deg")
        elif isinstance(value, datetime):
            kinds.append("now")
        elif value == SENTINEL_DESCRIPTION:
            kinds.append("desc")
        else:
            kinds.append("const")
    needed = ["lat", "lon", "desc", "now"] if whole_row else ["lat", "lon"]
    if any(kind not in kinds for kind in needed):
        raise RuntimeError(f"could not map the statement's parameters: {kinds}")
    return kinds


def capture(settings: Any, list_query: str, get_id: int) -> dict[str, Any]:
    """The statements (SQL, parameters) of list, get, the POST insert (with/without ward) and
    the ward lookup alone."""
    captured = asyncio.run(_capture(settings, list_query, get_id))
    for entry in captured.values():
        entry["params"] = dump_params(entry["params"])
    json.dumps(captured)  # fail early on anything unserialisable
    return captured

"""Streaming exports (issue 20, point 1): GET exports/requests.{csv,geojson,ndjson} on both
backends: every matching request (more than a batch, older than GET requests' default
window), GET requests' filters, public fields only, valid CSV / GeoJSON / NDJSON, read in
bounded batches, and at most one export at a time per caller."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.domain.catalog import CatalogCache
from app.domain.exports import ExportGate
from app.domain.requests import RequestFilters, stream_requests
from app.georeport.exports import CSV_COLUMNS, CSV_EXTENSION_COLUMNS
from app.settings import ExportSettings
from tests.conftest import AppFactory, Seed, clear, engine_of, seed_catalog
from tests.factories import make_request
from tests.support import get_scope, silent_after_request

BASE = "/open311/v2"
BATCH = 7
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def exporter(make_client: AppFactory) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await make_client(exports=ExportSettings(batch_size=BATCH))
    await clear(engine_of(client))
    return client


async def _world(client: httpx.AsyncClient) -> tuple[Seed, dict[str, Any]]:
    """23 public requests (3 batches and a bit), some years old, of two services; one
    closed; one located by address only; one sandbox request; reporter fields on each."""
    engine = engine_of(client)
    seed = await seed_catalog(engine)
    pothole, graffiti = seed.service_pks["POTHOLE"], seed.service_pks["GRAFFITI"]
    ids: dict[str, Any] = {"pothole": [], "graffiti": [], "closed": [], "old": []}
    for n in range(23):
        service = graffiti if n % 4 == 0 else pothole
        at = NOW - timedelta(days=400 if n < 5 else n, minutes=n)
        status = "closed" if n == 3 else "open"
        extra: dict[str, Any] = (
            {"lat": None, "lon": None, "address": "1 Yonge St"} if n == 1 else {}
        )
        pk = await make_request(
            engine,
            seed.jurisdiction_pk,
            service,
            requested_at=at,
            updated_at=at,
            status=status,
            email=f"reporter{n}@example.org",
            phone="416-555-0100",
            description='=HYPERLINK("http://evil.example")' if n == 2 else f"Request {n}",
            **extra,
        )
        ids["graffiti" if service == graffiti else "pothole"].append(str(pk))
        if status == "closed":
            ids["closed"].append(str(pk))
        if n < 5:
            ids["old"].append(str(pk))
    ids["sandbox"] = str(
        await make_request(engine, seed.jurisdiction_pk, pothole, sandbox=True, app_id=None)
    )
    ids["all"] = ids["pothole"] + ids["graffiti"]
    return seed, ids


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def _geojson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    document = json.loads(response.content)
    assert document["type"] == "FeatureCollection"
    assert set(document) == {"type", "features"}
    for feature in document["features"]:
        assert feature["type"] == "Feature"
        assert feature["id"] == feature["properties"]["service_request_id"]
        geometry = feature["geometry"]
        if geometry is not None:
            assert geometry["type"] == "Point"
            lon, lat = geometry["coordinates"]
            assert -180 <= lon <= 180
            assert -90 <= lat <= 90
    features: list[dict[str, Any]] = document["features"]
    return features


def _ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text == "" or response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


async def _export(client: httpx.AsyncClient, fmt: str, **params: Any) -> httpx.Response:
    return await client.get(f"{BASE}/exports/requests.{fmt}", params=params)


async def test_every_request_in_every_format(exporter: httpx.AsyncClient) -> None:
    _, ids = await _world(exporter)
    rows = _csv(await _export(exporter, "csv"))
    features = _geojson(await _export(exporter, "geojson"))
    lines = _ndjson(await _export(exporter, "ndjson"))

    # Every public request, more than three batches, the 400-day-old ones too (no default
    # window); never the sandbox request.
    for got in (
        [r["service_request_id"] for r in rows],
        [f["id"] for f in features],
        [item["service_request_id"] for item in lines],
    ):
        assert sorted(got) == sorted(ids["all"])
        assert len(got) == len(set(got)) == 23
    # Newest requested first, as GET requests.
    requested = [item["requested_datetime"] for item in lines]
    assert requested == sorted(requested, reverse=True)
    # The same items as GET requests gives (its public fields).
    listed = await exporter.get(f"{BASE}/requests.json")
    assert listed.status_code == 200
    by_id = {item["service_request_id"]: item for item in lines}
    for item in listed.json():
        assert by_id[item["service_request_id"]] == item
    # CSV: the header, and text a spreadsheet would run as a formula is defused.
    assert list(rows[0]) == list(CSV_COLUMNS)
    formula = [r for r in rows if r["description"].startswith("'=")]
    assert len(formula) == 1
    assert all(r["long"].startswith("-79") for r in rows if r["long"])  # numbers untouched
    # GeoJSON: the address-only request has no geometry; the others a point.
    assert sum(1 for f in features if f["geometry"] is None) == 1
    located = next(f for f in features if f["geometry"] is not None)
    assert located["geometry"]["coordinates"] == [-79.3841, 43.6534]
    assert "lat" not in located["properties"]


async def test_filters_of_get_requests_apply(exporter: httpx.AsyncClient) -> None:
    _, ids = await _world(exporter)
    graffiti = _ndjson(await _export(exporter, "ndjson", service_code="GRAFFITI"))
    assert sorted(i["service_request_id"] for i in graffiti) == sorted(ids["graffiti"])
    closed = _csv(await _export(exporter, "csv", status="closed"))
    assert [r["service_request_id"] for r in closed] == ids["closed"]
    old = _geojson(
        await _export(exporter, "geojson", end_date=(NOW - timedelta(days=300)).isoformat())
    )
    assert sorted(f["id"] for f in old) == sorted(ids["old"])
    some = ",".join(ids["all"][:3])
    picked = _ndjson(await _export(exporter, "ndjson", service_request_id=some))
    assert sorted(i["service_request_id"] for i in picked) == sorted(ids["all"][:3])
    assert _ndjson(await _export(exporter, "ndjson", service_code="NO_SUCH")) == []
    # With extensions: the ward and channel columns.
    extended = _csv(await _export(exporter, "csv", extensions="true", status="closed"))
    assert list(extended[0]) == list(CSV_COLUMNS + CSV_EXTENSION_COLUMNS)


async def test_an_empty_export_is_still_a_valid_document(exporter: httpx.AsyncClient) -> None:
    await seed_catalog(engine_of(exporter))
    assert _csv(await _export(exporter, "csv")) == []
    assert _geojson(await _export(exporter, "geojson")) == []
    response = await _export(exporter, "ndjson")
    assert response.status_code == 200
    assert response.content == b""


async def test_bad_parameters_are_json_errors(exporter: httpx.AsyncClient) -> None:
    await seed_catalog(engine_of(exporter))
    for params in ({"page_size": "10"}, {"cursor": "x"}, {"start_date": "yesterday"}):
        response = await _export(exporter, "csv", **params)
        assert response.status_code == 400, params
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()[0]["code"] == 400
    unknown = await exporter.get(f"{BASE}/exports/requests.xlsx")
    assert unknown.status_code == 404


async def test_exports_never_hold_reporter_fields(exporter: httpx.AsyncClient) -> None:
    """Even for the submitting app's read_private key (which sees them on GET requests)."""
    from app.domain.api_keys import create_key

    await _world(exporter)
    engine = engine_of(exporter)
    async with engine.begin() as conn:
        key, _ = await create_key(conn, "reader", app="reader", scopes=["read_private"])
    async with engine.begin() as conn:
        from sqlalchemy import update

        from app.store.tables import ApiKey, ServiceRequest

        app_id = (
            (
                await conn.execute(
                    ApiKey.__table__.select().where(ApiKey.__table__.c.prefix == key[:8])
                )
            )
            .one()
            ._mapping["app_id"]
        )
        await conn.execute(update(ServiceRequest.__table__).values(app_id=app_id))
    listed = await exporter.get(f"{BASE}/requests.json", params={"api_key": key})
    assert any("reporter" in item for item in listed.json())  # the key does see them there
    for fmt in ("csv", "geojson", "ndjson"):
        response = await _export(exporter, fmt, api_key=key, extensions="true")
        assert response.status_code == 200
        assert b"@example.org" not in response.content, fmt
        assert b"416-555" not in response.content, fmt


async def test_read_in_bounded_batches(make_client: AppFactory) -> None:
    """Memory stays at one batch: each read asks for at most batch_size rows and the export
    is that many reads (structural, not timed). The Python path (on PostgreSQL the database
    writes the rows by default: test_export_bytes.py)."""
    exporter = await make_client(exports=ExportSettings(batch_size=BATCH, sql_copy=False))
    await clear(engine_of(exporter))
    seed, _ = await _world(exporter)
    state = exporter.app.state.open311  # type: ignore[attr-defined]
    catalog = await CatalogCache(state.engine).get(seed.jurisdiction_pk)
    jurisdiction = await state.jurisdictions.resolve(None)
    sizes = [
        len(batch)
        async for batch in stream_requests(
            state.store, jurisdiction, catalog, RequestFilters(), batch_size=BATCH
        )
    ]
    assert sizes == [7, 7, 7, 2]
    before = state.store.statements
    _ndjson(await _export(exporter, "ndjson"))
    assert state.store.statements - before == 4


async def test_one_export_at_a_time_per_caller(exporter: httpx.AsyncClient) -> None:
    await _world(exporter)
    ok = await _export(exporter, "csv")
    assert ok.status_code == 200
    gate: ExportGate = exporter.app.state.open311_export_gate  # type: ignore[attr-defined]
    assert gate.running == set()  # given back after a complete export
    # This caller's export is still streaming: a second one is refused at once.
    gate.acquire("ip:127.0.0.1")
    refused = await _export(exporter, "ndjson")
    assert refused.status_code == 429
    assert refused.headers["retry-after"]
    assert refused.json()[0]["code"] == 429
    gate.release("ip:127.0.0.1")
    # The server streams as many as it allows (exports.max_concurrent): refused too.
    for n in range(gate.max_concurrent):
        gate.acquire(f"ip:10.0.0.{n}")
    assert (await _export(exporter, "geojson")).status_code == 429
    for n in range(gate.max_concurrent):
        gate.release(f"ip:10.0.0.{n}")
    assert (await _export(exporter, "geojson")).status_code == 200
    # A failed export gives its slot back too.
    assert (await _export(exporter, "csv", status="nope")).status_code == 400
    assert gate.running == set()


async def test_exports_can_be_switched_off(make_client: AppFactory) -> None:
    client: httpx.AsyncClient = await make_client(exports=ExportSettings(enabled=False))
    await clear(engine_of(client))
    await seed_catalog(engine_of(client))
    response = await _export(client, "csv")
    assert response.status_code == 404


async def test_a_caller_that_stops_reading_is_cut_and_gives_its_slot_back(
    make_client: AppFactory,
) -> None:
    """The ASGI server's send waits while a client reads nothing: after idle_timeout_s the
    export is cut, so such a caller cannot hold a slot (here: a send that never returns)."""
    client: httpx.AsyncClient = await make_client(
        exports=ExportSettings(batch_size=BATCH, idle_timeout_s=0.3)
    )
    await clear(engine_of(client))
    await _world(client)
    app = client.app  # type: ignore[attr-defined]
    sent: list[dict[str, Any]] = []
    stuck = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            stuck.set()
            await asyncio.Event().wait()  # the client reads nothing: the send never returns

    scope = get_scope(f"{BASE}/exports/requests.csv")
    await asyncio.wait_for(app(scope, silent_after_request(), send), timeout=10)
    assert stuck.is_set()
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    gate: ExportGate = app.state.open311_export_gate
    assert gate.running == set()
    # Nothing of the export holds a connection any more (PostgreSQL: its COPY was cancelled;
    # SQLite keeps no pool).
    pool = engine_of(client).pool
    if hasattr(pool, "checkedout"):
        assert pool.checkedout() == 0
    assert (await _export(client, "csv")).status_code == 200  # the caller may export again

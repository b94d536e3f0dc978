"""Exports are the same bytes however they are written (issue 20, point 1): on PostgreSQL the
database formats the rows (a COPY of the export's read), elsewhere Python does (keyset batches
through ``app.georeport.exports.Encoder``). On both backends an export of awkward values
(commas, quotes, line breaks inside fields, "" and NULL, formula starts, non-ASCII, control
characters, backslashes, negative, long, whole and tiny floats, a request without a point, a
ward with a comma in its name, unknown channels) is byte for byte what the encoder writes for
the items GET requests gives; on PostgreSQL the COPY path and the Python path give the same
bytes for every format and for GET requests' filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import insert

from app.georeport.exports import CSV_EXTENSION_COLUMNS, CopiedRows, Encoder, ExportFormat
from app.settings import ExportSettings
from app.store.tables import Area, BoundarySet
from tests.conftest import AppFactory, clear, engine_of, seed_catalog
from tests.factories import make_request

BASE = "/open311/v2"
NOW = datetime.now(UTC).replace(microsecond=0)


async def _ward(client: httpx.AsyncClient, jurisdiction_pk: int) -> int:
    """A ward with a name that CSV must quote (the export's extension columns)."""
    engine = engine_of(client)
    shape = MultiPolygon([box(-80.0, 43.0, -79.0, 44.0)])
    geom = f"SRID=4326;{shape.wkt}" if engine.dialect.name == "postgresql" else shape.wkb_hex
    async with engine.begin() as conn:
        set_pk = (
            await conn.execute(
                insert(BoundarySet.__table__)
                .values(jurisdiction_id=jurisdiction_pk, name="wards", current=True)
                .returning(BoundarySet.__table__.c.id)
            )
        ).scalar_one()
        return int(
            (
                await conn.execute(
                    insert(Area.__table__)
                    .values(
                        boundary_set_id=set_pk, code="W-1", name='Ward 1, "Downtown"', geom=geom
                    )
                    .returning(Area.__table__.c.id)
                )
            ).scalar_one()
        )


def _awkward(ward: int) -> list[dict[str, Any]]:
    at = NOW - timedelta(hours=1)
    return [
        {
            "description": 'comma, "quoted" and\na line break',
            "address": '1 "Yonge" St, Toronto',
            "status_notes": "-starts like a formula",
            "zipcode": "",
            "lat": 43.65348123456789,
            "lon": -79.38412345678901,
            "ward_id": ward,
            "channel": "phone",
            "first_contact_resolved": True,
        },
        {
            "description": "",
            "agency_responsible": "+1 agency",
            "service_notice": "@notice",
            "address": None,
            "lat": 44.0,
            "lon": -80.0,
            "media_url": "https://example.org/a?b=1,2",
            "channel": "carrier pigeon",
            "expected_at": at + timedelta(days=200, microseconds=123456),
        },
        {
            "description": "Café — 東京 🚧 back\\slash \x01 control\ttab \x7f",
            "address": "\tleading tab",
            "address_id": "\\.",
            "lat": 0.00001,
            "lon": -0.5,
        },
        {
            "description": "=SUM(A1:A9)",
            "status": "closed",
            "status_notes": "CR LF\r\ninside",
            "lat": None,
            "lon": None,
            "address": "Address only",
            "ward_id": ward,
        },
        {"description": '"', "status_notes": "", "agency_responsible": "\r", "lat": -0.0},
        {"description": "\n", "address": "'", "zipcode": "M5H 2N2", "lon": 179.99999999999997},
        {"description": "plain words only", "address": "100 Queen St W"},
    ]


async def _world(client: httpx.AsyncClient) -> None:
    engine = engine_of(client)
    seed = await seed_catalog(engine)
    ward = await _ward(client, seed.jurisdiction_pk)
    services = [seed.service_pks["POTHOLE"], seed.service_pks["GRAFFITI"]]
    for n, values in enumerate(_awkward(ward)):
        # Microseconds, and both sides of a DST change (the jurisdiction's zone).
        at = NOW - timedelta(days=90 * n, seconds=n, microseconds=654321)
        row = {"requested_at": at, "updated_at": at + timedelta(minutes=5), **values}
        await make_request(engine, seed.jurisdiction_pk, services[n % 2], **row)
    await make_request(engine, seed.jurisdiction_pk, services[0], sandbox=True)


async def _export(client: httpx.AsyncClient, fmt: str, **params: Any) -> bytes:
    response = await client.get(f"{BASE}/exports/requests.{fmt}", params=params)
    assert response.status_code == 200, response.text
    return response.content


def _encoded(items: list[dict[str, Any]], fmt: ExportFormat, *, extensions: bool) -> bytes:
    encoder = Encoder(fmt, extensions=extensions)
    return encoder.head() + encoder.batch(items) + encoder.tail()


FILTERS: list[dict[str, str]] = [
    {},
    {"extensions": "true"},
    {"status": "closed"},
    {"service_code": "GRAFFITI", "extensions": "true"},
    {"q": "quoted"},
    {"q": "plain"},
    {"bbox": "-80.5,43,-79,44.5"},
    {"lat": "43.6535", "long": "-79.3841", "radius": "500"},
    {"start_date": (NOW - timedelta(days=100)).isoformat()},
]


@pytest.fixture
async def exporter(make_client: AppFactory) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await make_client(exports=ExportSettings(batch_size=2))
    await clear(engine_of(client))
    await _world(client)
    return client


async def test_exports_are_the_encoders_bytes_for_the_items_of_get_requests(
    exporter: httpx.AsyncClient,
) -> None:
    for extensions in (False, True):
        params = {
            "start_date": (NOW - timedelta(days=600)).isoformat(),
            "end_date": (NOW + timedelta(days=1)).isoformat(),
            "page_size": "100",
        }
        if extensions:
            params["extensions"] = "true"
        listed = await exporter.get(f"{BASE}/requests.json", params=params)
        assert listed.status_code == 200, listed.text
        items = listed.json()
        assert len(items) == 7
        for item in items:  # an export's extensions: no details (photos, attributes...)
            if extensions:
                extra = item["extended_attributes"]
                item["extended_attributes"] = {k: extra[k] for k in CSV_EXTENSION_COLUMNS}
        for fmt in ExportFormat:
            got = await _export(
                exporter, fmt.value, **({"extensions": "true"} if extensions else {})
            )
            assert got == _encoded(items, fmt, extensions=extensions), (fmt, extensions)
    # The awkward values are there (so the comparison compared them).
    text = (await _export(exporter, "csv", extensions="true")).decode()
    assert '"comma, ""quoted"" and\na line break"' in text
    assert '"Ward 1, ""Downtown"""' in text
    assert "'=SUM(A1:A9)" in text
    assert "\r\n" in text
    assert "東京" in text
    assert ",44.0,-80.0," in text
    assert ",1e-05,-0.5," in text


async def test_copy_and_python_write_the_same_bytes(
    exporter: httpx.AsyncClient, make_client: AppFactory
) -> None:
    """PostgreSQL only: the same database read by the COPY path and by the Python path."""
    if engine_of(exporter).dialect.name != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    python: httpx.AsyncClient = await make_client(
        exports=ExportSettings(batch_size=2, sql_copy=False)
    )
    before = exporter.app.state.open311.store.statements  # type: ignore[attr-defined]
    compared = 0
    for params in FILTERS:
        for fmt in ExportFormat:
            copied = await _export(exporter, fmt.value, **params)
            written = await _export(python, fmt.value, **params)
            assert copied == written, (fmt, params)
            compared += copied.count(b"\n") > 1
    assert compared > len(FILTERS)  # most of them hold rows
    # The COPY path sent no keyset reads (the rows came from COPY).
    assert exporter.app.state.open311.store.statements == before  # type: ignore[attr-defined]
    # An empty export too.
    for fmt in ExportFormat:
        params = {"end_date": (NOW - timedelta(days=2000)).isoformat()}
        assert await _export(exporter, fmt.value, **params) == await _export(
            python, fmt.value, **params
        )


COPIED_CSV = b'1,"a\nb",x\n2,"q""\n""",y\n3,,\n4,"\r\n",""""\n'
WRITTEN_CSV = b'1,"a\nb",x\r\n2,"q""\n""",y\r\n3,,\r\n4,"\r\n",""""\r\n'
COPIED_LINES = b'{"id":"1"}\n{"id":"2","d":"a\\nb"}\n{"id":"3"}\n'
WRITTEN_FEATURES = b'{"id":"1"},\n{"id":"2","d":"a\\nb"},\n{"id":"3"}'


@pytest.mark.parametrize(
    ("fmt", "copied", "written"),
    [
        (ExportFormat.csv, COPIED_CSV, WRITTEN_CSV),
        (ExportFormat.geojson, COPIED_LINES, WRITTEN_FEATURES),
        (ExportFormat.ndjson, COPIED_LINES, COPIED_LINES),
    ],
)
def test_copied_rows_are_made_the_encoders_bytes_wherever_chunks_end(
    fmt: ExportFormat, copied: bytes, written: bytes
) -> None:
    """COPY's chunks may end anywhere (inside a quoted field too): cut at every place."""
    for one in range(len(copied) + 1):
        for two in range(one, len(copied) + 1):
            rows = CopiedRows(fmt)
            parts = [copied[:one], copied[one:two], copied[two:]]
            body = b"".join(rows.chunk(part) for part in parts)
            assert body == written, (one, two)
            assert rows.head() + body + rows.tail() == _encoded_head_tail(fmt, written)


def _encoded_head_tail(fmt: ExportFormat, body: bytes) -> bytes:
    encoder = Encoder(fmt)
    return encoder.head() + body + encoder.tail()

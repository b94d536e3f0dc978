"""PostGIS round trip through asyncpg + GeoAlchemy2: stored points are real SRID 4326 points."""

from __future__ import annotations

import httpx
import pytest
from geoalchemy2.shape import to_shape
from sqlalchemy import func, select, text

from app.store.tables import ServiceRequest
from tests.conftest import Seed, engine_of

REQUEST = ServiceRequest.__table__


@pytest.mark.parametrize("backend", ["postgis"], indirect=True)
async def test_posted_point_is_a_postgis_point(client: httpx.AsyncClient, seeded: Seed) -> None:
    response = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": seeded.api_key,
            "service_code": "LITTER.BIN",
            "lat": "43.6534",
            "long": "-79.3841",
        },
    )
    assert response.status_code == 200, response.text
    request_id = int(response.json()[0]["service_request_id"])
    engine = engine_of(client)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(REQUEST.c.location, func.ST_SRID(REQUEST.c.location)).where(
                    REQUEST.c.id == request_id
                )
            )
        ).one()
        point = to_shape(row[0])
        assert (point.x, point.y) == pytest.approx((-79.3841, 43.6534))
        assert row[1] == 4326
        covered = (
            (
                await conn.execute(
                    select(REQUEST.c.id).where(
                        func.ST_Covers(
                            func.ST_MakeEnvelope(-79.4, 43.6, -79.3, 43.7, 4326), REQUEST.c.location
                        )
                    )
                )
            )
            .scalars()
            .all()
        )
        assert request_id in covered
        index = (
            await conn.execute(
                text(
                    "select indexdef from pg_indexes where tablename = 'service_request' "
                    "and indexname = 'ix_service_request_location'"
                )
            )
        ).scalar_one()
        assert "USING gist (location)" in index


async def test_coordinates_are_kept_exactly(client: httpx.AsyncClient, seeded: Seed) -> None:
    response = await client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": seeded.api_key,
            "service_code": "LITTER.BIN",
            "lat": "43.6534",
            "long": "-79.3841",
        },
    )
    request_id = int(response.json()[0]["service_request_id"])
    async with engine_of(client).connect() as conn:
        lat, lon = (
            await conn.execute(
                select(REQUEST.c.lat, REQUEST.c.lon).where(REQUEST.c.id == request_id)
            )
        ).one()
    assert (lat, lon) == (43.6534, -79.3841)

"""Captured real GeoReport v2 responses parse into our mirror through the same code.

``httpx.MockTransport`` serves the files of ``tests/data/open311/`` (see its README) as the
partners' ``services`` and ``requests``; definitions answer 404 (none were captured).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.federation.partners import add_remote
from app.store.tables import FederationRequest, ServiceRequest
from tests.conftest import engine_of
from tests.federation.conftest import BASE, invalidate

DATA = Path(__file__).parents[1] / "data" / "open311"
MAPPING = FederationRequest.__table__
REQUEST = ServiceRequest.__table__

# city: (format, services file, requests file, services, requests, services with metadata,
#        sync window)
CITIES = {
    "toronto": (
        "json",
        "toronto_services_2018.json",
        "toronto_requests_2018-09-26_to_2018-10-28.json",
        6,
        1000,
        5,
        ("2018-09-01", "2018-11-01"),
    ),
    "bloomington": (
        "json",
        "bloomington_in_services_2012.json",
        "bloomington_in_requests_2012.json",
        46,
        21,
        11,
        ("2012-05-01", "2012-06-01"),
    ),
    "sanfrancisco": (
        "xml",
        "san_francisco_services_2012.xml",
        "san_francisco_requests_2012.xml",
        38,
        56,
        0,
        ("2012-05-01", "2012-06-01"),
    ),
    "giessen": ("xml", "giessen_de_services_2018.xml", None, 8, 0, 0, ("2018-01-01", "2018-02-01")),
}


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("city", CITIES)
async def test_captured_responses_are_mirrored(
    client: httpx.AsyncClient, make_federation, city: str
) -> None:
    fmt, services_file, requests_file, n_services, n_requests, n_metadata, window = CITIES[city]
    code = f"{city}.example.net"
    await add_remote(
        engine_of(client), code=code, name=city, url="http://captured.test/v2", fmt=fmt
    )

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"/v2/services.{fmt}":
            return httpx.Response(200, content=(DATA / services_file).read_bytes())
        if path == f"/v2/requests.{fmt}":
            if requests_file is None:
                return httpx.Response(
                    200, content=b"[]" if fmt == "json" else b"<service_requests/>"
                )
            return httpx.Response(200, content=(DATA / requests_file).read_bytes())
        errors = (
            b'[{"code":404,"description":"not captured"}]'
            if fmt == "json"
            else b"<errors><error><code>404</code><description>not captured</description>"
            b"</error></errors>"
        )
        return httpx.Response(404, content=errors)

    federation = make_federation(
        {"http://captured.test": httpx.MockTransport(handler)}, sync_slice_days=365
    )
    [report] = await federation.refresh(code, window=(_day(window[0]), _day(window[1])))
    assert report.error is None, report.error
    assert report.services == n_services
    assert report.added == n_requests
    assert len(report.warnings) == n_metadata  # definitions that were not captured
    invalidate(client)

    services = (await client.get(f"{BASE}/services.json", params={"jurisdiction_id": code})).json()
    assert len(services) == n_services
    assert all(isinstance(s["service_code"], str) and s["service_code"] for s in services)
    params = {"jurisdiction_id": code, "start_date": window[0], "end_date": window[1]}
    listed = await client.get(f"{BASE}/requests.json", params=params)
    assert listed.status_code == 200
    items = listed.json()
    assert len(items) == n_requests
    for item in items:
        assert item["status"] in ("open", "closed")
        assert (item["lat"] is None) == (item["long"] is None)
        assert item["lat"] != 0.0 or item["long"] != 0.0
    xml = await client.get(f"{BASE}/requests.xml", params=params)
    assert xml.status_code == 200
    async with engine_of(client).connect() as conn:
        mapped = (await conn.execute(select(func.count()).select_from(MAPPING))).scalar_one()
    assert mapped == n_requests
    if city == "toronto":
        # The integer service_code 30102 and integer request ids arrive as text.
        assert "30102" in {s["service_code"] for s in services}
        async with engine_of(client).connect() as conn:
            ours = (
                await conn.execute(
                    select(MAPPING.c.service_request_id).where(
                        MAPPING.c.partner_request_id == "101005570514"
                    )
                )
            ).scalar_one()
        [one] = (
            await client.get(f"{BASE}/requests/{ours}.json", params={"jurisdiction_id": code})
        ).json()
        assert one["address"] == "Quilter Rd / Burnett Ave, North York"
        assert one["status_notes"] == "In progress - The request has been scheduled."
        assert sum(1 for i in items if i["lat"] is None) == 4
    if city == "sanfrancisco":
        # "2012-05-22 23:57:23.97" (no T, no zone) is read in the jurisdiction's zone; 0.0/0.0
        # coordinates are unknown.
        assert all(i["requested_datetime"].startswith("2012-05-2") for i in items)
        assert any(i["lat"] is None for i in items)
    # A second refresh updates the same copies.
    [again] = await federation.refresh(code, window=(_day(window[0]), _day(window[1])))
    assert (again.added, again.updated) == (0, n_requests)

"""A first end-to-end pass over every method in both formats."""

from __future__ import annotations

import httpx

from tests.conftest import Seed
from tests.support import fetch_both, validate_schema


async def test_services_both_formats(client: httpx.AsyncClient, seeded: Seed) -> None:
    both = await fetch_both(client, "services")
    assert both.xml_root == "services"
    validate_schema("services", both.json)
    assert {s["service_code"] for s in both.json} == {
        "POTHOLE",
        "GRAFFITI",
        "FEEDBACK",
        "LITTER.BIN",
    }


async def test_post_then_get(client: httpx.AsyncClient, seeded: Seed) -> None:
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
    validate_schema("post", response.json())
    request_id = response.json()[0]["service_request_id"]
    both = await fetch_both(client, f"requests/{request_id}")
    validate_schema("requests", both.json)
    assert both.json[0]["service_code"] == "LITTER.BIN"

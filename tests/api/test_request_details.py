"""extensions=true: each request's detailed status, media URLs, public attribute values and
public update history (issue 18 point 6), in both formats, on both backends; what is not
public never appears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import insert

from app.settings import RequestsSettings
from app.store.tables import RequestUpdate
from tests.api.test_get_requests import store
from tests.conftest import AppFactory, Seed, engine_of
from tests.support import fetch_both

UPDATE = RequestUpdate.__table__
SECRETS = ("SECRET-42", "SANDBOX NOTE", "reporter@example.org", "EXT-9", "internal-code")
NOW = datetime.now(UTC).replace(microsecond=0)
TORONTO = ZoneInfo("America/Toronto")


async def add_update(client: httpx.AsyncClient, seed: Seed, pk: str, **row: Any) -> int:
    values: dict[str, Any] = {
        "jurisdiction_id": seed.jurisdiction_pk,
        "service_request_id": int(pk),
        "status": "open",
        "created_at": row.get("updated_at", NOW),
        **row,
    }
    async with engine_of(client).begin() as conn:
        result = await conn.execute(insert(UPDATE).values(values).returning(UPDATE.c.id))
        return int(result.scalar_one())


async def detailed_request(client: httpx.AsyncClient, seed: Seed) -> tuple[str, list[int]]:
    pk = await store(
        client,
        seed,
        NOW - timedelta(days=2),
        description="Deep pothole",
        detailed_status="in_progress",
        media_url="https://img.example.org/a.jpg",
        media_urls=["https://img.example.org/a.jpg", "https://img.example.org/b.jpg"],
        attributes={
            "SIZE": "LARGE",
            "DEPTH": "12",
            "LANES": ["N", "BIKE"],
            "NOTE": "not a question",  # a non-variable attribute: nothing to answer
            "crm_ref": "SECRET-42",  # a client's own code: not in the definition
        },
        email="reporter@example.org",
    )
    updates = [
        await add_update(
            client,
            seed,
            pk,
            updated_at=NOW - timedelta(days=1, hours=2),
            detailed_status="acknowledged",
            description="Seen by the road crew",
            external_status_code="internal-code",
        ),
        await add_update(
            client,
            seed,
            pk,
            updated_at=NOW - timedelta(days=1),
            detailed_status="in_progress",
            description="Crew scheduled",
            external_id="EXT-9",
            api_key_id=seed.api_key_id,
            media_url="https://img.example.org/c.jpg",
        ),
        await add_update(
            client,
            seed,
            pk,
            updated_at=NOW - timedelta(hours=1),
            status="closed",
            detailed_status="fixed",
            description="",
        ),
    ]
    # A sandbox update is never in a real request's public history.
    await add_update(
        client,
        seed,
        pk,
        updated_at=NOW - timedelta(hours=2),
        description="SANDBOX NOTE",
        sandbox=True,
    )
    return pk, updates


def w3c(moment: datetime) -> str:
    return moment.astimezone(TORONTO).isoformat()


async def test_extensions_carry_the_public_details(client: httpx.AsyncClient, seeded: Seed) -> None:
    pk, updates = await detailed_request(client, seeded)
    listed = await fetch_both(client, "requests", {"extensions": "true"})
    single = await fetch_both(client, f"requests/{pk}", {"extensions": "true"})
    for both in (listed, single):
        (item,) = both.json
        extended = item["extended_attributes"]
        assert extended["detailed_status"] == "in_progress"
        assert extended["media_urls"] == [
            "https://img.example.org/a.jpg",
            "https://img.example.org/b.jpg",
        ]
        # The variable attributes of the definition, in its order, one entry a value.
        assert extended["attributes"] == [
            {
                "code": "SIZE",
                "name": "How big is it?",
                "value": "LARGE",
                "value_name": "Larger than a plate",
            },
            {"code": "DEPTH", "name": "How deep is it?", "value": "12", "value_name": None},
            {"code": "LANES", "name": "Which lanes?", "value": "N", "value_name": "Northbound"},
            {
                "code": "LANES",
                "name": "Which lanes?",
                "value": "BIKE",
                "value_name": extended["attributes"][3]["value_name"],
            },
        ]
        assert extended["attributes"][3]["value_name"]
        # The history, oldest first, with exactly the public fields.
        assert [note["update_id"] for note in extended["notes"]] == [str(u) for u in updates]
        assert extended["notes"][0] == {
            "update_id": str(updates[0]),
            "datetime": w3c(NOW - timedelta(days=1, hours=2)),
            "status": "open",
            "detailed_status": "acknowledged",
            "description": "Seen by the road crew",
            "media_url": None,
            "media_urls": [],
            "photos": [],
        }
        assert extended["notes"][1]["media_url"] == "https://img.example.org/c.jpg"
        assert extended["notes"][1]["media_urls"] == ["https://img.example.org/c.jpg"]
        assert extended["notes"][2]["status"] == "closed"
        assert extended["notes"][2]["description"] is None
        # Private: another code's value, the sandbox update, who made an update, the reporter.
        for secret in SECRETS:
            assert secret not in both.json_response.text, secret
            assert secret not in both.xml_response.text, secret
        assert b"<notes><note><update_id>" in both.xml_response.content
    # GeoJSON carries the same extended attributes; without extensions there are none.
    feature = (await client.get(f"/open311/v2/requests/{pk}.geojson?extensions=true")).json()
    assert feature["properties"]["extended_attributes"] == single.json[0]["extended_attributes"]
    plain = await fetch_both(client, f"requests/{pk}")
    assert "extended_attributes" not in plain.json[0]
    assert "Crew scheduled" not in plain.json_response.text


async def test_details_of_a_request_without_any(client: httpx.AsyncClient, seeded: Seed) -> None:
    pk = await store(client, seeded, NOW - timedelta(days=1), code="FEEDBACK")
    both = await fetch_both(client, f"requests/{pk}", {"extensions": "true"})
    extended = both.json[0]["extended_attributes"]
    assert (extended["detailed_status"], extended["media_urls"]) == (None, [])
    assert (extended["attributes"], extended["notes"]) == ([], [])


async def test_history_is_bounded(
    client: httpx.AsyncClient, seeded: Seed, make_client: AppFactory
) -> None:
    pk, updates = await detailed_request(client, seeded)
    capped = await make_client(requests=RequestsSettings(extensions_max_notes=2))
    both = await fetch_both(capped, f"requests/{pk}", {"extensions": "true"})
    notes = both.json[0]["extended_attributes"]["notes"]
    assert [note["update_id"] for note in notes] == [str(u) for u in updates[-2:]]

"""The service promise over real HTTP on both backends: divisions and recorded moves, catalogue
imports with their dry-run diff, service levels, business calendars and ``expected_at``, staff
overrides of expected_datetime in the history, intake channels and first-contact resolution.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from app.domain.api_keys import KeyInfo, create_key, verify_key
from app.domain.catalog import read_services
from app.domain.channels import intake_channel
from app.domain.service_promise import expected_at, set_calendar
from app.errors import Forbidden
from app.georeport.codec import decode_json, encode_json, encode_xml
from app.georeport.models import ServiceRequest
from app.settings import ServicePromiseSettings
from app.store.engine import write_transaction
from app.store.tables import ServiceType
from tests.conftest import AppFactory, Seed, engine_of, seed_catalog
from tests.factories import make_request
from tests.support import assert_parity, error_descriptions, fetch_both, xml_to_value

BASE = "/open311/v2"
ADMIN = "/admin/v1"
J2 = "other.example.org"
SERVICE = ServiceType.__table__
TORONTO = ZoneInfo("America/Toronto")
POTHOLE_ANSWERS = {
    "attribute[SIZE]": "SMALL",
    "attribute[DEPTH]": "4",
    "attribute[LANES][]": "N",
}


async def _key(client: httpx.AsyncClient, app: str, **options: Any) -> tuple[str, KeyInfo]:
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, app, app=app, **options)
    async with engine_of(client).connect() as conn:
        return key, await verify_key(conn, key)


class Admin:
    """Admin API calls with one key, in one jurisdiction."""

    def __init__(self, client: httpx.AsyncClient, key: str, jurisdiction: str) -> None:
        self.client, self.key, self.jurisdiction = client, key, jurisdiction

    async def call(
        self, method: str, path: str, body: Any = None, *, expect: int | None = None
    ) -> Any:
        response = await self.client.request(
            method,
            f"{ADMIN}/{path}",
            json=body,
            params={"jurisdiction_id": self.jurisdiction},
            headers={"Authorization": f"Bearer {self.key}"},
        )
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json()


@pytest.fixture
async def admin(client: httpx.AsyncClient, seeded: Seed) -> Admin:
    key, _ = await _key(client, "ops", scopes=["admin"])
    return Admin(client, key, seeded.jurisdiction_id)


async def _services(client: httpx.AsyncClient, seeded: Seed) -> dict[str, Any]:
    async with engine_of(client).connect() as conn:
        found = await read_services(conn, seeded.jurisdiction_pk, inactive=True)
    return {s.code: s for s in found}


# --- divisions and moves ---------------------------------------------------------------------


async def test_divisions_and_recorded_moves(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    made = await admin.call(
        "POST", "divisions.json", {"code": " Roads ", "name": "Transportation Services"}, expect=201
    )
    assert (made["code"], made["name"], made["services"]) == ("roads", "Transportation Services", 0)
    taken = await admin.call(
        "POST", "divisions.json", {"code": "roads", "name": "Other"}, expect=409
    )
    assert "exists already" in error_descriptions(taken)[0]
    same_name = await admin.call(
        "POST", "divisions.json", {"code": "tr2", "name": "transportation services"}, expect=409
    )
    assert "already named" in error_descriptions(same_name)[0]
    bad = await admin.call("POST", "divisions.json", {"code": "a b", "name": "X"}, expect=400)
    assert error_descriptions(bad)

    before = datetime.now(UTC) - timedelta(seconds=1)
    moved = await admin.call(
        "POST",
        "services/POTHOLE/move.json",
        {"division": "ROADS", "reason": "Roads team"},
        expect=200,
    )
    assert moved["moved"] is True
    move = moved["move"]
    assert (move["from_division"], move["to_division"], move["to_name"]) == (
        None,
        "roads",
        "Transportation Services",
    )
    admin_id = (await verify_key_of(client, admin.key)).id
    assert move["moved_by"] == f"admin key {admin_id} (ops)"
    assert move["reason"] == "Roads team"
    assert datetime.fromisoformat(move["moved_at"]) >= before
    again = await admin.call(
        "POST", "services/POTHOLE/move.json", {"division": "roads"}, expect=200
    )
    assert (again["moved"], again["move"]) == (False, None)
    await admin.call("POST", "services/NOPE/move.json", {"division": "roads"}, expect=404)
    await admin.call("POST", "services/POTHOLE/move.json", {"division": "nowhere"}, expect=404)

    # agency_responsible comes from the division: in the admin listing and in new requests.
    renamed = await admin.call(
        "POST", "divisions/roads.json", {"name": "Transportation Services Division"}, expect=200
    )
    assert renamed["name"] == "Transportation Services Division"
    listed = {s["service_code"]: s for s in await admin.call("GET", "services.json", expect=200)}
    assert listed["POTHOLE"]["division"] == "roads"
    assert listed["POTHOLE"]["agency_responsible"] == "Transportation Services Division"
    assert listed["GRAFFITI"]["division"] is None
    posted = await client.post(
        f"{BASE}/requests.json",
        data={
            "api_key": seeded.api_key,
            "jurisdiction_id": seeded.jurisdiction_id,
            "service_code": "POTHOLE",
            "lat": "43.6534",
            "long": "-79.3841",
            **POTHOLE_ANSWERS,
        },
    )
    assert posted.status_code == 200, posted.text
    request_id = posted.json()[0]["service_request_id"]
    both = await fetch_both(
        client, f"requests/{request_id}", {"jurisdiction_id": seeded.jurisdiction_id}
    )
    assert both.json[0]["agency_responsible"] == "Transportation Services Division"

    # A division holding services stays; moving them out lets it go. Moves are listed.
    held = await admin.call("DELETE", "divisions/roads.json", expect=409)
    assert "still holds 1 service" in error_descriptions(held)[0]
    await admin.call("POST", "divisions.json", {"code": "parks", "name": "Parks"}, expect=201)
    await admin.call("POST", "services/POTHOLE/move.json", {"division": "parks"}, expect=200)
    gone = await admin.call("DELETE", "divisions/roads.json", expect=200)
    assert gone == {"code": "roads", "removed": True}
    assert [d["code"] for d in await admin.call("GET", "divisions.json", expect=200)] == ["parks"]
    moves = await admin.call("GET", "moves.json", expect=200)
    assert [(m["from_division"], m["to_division"]) for m in moves] == [
        ("roads", "parks"),
        (None, "roads"),
    ]
    # The record keeps the removed division's code and name as they were.
    assert moves[0]["from_name"] == "Transportation Services Division"


async def verify_key_of(client: httpx.AsyncClient, key: str) -> KeyInfo:
    async with engine_of(client).connect() as conn:
        return await verify_key(conn, key)


async def test_a_restricted_admin_works_only_in_its_jurisdiction(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    await seed_catalog(engine_of(client), code=J2)
    key, _ = await _key(client, "city two ops", scopes=["admin"], jurisdiction=J2)
    elsewhere = Admin(client, key, seeded.jurisdiction_id)
    home = Admin(client, key, J2)
    for method, path, body in (
        ("GET", "divisions.json", None),
        ("POST", "divisions.json", {"code": "roads", "name": "Roads"}),
        ("POST", "services/POTHOLE/move.json", {"division": "roads"}),
        (
            "POST",
            "services/POTHOLE/levels.json",
            {"resolve": {"amount": 2, "unit": "calendar_days"}},
        ),
        (
            "POST",
            "catalog/import.json",
            {"format": "csv", "content": "service_code,service_name\nX1,X\n", "dry_run": True},
        ),
        ("GET", "services.json", None),
        ("GET", "moves.json", None),
        ("GET", "calendar.json", None),
    ):
        refused = await elsewhere.call(method, path, body, expect=403)
        assert "not valid for this jurisdiction" in error_descriptions(refused)[0], path
    assert (await _services(client, seeded))["POTHOLE"].division is None
    assert (await _services(client, seeded))["POTHOLE"].service_levels is None
    await home.call("POST", "divisions.json", {"code": "roads", "name": "Roads"}, expect=201)
    moved = await home.call("POST", "services/POTHOLE/move.json", {"division": "roads"}, expect=200)
    assert moved["move"]["moved_by"].startswith("admin key ")
    # The first city still has no division.
    assert (
        await Admin(
            client, (await _key(client, "ops", scopes=["admin"]))[0], seeded.jurisdiction_id
        ).call("GET", "divisions.json", expect=200)
        == []
    )


async def test_a_restricted_admin_is_refused_before_its_input_is_read(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    """The jurisdiction check comes with the key check, before the path and body are read: an
    admin key of another jurisdiction gets 403 whatever it sends, never a 400 about its input."""
    await seed_catalog(engine_of(client), code=J2)
    key, _ = await _key(client, "city two ops", scopes=["admin"], jurisdiction=J2)
    elsewhere = Admin(client, key, seeded.jurisdiction_id)
    home = Admin(client, key, J2)
    for method, path, body in (
        ("POST", "divisions.json", {"code": 5, "name": "Roads"}),
        ("POST", "requests/1/updates.json", {"status": 5}),
        ("GET", f"requests/{2**64}.json", None),
        ("GET", f"requests/{2**64}/updates.json", None),
    ):
        refused = await elsewhere.call(method, path, body, expect=403)
        assert "not valid for this jurisdiction" in error_descriptions(refused)[0], path
        # In its own jurisdiction the same input is a 400 about the input.
        await home.call(method, path, body, expect=400)


# --- catalogue import ------------------------------------------------------------------------

PARKS_JSON = {
    "divisions": [{"code": "pfr", "name": "Parks, Forestry & Recreation"}],
    "services": [
        {
            "service_code": "PFR-1",
            "service_name": "Park washroom cleaning",
            "type": "realtime",
            "service_levels": {"acknowledge": "1 business_day", "resolve": "3 business_days"},
            "attributes": [
                {
                    "code": "WHERE",
                    "datatype": "string",
                    "required": True,
                    "order": 1,
                    "description": "Which washroom?",
                }
            ],
        },
        {
            "service_code": "POTHOLE",
            "service_name": "Pothole in a park path",
            "type": "realtime",
            "service_levels": "resolve=48 calendar_hours",
        },
    ],
}


async def _import(admin: Admin, body: dict[str, Any], expect: int = 200) -> Any:
    return await admin.call("POST", "catalog/import.json", body, expect=expect)


async def test_import_dry_run_shows_the_diff_and_changes_nothing_then_applies(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    before = await _services(client, seeded)
    content = json.dumps(PARKS_JSON)
    dry = await _import(
        admin, {"format": "json", "content": content, "division": "pfr", "dry_run": True}
    )
    assert dry["applied"] is False
    assert dry["summary"] == {"added": 1, "changed": 0, "moved": 1, "removed": 0, "unchanged": 0}
    assert dry["divisions"] == [
        {"code": "pfr", "name": "Parks, Forestry & Recreation", "change": "added", "before": None}
    ]
    changes = {s["service_code"]: s for s in dry["services"]}
    assert changes["PFR-1"]["change"] == "added"
    assert changes["PFR-1"]["to_division"] == "pfr"
    pothole = changes["POTHOLE"]
    assert (pothole["change"], pothole["from_division"], pothole["to_division"]) == (
        "moved",
        None,
        "pfr",
    )
    fields = {f["field"]: (f["before"], f["after"]) for f in pothole["fields"]}
    assert fields["service_name"] == ("Pothole", "Pothole in a park path")
    assert fields["service_levels"] == (None, "resolve=48 calendar_hours")
    assert "attributes" in fields  # JSON replaces POTHOLE's three attributes by none
    assert dry["diff"][0] == "+ division pfr: 'Parks, Forestry & Recreation' (new)"
    assert "> POTHOLE  Pothole in a park path: moved from (no division) to pfr" in dry["diff"]
    assert "    service_name: 'Pothole' -> 'Pothole in a park path'" in dry["diff"]
    # Nothing was written.
    assert await _services(client, seeded) == before
    assert await admin.call("GET", "divisions.json", expect=200) == []
    assert await admin.call("GET", "moves.json", expect=200) == []

    applied = await _import(admin, {"format": "json", "content": content, "division": "pfr"})
    assert applied["applied"] is True
    assert applied["summary"] == dry["summary"]
    after = await _services(client, seeded)
    assert after["PFR-1"].division == "pfr"
    assert after["PFR-1"].agency_responsible == "Parks, Forestry & Recreation"
    assert after["PFR-1"].service_levels == "acknowledge=1 business_day; resolve=3 business_days"
    assert [a.code for a in after["PFR-1"].attributes] == ["WHERE"]
    assert after["POTHOLE"].name == "Pothole in a park path"
    assert after["POTHOLE"].service_levels == "resolve=48 calendar_hours"
    moves = await admin.call("GET", "moves.json", expect=200)
    assert {m["service_code"] for m in moves} == {"PFR-1", "POTHOLE"}
    assert all(m["moved_by"].endswith("(ops) (import)") for m in moves)
    # The same import again changes nothing.
    twice = await _import(admin, {"format": "json", "content": content, "division": "pfr"})
    assert twice["summary"] == {"added": 0, "changed": 0, "moved": 0, "removed": 0, "unchanged": 2}
    assert twice["diff"][0] == "= 2 services unchanged"
    # The business-day targets of PFR-1 need a calendar, which this city has not.
    assert twice["warnings"] == dry["warnings"]
    assert "no business calendar" in twice["warnings"][0]
    assert "PFR-1" in twice["warnings"][0]
    assert twice["diff"][1:] == [f"! {twice['warnings'][0]}"]

    # CSV, the division's whole catalogue without POTHOLE: it would no longer be offered.
    csv = (
        "service_code,service_name,type,service_levels\n"
        "PFR-1,Park washroom cleaning,realtime,resolve=2 business_days\n"
    )
    dry_csv = await _import(
        admin, {"format": "csv", "content": csv, "division": "pfr", "dry_run": True}
    )
    changes = {s["service_code"]: s for s in dry_csv["services"]}
    assert changes["POTHOLE"]["change"] == "removed"
    assert changes["PFR-1"]["change"] == "changed"
    assert [f["field"] for f in changes["PFR-1"]["fields"]] == ["service_levels"]
    assert (
        "- POTHOLE  Pothole in a park path (no longer offered; its requests are kept)"
        in (dry_csv["diff"])
    )
    kept = await _import(
        admin, {"format": "csv", "content": csv, "division": "pfr", "keep_missing": True}
    )
    assert kept["summary"]["removed"] == 0
    assert (await _services(client, seeded))["POTHOLE"].active
    # CSV keeps the stored attributes.
    assert [a.code for a in (await _services(client, seeded))["PFR-1"].attributes] == ["WHERE"]
    request_pk = await make_request(
        engine_of(client), seeded.jurisdiction_pk, seeded.service_pks["POTHOLE"]
    )
    await _import(admin, {"format": "csv", "content": csv, "division": "pfr"})
    assert not (await _services(client, seeded))["POTHOLE"].active
    listed = await fetch_both(client, "services", {"jurisdiction_id": seeded.jurisdiction_id})
    assert "POTHOLE" not in [s["service_code"] for s in listed.json]
    assert "PFR-1" in [s["service_code"] for s in listed.json]
    kept_request = await fetch_both(
        client, f"requests/{request_pk}", {"jurisdiction_id": seeded.jurisdiction_id}
    )
    assert kept_request.json[0]["service_code"] == "POTHOLE"


async def test_import_refusals_write_nothing(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    before = await _services(client, seeded)
    broken = await _import(
        admin,
        {
            "format": "csv",
            "content": "service_code,service_name,service_levels,division\n"
            "A1,,resolve=5 weeks,Not A Code\nA1,Again,,\n",
        },
        expect=400,
    )
    problems = error_descriptions(broken)
    assert "line 2: service_name is empty" in problems
    assert any(p.startswith("line 2: service_levels:") for p in problems)
    assert any(p.startswith("line 2: division 'Not A Code'") for p in problems)
    assert "line 3: service_code 'A1' is already on line 2" in problems
    unknown = await _import(
        admin,
        {"format": "csv", "content": "service_code,service_name\nA1,A\n", "division": "pfr"},
        expect=404,
    )
    assert "No division 'pfr'" in error_descriptions(unknown)[0]
    clash = await _import(
        admin,
        {
            "format": "json",
            "content": json.dumps(
                {
                    "divisions": [
                        {"code": "a", "name": "Same"},
                        {"code": "b", "name": "same"},
                    ],
                    "services": [{"service_code": "A1", "service_name": "A"}],
                }
            ),
        },
        expect=409,
    )
    assert "would both be named" in error_descriptions(clash)[0]
    assert await _services(client, seeded) == before
    assert await admin.call("GET", "divisions.json", expect=200) == []


# --- service levels, calendars, expected_at ------------------------------------------------------


async def test_service_levels_round_trip(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    body = {
        "acknowledge": {"amount": 1, "unit": "business_days"},
        "resolve": {"amount": 5.0, "unit": "business_days"},
    }
    stored = await admin.call("POST", "services/GRAFFITI/levels.json", body, expect=200)
    text = "acknowledge=1 business_day; resolve=5 business_days"
    assert stored == {"service_code": "GRAFFITI", "service_levels": text}
    listed = {s["service_code"]: s for s in await admin.call("GET", "services.json", expect=200)}
    assert listed["GRAFFITI"]["service_levels"] == text
    catalog = await client.app.state.open311.catalogs.get(seeded.jurisdiction_pk)  # type: ignore[attr-defined]
    graffiti = catalog.get("GRAFFITI")
    assert [str(level) for level in graffiti.levels] == [
        "acknowledge=1 business_day",
        "resolve=5 business_days",
    ]
    late = {
        "acknowledge": {"amount": 6, "unit": "business_days"},
        "resolve": {"amount": 5, "unit": "business_days"},
    }
    refused = await admin.call("POST", "services/GRAFFITI/levels.json", late, expect=400)
    assert "later than" in error_descriptions(refused)[0]
    too_long = {"resolve": {"amount": 400, "unit": "business_days"}}
    await admin.call("POST", "services/GRAFFITI/levels.json", too_long, expect=400)
    await admin.call("POST", "services/NOPE/levels.json", body, expect=404)
    cleared = await admin.call("POST", "services/GRAFFITI/levels.json", {}, expect=200)
    assert cleared["service_levels"] is None
    assert (await _services(client, seeded))["GRAFFITI"].levels == ()


async def test_expected_at_counts_on_the_jurisdiction_calendar(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    state = client.app.state.open311  # type: ignore[attr-defined]
    await admin.call(
        "POST",
        "services/POTHOLE/levels.json",
        {"resolve": {"amount": 5, "unit": "business_days"}},
        expect=200,
    )
    await admin.call(
        "POST",
        "services/LITTER.BIN/levels.json",
        {"resolve": {"amount": 48, "unit": "calendar_hours"}},
        expect=200,
    )
    # Friday 28 June 2024, 10:00 in Toronto; Monday 1 July is Canada Day.
    friday = datetime(2024, 6, 28, 10, 0, tzinfo=TORONTO)
    place = await state.jurisdictions.resolve(seeded.jurisdiction_id)
    catalog = await state.catalogs.get(seeded.jurisdiction_pk)
    # No calendar: business targets give nothing, calendar hours are elapsed time.
    assert place.calendar is None
    assert (await admin.call("GET", "calendar.json", expect=200))["source"] == "none"
    assert expected_at(place, catalog.get("POTHOLE"), friday) is None
    assert expected_at(place, catalog.get("LITTER.BIN"), friday) == friday + timedelta(hours=48)
    assert expected_at(place, catalog.get("FEEDBACK"), friday) is None  # no targets

    calendar = {
        "timezone": "America/Toronto",
        "hours": "Mon-Fri 08:30-16:30",
        "holidays": {"country": "CA", "subdivision": "ON"},
    }
    async with write_transaction(engine_of(client)) as conn:
        shown = await set_calendar(conn, place, calendar)
    assert shown["source"] == "stored"
    state.jurisdictions.invalidate()
    place = await state.jurisdictions.resolve(seeded.jurisdiction_id)
    assert place.calendar is not None
    # Tue 2, Wed 3, Thu 4, Fri 5, Mon 8 July: five business days after Friday's 10:00.
    due = expected_at(place, catalog.get("POTHOLE"), friday)
    assert due == datetime(2024, 7, 8, 10, 0, tzinfo=TORONTO)
    assert due is not None
    assert due.tzinfo is UTC
    # Saturday intake: the clock starts Tuesday 08:30 (Monday is Canada Day), a whole day ahead.
    saturday = datetime(2024, 6, 29, 11, 0, tzinfo=TORONTO)
    assert expected_at(place, catalog.get("POTHOLE"), saturday) == datetime(
        2024, 7, 8, 16, 30, tzinfo=TORONTO
    )
    read = await admin.call("GET", "calendar.json", expect=200)
    assert read["source"] == "stored"
    assert read["calendar"]["hours"] == "Mon-Fri 08:30-16:30"

    # A demo city without a stored calendar uses its illustrative one.
    async with engine_of(client).begin() as conn:
        from app.domain.catalog_import import upsert_jurisdiction

        await upsert_jurisdiction(
            conn, {"jurisdiction_id": "toronto.ca", "name": "T", "timezone": "America/Toronto"}
        )
    state.jurisdictions.invalidate()
    toronto = Admin(client, admin.key, "toronto.ca")
    shown_example = await toronto.call("GET", "calendar.json", expect=200)
    assert shown_example["source"] == "example"
    assert shown_example["calendar"]["holidays"]["subdivision"] == "ON"
    assert (await state.jurisdictions.resolve("toronto.ca")).calendar is not None


async def test_a_staff_override_of_expected_datetime_is_in_the_history(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    request_pk = await make_request(
        engine_of(client),
        seeded.jurisdiction_pk,
        seeded.service_pks["POTHOLE"],
        expected_at=datetime(2030, 1, 10, 14, 0, tzinfo=UTC),
    )
    update = await admin.call(
        "POST",
        f"requests/{request_pk}/updates.json",
        {"expected_datetime": "2030-01-15T09:00:00-05:00", "description": "Crew booked"},
        expect=201,
    )
    assert update["update_id"]
    await admin.call(
        "POST", f"requests/{request_pk}/updates.json", {"status": "IN_PROGRESS"}, expect=201
    )
    history = await admin.call("GET", f"requests/{request_pk}/updates.json", expect=200)
    admin_id = (await verify_key_of(client, admin.key)).id
    assert [(h["expected_datetime"], h["key_id"]) for h in history] == [
        ("2030-01-15T09:00:00-05:00", admin_id),
        (None, admin_id),
    ]
    both = await fetch_both(
        client, f"requests/{request_pk}", {"jurisdiction_id": seeded.jurisdiction_id}
    )
    assert both.json[0]["expected_datetime"] == "2030-01-15T09:00:00-05:00"
    facts = await admin.call("GET", f"requests/{request_pk}.json", expect=200)
    assert facts["expected_datetime"] == "2030-01-15T09:00:00-05:00"
    assert facts["overdue"] is False


# --- channels and first contact ---------------------------------------------------------------


async def test_channels_are_stored_on_apps_and_keys(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    made = await admin.call(
        "POST",
        "keys.json",
        {"app": "Contact Centre", "scopes": ["submit", "update", "staff"], "channel": "phone"},
        expect=201,
    )
    app = await admin.call(
        "POST", "apps.json", {"name": "Lobby kiosk", "channel": "kiosk"}, expect=201
    )
    assert app["channel"] == "kiosk"
    inherits = await admin.call("POST", "keys.json", {"app": "Lobby kiosk"}, expect=201)
    refused = await admin.call("POST", "keys.json", {"app": "X", "channel": "fax"}, expect=400)
    assert error_descriptions(refused)
    keys = {k["id"]: k for k in await admin.call("GET", "keys.json", expect=200)}
    assert keys[made["id"]]["channel"] == "phone"
    assert keys[inherits["id"]]["channel"] == "kiosk"
    assert keys[seeded.api_key_id]["channel"] == "api"
    apps = {a["name"]: a for a in await admin.call("GET", "apps.json", expect=200)}
    assert apps["Lobby kiosk"]["channel"] == "kiosk"
    # The verified key carries its channel; intake takes it, or a staff key's choice.
    phone = await verify_key_of(client, made["key"])
    kiosk = await verify_key_of(client, inherits["key"])
    plain = await verify_key_of(client, seeded.api_key)
    assert (phone.channel, kiosk.channel, plain.channel) == ("phone", "kiosk", "api")
    assert intake_channel(phone, None) == "phone"
    assert intake_channel(phone, "Counter") == "counter"
    assert intake_channel(kiosk, " ") == "kiosk"
    with pytest.raises(Forbidden):
        intake_channel(kiosk, "web")
    # Changing the app's channel reaches its keys that have none of their own.
    await admin.call("POST", "apps.json", {"name": "Lobby kiosk", "channel": "counter"}, expect=201)
    assert (await verify_key_of(client, inherits["key"])).channel == "counter"


async def _close(
    client: httpx.AsyncClient, seeded: Seed, key: str, request_pk: int, status: str = "closed"
) -> None:
    response = await client.post(
        f"{BASE}/servicerequestupdates.json",
        data={
            "api_key": key,
            "jurisdiction_id": seeded.jurisdiction_id,
            "service_request_id": str(request_pk),
            "update_id": f"u-{request_pk}-{status}-{datetime.now(UTC).timestamp()}",
            "updated_datetime": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": status,
        },
    )
    assert response.status_code == 200, response.text


async def test_first_contact_resolution(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    engine = engine_of(client)
    agent, agent_info = await _key(
        client, "Contact Centre", scopes=["submit", "update", "staff"], channel="phone"
    )
    other, _ = await _key(client, "Back office", scopes=["update", "staff"])
    now = datetime.now(UTC)

    async def filed(minutes_ago: float, by: KeyInfo) -> int:
        return await make_request(
            engine,
            seeded.jurisdiction_pk,
            seeded.service_pks["LITTER.BIN"],
            requested_at=now - timedelta(minutes=minutes_ago),
            api_key_id=by.id,
            app_id=by.app_id,
            channel=by.channel,
        )

    async def facts(request_pk: int) -> dict[str, Any]:
        found: dict[str, Any] = await admin.call("GET", f"requests/{request_pk}.json", expect=200)
        return found

    quick = await filed(5, agent_info)
    assert (await facts(quick))["first_contact_resolution"] is False
    await _close(client, seeded, agent, quick)
    quick_facts = await facts(quick)
    assert (quick_facts["channel"], quick_facts["first_contact_resolution"]) == ("phone", True)
    assert quick_facts["app"] == "Contact Centre"

    late = await filed(120, agent_info)
    await _close(client, seeded, agent, late)
    assert (await facts(late))["first_contact_resolution"] is False

    by_another = await filed(5, agent_info)
    await _close(client, seeded, other, by_another)
    assert (await facts(by_another))["first_contact_resolution"] is False

    # Reopened: the contact did not resolve it after all.
    await admin.call("POST", f"requests/{quick}/updates.json", {"status": "reopen"}, expect=201)
    assert (await facts(quick))["first_contact_resolution"] is False

    # An admin key that filed the request and closes it through the admin API.
    desk, desk_info = await _key(
        client, "Front desk", scopes=["submit", "admin"], channel="counter"
    )
    counter = await filed(1, desk_info)
    await Admin(client, desk, seeded.jurisdiction_id).call(
        "POST", f"requests/{counter}/updates.json", {"status": "FIXED"}, expect=201
    )
    assert (await facts(counter))["first_contact_resolution"] is True
    assert (await facts(counter))["channel"] == "counter"


async def test_first_contact_window_follows_the_setting(
    make_client: AppFactory, seeded: Seed
) -> None:
    narrow = await make_client(service_promise=ServicePromiseSettings(first_contact_minutes=0))
    agent, agent_info = await _key(narrow, "Agent", scopes=["submit", "update", "staff"])
    request_pk = await make_request(
        engine_of(narrow),
        seeded.jurisdiction_pk,
        seeded.service_pks["LITTER.BIN"],
        requested_at=datetime.now(UTC) - timedelta(minutes=2),
        api_key_id=agent_info.id,
        app_id=agent_info.app_id,
    )
    await _close(narrow, seeded, agent, request_pk)
    async with engine_of(narrow).connect() as conn:
        from app.store.tables import ServiceRequest

        table = ServiceRequest.__table__
        resolved = (
            await conn.execute(
                select(table.c.first_contact_resolved).where(table.c.id == request_pk)
            )
        ).scalar_one()
    assert resolved is False


def test_extended_attributes_carry_channel_and_first_contact_in_both_formats() -> None:
    """The wire shape the read path gives with ``extensions=true`` (app.domain.channels)."""
    from app.domain.channels import extension_fields

    item = {
        "service_request_id": "1",
        "status": "closed",
        "status_notes": None,
        "service_name": "Litter bin",
        "service_code": "LITTER.BIN",
        "description": None,
        "agency_responsible": "Solid Waste",
        "service_notice": None,
        "requested_datetime": "2026-11-02T09:00:00-05:00",
        "updated_datetime": "2026-11-02T09:10:00-05:00",
        "expected_datetime": "2026-11-04T09:00:00-05:00",
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": 43.65,
        "long": -79.38,
        "media_url": None,
        "extended_attributes": {
            "ward": "10",
            "ward_name": "Spadina-Fort York",
            **extension_fields("phone", True),
        },
    }
    as_json = decode_json(encode_json([item]))
    root, as_xml = xml_to_value(encode_xml("service_requests", [item]))
    assert root == "service_requests"
    assert_parity(as_json, as_xml)
    ServiceRequest.model_validate(as_json[0])
    assert as_xml[0]["extended_attributes"]["first_contact_resolution"] == "true"
    assert extension_fields("fax", False) == {"channel": None, "first_contact_resolution": False}


async def test_intake_columns_fill_a_new_request_that_get_requests_shows(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin
) -> None:
    """What the POST hot path adds to the new request's columns (the lead wires it): stored as
    is, the
    request's expected_datetime is served by GET requests in both formats."""
    from sqlalchemy import insert

    from app.domain.requests import new_request
    from app.models.requests import Submission
    from app.store.tables import ServiceRequest

    REQUEST = ServiceRequest.__table__
    from app.domain.service_promise import intake_columns

    state = client.app.state.open311  # type: ignore[attr-defined]
    await admin.call(
        "POST",
        "services/LITTER.BIN/levels.json",
        {"resolve": {"amount": 36, "unit": "calendar_hours"}},
        expect=200,
    )
    place = await state.jurisdictions.resolve(seeded.jurisdiction_id)
    service = (await state.catalogs.get(seeded.jurisdiction_pk)).get("LITTER.BIN")
    _, staff = await _key(client, "Counter app", scopes=["submit", "staff"], channel="counter")
    _, plain = await _key(client, "Resident app", scopes=["submit"], channel="mobile_app")
    now = datetime(2026, 11, 2, 9, 30, tzinfo=TORONTO).astimezone(UTC)

    columns = intake_columns(place, service, plain, now)
    assert columns == {
        "expected_at": now + timedelta(hours=36),
        "channel": "mobile_app",
        "first_contact_resolved": False,
        "status": "open",
        "detailed_status": None,
    }
    staffed = intake_columns(place, service, staff, now, channel="phone", status="closed")
    assert (staffed["channel"], staffed["first_contact_resolved"]) == ("phone", True)
    with pytest.raises(Forbidden):
        intake_columns(place, service, plain, now, channel="phone")
    with pytest.raises(Forbidden):
        intake_columns(place, service, plain, now, status="closed")

    sub = Submission(lat=43.6534, lon=-79.3841, description="Full bin")
    row = new_request(place, service, sub, plain, now, 0.0).columns() | columns
    async with engine_of(client).begin() as conn:
        request_pk = (
            await conn.execute(insert(REQUEST).values(row).returning(REQUEST.c.id))
        ).scalar_one()
    both = await fetch_both(
        client, f"requests/{request_pk}", {"jurisdiction_id": seeded.jurisdiction_id}
    )
    assert both.json[0]["expected_datetime"] == "2026-11-03T21:30:00-05:00"
    assert both.json[0]["agency_responsible"] == "Solid Waste"
    facts = await admin.call("GET", f"requests/{request_pk}.json", expect=200)
    assert (facts["channel"], facts["first_contact_resolution"]) == ("mobile_app", False)
    assert facts["expected_datetime"] == "2026-11-03T21:30:00-05:00"


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_posted_request_gets_its_target_and_its_keys_channel(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin, fmt: str
) -> None:
    """POST requests through the API: the new request's expected_datetime is its service's
    resolve target from the moment it was made, and its channel is the filing key's."""

    async def post(key: str) -> tuple[str, dict[str, Any]]:
        posted = await client.post(
            f"{BASE}/requests.{fmt}",
            data={
                "api_key": key,
                "jurisdiction_id": seeded.jurisdiction_id,
                "service_code": "LITTER.BIN",
                "lat": "43.6534",
                "long": "-79.3841",
                "description": "Full bin",
            },
        )
        assert posted.status_code in (200, 201), posted.text
        if fmt == "json":
            request_id = str(posted.json()[0]["service_request_id"])
        else:
            _, items = xml_to_value(posted.content)
            request_id = str(items[0]["service_request_id"])
        both = await fetch_both(
            client, f"requests/{request_id}", {"jurisdiction_id": seeded.jurisdiction_id}
        )
        return request_id, both.json[0]

    # A service without targets: no expected_datetime; a key without a channel: "api".
    plain, _ = await _key(client, "Plain app", scopes=["submit"])
    before_id, before = await post(plain)
    assert before.get("expected_datetime") is None
    assert (await admin.call("GET", f"requests/{before_id}.json", expect=200))["channel"] == "api"

    await admin.call(
        "POST",
        "services/LITTER.BIN/levels.json",
        {"resolve": {"amount": 36, "unit": "calendar_hours"}},
        expect=200,
    )
    key, _ = await _key(client, "Resident app", scopes=["submit"], channel="mobile_app")
    request_id, item = await post(key)
    made = datetime.fromisoformat(item["requested_datetime"])
    assert datetime.fromisoformat(item["expected_datetime"]) == made + timedelta(hours=36)
    facts = await admin.call("GET", f"requests/{request_id}.json", expect=200)
    assert (facts["channel"], facts["first_contact_resolution"]) == ("mobile_app", False)
    extended = await fetch_both(
        client,
        f"requests/{request_id}",
        {"jurisdiction_id": seeded.jurisdiction_id, "extensions": "true"},
    )
    attributes = extended.json[0]["extended_attributes"]
    assert (attributes["channel"], attributes["first_contact_resolution"]) == (
        "mobile_app",
        False,
    )
    assert extended.xml[0]["extended_attributes"]["channel"] == "mobile_app"


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_staff_intake_names_channel_status_and_expected_datetime(
    client: httpx.AsyncClient, seeded: Seed, admin: Admin, fmt: str
) -> None:
    """POST requests by a staff key: the channel it names, a request filed closed (resolved
    at first contact) and an expected_datetime override, the last two in the history; other
    keys naming a channel get a 403 error document and nothing is stored; their status and
    expected_datetime are ignored (server-owned fields, as before)."""

    async def post(key: str, **extra: str) -> httpx.Response:
        return await client.post(
            f"{BASE}/requests.{fmt}",
            data={
                "api_key": key,
                "jurisdiction_id": seeded.jurisdiction_id,
                "service_code": "LITTER.BIN",
                "lat": "43.6534",
                "long": "-79.3841",
                **extra,
            },
        )

    def request_id(response: httpx.Response) -> str:
        assert response.status_code in (200, 201), response.text
        if fmt == "json":
            return str(response.json()[0]["service_request_id"])
        _, items = xml_to_value(response.content)
        return str(items[0]["service_request_id"])

    agent, _ = await _key(client, "Contact Centre", scopes=["submit", "staff"], channel="phone")
    plain, _ = await _key(client, "Resident app", scopes=["submit"], channel="mobile_app")

    counter = request_id(await post(agent, channel="Counter"))
    facts = await admin.call("GET", f"requests/{counter}.json", expect=200)
    assert (facts["channel"], facts["status"], facts["first_contact_resolution"]) == (
        "counter",
        "open",
        False,
    )

    resolved = request_id(await post(agent, status="FIXED", channel="kiosk"))
    facts = await admin.call("GET", f"requests/{resolved}.json", expect=200)
    assert (facts["status"], facts["detailed_status"]) == ("closed", "fixed")
    assert (facts["channel"], facts["first_contact_resolution"]) == ("kiosk", True)
    [entry] = await admin.call("GET", f"requests/{resolved}/updates.json", expect=200)
    assert entry["status"].lower() == "fixed"

    due = "2031-03-09T17:00:00-05:00"
    overridden = request_id(await post(agent, expected_datetime=due))
    facts = await admin.call("GET", f"requests/{overridden}.json", expect=200)
    assert datetime.fromisoformat(facts["expected_datetime"]) == datetime.fromisoformat(due)
    [entry] = await admin.call("GET", f"requests/{overridden}/updates.json", expect=200)
    assert datetime.fromisoformat(entry["expected_datetime"]) == datetime.fromisoformat(due)
    assert facts["channel"] == "phone"  # the key's own when none is named

    async def count() -> int:
        listed = await client.get(
            f"{BASE}/requests.json", params={"jurisdiction_id": seeded.jurisdiction_id}
        )
        return len(listed.json())

    before = await count()
    refused = await post(plain, channel="phone")
    assert refused.status_code == 403, refused.text
    assert "staff scope" in _first_error(refused, fmt)
    # status and expected_datetime stay server-owned fields for other keys: ignored.
    ignored = request_id(await post(plain, status="closed", expected_datetime=due))
    facts = await admin.call("GET", f"requests/{ignored}.json", expect=200)
    assert (facts["status"], facts["expected_datetime"], facts["channel"]) == (
        "open",
        None,
        "mobile_app",
    )
    assert await admin.call("GET", f"requests/{ignored}/updates.json", expect=200) == []
    before += 1
    bad = await post(agent, channel="carrier pigeon")
    assert bad.status_code == 400, bad.text
    assert "channel" in _first_error(bad, fmt)
    assert await count() == before


def _first_error(response: httpx.Response, fmt: str) -> str:
    """The first description of a GeoReport error document in either format."""
    if fmt == "json":
        return error_descriptions(response.json())[0]
    _, errors = xml_to_value(response.content)
    return str(errors[0]["description"])

"""The Toronto demo data set loads on both backends and is served as captured or moved.

By default the captured 2018 requests are moved forward by whole days so the newest was made
yesterday (issue 21: the first ``GET requests`` of a newcomer must not be empty).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, update

from app.demo.loader import CATALOG_FILE, REQUESTS_FILE, load_demo
from app.store.tables import ServiceRequest
from tests.conftest import engine_of
from tests.support import fetch_both, validate_schema


async def test_demo_loads_and_serves(client: httpx.AsyncClient) -> None:
    engine = engine_of(client)
    report = await load_demo(engine, original_dates=True)
    catalog = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    records = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]
    assert report.services == len(catalog["services"])
    assert report.requests_added == len(records) == 1000

    services = await fetch_both(client, "services")
    validate_schema("services", services.json)
    by_code = {s["service_code"]: s for s in services.json}
    assert set(by_code) == {str(s["service_code"]) for s in catalog["services"]}
    types = Counter(s["type"] for s in services.json)
    assert types["batch"] >= 1
    assert types["blackbox"] >= 1
    assert any(not s["metadata"] for s in services.json)
    # A service with required attributes of several datatypes exists.
    datatypes_required = set()
    for service in catalog["services"]:
        required = {a["datatype"] for a in service["attributes"] if a["required"]}
        if len(required) >= 3:
            datatypes_required |= required
    assert len(datatypes_required) >= 3

    # The captured window: every request of the file is listed, newest first.
    window = {"start_date": "2018-09-26T00:00:00-04:00", "end_date": "2018-10-29T00:00:00-04:00"}
    listed = await fetch_both(client, "requests", params=window)
    validate_schema("requests", listed.json)
    assert len(listed.json) == 1000
    assert {r["service_request_id"] for r in listed.json} == {
        str(r["service_request_id"]) for r in records
    }
    stamps = [r["requested_datetime"] for r in listed.json]
    assert stamps == sorted(stamps, reverse=True)
    expected_open = sum(1 for r in records if r["status"] == "open")
    open_only = await fetch_both(client, "requests", params={**window, "status": "open"})
    assert len(open_only.json) == expected_open

    sample = records[0]
    one = await fetch_both(client, f"requests/{sample['service_request_id']}")
    item = one.json[0]
    assert item["requested_datetime"] == sample["requested_datetime"]
    assert item["lat"] == sample["lat"]
    assert item["long"] == sample["long"]
    assert item["address"] == sample["address"]
    assert item["status_notes"] == sample["status_notes"]

    again = await load_demo(engine, original_dates=True)
    assert (again.requests_added, again.requests_skipped, again.requests_redated) == (0, 1000, 0)


TORONTO = ZoneInfo("America/Toronto")


def toronto_today() -> date:
    """Today on the demo jurisdiction's calendar, by the real clock."""
    return datetime.now(UTC).astimezone(TORONTO).date()


def wall(value: str | None, days: int = 0) -> str | None:
    """A W3C datetime's local wall time in Toronto, moved by ``days``."""
    if value is None:
        return None
    local = datetime.fromisoformat(value).astimezone(TORONTO) + timedelta(days=days)
    return local.replace(tzinfo=None).isoformat()


async def test_demo_dates_are_moved_so_the_newest_request_is_yesterday(
    client: httpx.AsyncClient,
) -> None:
    engine = engine_of(client)
    before = toronto_today()
    report = await load_demo(engine)
    after = toronto_today()
    records = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]
    newest_captured = max(datetime.fromisoformat(r["requested_datetime"]) for r in records)
    assert report.requests_added == 1000
    assert report.days_moved > 0

    # What a newcomer types first: GET requests without dates lists the demo, newest first.
    listed = await fetch_both(client, "requests")
    validate_schema("requests", listed.json)
    assert len(listed.json) == 1000
    newest = datetime.fromisoformat(listed.json[0]["requested_datetime"])
    assert newest.astimezone(TORONTO).date() in {
        before - timedelta(days=1),
        after - timedelta(days=1),
    }
    # Same local time of day as captured; the move is a whole number of days.
    assert wall(newest.isoformat()) == wall(newest_captured.isoformat(), report.days_moved)

    # Every datetime of every request moved by the same days, local times of day kept (so the
    # order and the spacing in days are the captured ones).
    served = {r["service_request_id"]: r for r in listed.json}
    for record in records:
        item = served[str(record["service_request_id"])]
        captured_updated = record["updated_datetime"] or record["requested_datetime"]
        assert wall(item["requested_datetime"]) == wall(
            record["requested_datetime"], report.days_moved
        )
        assert wall(item["updated_datetime"]) == wall(captured_updated, report.days_moved)
        assert wall(item["expected_datetime"]) == wall(
            record["expected_datetime"], report.days_moved
        )
    order = [r["service_request_id"] for r in listed.json]
    captured_order = [
        str(r["service_request_id"])
        for r in sorted(
            records,
            key=lambda r: (
                datetime.fromisoformat(r["requested_datetime"]),
                r["service_request_id"],
            ),
            reverse=True,
        )
    ]
    assert order == captured_order


async def test_a_later_load_moves_the_dates_again_except_changed_requests(
    client: httpx.AsyncClient,
) -> None:
    engine = engine_of(client)
    first = await load_demo(engine, today=date(2030, 3, 1))
    # A staff change after the load: that request keeps its dates.
    changed_id = 101005570514
    table = ServiceRequest.__table__
    async with engine.begin() as conn:
        await conn.execute(
            update(table)
            .where(table.c.id == changed_id)
            .values(updated_at=datetime(2030, 3, 1, 9, tzinfo=UTC), status="closed")
        )
    kept = (await fetch_both(client, f"requests/{changed_id}")).json[0]

    later = await load_demo(engine, today=date(2030, 3, 11))
    assert later.days_moved == first.days_moved + 10
    assert (later.requests_added, later.requests_skipped, later.requests_redated) == (0, 1000, 999)
    assert (await fetch_both(client, f"requests/{changed_id}")).json[0] == kept
    window = {"start_date": "2030-03-10T00:00:00-05:00", "end_date": "2030-03-11T00:00:00-04:00"}
    newest = (await fetch_both(client, "requests", params=window)).json
    assert newest
    assert all(r["requested_datetime"].startswith("2030-03-10T") for r in newest)

    original = await load_demo(engine, original_dates=True)
    assert (original.days_moved, original.requests_redated) == (0, 999)
    sample = (await fetch_both(client, "requests/101005570498")).json[0]
    record = next(
        r
        for r in json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]
        if r["service_request_id"] == 101005570498
    )
    assert sample["requested_datetime"] == record["requested_datetime"]


async def test_demo_has_divisions_service_levels_and_channels(client: httpx.AsyncClient) -> None:
    """The demo's illustrative service promise (app/demo/data/NOTICE.md), over the admin API."""
    from app.demo.loader import CHANNEL_MIX
    from app.domain.api_keys import create_key
    from app.domain.service_levels import parse_service_levels

    engine = engine_of(client)
    await load_demo(engine, original_dates=True)
    async with engine.begin() as conn:
        key, _ = await create_key(conn, "ops", scopes=["admin"])
    headers = {"Authorization": f"Bearer {key}"}

    async def admin(path: str) -> object:
        response = await client.get(f"/admin/v1/{path}", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    divisions = await admin("divisions.json")
    assert isinstance(divisions, list)
    assert {d["name"]: d["services"] for d in divisions} == {
        "Municipal Licensing & Standards": 3,
        "Parks, Forestry & Recreation": 1,
        "Solid Waste Management Services": 5,
        "Toronto Water": 1,
        "Transportation Services": 12,
    }
    services = await admin("services.json")
    assert isinstance(services, list)
    for service in services:
        assert service["division"] is not None, service
        assert parse_service_levels(service["service_levels"]), service
    trees = next(s for s in services if s["service_code"] == "TO-0024")
    assert trees["agency_responsible"] == "Parks, Forestry & Recreation"
    calendar = await admin("calendar.json")
    assert isinstance(calendar, dict)
    assert calendar["source"] == "example"

    async with engine.connect() as conn:
        table = ServiceRequest.__table__
        channels = Counter(
            (await conn.execute(select(table.c.channel).where(table.c.channel.is_not(None))))
            .scalars()
            .all()
        )
    assert sum(channels.values()) == 1000
    assert set(channels) <= {name for name, _ in CHANNEL_MIX}
    # The mix shows: phone is the most common, as its share says.
    assert channels.most_common(1)[0][0] == "phone"
    sample = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"][0]
    facts = await admin(f"requests/{sample['service_request_id']}.json")
    assert isinstance(facts, dict)
    assert facts["channel"] in channels
    assert facts["expected_datetime"] == sample["expected_datetime"]

    # Loading again changes nothing (divisions and moves are not repeated).
    moves = await admin("moves.json")
    await load_demo(engine, original_dates=True)
    assert await admin("moves.json") == moves
    assert await admin("divisions.json") == divisions


async def test_demo_first_contact_resolutions_show_in_the_report(
    client: httpx.AsyncClient,
) -> None:
    """The demo records the captured requests closed within 30 minutes of being made as
    resolved at first contact, through a phone call or a counter visit (illustrative), so its
    service-promise report shows a first-contact rate above zero (fails before: 0)."""
    from app.domain.api_keys import create_key

    records = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]

    def closed_at_intake(record: dict[str, object]) -> bool:
        if record["status"] != "closed" or not record["updated_datetime"]:
            return False
        made = datetime.fromisoformat(str(record["requested_datetime"]))
        closed = datetime.fromisoformat(str(record["updated_datetime"]))
        return timedelta(0) <= closed - made <= timedelta(minutes=30)

    expected = sum(closed_at_intake(r) for r in records)
    assert expected > 0
    engine = engine_of(client)
    await load_demo(engine, original_dates=True)
    async with engine.begin() as conn:
        key, _ = await create_key(conn, "Council office", scopes=["reports"])

    async def by_channel() -> dict[str, object]:
        response = await client.get(
            "/open311/v2/reports/service-promise.json",
            params={"jurisdiction_id": "toronto.ca", "start": "2018-01-01", "group_by": "channel"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        report: dict[str, object] = response.json()
        return report

    report = await by_channel()
    total = report["total"]
    assert isinstance(total, dict)
    assert total["received"] == len(records)
    assert total["first_contact_resolved"] == expected
    assert total["first_contact_rate"] == round(expected / len(records), 4)
    groups = report["groups"]
    assert isinstance(groups, list)
    resolved_by = {g["group"]: g["first_contact_resolved"] for g in groups}
    assert {name for name, count in resolved_by.items() if count} <= {"phone", "counter"}

    # Each one's history is a close during the contact: closed, minutes after it was made.
    sample = next(r for r in records if closed_at_intake(r))
    item = (
        await client.get(
            f"/open311/v2/requests/{sample['service_request_id']}.json",
            params={"jurisdiction_id": "toronto.ca", "extensions": "true"},
        )
    ).json()[0]
    assert item["status"] == "closed"
    assert item["extended_attributes"]["first_contact_resolution"] is True
    assert item["extended_attributes"]["channel"] in ("phone", "counter")

    # A database loaded before first contact was recorded gets it on the next load.
    async with engine.begin() as conn:
        await conn.execute(
            update(ServiceRequest.__table__).values(first_contact_resolved=False, channel="web")
        )
    await load_demo(engine, original_dates=True)
    again = await by_channel()
    assert again["total"] == total

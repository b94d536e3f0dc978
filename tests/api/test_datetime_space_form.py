"""RFC 3339's space for ``T`` in every datetime input (issue 21, point 2).

A published client sends ``updated_after=2026-12-05 00:00:00-06:00``; RFC 3339 allows the
space. Every datetime parsed from input goes through ``app.georeport.datetimes.parse_w3c``:
GET requests ``start_date``/``end_date`` and ``updated_after``/``updated_before``, the
``servicerequestupdates`` feed's window, ``updated_datetime`` of POST servicerequestupdates,
``attribute[CODE]`` of datatype ``datetime`` and a staff update's ``expected_datetime``. The
space form is accepted there, also with an unencoded ``+`` that arrives as a space; what names
no instant (no zone, two spaces) is still a 400 naming the parameter. Both backends, both
formats.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import Seed, engine_of
from tests.lifecycle.test_lifecycle import (
    ADMIN,
    BASE,
    JURISDICTION,
    TZ,
    auth,
    errors_both,
    fms_form,
    list_requests,
    new_key,
    post_app_update,
    read_request,
    stored,
    updates_feed,
)


def utc(*parts: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*parts, tzinfo=UTC)


def spaced(value: datetime) -> str:
    """An instant in the RFC 3339 space form, in the jurisdiction's zone."""
    return value.astimezone(TZ).isoformat(sep=" ", timespec="seconds")


async def test_request_windows_accept_the_space_form(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    before = await stored(
        engine, seeded, requested_at=utc(2024, 1, 9, 12), updated_at=utc(2024, 1, 9, 12)
    )
    inside = await stored(
        engine, seeded, requested_at=utc(2024, 1, 15, 12), updated_at=utc(2024, 2, 15, 12)
    )
    await stored(engine, seeded, requested_at=utc(2024, 1, 25, 12), updated_at=utc(2024, 1, 25, 12))
    assert before

    windows: list[dict[str, str] | str] = [
        # What the client sends (httpx encodes the space; '-' needs no encoding).
        {"start_date": "2024-01-10 00:00:00-05:00", "end_date": "2024-01-20 00:00:00-05:00"},
        {"start_date": "2024-01-10 05:00:00Z", "end_date": "2024-01-20 05:00:00.000Z"},
        # Space as %20 and as '+', with an unencoded '+' in the offset: both arrive as spaces.
        "start_date=2024-01-10%2007:00:00+02:00&end_date=2024-01-20+07:00+02:00",
    ]
    for params in windows:
        assert [r["service_request_id"] for r in await list_requests(client, params)] == [inside], (
            params
        )

    sync = await list_requests(
        client,
        {"updated_after": "2024-02-01 00:00:00-05:00", "updated_before": "2024-03-01 00:00:00Z"},
    )
    assert [r["service_request_id"] for r in sync] == [inside]
    plus = await list_requests(client, "updated_after=2024-02-01+05:00:00+00:00")
    assert [r["service_request_id"] for r in plus] == [inside]

    # Still refused: no zone (no instant), two spaces, a 'T' and a space.
    refused = [
        ("start_date", "2024-01-10 00:00:00"),
        ("end_date", "2024-01-20  00:00:00-05:00"),
        ("updated_after", "2024-02-01T 00:00:00Z"),
        ("updated_before", "2024-03-01 00:00"),
    ]
    for name, value in refused:
        descriptions = await errors_both(client, "GET", "requests", 400, params={name: value})
        assert any(name in d for d in descriptions), (name, descriptions)


async def test_the_updates_feed_and_posted_updates_accept_the_space_form(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    fms = await new_key(engine, "FMS", ["update", "staff"])
    first = await stored(engine, seeded)
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    sent = {}
    for fmt, update_id, status, at in (
        ("json", "s-1", "IN_PROGRESS", when),
        ("xml", "s-2", "FIXED", when + timedelta(hours=1)),
    ):
        form = fms_form(fms, first, update_id, status, at)
        form["updated_datetime"] = spaced(at)
        sent[update_id] = await post_app_update(client, fmt, form)
    assert (await read_request(client, first))["status"] == "closed"

    window = {"start_date": spaced(when - timedelta(minutes=1)), "end_date": spaced(when)}
    feed = await updates_feed(client, window)
    assert [(u["update_id"], u["updated_datetime"]) for u in feed] == [
        (sent["s-1"], when.astimezone(TZ).isoformat(timespec="seconds"))
    ]
    everything = await updates_feed(
        client,
        {
            "start_date": spaced(when - timedelta(days=1)),
            "end_date": spaced(when + timedelta(days=1)),
        },
    )
    assert [u["update_id"] for u in everything] == [sent["s-1"], sent["s-2"]]

    no_zone = fms_form(fms, first, "s-3", "OPEN", when)
    no_zone["updated_datetime"] = when.astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S")
    descriptions = await errors_both(client, "POST", "servicerequestupdates", 400, data=no_zone)
    assert any("updated_datetime" in d for d in descriptions), descriptions
    descriptions = await errors_both(
        client, "GET", "servicerequestupdates", 400, params={"start_date": "2024-01-10 00:00"}
    )
    assert any("start_date" in d for d in descriptions), descriptions


async def test_attribute_datetimes_and_expected_datetime_accept_the_space_form(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    pothole = {
        "api_key": seeded.api_key,
        "service_code": "POTHOLE",
        "lat": "43.6534",
        "long": "-79.3841",
        "attribute[SIZE]": "LARGE",
        "attribute[DEPTH]": "12",
        "attribute[LANES][]": "N",
    }
    for fmt, seen in (("json", "2026-12-05 00:00:00-06:00"), ("xml", "2026-12-05 08:30:00Z")):
        posted = await client.post(
            f"{BASE}/requests.{fmt}", data={**pothole, "attribute[SEEN]": seen}
        )
        assert posted.status_code == 200, (fmt, posted.text)
    for seen in ("2026-12-05 00:00:00", "2026-12-05  00:00:00Z"):
        descriptions = await errors_both(
            client, "POST", "requests", 400, data={**pothole, "attribute[SEEN]": seen}
        )
        assert any("attribute[SEEN]" in d for d in descriptions), descriptions

    admin = await new_key(engine_of(client), "City staff", ["admin"])
    request_id = await stored(engine_of(client), seeded)
    url = f"{ADMIN}/requests/{request_id}/updates.json"
    params = {"jurisdiction_id": JURISDICTION}
    answer = await client.post(
        url,
        params=params,
        json={"expected_datetime": "2026-12-05 17:00:00-05:00"},
        headers=auth(admin),
    )
    assert answer.status_code == 201, answer.text
    assert (await read_request(client, request_id))["expected_datetime"] == (
        "2026-12-05T17:00:00-05:00"
    )
    refused = await client.post(
        url, params=params, json={"expected_datetime": "2026-12-05 17:00:00"}, headers=auth(admin)
    )
    assert refused.status_code == 400, refused.text
    assert "expected_datetime" in refused.text

"""Photos of request updates (issue 18): every update's media_url and all its photos appear in
GET servicerequestupdates and in the request's ``extensions=true`` details, not only the first
update's or the first photo.

Both backends (the ``client`` fixtures), both formats.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.domain.api_keys import create_key
from tests.api.test_post_photos import (
    BASE,
    FORMATS,
    files_in,
    gps_jpeg,
    parse,
    photo_app,
    post,
    read,
    request_form,
)
from tests.conftest import AppFactory, engine_of
from tests.support import xml_to_value


def feed_items(response: httpx.Response, fmt: str) -> list[dict[str, Any]]:
    """The updates of a GET servicerequestupdates answer, nested values included."""
    assert response.status_code == 200, response.text
    if fmt == "json":
        return list(response.json())
    document = ET.fromstring(response.content)  # noqa: S314 - this server's own answer
    assert document.tag == "service_request_updates"
    items = []
    for update in document:
        body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(update)
        tag, value = xml_to_value(body)
        assert tag == "request_update"
        items.append(value)
    return items


async def _request_to_update(
    make_client: AppFactory, root: Path
) -> tuple[httpx.AsyncClient, str, str]:
    """(client of a photo app, a key that may submit and update, a request it made)."""
    client, seed = await photo_app(make_client, root)
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, "FMS", app="FMS", scopes=["submit", "update"])
    created = await client.post(
        f"{BASE}/requests.json", data={**request_form(seed), "api_key": key}
    )
    assert created.status_code == 200, created.text
    return client, key, created.json()[0]["service_request_id"]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_update_shows_its_own_photos(
    make_client: AppFactory, tmp_path: Path, fmt: str
) -> None:
    root = tmp_path / "media"
    client, key, request_id = await _request_to_update(make_client, root)
    sent: dict[str, int] = {}  # update id -> photos sent with it
    for number, (count, status) in enumerate(((2, "IN_PROGRESS"), (1, "OPEN"), (3, "CLOSED"))):
        form = {
            "api_key": key,
            "service_request_id": request_id,
            "update_id": f"fms-{fmt}-{number}",
            "updated_datetime": f"2024-03-0{number + 5}T14:07:00-05:00",
            "status": status,
            "description": f"Visit {number}.",
        }
        photos = [gps_jpeg(seed=10 * number + i) for i in range(count)]
        response = await post(client, fmt, form, photos, path="servicerequestupdates")
        assert response.status_code == 200, response.text
        (answer,) = parse(response, fmt)
        sent[answer["update_id"]] = count
    assert len(files_in(root)) == 2 * sum(sent.values())

    feed = await client.get(
        f"{BASE}/servicerequestupdates.{fmt}",
        params={"service_request_id": request_id, "start_date": "2024-03-01T00:00:00Z"},
    )
    updates = {u["update_id"]: u for u in feed_items(feed, fmt)}
    assert set(updates) == set(sent)
    feed_urls = {update_id: updates[update_id]["media_url"] for update_id in sent}
    assert all(
        url and url.startswith(f"http://testserver{BASE}/media/") for url in feed_urls.values()
    )
    assert len(set(feed_urls.values())) == len(sent)  # each update its own photo
    for update_id, count in sent.items():
        photos = updates[update_id]["photos"]
        assert len(photos) == count
        assert photos[0]["url"] == feed_urls[update_id]
        assert all(p["thumbnail_url"] and int(p["width"]) == 640 for p in photos)

    item = await read(client, fmt, request_id)
    extended = item["extended_attributes"]
    notes = {note["update_id"]: note for note in extended["notes"]}
    every_url: list[str] = []
    for update_id, count in sent.items():
        note = notes[update_id]
        assert note["media_url"] == feed_urls[update_id]
        urls = note["media_urls"]
        assert len(urls) == count
        assert urls[0] == feed_urls[update_id]
        assert [p["url"] for p in note["photos"]] == urls
        assert note["photos"] == updates[update_id]["photos"]
        every_url += urls
    assert len(set(every_url)) == sum(sent.values())
    for url in every_url:
        served = await client.get(url)
        assert served.status_code == 200, url


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_update_keeps_the_media_url_posted_with_its_photos(
    make_client: AppFactory, tmp_path: Path, fmt: str
) -> None:
    """An update has one media URL: one posted with photos is kept (not replaced by the first
    photo), and the photos are listed beside it, in the feed and in the request's notes."""
    client, key, request_id = await _request_to_update(make_client, tmp_path / "media")
    own = "https://photos.example.org/visit.jpg"
    form = {
        "api_key": key,
        "service_request_id": request_id,
        "update_id": f"fms-own-{fmt}",
        "updated_datetime": "2024-03-05T14:07:00-05:00",
        "status": "IN_PROGRESS",
        "media_url": own,
    }
    response = await post(
        client, fmt, form, [gps_jpeg(seed=1), gps_jpeg(seed=2)], path="servicerequestupdates"
    )
    assert response.status_code == 200, response.text
    feed = await client.get(
        f"{BASE}/servicerequestupdates.{fmt}",
        params={"service_request_id": request_id, "start_date": "2024-03-01T00:00:00Z"},
    )
    (update,) = feed_items(feed, fmt)
    assert update["media_url"] == own
    photo_urls = [p["url"] for p in update["photos"]]
    assert len(photo_urls) == 2
    assert own not in photo_urls
    (note,) = (await read(client, fmt, request_id))["extended_attributes"]["notes"]
    assert note["media_url"] == own
    assert note["media_urls"] == [*photo_urls, own]

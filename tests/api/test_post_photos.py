"""Photos at intake: POST requests and POST servicerequestupdates with ``media`` file parts.

Both backends (the ``client``/``settings`` fixtures), both formats. Photos go to the local
object store in the test's own directory, are served by GET {base}/media/{key}, carry none of
the upload's metadata (EXIF GPS, device, owner) and are listed by ``extensions=true``. A
refused or failed POST leaves no file behind (the directory's files are counted).
"""

from __future__ import annotations

import io
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from app.domain.api_keys import create_key
from app.domain.discovery import PHOTOS_SPECIFICATION
from app.media.settings import MediaSettings
from tests.conftest import AppFactory, Seed, clear, engine_of, seed_catalog
from tests.media.imaging import PRIVATE, decoded, jpeg, png, png_header_only, private_exif
from tests.support import error_descriptions, validate_schema, xml_to_value

BASE = "/open311/v2"
FORMATS = ("json", "xml")
LOCATION = {"lat": "43.6534", "long": "-79.3841"}
# GPS of tests.media.imaging.private_exif, as the EXIF writes it.
GPS_MARKERS = (b"GPS", *PRIVATE)


# ---------------------------------------------------------------------------------------
# Helpers


async def photo_app(
    make_client: AppFactory, root: Path, **media: Any
) -> tuple[httpx.AsyncClient, Seed]:
    """A client whose photos go to ``root``, over an emptied database with the test catalogue."""
    client: httpx.AsyncClient = await make_client(media=MediaSettings(local_dir=root, **media))
    await clear(engine_of(client))
    return client, await seed_catalog(engine_of(client))


def files_in(root: Path) -> list[Path]:
    """Every file kept under the media directory."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def gps_jpeg(size: tuple[int, int] = (640, 320), seed: int = 0) -> bytes:
    """A JPEG as a phone writes it: EXIF with GPS, maker, model and owner."""
    image = Image.new("RGB", size, (200, 40, 40))
    image.paste((40, 40, 200), (size[0] // 2, 0, size[0], size[1]))
    image.putpixel((seed % size[0], 0), (seed % 256, 0, 0))
    data = jpeg(image, exif=private_exif())
    assert b"TestPhoneMaker" in data  # the upload does carry the private fields
    return data


def noise_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG of random pixels (large for its size: it compresses badly)."""
    rng = random.Random(7)  # noqa: S311 - test data, not security
    raw = bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
    return jpeg(Image.frombytes("RGB", size, raw))


def media_parts(*files: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    """``media`` file parts (their names and declared types say nothing true on purpose)."""
    return [("media", (f"photo{i}.txt", data, "text/plain")) for i, data in enumerate(files)]


def parse(response: httpx.Response, fmt: str) -> Any:
    """The value of a JSON or XML GeoReport body."""
    if fmt == "json":
        return response.json()
    root, value = xml_to_value(response.content)
    if root == "service_request_updates":  # one <request_update> per update
        document = ET.fromstring(response.content)  # noqa: S314 - this server's own answer
        return [{c.tag: c.text for c in update} for update in document]
    return value


async def post(
    client: httpx.AsyncClient,
    fmt: str,
    form: dict[str, str],
    files: list[bytes],
    path: str = "requests",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        f"{BASE}/{path}.{fmt}", data=form, files=media_parts(*files), headers=headers
    )


def request_form(seed: Seed, **more: str) -> dict[str, str]:
    return {"api_key": seed.api_key, "service_code": "LITTER.BIN", **LOCATION, **more}


async def read(client: httpx.AsyncClient, fmt: str, request_id: str) -> dict[str, Any]:
    response = await client.get(
        f"{BASE}/requests/{request_id}.{fmt}", params={"extensions": "true"}
    )
    assert response.status_code == 200, response.text
    (item,) = parse(response, fmt)
    return dict(item)


async def request_count(client: httpx.AsyncClient) -> int:
    response = await client.get(f"{BASE}/requests.json")
    assert response.status_code == 200
    return len(response.json())


async def refused(response: httpx.Response, fmt: str, status: int = 400) -> list[str]:
    """The descriptions of a GeoReport error answer in the requested format."""
    assert response.status_code == status, response.text[:500]
    if fmt == "json":
        return error_descriptions(response.json())
    root, value = xml_to_value(response.content)
    assert root == "errors"
    return [str(item["description"]) for item in value]


# ---------------------------------------------------------------------------------------
# Accepted photos


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("count", [1, 3])
async def test_photos_are_stored_stripped_served_and_listed(
    make_client: AppFactory, tmp_path: Path, fmt: str, count: int
) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root)
    uploads = [gps_jpeg(seed=i) for i in range(count)]
    response = await post(client, fmt, request_form(seed), uploads)
    assert response.status_code == 200, response.text
    (created,) = parse(response, fmt)
    request_id = created["service_request_id"]

    item = await read(client, fmt, request_id)
    extended = item["extended_attributes"]
    photos = extended["photos"]
    assert len(photos) == count
    urls = [p["url"] for p in photos]
    assert item["media_url"] == urls[0]
    assert extended["media_urls"] == urls
    assert len(set(urls)) == count
    for photo in photos:
        for url, longest in ((photo["url"], 2560), (photo["thumbnail_url"], 320)):
            assert url.startswith(f"http://testserver{BASE}/media/live/")
            served = await client.get(url)
            assert served.status_code == 200, served.text
            assert served.headers["content-type"] == "image/jpeg"
            for marker in GPS_MARKERS:
                assert marker not in served.content, marker
            image = decoded(served.content)
            assert not image.getexif()  # no EXIF at all: no GPS, device or owner fields
            assert max(image.size) <= longest
        assert int(photo["width"]) == 640
        assert int(photo["height"]) == 320
        assert photo["content_type"] == "image/jpeg"
    # The full photo and its thumbnail, for each upload; nothing else.
    assert len(files_in(root)) == 2 * count
    if fmt == "json":
        validate_schema("requests", [item])

    # The list of requests with extensions says the same.
    listed = await client.get(f"{BASE}/requests.{fmt}", params={"extensions": "true"})
    (same,) = [r for r in parse(listed, fmt) if r["service_request_id"] == request_id]
    assert same["extended_attributes"]["photos"] == photos
    # Without extensions: the 17 fields, media_url the first photo.
    plain = await client.get(f"{BASE}/requests/{request_id}.{fmt}")
    (core,) = parse(plain, fmt)
    assert core["media_url"] == urls[0]
    assert "extended_attributes" not in core


@pytest.mark.parametrize("fmt", FORMATS)
async def test_photos_come_before_posted_media_urls(
    make_client: AppFactory, tmp_path: Path, fmt: str
) -> None:
    client, seed = await photo_app(make_client, tmp_path / "media")
    form = request_form(seed, media_url="https://photos.example.org/1.jpg")
    response = await post(client, fmt, form, [png(Image.new("RGB", (50, 40), (9, 9, 9)))])
    assert response.status_code == 200, response.text
    (created,) = parse(response, fmt)
    item = await read(client, fmt, created["service_request_id"])
    (photo,) = item["extended_attributes"]["photos"]
    assert item["media_url"] == photo["url"]
    assert item["extended_attributes"]["media_urls"] == [
        photo["url"],
        "https://photos.example.org/1.jpg",
    ]


async def test_a_jpeg_with_a_zip_behind_it_is_stored_without_the_zip(
    make_client: AppFactory, tmp_path: Path
) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root)
    polyglot = gps_jpeg() + b"PK\x03\x04" + b"payload.sh" + b"\x00" * 64
    response = await post(client, "json", request_form(seed), [polyglot])
    assert response.status_code == 200, response.text
    for path in files_in(root):
        stored = path.read_bytes()
        assert b"PK\x03\x04" not in stored
        assert b"payload.sh" not in stored


# ---------------------------------------------------------------------------------------
# Refused photos: a 400 in the requested format, no request and no file


HOSTILE = {
    "truncated": lambda: gps_jpeg()[:600],
    "bomb": lambda: png_header_only(60_000, 60_000),
    "html-behind-jpeg-magic": lambda: b"\xff\xd8\xff\xe0<!doctype html><script>x()</script>",
    "gif": lambda: b"GIF89a" + b"\x01\x00\x01\x00\x00\x00\x00;",
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
    "empty": lambda: b"",
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_hostile_files_are_refused_and_nothing_is_stored(
    make_client: AppFactory, tmp_path: Path, fmt: str, kind: str
) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root)
    # A good photo first: it must not stay behind either.
    response = await post(client, fmt, request_form(seed), [gps_jpeg(), HOSTILE[kind]()])
    (description,) = await refused(response, fmt)
    assert "media file 2" in description
    assert files_in(root) == []
    assert await request_count(client) == 0


@pytest.mark.parametrize("fmt", FORMATS)
async def test_too_many_files_are_refused_before_any_is_read(
    make_client: AppFactory, tmp_path: Path, fmt: str
) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root, max_files=2)
    response = await post(client, fmt, request_form(seed), [gps_jpeg(seed=i) for i in range(3)])
    (description,) = await refused(response, fmt)
    assert "at most 2" in description
    assert files_in(root) == []
    assert await request_count(client) == 0


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_file_over_the_size_limit_is_refused(
    make_client: AppFactory, tmp_path: Path, fmt: str
) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root, max_file_bytes=8192)
    large = noise_jpeg((120, 120))
    assert len(large) > 8192
    response = await post(client, fmt, request_form(seed), [large])
    (description,) = await refused(response, fmt)
    assert "8192 bytes" in description
    assert files_in(root) == []
    assert await request_count(client) == 0


@pytest.mark.parametrize("fmt", FORMATS)
async def test_file_parts_are_refused_when_photos_are_off(
    make_client: AppFactory, tmp_path: Path, fmt: str
) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root, enabled=False)
    response = await post(client, fmt, request_form(seed), [gps_jpeg()])
    (description,) = await refused(response, fmt)
    assert "switched off" in description
    assert files_in(root) == []
    assert await request_count(client) == 0


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_file_part_under_another_name_is_refused(
    make_client: AppFactory, tmp_path: Path, fmt: str
) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root)
    response = await client.post(
        f"{BASE}/requests.{fmt}",
        data=request_form(seed),
        files=[("attachment", ("a.jpg", gps_jpeg(), "image/jpeg"))],
    )
    (description,) = await refused(response, fmt)
    assert "'media'" in description
    assert await request_count(client) == 0


# ---------------------------------------------------------------------------------------
# Failed POSTs leave no file behind


@pytest.mark.parametrize("fmt", FORMATS)
async def test_a_post_failing_after_the_photos_were_stored_removes_them(
    make_client: AppFactory, tmp_path: Path, fmt: str
) -> None:
    """The ward check comes with the write, after the photos were stored: a location outside
    every ward is refused and its photos go."""
    from tests.api.test_wards_api import TORONTO, city

    root = tmp_path / "media"
    client: httpx.AsyncClient = await make_client(media=MediaSettings(local_dir=root))
    await clear(engine_of(client))
    seed = await city(client, TORONTO)
    form = request_form(seed, jurisdiction_id=TORONTO, lat="41.8837", long="-87.6319")
    response = await post(client, fmt, form, [gps_jpeg(), gps_jpeg(seed=1)])
    (description,) = await refused(response, fmt)
    assert "outside" in description
    assert files_in(root) == []
    listed = await client.get(f"{BASE}/requests.json", params={"jurisdiction_id": TORONTO})
    assert listed.json() == []


async def test_a_replayed_post_keeps_only_the_first_calls_photos(
    make_client: AppFactory, tmp_path: Path
) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root)
    headers = {"Idempotency-Key": "photo-retry-1"}
    photo = gps_jpeg()
    first = await post(client, "json", request_form(seed), [photo], headers=headers)
    assert first.status_code == 200, first.text
    kept = files_in(root)
    assert len(kept) == 2
    again = await post(client, "json", request_form(seed), [photo], headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert files_in(root) == kept
    # Another photo under the same key is another body: a 422, and nothing stays.
    other = await post(client, "json", request_form(seed), [gps_jpeg(seed=5)], headers=headers)
    assert other.status_code == 422, other.text
    assert files_in(root) == kept


# ---------------------------------------------------------------------------------------
# POST servicerequestupdates


@pytest.mark.parametrize("fmt", FORMATS)
async def test_an_update_takes_a_photo(make_client: AppFactory, tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "media"
    client, seed = await photo_app(make_client, root)
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, "FMS", app="FMS", scopes=["submit", "update"])
    created = await client.post(
        f"{BASE}/requests.json", data={**request_form(seed), "api_key": key}
    )
    assert created.status_code == 200, created.text
    request_id = created.json()[0]["service_request_id"]
    form = {
        "api_key": key,
        "service_request_id": request_id,
        "update_id": f"fms-photo-{fmt}",
        "updated_datetime": "2024-03-05T14:07:00-05:00",
        "status": "IN_PROGRESS",
        "description": "Crew on site.",
    }
    response = await post(client, fmt, form, [gps_jpeg()], path="servicerequestupdates")
    assert response.status_code == 200, response.text
    (answer,) = parse(response, fmt)
    feed = await client.get(
        f"{BASE}/servicerequestupdates.{fmt}",
        params={"service_request_id": request_id, "start_date": "2024-03-01T00:00:00Z"},
    )
    assert feed.status_code == 200, feed.text
    (update,) = [u for u in parse(feed, fmt) if u["update_id"] == answer["update_id"]]
    url = update["media_url"]
    assert url.startswith(f"http://testserver{BASE}/media/live/")
    served = await client.get(url)
    assert served.status_code == 200
    for marker in GPS_MARKERS:
        assert marker not in served.content
    assert len(files_in(root)) == 2
    # A refused update (unknown request) leaves its photo nowhere.
    missing = {**form, "service_request_id": "999999999", "update_id": f"fms-none-{fmt}"}
    response = await post(client, fmt, missing, [gps_jpeg(seed=3)], path="servicerequestupdates")
    await refused(response, fmt, 404)
    assert len(files_in(root)) == 2


async def test_webhooks_take_no_files(make_client: AppFactory, tmp_path: Path) -> None:
    client, seed = await photo_app(make_client, tmp_path / "media")
    response = await client.post(
        f"{BASE}/webhooks.json",
        data={"api_key": seed.api_key, "url": "https://example.org/hook"},
        files=media_parts(gps_jpeg()),
    )
    (description,) = await refused(response, "json")
    assert "no files" in description


async def test_photo_images_are_real_images() -> None:
    """The helper's JPEG really is what the tests say (a sanity check of the fixture)."""
    image = Image.open(io.BytesIO(gps_jpeg()))
    assert image.format == "JPEG"
    assert image.getexif()  # the upload has EXIF; the stored photo must not


@pytest.mark.parametrize("enabled", [True, False])
async def test_discovery_advertises_photos_while_they_are_on(
    make_client: AppFactory, tmp_path: Path, enabled: bool
) -> None:
    client, _ = await photo_app(make_client, tmp_path / "media", enabled=enabled)
    response = await client.get(f"{BASE}/discovery.json")
    assert response.status_code == 200
    specifications = [e["specification"] for e in response.json()["endpoints"]]
    assert (PHOTOS_SPECIFICATION in specifications) is enabled

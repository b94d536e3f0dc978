"""Object stores: one contract on both (local directory, S3 bucket on moto's server), then
what only one of them does (files on disk, links out of the directory; bucket metadata,
paging, an unreachable or missing bucket)."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from app.media.errors import (
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
)
from app.media.objects import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    check_key,
    new_photo_prefix,
    open_store,
    scope_prefix,
)
from app.media.settings import MediaSettings, S3Settings
from tests.media.conftest import _free_port, s3_client

BAD_KEYS = [
    "",
    "../escape.jpg",
    "live/../../escape.jpg",
    "live/./a.jpg",
    "/etc/passwd",
    "live//a.jpg",
    "live/a.jpg/",
    "live\\..\\escape.jpg",
    "%2e%2e/escape.jpg",
    "live/%2e%2e/a.jpg",
    ".hidden",
    "live/.tmp-abc",
    "live/a..jpg",
    "live/a.",
    "Live/A.jpg",
    "live/a b.jpg",
    "live/a\x00.jpg",
    "live/a.jpg\n",
    "live/ä.jpg",
    "a/b/c/d/e/f/g/h/i.jpg",  # more than 8 segments
    "live/" + "a" * 101,  # a segment over 100 characters
]
BAD_PREFIXES = ["", "/", "live", "../", "live/../", "sandbox/.//", "/live/", "live//"]


# The contract, on both stores ----------------------------------------------------------------


async def test_put_then_get(store: ObjectStore) -> None:
    await store.put("live/abc/full.jpg", b"\xff\xd8\xffphoto", "image/jpeg")
    await store.put("live/abc/thumb.png", b"\x89PNGthumb", "image/png")

    photo = await store.get("live/abc/full.jpg")
    thumb = await store.get("live/abc/thumb.png")

    assert (photo.data, photo.content_type) == (b"\xff\xd8\xffphoto", "image/jpeg")
    assert (thumb.data, thumb.content_type) == (b"\x89PNGthumb", "image/png")


async def test_put_file_stores_a_file_read_in_parts(store: ObjectStore, tmp_path: Path) -> None:
    """The daily export dumps upload files (larger than any photo) without reading them whole."""
    source = tmp_path / "dump.csv.gz"
    data = bytes(range(256)) * 9000  # 2.3 MB: more than one part of the copy
    source.write_bytes(data)
    key = "exports/toronto-ca/2026-01-02/requests.csv.gz"
    await store.put_file(key, source, "application/gzip")
    assert (await store.get(key)).data == data
    source.write_bytes(b"replaced")
    await store.put_file(key, source, "application/gzip")
    assert (await store.get(key)).data == b"replaced"
    with pytest.raises(InvalidObjectKey):
        await store.put_file("../escape.gz", source, "application/gzip")


async def test_put_replaces(store: ObjectStore) -> None:
    await store.put("live/abc/full.jpg", b"first", "image/jpeg")
    await store.put("live/abc/full.jpg", b"second", "image/jpeg")

    assert (await store.get("live/abc/full.jpg")).data == b"second"


async def test_a_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get("live/nothing/full.jpg")
    with pytest.raises(ObjectNotFound):
        await store.get("live")  # a "directory" of the local store is no object


async def test_delete(store: ObjectStore) -> None:
    await store.put("live/abc/full.jpg", b"photo", "image/jpeg")
    await store.put("live/abc/thumb.jpg", b"thumb", "image/jpeg")

    await store.delete("live/abc/full.jpg")
    await store.delete("live/abc/full.jpg")  # again: nothing happens
    await store.delete("live/never/full.jpg")

    with pytest.raises(ObjectNotFound):
        await store.get("live/abc/full.jpg")
    assert (await store.get("live/abc/thumb.jpg")).data == b"thumb"


async def test_delete_prefix_removes_that_prefix_only(store: ObjectStore) -> None:
    keys = {
        "sandbox/app-1/aa/full.jpg": b"1",
        "sandbox/app-1/aa/thumb.jpg": b"2",
        "sandbox/app-2/bb/full.jpg": b"3",
        "sandbox/app-10/cc/full.jpg": b"4",
        "live/dd/full.jpg": b"5",
        "sandboxed/ee/full.jpg": b"6",
    }
    for key, data in keys.items():
        await store.put(key, data, "image/jpeg")

    # Whole segments: app-1 is not app-10.
    assert await store.delete_prefix("sandbox/app-1/") == 2
    assert await store.delete_prefix("sandbox/app-1/") == 0
    for key in ("sandbox/app-2/bb/full.jpg", "sandbox/app-10/cc/full.jpg"):
        assert (await store.get(key)).data == keys[key]

    assert await store.delete_prefix(scope_prefix(sandbox=True)) == 2

    for key in keys:
        if key.startswith("sandbox/"):
            with pytest.raises(ObjectNotFound):
                await store.get(key)
        else:
            assert (await store.get(key)).data == keys[key]
    assert await store.delete_prefix("nothing/here/") == 0


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_keys_outside_the_grammar_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        await store.put(key, b"data", "image/jpeg")
    with pytest.raises(InvalidObjectKey):
        await store.get(key)
    with pytest.raises(InvalidObjectKey):
        await store.delete(key)
    with pytest.raises(InvalidObjectKey):
        store.url_for(key)


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
async def test_prefixes_outside_the_grammar_are_refused(store: ObjectStore, prefix: str) -> None:
    await store.put("live/abc/full.jpg", b"photo", "image/jpeg")

    with pytest.raises(InvalidObjectKey):
        await store.delete_prefix(prefix)

    assert (await store.get("live/abc/full.jpg")).data == b"photo"


async def test_objects_are_written_and_read_concurrently(store: ObjectStore) -> None:
    keys = [f"live/k{n}/full.jpg" for n in range(12)]

    await asyncio.gather(*(store.put(key, key.encode(), "image/jpeg") for key in keys))
    got = await asyncio.gather(*(store.get(key) for key in keys))

    assert [item.data for item in got] == [key.encode() for key in keys]


def test_new_photo_prefixes_are_random_and_scoped() -> None:
    made = {new_photo_prefix(sandbox=False) for _ in range(100)}

    assert len(made) == 100
    for prefix in made:
        assert re.fullmatch(r"live/[0-9a-f]{32}/", prefix)
        check_key(prefix + "full.jpg")
    assert re.fullmatch(r"sandbox/[0-9a-f]{32}/", new_photo_prefix(sandbox=True))
    assert re.fullmatch(
        r"sandbox/app-7/[0-9a-f]{32}/", new_photo_prefix(sandbox=True, owner="app-7")
    )
    assert scope_prefix(sandbox=True, owner="app-7") == "sandbox/app-7/"
    for owner in ("../x", "a/b", "App", ".x"):
        with pytest.raises(InvalidObjectKey):
            scope_prefix(sandbox=True, owner=owner)


# The local directory ------------------------------------------------------------------------


def names_under(directory: Path) -> list[str]:
    """The names of every file and directory below ``directory``, sorted."""
    return sorted(path.name for path in directory.rglob("*"))


async def test_local_files_are_whole_public_and_alone(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "media")
    await store.check()

    await store.put("live/abc/full.jpg", b"photo", "image/jpeg")

    path = tmp_path / "media" / "live" / "abc" / "full.jpg"
    assert path.read_bytes() == b"photo"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    # The temporary file was renamed into place: nothing else is left.
    assert names_under(tmp_path / "media") == ["abc", "full.jpg", "live"]


async def test_a_failed_local_write_leaves_nothing(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "media")
    await store.put("live/abc", b"a file where a directory would go", "image/jpeg")

    with pytest.raises(ObjectStoreUnavailable):
        await store.put("live/abc/full.jpg", b"photo", "image/jpeg")

    assert [p.name for p in (tmp_path / "media" / "live").iterdir()] == ["abc"]


async def test_local_delete_removes_emptied_directories(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "media")
    await store.put("live/abc/full.jpg", b"photo", "image/jpeg")
    await store.put("live/abc/thumb.jpg", b"thumb", "image/jpeg")
    await store.put("live/xyz/full.jpg", b"other", "image/jpeg")

    await store.delete("live/abc/full.jpg")
    assert (tmp_path / "media" / "live" / "abc").is_dir()
    await store.delete("live/abc/thumb.jpg")

    assert not (tmp_path / "media" / "live" / "abc").exists()
    assert (tmp_path / "media" / "live" / "xyz" / "full.jpg").is_file()
    await store.delete("live/xyz/full.jpg")
    assert (tmp_path / "media").is_dir()


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_local_traversal_reaches_nothing_outside(tmp_path: Path, key: str) -> None:
    root = tmp_path / "deep" / "media"
    root.mkdir(parents=True)
    secret = tmp_path / "escape.jpg"
    secret.write_bytes(b"outside")
    store = LocalObjectStore(root)

    with pytest.raises(InvalidObjectKey):
        await store.put(key, b"overwritten", "image/jpeg")
    with pytest.raises(InvalidObjectKey):
        await store.get(key)
    with pytest.raises(InvalidObjectKey):
        await store.delete(key)

    assert secret.read_bytes() == b"outside"
    assert names_under(tmp_path) == ["deep", "escape.jpg", "media"]


async def test_local_links_out_of_the_directory_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "media"
    outside = tmp_path / "outside"
    (root / "live").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"outside")
    # A directory link and a file link planted inside the store, both leading out.
    (root / "sandbox").symlink_to(outside, target_is_directory=True)
    (root / "live" / "secret.jpg").symlink_to(outside / "secret.jpg")
    store = LocalObjectStore(root)

    with pytest.raises(InvalidObjectKey):
        await store.put("sandbox/abc/full.jpg", b"photo", "image/jpeg")
    with pytest.raises(InvalidObjectKey):
        await store.get("sandbox/secret.jpg")
    with pytest.raises(InvalidObjectKey):
        await store.get("live/secret.jpg")
    with pytest.raises(InvalidObjectKey):
        await store.delete("live/secret.jpg")
    with pytest.raises(InvalidObjectKey):
        await store.delete_prefix("sandbox/")

    assert sorted(p.name for p in outside.iterdir()) == ["secret.jpg"]
    assert (outside / "secret.jpg").read_bytes() == b"outside"


async def test_local_check_makes_the_directory(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "a" / "media")

    await store.check()

    assert (tmp_path / "a" / "media").is_dir()
    assert list((tmp_path / "a" / "media").iterdir()) == []


async def test_local_check_refuses_a_file_for_a_directory(tmp_path: Path) -> None:
    (tmp_path / "media").write_bytes(b"not a directory")

    with pytest.raises(ObjectStoreUnavailable):
        await LocalObjectStore(tmp_path / "media").check()


def test_local_urls(tmp_path: Path) -> None:
    assert LocalObjectStore(tmp_path).url_for("live/abc/full.jpg") == "/media/live/abc/full.jpg"
    cdn = LocalObjectStore(tmp_path, "https://photos.example.org/open311")
    assert (
        cdn.url_for("live/abc/full.jpg") == "https://photos.example.org/open311/live/abc/full.jpg"
    )


# The S3 bucket ------------------------------------------------------------------------------


async def test_s3_objects_carry_their_type_and_cache_policy(s3_settings: S3Settings) -> None:
    store = S3ObjectStore(s3_settings)
    await store.put("live/abc/full.jpg", b"photo", "image/jpeg")
    await store.close()

    client = s3_client(s3_settings.endpoint_url)
    head = client.head_object(Bucket=s3_settings.bucket, Key="live/abc/full.jpg")
    client.close()

    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentLength"] == 5


async def test_s3_url_serves_the_object(s3_settings: S3Settings) -> None:
    # media_url is for anyone: the operator makes the bucket (or a CDN before it) public.
    client = s3_client(s3_settings.endpoint_url)
    client.put_bucket_policy(
        Bucket=s3_settings.bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{s3_settings.bucket}/*",
                    }
                ],
            }
        ),
    )
    client.close()
    store = S3ObjectStore(s3_settings)
    await store.put("live/abc/full.jpg", b"photo", "image/jpeg")
    await store.close()

    url = store.url_for("live/abc/full.jpg")

    assert url == f"{s3_settings.endpoint_url}/{s3_settings.bucket}/live/abc/full.jpg"
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
    assert (answer.status_code, answer.content) == (200, b"photo")
    assert answer.headers["content-type"] == "image/jpeg"


def test_s3_urls_without_an_endpoint_or_with_a_public_base() -> None:
    aws = S3Settings(bucket="city-photos", region="ca-central-1")

    assert (
        S3ObjectStore(aws).url_for("live/a/full.jpg")
        == "https://city-photos.s3.ca-central-1.amazonaws.com/live/a/full.jpg"
    )
    assert (
        S3ObjectStore(aws, "https://cdn.example.org").url_for("live/a/full.jpg")
        == "https://cdn.example.org/live/a/full.jpg"
    )


async def test_s3_delete_prefix_pages_through_many_objects(s3_settings: S3Settings) -> None:
    store = S3ObjectStore(s3_settings, delete_batch=2)
    for n in range(7):
        await store.put(f"sandbox/p{n}/full.jpg", b"x", "image/jpeg")
    await store.put("live/keep/full.jpg", b"kept", "image/jpeg")

    assert await store.delete_prefix("sandbox/") == 7

    client = s3_client(s3_settings.endpoint_url)
    left = client.list_objects_v2(Bucket=s3_settings.bucket)
    client.close()
    await store.close()
    assert [item["Key"] for item in left["Contents"]] == ["live/keep/full.jpg"]


async def test_s3_missing_bucket_is_unavailable(s3_settings: S3Settings) -> None:
    store = S3ObjectStore(s3_settings.model_copy(update={"bucket": "no-such-bucket"}))

    with pytest.raises(ObjectStoreUnavailable):
        await store.check()
    with pytest.raises(ObjectStoreUnavailable):
        await store.put("live/abc/full.jpg", b"photo", "image/jpeg")
    with pytest.raises(ObjectStoreUnavailable):
        await store.get("live/abc/full.jpg")
    await store.close()


async def test_s3_unreachable_endpoint_is_unavailable() -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    settings = S3Settings(
        endpoint_url=closed,
        bucket="photos",
        access_key_id="x",
        secret_access_key=SecretStr("y"),
        connect_timeout_s=1,
        read_timeout_s=1,
        max_attempts=1,
    )
    store = S3ObjectStore(settings)

    with pytest.raises(ObjectStoreUnavailable) as caught:
        await store.put("live/abc/full.jpg", b"photo", "image/jpeg")

    assert isinstance(caught.value, ObjectStoreError)
    with pytest.raises(ObjectStoreUnavailable):
        await store.check()
    await store.close()


async def test_open_store_follows_the_settings(tmp_path: Path, s3_settings: S3Settings) -> None:
    local = open_store(MediaSettings(local_dir=tmp_path / "photos"))
    s3 = open_store(MediaSettings(backend="s3", s3=s3_settings))

    assert isinstance(local, LocalObjectStore)
    assert local.root == (tmp_path / "photos").resolve()
    assert isinstance(s3, S3ObjectStore)
    await s3.check()
    await s3.close()

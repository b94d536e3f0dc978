"""Object stores for photos: a local directory (the embedded default) or an S3 bucket.

Keys are made by the server (``new_photo_prefix``), never taken from an upload's file name,
and every store refuses a key outside one small grammar: lower-case letters, digits, ``-``,
``_`` and inner dots in ``/``-separated segments that start with a letter or digit. So no key
can name a parent directory, an absolute path, a hidden file or an encoded trick, on either
backend. Sandbox photos live under ``sandbox/``, the others under ``live/``: a sandbox reset
deletes one prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, ParamSpec, Protocol, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.media.errors import InvalidObjectKey, ObjectNotFound, ObjectStoreUnavailable
from app.media.settings import MediaSettings, S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

LIVE: Final = "live"
SANDBOX: Final = "sandbox"
# Where the local backend's photos are served when no public_base_url is set (the API's
# media route); to be made absolute with the server's public URL.
LOCAL_URL_PATH: Final = "/media"
CONTENT_TYPES: Final = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}
_SEGMENT: Final = r"[a-z0-9](?:[a-z0-9_-]|\.(?=[a-z0-9_-])){0,99}"
_KEY: Final = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{0,7}}")
_PREFIX: Final = re.compile(rf"(?:{_SEGMENT}/){{1,7}}")
_OWNER: Final = re.compile(_SEGMENT)
_TEMPORARY: Final = ".tmp-"
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredObject:
    """An object's bytes and content type."""

    data: bytes
    content_type: str


class ObjectStore(Protocol):
    """Where photos are kept. Every key and prefix is checked against the key grammar."""

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` (replacing what was there), all or nothing."""
        ...

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at ``path`` under ``key``, read in parts (never whole in memory)."""
        ...

    async def get(self, key: str) -> StoredObject:
        """The object under ``key``; ObjectNotFound when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object under ``key`` (nothing happens when there is none)."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix`` (ends in "/"); how many."""
        ...

    def url_for(self, key: str) -> str:
        """The public URL of the object under ``key`` (e.g. a request's media_url)."""
        ...

    async def check(self) -> None:
        """Raise ObjectStoreUnavailable unless the store can be used (checked at startup)."""
        ...

    async def close(self) -> None:
        """Release the store's connections."""
        ...


def check_key(key: str) -> str:
    """The key, if it is in the server's key grammar; InvalidObjectKey otherwise."""
    if len(key) > 512 or not _KEY.fullmatch(key):
        raise InvalidObjectKey(f"invalid object key {key[:80]!r}")
    return key


def check_prefix(prefix: str) -> str:
    """The prefix (whole segments, ending in "/"), if valid; InvalidObjectKey otherwise."""
    if len(prefix) > 512 or not _PREFIX.fullmatch(prefix):
        raise InvalidObjectKey(f"invalid object prefix {prefix[:80]!r}")
    return prefix


def scope_prefix(*, sandbox: bool, owner: str = "") -> str:
    """The prefix of every photo of a scope: live or sandbox, optionally one owner's (an app)."""
    scope = SANDBOX if sandbox else LIVE
    if not owner:
        return f"{scope}/"
    if not _OWNER.fullmatch(owner):
        raise InvalidObjectKey(f"invalid owner segment {owner[:80]!r}")
    return f"{scope}/{owner}/"


def new_photo_prefix(*, sandbox: bool, owner: str = "") -> str:
    """A new random prefix for one photo's objects (its full size and its thumbnail)."""
    return f"{scope_prefix(sandbox=sandbox, owner=owner)}{secrets.token_hex(16)}/"


def content_type_of(key: str) -> str:
    """The content type of a key by its extension (keys are made by the server)."""
    return CONTENT_TYPES.get(key.rpartition(".")[2], "application/octet-stream")


class LocalObjectStore:
    """Objects as files under one directory, written atomically (temporary file + rename)."""

    def __init__(self, root: Path, public_base_url: str = "") -> None:
        self.root = root.resolve()
        self.base_url = public_base_url or LOCAL_URL_PATH

    def _path(self, key_or_prefix: str) -> Path:
        path = self.root / key_or_prefix.rstrip("/")
        # The grammar already rules out "..": this also refuses a symbolic link inside the
        # directory that leads out of it.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidObjectKey(f"object key {key_or_prefix[:80]!r} leads out of the store")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key``: a reader sees the old file or the new, never a part."""
        path = self._path(check_key(key))
        await self._run(self._write, path, data)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Copy the file at ``path`` under ``key`` (atomically, as ``put``)."""
        target = self._path(check_key(key))
        await self._run(self._write, target, path)

    def _write(self, path: Path, data: bytes | Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The directories just made must still be inside the root (a link raced in).
        if not path.parent.resolve().is_relative_to(self.root):
            raise InvalidObjectKey("object key leads out of the store")
        fd, temporary = tempfile.mkstemp(prefix=_TEMPORARY, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                if isinstance(data, Path):
                    with data.open("rb") as source:
                        shutil.copyfileobj(source, file, 1 << 20)
                else:
                    file.write(data)
                file.flush()
                os.fsync(file.fileno())
            # mkstemp makes files private (0600); photos are public.
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    async def get(self, key: str) -> StoredObject:
        """The object under ``key``; ObjectNotFound when there is none."""
        path = self._path(check_key(key))

        def read() -> bytes:
            try:
                return path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
                raise ObjectNotFound(key) from exc

        return StoredObject(await self._run(read), content_type_of(key))

    async def delete(self, key: str) -> None:
        """Remove the object under ``key`` and the directories it leaves empty."""
        path = self._path(check_key(key))
        await self._run(self._unlink, path)

    def _unlink(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
        for parent in path.parents:
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:  # not empty (or already gone): the rest above is in use
                break

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; how many."""
        path = self._path(check_prefix(prefix))
        return await self._run(self._remove_tree, path)

    def _remove_tree(self, path: Path) -> int:
        if not path.is_dir() or path.is_symlink():
            return 0
        count = sum(
            1
            for found in path.rglob("*")
            if found.is_file() and not found.name.startswith(_TEMPORARY)
        )
        shutil.rmtree(path, ignore_errors=False)
        return count

    def url_for(self, key: str) -> str:
        """``public_base_url`` (or "/media") followed by the key."""
        return f"{self.base_url}/{check_key(key)}"

    async def check(self) -> None:
        """Create the directory if needed and check that it can be written."""

        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(prefix=_TEMPORARY, dir=self.root):
                pass

        await self._run(probe)

    async def close(self) -> None:
        """Nothing to release."""

    async def _run(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except OSError as exc:  # a full disk, a permission, a file where a directory goes
            raise ObjectStoreUnavailable(f"media directory {self.root}: {exc}") from exc


class S3ObjectStore:
    """Objects in an S3-compatible bucket through boto3; each call runs in a worker thread."""

    def __init__(
        self,
        settings: S3Settings,
        public_base_url: str = "",
        *,
        delete_batch: int = 1000,
    ) -> None:
        self.bucket = settings.bucket
        self.delete_batch = delete_batch
        config = Config(
            region_name=settings.region,
            s3={"addressing_style": settings.addressing_style},
            connect_timeout=settings.connect_timeout_s,
            read_timeout=settings.read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
            # Checksums only where the API requires them: S3-compatible services other than
            # AWS refuse or mishandle botocore's newer default trailing checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        secret = settings.secret_access_key.get_secret_value()
        # Loaded with the first S3 store: the local default never pays for boto3's import.
        import boto3

        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.endpoint_url or None,
            aws_access_key_id=settings.access_key_id or None,
            aws_secret_access_key=secret or None,
            config=config,
        )
        if public_base_url:
            self.base_url = public_base_url
        elif settings.endpoint_url:
            self.base_url = f"{settings.endpoint_url.rstrip('/')}/{self.bucket}"
        else:
            self.base_url = f"https://{self.bucket}.s3.{settings.region}.amazonaws.com"

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` (a PUT is atomic on S3)."""
        check_key(key)
        await self._call(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            # Keys are random and never reused for other content.
            CacheControl="public, max-age=31536000, immutable",
        )

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Upload the file at ``path`` under ``key`` (boto3 reads it in parts; a large one
        goes up as a multipart upload)."""
        check_key(key)
        await self._call(
            self._client.upload_file,
            str(path),
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type},
        )

    async def get(self, key: str) -> StoredObject:
        """The object under ``key``; ObjectNotFound when there is none."""
        check_key(key)

        def read() -> StoredObject:
            try:
                answer = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) in ("NoSuchKey", "404"):
                    raise ObjectNotFound(key) from exc
                raise
            with answer["Body"] as body:
                return StoredObject(body.read(), answer.get("ContentType", content_type_of(key)))

        return await self._call(read)

    async def delete(self, key: str) -> None:
        """Remove the object under ``key`` (S3 answers the same when there is none)."""
        check_key(key)
        await self._call(self._client.delete_object, Bucket=self.bucket, Key=key)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``, a batch per listed page; how many."""
        check_prefix(prefix)

        def remove() -> int:
            count = 0
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket,
                Prefix=prefix,
                PaginationConfig={"PageSize": self.delete_batch},
            )
            for page in pages:
                keys: list[ObjectIdentifierTypeDef] = [
                    {"Key": item["Key"]} for item in page.get("Contents", [])
                ]
                if not keys:
                    continue
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                )
                if errors := answer.get("Errors"):
                    first = errors[0]
                    raise ObjectStoreUnavailable(
                        f"{len(errors)} objects under {prefix!r} not deleted: "
                        f"{first.get('Code')} {first.get('Message')}"
                    )
                count += len(keys)
            return count

        return await self._call(remove)

    def url_for(self, key: str) -> str:
        """``public_base_url`` (or the bucket's URL) followed by the key."""
        return f"{self.base_url}/{check_key(key)}"

    async def check(self) -> None:
        """Check that the bucket exists and these credentials reach it."""
        await self._call(self._client.head_bucket, Bucket=self.bucket)

    async def close(self) -> None:
        """Close the client's connection pool."""
        await asyncio.to_thread(self._client.close)

    async def _call(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise ObjectStoreUnavailable(f"S3 bucket {self.bucket!r}: {exc}") from exc


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def open_store(settings: MediaSettings) -> ObjectStore:
    """The object store the settings name (call ``check()`` before serving)."""
    if settings.backend == "s3":
        return S3ObjectStore(settings.s3, settings.public_base_url)
    return LocalObjectStore(settings.local_dir, settings.public_base_url)

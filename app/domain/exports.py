"""Streaming exports of service requests, and the daily dump files of the worker.

An export is every request that GET requests' filters match (no result cap, no default date
window), public fields only, read in keyset batches (``app.domain.requests.stream_requests``)
and encoded batch by batch (``app.georeport.exports``): memory stays at one batch whatever the
database holds.

Cost: an export runs as long as its caller reads. So each caller (its API key, else its
address) streams at most one export at a time, and a server process at most
``exports.max_concurrent``; one more answers 429 at once (``ExportGate``). The one export per
caller holds across server processes too: the export takes the caller's lease in the store
(``app.store.exports.take_lease``), renews it while it streams and gives it back when it
ends; a lease of a process that died runs out after ``lease_seconds``. Between batches an
export holds no connection and no reader, so other callers' reads go first.

On PostgreSQL (``exports.sql_copy``) the database writes the rows instead: one COPY of the
same read whose SELECT formats each row as ``Encoder`` does (``app.store.exports``), made into
the same bytes by ``CopiedRows`` (``copy_export``); it holds one connection while it streams
and waits for a slow reader (a bounded queue), so memory stays flat there too.

Daily dumps (``DailyDumps``, run by the worker when ``exports.dumps_enabled``): once a UTC day
from ``exports.dump_hour_utc``, each jurisdiction's requests as gzip CSV and gzip GeoJSON (with
extensions: the ward) and a ``manifest.json`` (files, row counts, sha256, generated_at) in
the object store of media, under ``{dump_prefix}/{jurisdiction}/{YYYY-MM-DD}/``. The files
are written to a temporary directory first, then uploaded; the manifest goes last, so a
manifest names only files that are complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
import re
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.domain.requests import RequestFilters, export_read, stream_requests
from app.errors import TooManyRequests
from app.georeport.datetimes import format_w3c
from app.georeport.exports import CopiedRows, Encoder, ExportFormat
from app.settings import ExportSettings, Settings
from app.store.exports import (
    copies,
    copy_requests,
    count_requests,
    drop_lease,
    renew_lease,
    take_lease,
)
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.domain.api_keys import KeyInfo
    from app.domain.catalog import Catalog, CatalogCache
    from app.domain.jurisdictions import JurisdictionInfo, JurisdictionRegistry
    from app.media.objects import ObjectStore
    from app.models.requests import RequestRead
    from app.store.base import Store

log = logging.getLogger("open311.exports")
# A refused export may retry after this many seconds (the Retry-After of its 429).
RETRY_AFTER_S = 5
# Chunks of an export's COPY waiting for its reader, at most (each one read of asyncpg's
# socket): while they wait, the COPY waits (memory stays flat for a slow reader).
COPY_QUEUE = 8
# Chunks waiting in the queue are sent together up to this size (bytes).
COPY_SEND = 256 * 1024
# A failed daily dump is tried again after this many seconds.
RETRY_DUMP_S = 300.0


def lease_seconds(settings: ExportSettings) -> float:
    """How long a caller's export lease lasts without renewal: an export renews it as it
    sends (at most every third of that), and a send waits at most ``idle_timeout_s``."""
    return 2 * settings.idle_timeout_s + 60


def _busy_caller() -> TooManyRequests:
    return TooManyRequests(
        "An export of yours is still running: one export at a time per caller. "
        "Retry after the time in Retry-After.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class ExportGate:
    """At most one export per caller and ``max_concurrent`` per process (in memory); with an
    ``engine``, one per caller across every process of the store too (a lease per caller,
    ``enter``/``renew``/``leave``)."""

    def __init__(
        self, max_concurrent: int, engine: AsyncEngine | None = None, lease_s: float = 180.0
    ) -> None:
        self.max_concurrent = max_concurrent
        self.running: set[str] = set()
        self.engine = engine
        self.lease_s = lease_s
        # caller -> (the lease's holder token, when it was last taken or renewed: monotonic)
        self.leases: dict[str, tuple[str, float]] = {}

    def acquire(self, caller: str) -> None:
        """Take an export slot of this process for ``caller``; 429 when the caller or the
        process is busy. Give it back with ``release``."""
        if caller in self.running:
            raise _busy_caller()
        if len(self.running) >= self.max_concurrent:
            raise TooManyRequests(
                "The server is streaming as many exports as it allows: retry after the time "
                "in Retry-After.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        self.running.add(caller)

    def release(self, caller: str) -> None:
        """Give back ``caller``'s slot."""
        self.running.discard(caller)

    async def enter(self, caller: str) -> None:
        """Take ``caller``'s slot here (``acquire``) and its lease in the store: 429 when
        another process streams an export of the caller's. Give both back with ``leave``."""
        self.acquire(caller)
        if self.engine is None:
            return
        holder = secrets.token_hex(16)
        now = utcnow()
        try:
            taken = await take_lease(
                self.engine, caller, holder, now, now + timedelta(seconds=self.lease_s)
            )
        except BaseException:
            self.release(caller)
            raise
        if not taken:
            self.release(caller)
            raise _busy_caller()
        self.leases[caller] = (holder, time.monotonic())

    async def renew(self, caller: str) -> None:
        """Renew ``caller``'s lease when a third of it has passed (an export calls this as
        it sends; most calls do nothing)."""
        entry = self.leases.get(caller)
        if entry is None or self.engine is None:
            return
        holder, renewed = entry
        if time.monotonic() - renewed < self.lease_s / 3:
            return
        self.leases[caller] = (holder, time.monotonic())
        until = utcnow() + timedelta(seconds=self.lease_s)
        if not await renew_lease(self.engine, caller, holder, until):
            log.warning("the export lease of %s ran out while its export streamed", caller)

    async def leave(self, caller: str) -> None:
        """Give back ``caller``'s slot and lease (a lease that cannot be given back now runs
        out by itself)."""
        self.release(caller)
        entry = self.leases.pop(caller, None)
        if entry is None or self.engine is None:
            return
        try:
            await asyncio.shield(drop_lease(self.engine, caller, entry[0]))
        except Exception:
            log.warning("the export lease of %s is left to run out", caller, exc_info=True)


async def export_batches(
    source: Store,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    filters: RequestFilters,
    settings: Settings,
    viewer: KeyInfo | None = None,
) -> AsyncIterator[list[dict[str, Any]]]:
    """The wire items of an export, a batch (``exports.batch_size``) at a time (``viewer``:
    as for GET requests, a sandbox key's export holds its app's sandbox requests only)."""
    async for batch in stream_requests(
        source,
        jurisdiction,
        catalog,
        filters,
        batch_size=settings.exports.batch_size,
        sql_w3c=settings.speed.sql_timestamps,
        viewer=viewer,
    ):
        yield batch


async def count_matching(
    source: Store,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    filters: RequestFilters,
    viewer: KeyInfo | None = None,
) -> int:
    """How many requests an export with ``filters`` holds now (a progress bar's length)."""
    plan = export_read(jurisdiction, catalog, filters, viewer)
    if plan is None:
        return 0
    return await count_requests(source.engine, plan[1])


async def primed(
    batches: AsyncIterator[list[dict[str, Any]]],
) -> AsyncIterator[list[dict[str, Any]]]:
    """``batches`` with its first batch already read: a failing read (say, the database is
    down) fails here, before an answer has started, and becomes an error document."""
    first = await anext(batches, None)

    async def chained() -> AsyncIterator[list[dict[str, Any]]]:
        if first is not None:
            yield first
        async for batch in batches:
            yield batch

    return chained()


async def encode(
    batches: AsyncIterator[list[dict[str, Any]]],
    fmt: ExportFormat,
    *,
    extensions: bool,
    counted: Callable[[int], None] | None = None,
) -> AsyncIterator[bytes]:
    """The bytes of an export in ``fmt``: the head, a part per batch, the tail.

    ``counted`` is told the number of items of each batch (progress, row counts)."""
    encoder = Encoder(fmt, extensions=extensions)
    head = encoder.head()
    if head:
        yield head
    async for batch in batches:
        if counted is not None:
            counted(len(batch))
        yield encoder.batch(batch)
    tail = encoder.tail()
    if tail:
        yield tail


@dataclass(slots=True)
class ExportBody:
    """The bytes of an export, and how to stop what produces them (however the answer
    ends: a COPY still running is cancelled and its connection closed)."""

    chunks: AsyncIterator[bytes]
    stop: Callable[[], Awaitable[None]] = field(default=lambda: _nothing())


async def _nothing() -> None:
    return None


async def export_body(
    source: Store,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    filters: RequestFilters,
    fmt: ExportFormat,
    settings: Settings,
    viewer: KeyInfo | None = None,
) -> ExportBody:
    """The bytes of an export, its first read already done (a failing read fails here,
    before the answer starts). On PostgreSQL (``exports.sql_copy``) the database writes the rows
    (a COPY of the same read, ``copy_export``); elsewhere they are encoded here, a batch at
    a time (``export_batches``, ``encode``): the same bytes either way."""
    if settings.exports.sql_copy and copies(source.engine):
        plan = export_read(jurisdiction, catalog, filters, viewer, sql_w3c=True)
        if plan is not None:
            return await copy_export(source, plan[1], fmt)
    batches = await primed(export_batches(source, jurisdiction, catalog, filters, settings, viewer))
    return ExportBody(encode(batches, fmt, extensions=filters.extensions))


async def copy_export(source: Store, read: RequestRead, fmt: ExportFormat) -> ExportBody:
    """An export written by PostgreSQL: its COPY runs in a task of its own and hands its
    chunks over through a queue of ``COPY_QUEUE`` (the COPY waits while the queue is full);
    ``CopiedRows`` makes them the bytes ``encode`` writes. Returns after the first chunk (or
    the end, or the failure) of the COPY."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=COPY_QUEUE)
    failed: list[Exception] = []

    async def put(data: bytes) -> None:
        await queue.put(bytes(data))  # asyncpg gives a bytearray, which a response cannot send

    async def run() -> None:
        try:
            await copy_requests(source.engine, read, fmt.value, put)
        except Exception as exc:  # the reader raises it
            failed.append(exc)
        await queue.put(None)

    task = asyncio.create_task(run(), name="open311-export-copy")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        first = await queue.get()
    except BaseException:
        await stop()
        raise
    if first is None and failed:
        raise failed[0]

    async def chunks() -> AsyncIterator[bytes]:
        rows = CopiedRows(fmt, extensions=read.extensions)
        try:
            if head := rows.head():
                yield head
            chunk = first
            while chunk is not None:
                # What else the COPY has handed over goes in the same send (fewer, larger
                # sends when the reader is the slower side).
                parts = [chunk]
                size = len(chunk)
                while size < COPY_SEND and not queue.empty():
                    more = queue.get_nowait()
                    if more is None:
                        break
                    parts.append(more)
                    size += len(more)
                else:
                    more = b""
                if out := rows.chunk(parts[0] if len(parts) == 1 else b"".join(parts)):
                    yield out
                chunk = None if more is None else await queue.get()
            if failed:
                raise failed[0]
            if tail := rows.tail():
                yield tail
        finally:
            await stop()

    return ExportBody(chunks(), stop)


# ---------------------------------------------------------------------------------------
# Daily dumps

DUMP_FORMATS = (ExportFormat.csv, ExportFormat.geojson)
MANIFEST = "manifest.json"
_KEY_SEGMENT = re.compile(r"[^a-z0-9_-]+")


def key_segment(code: str) -> str:
    """A jurisdiction code as one segment of an object key (lower case, safe characters)."""
    segment = _KEY_SEGMENT.sub("-", code.lower()).strip("-_")
    return segment[:100] or "jurisdiction"


def dump_prefix(settings: ExportSettings, jurisdiction_code: str, day: str) -> str:
    """Where one day's dump of a jurisdiction lives in the object store (ends in "/")."""
    return f"{settings.dump_prefix}/{key_segment(jurisdiction_code)}/{day}/"


@dataclass(slots=True)
class DumpFile:
    """One file of a dump, as its manifest lists it."""

    key: str
    format: str
    rows: int
    bytes: int
    sha256: str

    def entry(self, url: str) -> dict[str, Any]:
        """The manifest's entry of this file."""
        return {
            "key": self.key,
            "url": url,
            "format": self.format,
            "content_type": ExportFormat(self.format).media_type,
            "content_encoding": "gzip",
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


@dataclass(slots=True)
class Dump:
    """A jurisdiction's dump of one day: its files and its manifest."""

    jurisdiction: str
    day: str
    generated_at: datetime
    files: list[DumpFile] = field(default_factory=list)
    manifest_key: str = ""

    def manifest(self, store: ObjectStore) -> dict[str, Any]:
        """The manifest document (JSON)."""
        return {
            "jurisdiction_id": self.jurisdiction,
            "day": self.day,
            "generated_at": format_w3c(self.generated_at, UTC),
            "files": [f.entry(store.url_for(f.key)) for f in self.files],
        }


async def write_dump(
    source: Store,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    objects: ObjectStore,
    settings: Settings,
    now: datetime,
) -> Dump:
    """Write the dump of ``jurisdiction`` for the UTC day of ``now`` (all its public requests,
    with extensions) to ``objects``; the manifest last."""
    day = now.astimezone(UTC).date().isoformat()
    prefix = dump_prefix(settings.exports, jurisdiction.code, day)
    dump = Dump(jurisdiction.code, day, now)
    with tempfile.TemporaryDirectory(prefix="open311-dump-") as folder:
        for fmt in DUMP_FORMATS:
            path = Path(folder) / f"requests.{fmt.value}.gz"
            rows, size, digest = await _write_gzip(
                path, source, jurisdiction, catalog, settings, fmt
            )
            key = f"{prefix}requests.{fmt.value}.gz"
            await objects.put_file(key, path, "application/gzip")
            dump.files.append(DumpFile(key, fmt.value, rows, size, digest))
    dump.manifest_key = f"{prefix}{MANIFEST}"
    body = json.dumps(dump.manifest(objects), indent=2).encode()
    await objects.put(dump.manifest_key, body, "application/json")
    return dump


async def _write_gzip(
    path: Path,
    source: Store,
    jurisdiction: JurisdictionInfo,
    catalog: Catalog,
    settings: Settings,
    fmt: ExportFormat,
) -> tuple[int, int, str]:
    """Write one format's gzip file; (rows, bytes, sha256 of the file)."""
    rows = 0

    def count(n: int) -> None:
        nonlocal rows
        rows += n

    filters = RequestFilters(extensions=True)
    batches = export_batches(source, jurisdiction, catalog, filters, settings)
    # mtime=0: the same rows give the same bytes (and the same sha256).
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        async for part in encode(batches, fmt, extensions=True, counted=count):
            await asyncio.to_thread(out.write, part)
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as done:
        while chunk := done.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return rows, size, digest.hexdigest()


class DailyDumps:
    """The worker's dump job: once a UTC day (from ``dump_hour_utc``), every jurisdiction's
    dump, in a task of its own so that the worker's other work goes on meanwhile."""

    def __init__(
        self,
        source: Store,
        settings: Settings,
        registry: JurisdictionRegistry,
        catalogs: CatalogCache,
        objects: ObjectStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.source = source
        self.settings = settings
        self.registry = registry
        self.catalogs = catalogs
        self.objects = objects
        self.clock = clock
        self.task: asyncio.Task[list[Dump]] | None = None
        self.done_day: str | None = None
        self.retry_at = 0.0  # after a failed dump: not before this (time.monotonic())

    def due(self) -> str | None:
        """The UTC day whose dump is due now, if one is."""
        if time.monotonic() < self.retry_at:
            return None
        now = self.clock().astimezone(UTC)
        day = now.date().isoformat()
        if now.hour < self.settings.exports.dump_hour_utc or day == self.done_day:
            return None
        return day

    def start_due(self) -> int:
        """Start the day's dumps when due and none is running; 1 when started."""
        if self.task is not None and not self.task.done():
            return 0
        day = self.due()
        if day is None:
            return 0
        self.task = asyncio.create_task(self._run(day), name="open311-dumps")
        return 1

    async def wait(self) -> list[Dump]:
        """The dumps of the running task (none when no task runs)."""
        if self.task is None:
            return []
        return await self.task

    async def _run(self, day: str) -> list[Dump]:
        try:
            return await self._write_all(day)
        except Exception:  # the worker goes on; the day's dumps are tried again later
            log.exception("daily dump of %s failed; retrying in %.0f s", day, RETRY_DUMP_S)
            self.retry_at = time.monotonic() + RETRY_DUMP_S
            return []

    async def _write_all(self, day: str) -> list[Dump]:
        dumps = []
        now = self.clock()
        for jurisdiction in await self.registry.all():
            if jurisdiction.kind != "local":
                continue  # a partner city's mirror is the partner's to publish
            existing = dump_prefix(self.settings.exports, jurisdiction.code, day) + MANIFEST
            if await self._exists(existing):
                continue  # another worker wrote it (or this one, before a restart)
            catalog = await self.catalogs.get(jurisdiction.pk)
            dump = await write_dump(
                self.source, jurisdiction, catalog, self.objects, self.settings, now
            )
            log.info(
                "daily dump of %s written: %s",
                jurisdiction.code,
                ", ".join(f"{f.key} ({f.rows} rows)" for f in dump.files),
            )
            dumps.append(dump)
        self.done_day = day
        return dumps

    async def _exists(self, key: str) -> bool:
        from app.media.errors import ObjectNotFound

        try:
            await self.objects.get(key)
        except ObjectNotFound:
            return False
        return True

    async def aclose(self) -> None:
        """Stop a running dump (it is written again on the next pass)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

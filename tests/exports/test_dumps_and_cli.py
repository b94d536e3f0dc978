"""The worker's daily dump files (CSV and GeoJSON, gzip, and a manifest with row counts and
sha256) in the object store, and ``open311 export`` (a real process), on both backends."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.domain.webhooks import delivery_client
from app.media.settings import MediaSettings
from app.settings import ExportSettings, Settings
from app.worker import Worker
from tests.conftest import AppFactory, clear, engine_of, seed_catalog
from tests.factories import make_request
from tests.ops.server import cli_env, run_cli

ROWS = 13
DAY = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


async def _requests(client: httpx.AsyncClient) -> list[str]:
    engine = engine_of(client)
    seed = await seed_catalog(engine)
    ids = []
    for n in range(ROWS):
        at = DAY - timedelta(days=n * 30)
        pk = await make_request(
            engine,
            seed.jurisdiction_pk,
            seed.service_pks["POTHOLE"],
            requested_at=at,
            updated_at=at,
            email="private@example.org",
            description=f"Request {n}",
        )
        ids.append(str(pk))
    await make_request(engine, seed.jurisdiction_pk, seed.service_pks["POTHOLE"], sandbox=True)
    return ids


@pytest.fixture
async def dumping(make_client: AppFactory, tmp_path: Path) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await make_client(
        exports=ExportSettings(batch_size=5, dumps_enabled=True, dump_hour_utc=4),
        media=MediaSettings(local_dir=tmp_path / "objects"),
    )
    await clear(engine_of(client))
    return client


async def test_the_worker_writes_a_daily_dump_with_its_manifest(
    dumping: httpx.AsyncClient, tmp_path: Path
) -> None:
    ids = await _requests(dumping)
    state = dumping.app.state.open311  # type: ignore[attr-defined]
    worker = Worker(state.engine, state.settings, state.store)
    assert worker.dumps is not None
    clock = [DAY.replace(hour=3)]
    worker.dumps.clock = lambda: clock[0]
    async with delivery_client(state.settings) as http:
        await worker.run_once(http)
        # Before the dump hour: nothing written.
        assert not (tmp_path / "objects").exists() or not any((tmp_path / "objects").rglob("*"))
        clock[0] = DAY
        assert await worker.run_once(http) >= 1
        folder = tmp_path / "objects" / "exports" / "test-example-org" / "2026-03-04"
        manifest = json.loads((folder / "manifest.json").read_text())
        # Once a day: a later pass the same day writes nothing more.
        (folder / "manifest.json").write_text(json.dumps(manifest) + " ")
        await worker.run_once(http)
        assert (folder / "manifest.json").read_text().endswith(" ")
    await worker.aclose()

    assert manifest["day"] == "2026-03-04"
    assert manifest["generated_at"] == "2026-03-04T05:06:00+00:00"
    files = {entry["format"]: entry for entry in manifest["files"]}
    assert set(files) == {"csv", "geojson"}
    for fmt, entry in files.items():
        raw = (tmp_path / "objects" / entry["key"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(raw).hexdigest()
        assert entry["bytes"] == len(raw)
        assert entry["rows"] == ROWS
        assert entry["url"].endswith(entry["key"])
        text = gzip.decompress(raw).decode()
        assert "private@example.org" not in text
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
            assert sorted(r["service_request_id"] for r in rows) == sorted(ids)
            assert "ward" in rows[0]  # dumps carry the extensions
        else:
            document = json.loads(text)
            assert document["type"] == "FeatureCollection"
            assert sorted(f["id"] for f in document["features"]) == sorted(ids)


def _env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    if settings.embedded:
        return cli_env(tmp_path, OPEN311_DB__SQLITE_PATH=str(settings.db.sqlite_path))
    return cli_env(tmp_path, OPEN311_DB__URL=settings.db.url)


async def test_open311_export_writes_every_matching_request(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    ids = await _requests(client)
    env = _env(settings, tmp_path)
    out = tmp_path / "requests.ndjson"
    done = run_cli(tmp_path, "export", "--format", "ndjson", "--output", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert f"Wrote {ROWS} requests of test.example.org to {out} (ndjson)." in done.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(item["service_request_id"] for item in lines) == sorted(ids)
    assert "reporter" not in lines[0]

    # GET requests' filters: the three newest (requested from 70 days before DAY on).
    since = (DAY - timedelta(days=70)).isoformat()
    csv_out = tmp_path / "recent.csv"
    done = run_cli(
        tmp_path,
        *("export", "--format", "csv", "--output", str(csv_out), "--start-date", since),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(csv_out.read_text(), newline="")))
    assert [r["service_request_id"] for r in rows] == ids[:3]

    bad = run_cli(tmp_path, "export", "--format", "xlsx", "--output", str(tmp_path / "x"), env=env)
    assert bad.returncode == 2
    assert "csv, geojson or ndjson" in bad.stderr

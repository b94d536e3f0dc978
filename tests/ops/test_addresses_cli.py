"""``open311 addresses import`` (a real process, both backends), the stored address points and
the per-jurisdiction gazetteer built from them; the Toronto demo's own gazetteer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.demo.loader import load_demo
from app.domain.addresses import Gazetteers
from app.geo.settings import GeocodeSettings
from app.settings import Settings
from app.store.addresses import address_points_version
from app.store.catalog import jurisdiction_pk
from app.store.engine import make_engine
from tests.conftest import clear, seed_catalog
from tests.ops.server import cli_env, run_cli

CSV = """ADDRESS,LATITUDE,LONGITUDE
10 Main St,43.70,-79.40
12 Main St,43.7002,-79.4001
,43.71,-79.41
Main St & Oak Ave,43.7010,-79.4010
"""


def _env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    if settings.embedded:
        return cli_env(tmp_path, OPEN311_DB__SQLITE_PATH=str(settings.db.sqlite_path), **extra)
    return cli_env(tmp_path, OPEN311_DB__URL=settings.db.url, **extra)


@pytest.fixture
async def engine(settings: Settings) -> AsyncEngine:
    made = make_engine(settings, null_pool=True)
    await clear(made)
    return made


async def _count(engine: AsyncEngine, code: str) -> int:
    async with engine.connect() as conn:
        pk = await jurisdiction_pk(conn, code, ignore_case=True)
        assert pk is not None
        return (await address_points_version(conn, pk)).count


async def test_import_dry_run_add_and_replace(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    seed = await seed_catalog(engine)
    code = seed.jurisdiction_id
    env = _env(settings, tmp_path)
    sheet = tmp_path / "points.csv"
    sheet.write_text(CSV, encoding="utf-8")
    args = ("addresses", "import", str(sheet), "--jurisdiction", code)

    dry = run_cli(tmp_path, *args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: 3 address points read (1 rows skipped); nothing written." in dry.stdout
    assert await _count(engine, code) == 0

    gazetteers = Gazetteers(GeocodeSettings())
    async with engine.connect() as conn:
        empty = await gazetteers.get(conn, seed.jurisdiction_pk)
    assert await empty.forward("10 Main St") is None

    done = run_cli(tmp_path, *args, env=env)
    assert done.returncode == 0, done.stderr
    assert f"Imported 3 address points into {code} (1 rows skipped)." in done.stdout
    assert await _count(engine, code) == 3
    async with engine.connect() as conn:
        built = await gazetteers.get(conn, seed.jurisdiction_pk)
        assert await gazetteers.get(conn, seed.jurisdiction_pk) is built  # cached
    place = await built.forward("10 main street")
    assert place is not None
    assert (place.lat, place.lon) == (43.70, -79.40)

    again = run_cli(tmp_path, *args, env=env)
    assert again.returncode == 0, again.stderr
    assert await _count(engine, code) == 6

    other = tmp_path / "other.geojson"
    other.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"address": "5 Elm Ave"},
                        "geometry": {"type": "Point", "coordinates": [-79.5, 43.8]},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    dry_replace = run_cli(
        tmp_path, "addresses", "import", str(other), "--jurisdiction", code, "--replace",
        "--dry-run", env=env,
    )  # fmt: skip
    assert dry_replace.returncode == 0, dry_replace.stderr
    assert "1 address points read (0 rows skipped), 6 replaced; nothing written" in (
        dry_replace.stdout
    )
    assert await _count(engine, code) == 6
    replaced = run_cli(
        tmp_path, "addresses", "import", str(other), "--jurisdiction", code, "--replace", env=env
    )
    assert replaced.returncode == 0, replaced.stderr
    assert "Imported 1 address points" in replaced.stdout
    assert "6 replaced" in replaced.stdout
    assert await _count(engine, code) == 1
    # The points changed: the gazetteer is built again from them.
    async with engine.connect() as conn:
        rebuilt = await gazetteers.get(conn, seed.jurisdiction_pk)
    assert rebuilt is not built
    assert await rebuilt.forward("10 Main St") is None
    found = await rebuilt.forward("5 Elm Avenue")
    assert found is not None
    assert (found.lat, found.lon) == (43.8, -79.5)
    await engine.dispose()


async def test_import_errors_are_one_line_and_write_nothing(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    seed = await seed_catalog(engine)
    code = seed.jurisdiction_id
    sheet = tmp_path / "points.csv"
    sheet.write_text(CSV, encoding="utf-8")

    def attempt(path: Path, jurisdiction: str = code, **extra: str) -> tuple[int, str]:
        env = _env(settings, tmp_path, **extra)
        done = run_cli(
            tmp_path, "addresses", "import", str(path), "--jurisdiction", jurisdiction, env=env
        )
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "Traceback" not in done.stderr
        return done.returncode, lines[0]

    status, line = attempt(sheet, OPEN311_GEOCODE__MAX_IMPORT_RECORDS="2")
    assert status == 2
    assert "more than 2 records" in line
    big = tmp_path / "big.csv"
    big.write_text(CSV + "20 Main St,43.7,-79.4\n" * 100, encoding="utf-8")
    status, line = attempt(big, OPEN311_GEOCODE__MAX_IMPORT_BYTES="1024")
    assert status == 2
    assert "larger than the limit of 1024 bytes" in line
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("ADDRESS,LATITUDE,LONGITUDE\n1 A St,43.7,-79.4\n2 A St,north,-79.4\n")
    status, line = attempt(wrong)
    assert status == 2
    assert "wrong.csv line 3" in line
    not_json = tmp_path / "points.json"
    not_json.write_text("{nope")
    status, line = attempt(not_json)
    assert status == 2
    assert "not valid JSON" in line
    status, line = attempt(tmp_path / "missing.csv")
    assert status == 2
    assert "cannot be read" in line
    status, line = attempt(sheet, jurisdiction="nowhere.example")
    assert status != 0
    assert "nowhere.example" in line
    assert await _count(engine, code) == 0
    await engine.dispose()


async def test_demo_builds_its_gazetteer_from_the_captured_requests(engine: AsyncEngine) -> None:
    report = await load_demo(engine, original_dates=True)
    assert report.address_points > 900
    assert await _count(engine, report.jurisdiction) == report.address_points
    # Loading again replaces them (the demo is idempotent).
    again = await load_demo(engine, original_dates=True)
    assert again.address_points == report.address_points
    assert await _count(engine, report.jurisdiction) == report.address_points
    gazetteers = Gazetteers(GeocodeSettings())
    async with engine.connect() as conn:
        pk = await jurisdiction_pk(conn, report.jurisdiction, ignore_case=True)
        assert pk is not None
        gazetteer = await gazetteers.get(conn, pk)
    place = await gazetteer.forward("333 King Street East")
    assert place is not None
    assert abs(place.lat - 43.651552) < 1e-4
    assert abs(place.lon - -79.365932) < 1e-4
    corner = await gazetteer.forward("Keele St & Dundas St W")
    assert corner is not None
    assert abs(corner.lat - 43.6654) < 2e-3
    await engine.dispose()

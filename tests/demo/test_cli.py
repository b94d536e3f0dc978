"""The open311 command, run as a real process on an embedded database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from app.main import create_app
from app.settings import DatabaseSettings, Settings, WorkerSettings
from tests.support import fetch_both, make_run_default_jurisdiction


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPEN311_DB__SQLITE_PATH": str(tmp_path / "cli.db")}
    env.pop("OPEN311_DB__URL", None)
    return subprocess.run(  # noqa: S603 - our own program, fixed arguments, no shell
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


def test_demo_and_key_lifecycle(tmp_path: Path) -> None:
    demo = _run(tmp_path, "demo", "--no-requests", "--api-key", "cli-demo-key-1")
    assert demo.returncode == 0, demo.stderr
    assert "toronto.ca" in demo.stdout
    assert "greatersudbury.ca: 6 services in English, 52 French texts, 12 wards" in demo.stdout
    created = _run(tmp_path, "keys", "create", "Civic App")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert len(key) >= 32
    listed = _run(tmp_path, "keys", "list")
    assert "Civic App" in listed.stdout
    assert key not in listed.stdout  # only the prefix is ever shown again
    assert key[:8] in listed.stdout
    key_id = listed.stdout.strip().splitlines()[-1].split("\t")[0]
    revoked = _run(tmp_path, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in _run(tmp_path, "keys", "list").stdout
    again = _run(tmp_path, "keys", "revoke", key_id)
    assert again.returncode == 1
    jurisdictions = _run(tmp_path, "jurisdictions", "list")
    assert "toronto.ca\tCity of Toronto\tAmerica/Toronto" in jurisdictions.stdout
    assert "greatersudbury.ca\tCity of Greater Sudbury\tAmerica/Toronto" in jurisdictions.stdout


async def test_demo_dates_moved_by_default_and_kept_with_original_dates(tmp_path: Path) -> None:
    kept = _run(tmp_path, "demo", "--original-dates")
    assert kept.returncode == 0, kept.stderr
    assert "kept at their captured 2018 dates" in kept.stdout
    assert await _newest(tmp_path, {"start_date": "2018-09-26", "end_date": "2018-10-29"}) == (
        "2018-10-28T17:00:00-04:00"
    )
    assert await _newest(tmp_path, None) is None  # nothing in the last 90 days

    moved = _run(tmp_path, "demo")
    assert moved.returncode == 0, moved.stderr
    assert "1000 stored ones re-dated" in moved.stdout
    newest = await _newest(tmp_path, None)
    assert newest is not None
    yesterday = datetime.now(UTC).astimezone(ZoneInfo("America/Toronto")).date() - timedelta(1)
    assert newest[:10] in {str(yesterday), str(yesterday + timedelta(1))}  # midnight race
    assert newest[10:19] == "T17:00:00"


async def _newest(tmp_path: Path, params: dict[str, str] | None) -> str | None:
    """requested_datetime of the newest request GET requests lists (None: an empty list)."""
    # As make run serves the demo: its two jurisdictions, Toronto answering calls without one.
    settings = Settings(
        db=DatabaseSettings(sqlite_path=tmp_path / "cli.db"),
        worker=WorkerSettings(in_process=False),
        default_jurisdiction=make_run_default_jurisdiction(),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            both = await fetch_both(http, "requests", params)
    return both.json[0]["requested_datetime"] if both.json else None

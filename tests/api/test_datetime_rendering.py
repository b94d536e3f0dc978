"""Datetimes of requests read the same whichever side renders them.

On PostgreSQL the hot reads render ``requested_datetime``, ``updated_datetime`` and
``expected_datetime`` in SQL (``to_char`` in the jurisdiction's zone); on SQLite Python's
``format_w3c`` does. Both must write exactly what ``format_w3c`` writes, in every zone
(half-hour offsets, negative and positive, across daylight-saving changes), in both formats
and for the list as well as the single request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from app.georeport.datetimes import format_w3c
from app.store.tables import Jurisdiction
from tests.conftest import Seed, engine_of
from tests.factories import make_request
from tests.support import fetch_both

BASE = "/open311/v2"
ZONES = ["America/Toronto", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe", "UTC"]
# Around the 2024 daylight-saving changes of Toronto and Lord Howe, plus odd instants.
INSTANTS = [
    datetime(2024, 3, 10, 6, 59, 59, 999_999, tzinfo=UTC),
    datetime(2024, 3, 10, 7, 0, 0, tzinfo=UTC),
    datetime(2024, 11, 3, 5, 30, 0, 500_000, tzinfo=UTC),
    datetime(2024, 11, 3, 6, 0, 1, tzinfo=UTC),
    datetime(2024, 4, 6, 14, 59, 59, tzinfo=UTC),
    datetime(2024, 4, 6, 15, 0, 0, tzinfo=UTC),
    datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
]


@pytest.mark.parametrize("zone", ZONES)
async def test_sql_and_python_render_the_same_datetimes(
    client: httpx.AsyncClient, seeded: Seed, zone: str
) -> None:
    engine = engine_of(client)
    async with engine.begin() as conn:
        await conn.execute(
            update(Jurisdiction)
            .where(Jurisdiction.id == seeded.jurisdiction_pk)
            .values(timezone=zone)
        )
    client.app.state.open311.jurisdictions.invalidate()  # type: ignore[attr-defined]
    service = seeded.service_pks["LITTER.BIN"]
    stored: dict[str, tuple[datetime, datetime, datetime | None]] = {}
    for at, instant in enumerate(INSTANTS):
        updated = instant + timedelta(hours=at, seconds=0.4)
        expected = None if at % 3 == 0 else instant + timedelta(days=at)
        pk = await make_request(
            engine,
            seeded.jurisdiction_pk,
            service,
            requested_at=instant,
            updated_at=updated,
            expected_at=expected,
        )
        stored[str(pk)] = (instant, updated, expected)
    tz = ZoneInfo(zone)

    def wanted(pk: str) -> tuple[str, str, str | None]:
        requested, updated, expected = stored[pk]
        return (
            format_w3c(requested, tz),
            format_w3c(updated, tz),
            format_w3c(expected, tz) if expected is not None else None,
        )

    def seen(item: dict[str, object]) -> tuple[object, object, object]:
        return (
            item["requested_datetime"],
            item["updated_datetime"],
            item["expected_datetime"],
        )

    window = {"start_date": "2024-01-01T00:00:00Z", "end_date": "2025-01-02T00:00:00Z"}
    listed = await fetch_both(client, "requests", params=window)
    for document in (listed.json, listed.xml):
        assert len(document) == len(INSTANTS)
        for item in document:
            assert seen(item) == wanted(str(item["service_request_id"])), (zone, item)
    for pk in stored:
        one = await fetch_both(client, f"requests/{pk}")
        for document in (one.json, one.xml):
            assert seen(document[0]) == wanted(pk), (zone, document)

""" "Open and overdue now" from the rollups, through HTTP on both backends.

A report counts the open requests past their target from the rollups for the days whose
targets have all fallen due, and from the requests themselves from the first day with a
target still ahead (``app.domain.reports._overdue``); whole months are read from the months'
rollups. These tests set requests around the present (targets hours and days away, a staff
target a month ahead on an old day) and move the clock (the only thing mocked), and check
the report's overdue counts by service, by month and in total against the requests as
seeded; and that a month's rollup is the sum of its days'.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from app.domain import reports
from app.domain.api_keys import create_key
from app.store.tables import ReportDay, ReportMonth
from tests.conftest import Seed, engine_of
from tests.factories import make_request

BASE = "/open311/v2"
TORONTO = ZoneInfo("America/Toronto")
DAY = ReportDay.__table__
MONTH = ReportMonth.__table__


@dataclass(frozen=True)
class Filed:
    service: str
    requested_at: datetime
    expected_at: datetime | None
    status: str = "open"


class City:
    """Requests filed around the present, and what a report should count of them."""

    def __init__(self, client: httpx.AsyncClient, seeded: Seed, now: datetime) -> None:
        self.client, self.seeded, self.now = client, seeded, now
        self.filed: list[Filed] = []
        self.start = (now - timedelta(days=120)).astimezone(TORONTO).date()
        self.end = now.astimezone(TORONTO).date()

    async def file(
        self, service: str, ago: timedelta, due: timedelta | None, status: str = "open"
    ) -> None:
        requested = self.now - ago
        expected = None if due is None else self.now + due
        await make_request(
            engine_of(self.client),
            self.seeded.jurisdiction_pk,
            self.seeded.service_pks[service],
            requested_at=requested,
            updated_at=self.now,
            expected_at=expected,
            status=status,
        )
        self.filed.append(Filed(service, requested, expected, status))

    def overdue(self, at: datetime) -> tuple[int, Counter[str], Counter[str]]:
        """(total, by service code, by month) of the filed requests overdue at ``at``."""
        due = [
            f
            for f in self.filed
            if f.status == "open" and f.expected_at is not None and f.expected_at < at
        ]
        months = Counter(f.requested_at.astimezone(TORONTO).strftime("%Y-%m") for f in due)
        return len(due), Counter(f.service for f in due), months

    async def report(self, key: str, group_by: str) -> dict[str, Any]:
        response = await self.client.get(
            f"{BASE}/reports/service-promise.json",
            params={
                "jurisdiction_id": self.seeded.jurisdiction_id,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "group_by": group_by,
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def check(self, key: str, at: datetime) -> int:
        total, by_service, by_month = self.overdue(at)
        service = await self.report(key, "service")
        assert service["total"]["overdue"] == total
        assert {g["group"]: g["overdue"] for g in service["groups"] if g["overdue"]} == dict(
            by_service
        )
        month = await self.report(key, "month")
        assert month["total"]["overdue"] == total
        assert {g["group"]: g["overdue"] for g in month["groups"] if g["overdue"]} == dict(by_month)
        return total


async def _admin(client: httpx.AsyncClient) -> str:
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, "Reports", app="Council office", scopes=["admin"])
    return key


async def test_overdue_now_from_rollups_and_the_recent_days_as_the_clock_moves(
    client: httpx.AsyncClient, seeded: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    city = City(client, seeded, now)
    hour, day = timedelta(hours=1), timedelta(days=1)
    # Months ago: all targets fallen due (counted from the months' and days' rollups).
    await city.file("POTHOLE", 100 * day, -95 * day)
    await city.file("POTHOLE", 100 * day, -95 * day, status="closed")
    await city.file("LITTER.BIN", 70 * day, None)
    await city.file("LITTER.BIN", 40 * day, -30 * day)
    # The recent days: targets on both sides of the present (counted from the requests).
    await city.file("POTHOLE", 3 * day, -2 * hour)
    await city.file("POTHOLE", 3 * day, 2 * hour)
    await city.file("GRAFFITI", 1 * day, 5 * day)
    await city.file("LITTER.BIN", 2 * day, -1 * day)
    await make_request(  # sandbox: never counted
        engine_of(client),
        seeded.jurisdiction_pk,
        seeded.service_pks["POTHOLE"],
        requested_at=now - 2 * day,
        expected_at=now - day,
        sandbox=True,
    )
    key = await _admin(client)
    assert await city.check(key, now) == 4

    # A staff target a month ahead on a request of two months ago: from that day on the
    # requests are counted themselves, and a request due since then among them is found.
    await city.file("GRAFFITI", 60 * day, 30 * day)
    await city.file("GRAFFITI", 59 * day, -50 * day)
    assert await city.check(key, now) == 5

    # The clock moves on: targets that were ahead fall due with no change to any request.
    monkeypatch.setattr(reports, "utcnow", lambda: now + 3 * hour)
    assert await city.check(key, now + 3 * hour) == 6
    monkeypatch.setattr(reports, "utcnow", lambda: now + 6 * day)
    assert await city.check(key, now + 6 * day) == 7
    monkeypatch.setattr(reports, "utcnow", lambda: now + 31 * day)
    assert await city.check(key, now + 31 * day) == 8


@pytest.mark.parametrize("piece", [1, reports.PIECE_REQUESTS])
async def test_a_months_rollup_is_the_sum_of_its_days(
    client: httpx.AsyncClient, seeded: Seed, monkeypatch: pytest.MonkeyPatch, piece: int
) -> None:
    """Built in pieces of a few days (months summed as pieces complete them) or in one."""
    monkeypatch.setattr(reports, "PIECE_REQUESTS", piece)
    now = datetime.now(UTC).replace(microsecond=0)
    city = City(client, seeded, now)
    day = timedelta(days=1)
    for n, service in enumerate(["POTHOLE", "LITTER.BIN", "GRAFFITI"] * 6):
        await city.file(service, (5 + 9 * n) * day, (2 * n - 12) * day, ("open", "closed")[n % 2])
    for n in range(40):  # one a day: pieces of one request end on every day, month ends too
        await city.file("POTHOLE", (n + 1) * day, (5 - n) * day, ("open", "closed")[n % 3 == 0])
    key = await _admin(client)
    await city.report(key, "service")
    # One more request in a month already rolled up: its day and its month are rewritten.
    await city.file("POTHOLE", 40 * day, -35 * day, status="closed")
    await city.report(key, "ward")

    counted = ("received", "closed", "with_target", "met", "late", "first_contact")
    counted += ("open_targeted",)
    async with engine_of(client).connect() as conn:
        months = {
            (_date(r.month), r.dimension, r.key): r
            for r in await conn.execute(
                select(MONTH).where(MONTH.c.jurisdiction_id == seeded.jurisdiction_pk)
            )
        }
        days = list(
            await conn.execute(select(DAY).where(DAY.c.jurisdiction_id == seeded.jurisdiction_pk))
        )
        assert (await conn.execute(select(func.count()).select_from(MONTH))).scalar() == len(months)
    summed: dict[tuple[date, str, str], dict[str, Any]] = {}
    for row in days:
        month = _date(row.day).replace(day=1)
        into = summed.setdefault(
            (month, row.dimension, row.key),
            {**dict.fromkeys(counted, 0), "buckets": Counter(), "first": None, "last": None},
        )
        for name in counted:
            into[name] += getattr(row, name)
        into["buckets"].update({k: int(v) for k, v in (row.close_buckets or {}).items()})
        for name, pick, value in (("first", min, row.first_due), ("last", max, row.last_due)):
            if value is not None:
                into[name] = value if into[name] is None else pick(into[name], value)
    assert set(months) == set(summed)
    assert len({m for m, _, _ in months}) >= 4  # the requests span several months
    for where, row in months.items():
        want = summed[where]
        assert {name: getattr(row, name) for name in counted} == {n: want[n] for n in counted}
        assert Counter({k: int(v) for k, v in (row.close_buckets or {}).items()}) == want["buckets"]
        assert (row.first_due, row.last_due) == (want["first"], want["last"])


def _date(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value

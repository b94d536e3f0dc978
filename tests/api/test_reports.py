"""The service-promise reports through HTTP on both backends: JSON and CSV, who may read
them, bounded inputs, and rollups that agree with a direct computation from the requests
after creates, closes and updates."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from app.domain import reports
from app.domain.api_keys import create_key
from app.domain.divisions import create_division, move_service
from app.domain.updates import Change, apply_change
from app.store import reports as report_store
from app.store.engine import write_transaction
from tests.conftest import Seed, engine_of
from tests.factories import make_request
from tests.support import POTHOLE_AT_CITY_HALL

BASE = "/open311/v2"
TORONTO = ZoneInfo("America/Toronto")


def at(text: str) -> datetime:
    """A local Toronto time as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=TORONTO).astimezone(UTC)


async def _key(client: httpx.AsyncClient, scopes: list[str]) -> str:
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(conn, "Reports", app="Council office", scopes=scopes)
    return key


async def _close(
    client: httpx.AsyncClient, seeded: Seed, admin: str, request_pk: int, when: datetime
) -> None:
    """A staff change closing the request, timed ``when`` (the CLI's and the admin API's
    domain call; the admin API times a change now)."""
    del admin
    state = client.app.state.open311  # type: ignore[attr-defined]
    place = await state.jurisdictions.resolve(seeded.jurisdiction_id)
    async with write_transaction(engine_of(client)) as conn:
        await apply_change(
            conn, place, str(request_pk), Change(status="fixed", updated_datetime=when.isoformat())
        )


@pytest.fixture
async def city(client: httpx.AsyncClient, seeded: Seed) -> dict[str, Any]:
    """Two divisions, five public requests of 2025 (one closed in target, one late, one
    open and overdue, one without target, one resolved at first contact), one of 2024 and a
    sandbox one (never counted)."""
    engine = engine_of(client)
    pk, services = seeded.jurisdiction_pk, seeded.service_pks
    async with engine.begin() as conn:
        await create_division(conn, pk, "sw", "Solid Waste Management")
        await create_division(conn, pk, "ts", "Transportation")
        await move_service(conn, pk, "LITTER.BIN", "sw", by="test")
        await move_service(conn, pk, "POTHOLE", "ts", by="test")
    admin = await _key(client, ["admin"])

    def filed(service: str, when: str, **extra: Any) -> Any:
        requested = at(when)
        return make_request(
            engine,
            pk,
            services[service],
            requested_at=requested,
            updated_at=extra.pop("updated_at", requested),
            channel=extra.pop("channel", "web"),
            **extra,
        )

    met = await filed("LITTER.BIN", "2025-03-03T10:00", expected_at=at("2025-03-05T10:00"))
    late = await filed("LITTER.BIN", "2025-03-05T10:00", expected_at=at("2025-03-06T10:00"))
    await filed("POTHOLE", "2025-04-01T09:00", expected_at=at("2025-04-02T09:00"))
    await filed("POTHOLE", "2025-04-10T09:00", channel="phone")
    await filed(
        "GRAFFITI",
        "2025-04-11T12:00",
        channel="counter",
        status="closed",
        first_contact_resolved=True,
        updated_at=at("2025-04-11T12:10"),
    )
    await filed("LITTER.BIN", "2024-06-01T12:00")
    await filed("POTHOLE", "2025-05-01T12:00", sandbox=True)
    await _close(client, seeded, admin, met, at("2025-03-04T10:00"))
    await _close(client, seeded, admin, late, at("2025-03-08T10:00"))
    return {"admin": admin}


async def _report(
    client: httpx.AsyncClient, seeded: Seed, key: str | None, name: str, **params: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await client.get(
        f"{BASE}/reports/{name}",
        params={"jurisdiction_id": seeded.jurisdiction_id, **params},
        headers=headers,
    )


async def test_service_promise_by_division_json_and_csv(
    client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any]
) -> None:
    reader = await _key(client, ["reports"])
    response = await _report(client, seeded, reader, "service-promise.json", start="2025-01-01")
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["start"], report["end"], report["group_by"]) == (
        "2025-01-01",
        "2025-12-31",
        "division",
    )
    total = report["total"]
    assert (total["received"], total["closed"], total["open"]) == (5, 3, 2)
    assert (total["closed_within_target"], total["closed_late"], total["overdue"]) == (1, 1, 1)
    assert total["compliance_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert (total["first_contact_resolved"], total["first_contact_rate"]) == (1, 0.2)
    # Times to close: 10 minutes, 24 hours and 72 hours (percentile_cont: 24 and 62.4).
    assert total["median_hours_to_close"] == pytest.approx(24, rel=0.025)
    assert total["p90_hours_to_close"] == pytest.approx(62.4, rel=0.025)
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["sw"]["label"] == "Solid Waste Management"
    assert (groups["sw"]["received"], groups["sw"]["compliance_rate"]) == (2, 0.5)
    assert (groups["ts"]["received"], groups["ts"]["overdue"], groups["ts"]["open"]) == (2, 1, 2)
    assert groups[""]["label"] == "(no division)"

    as_csv = await _report(client, seeded, reader, "service-promise.csv", start="2025-01-01")
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [line["group"] for line in lines] == [*[g["group"] for g in report["groups"]], "total"]
    assert int(lines[-1]["received"]) == 5
    assert float(lines[-1]["compliance_rate"]) == total["compliance_rate"]


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("channel", {"web": 3, "phone": 1, "counter": 1}),
        ("month", {"2025-03": 2, "2025-04": 3, "2025-05": 0}),
        ("ward", {"": 5}),
    ],
)
async def test_service_promise_groupings(
    client: httpx.AsyncClient,
    seeded: Seed,
    city: dict[str, Any],
    group_by: str,
    expected: dict[str, int],
) -> None:
    response = await _report(
        client,
        seeded,
        city["admin"],
        "service-promise.json",
        start="2025-03-01",
        end="2025-05-31",
        group_by=group_by.upper(),
    )
    assert response.status_code == 200, response.text
    received = {g["group"]: g["received"] for g in response.json()["groups"]}
    assert received == expected


async def test_key_metrics(client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any]) -> None:
    response = await _report(client, seeded, city["admin"], "key-metrics.json", year="2025")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["year"] == 2025
    assert report["total"]["received"] == 5
    channels = {c["channel"]: c["months"] for c in report["channels"]}
    assert channels["web"][2:4] == [2, 1]
    assert channels["phone"][3] == 1
    assert [m["received"] for m in report["months"]][2:5] == [2, 3, 0]
    top = [(s["service_code"], s["received"]) for s in report["top_services"]]
    assert top == [("LITTER.BIN", 2), ("POTHOLE", 2), ("GRAFFITI", 1)]
    trending = [(t["service_code"], t["change"], t["previous_year"]) for t in report["trending"]]
    assert trending == [("POTHOLE", 2, 0), ("GRAFFITI", 1, 0), ("LITTER.BIN", 1, 1)]
    assert {d["group"] for d in report["divisions"]} == {"sw", "ts", ""}
    as_csv = await _report(client, seeded, city["admin"], "key-metrics.csv", year="2025")
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    trending_lines = [line for line in lines if line["table"] == "trending"]
    assert ("POTHOLE", "change", "2") in {
        (x["key"], x["measure"], x["value"]) for x in trending_lines
    }


async def test_who_may_read_reports_and_bounded_inputs(
    client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any]
) -> None:
    submit = await _key(client, ["submit", "staff"])
    for key in (None, submit, "not-a-key"):
        refused = await _report(client, seeded, key, "service-promise.json")
        assert refused.status_code == 403, refused.text
        assert refused.json()[0]["code"] == 403
    reader = await _key(client, ["reports"])
    # The api_key parameter works as on every GeoReport read.
    by_param = await client.get(
        f"{BASE}/reports/key-metrics.json",
        params={"jurisdiction_id": seeded.jurisdiction_id, "api_key": reader},
    )
    assert by_param.status_code == 200, by_param.text
    for params in (
        {"start": "2020-01-01", "end": "2026-01-01"},
        {"start": "2025-02-01", "end": "2025-01-01"},
        {"start": "yesterday"},
        {"group_by": "planet"},
    ):
        bad = await _report(client, seeded, reader, "service-promise.json", **params)
        assert bad.status_code == 400, (params, bad.text)
        assert bad.json()[0]["code"] == 400
    # Without end: the end of start's year.
    last_year = await _report(client, seeded, reader, "service-promise.json", start="2024-06-01")
    assert (last_year.json()["end"], last_year.json()["total"]["received"]) == ("2024-12-31", 1)
    bad_year = await _report(client, seeded, reader, "key-metrics.json", year="20255")
    assert bad_year.status_code == 400
    as_xml = await _report(client, seeded, None, "service-promise.csv")
    assert as_xml.status_code == 403
    assert as_xml.text.startswith("<?xml")


async def _direct(client: httpx.AsyncClient, seeded: Seed, year: int) -> report_store.DirectCounts:
    start = datetime(year, 1, 1, tzinfo=TORONTO).astimezone(UTC)
    end = datetime(year + 1, 1, 1, tzinfo=TORONTO).astimezone(UTC)
    async with engine_of(client).connect() as conn:
        return await report_store.direct_counts(
            conn, seeded.jurisdiction_pk, start, end, limit=10_000
        )


def assert_counts_agree(total: dict[str, Any], direct: report_store.DirectCounts) -> None:
    """The counts of a report's total equal those computed directly from the requests."""
    assert (
        total["received"],
        total["closed"],
        total["with_target"],
        total["closed_within_target"],
        total["closed_late"],
        total["first_contact_resolved"],
    ) == (
        direct.received,
        direct.closed,
        direct.with_target,
        direct.met,
        direct.late,
        direct.first_contact,
    )


async def test_rollups_agree_with_a_direct_computation_after_changes(
    client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any]
) -> None:
    admin = city["admin"]

    async def check() -> dict[str, Any]:
        response = await _report(client, seeded, admin, "service-promise.json", start="2025-01-01")
        assert response.status_code == 200, response.text
        total: dict[str, Any] = response.json()["total"]
        direct = await _direct(client, seeded, 2025)
        assert_counts_agree(total, direct)
        for name, exact in (
            ("median_hours_to_close", direct.median_hours),
            ("p90_hours_to_close", direct.p90_hours),
        ):
            assert total[name] == pytest.approx(exact, rel=0.025, abs=0.01), name
        return total

    first = await check()
    # A request made now through POST (2026: outside the period) and one of 2025 added,
    # closed, reopened and closed again: the next report sees every change.
    engine = engine_of(client)
    later = await make_request(
        engine,
        seeded.jurisdiction_pk,
        seeded.service_pks["POTHOLE"],
        requested_at=at("2025-06-02T08:00"),
        expected_at=at("2025-06-20T08:00"),
    )
    await _close(client, seeded, admin, later, at("2025-06-03T08:00"))
    second = await check()
    assert (second["received"], second["closed_within_target"]) == (
        first["received"] + 1,
        first["closed_within_target"] + 1,
    )
    reopened = await client.post(
        f"/admin/v1/requests/{later}/updates.json",
        params={"jurisdiction_id": seeded.jurisdiction_id},
        json={"status": "reopen"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert reopened.status_code == 201, reopened.text
    third = await check()
    assert third["closed"] == first["closed"]
    await _close(client, seeded, admin, later, datetime.now(UTC) - timedelta(minutes=1))
    fourth = await check()
    assert fourth["closed_late"] == first["closed_late"] + 1
    posted = await client.post(
        f"{BASE}/requests.json",
        data={
            "api_key": seeded.api_key,
            "jurisdiction_id": seeded.jurisdiction_id,
            **POTHOLE_AT_CITY_HALL,
        },
    )
    assert posted.status_code in (200, 201), posted.text
    this_year = datetime.now(TORONTO).year
    response = await _report(
        client, seeded, admin, "service-promise.json", start=f"{this_year}-01-01"
    )
    direct = await _direct(client, seeded, this_year)
    assert response.json()["total"]["received"] == direct.received >= 1


@pytest.mark.parametrize("name", ["service-promise", "key-metrics"])
async def test_the_printable_page_is_self_contained(
    client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any], name: str
) -> None:
    page = await client.get(
        f"/web/reports/{name}.html",
        params={
            "jurisdiction_id": seeded.jurisdiction_id,
            "api_key": city["admin"],
            "year": "2025",
        },
    )
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "private, no-store"
    text = page.text
    assert "<svg" in text
    assert 'class="bar"' in text
    assert "<script" not in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    assert "Solid Waste Management" in text
    refused = await client.get(
        f"/web/reports/{name}.html", params={"jurisdiction_id": seeded.jurisdiction_id}
    )
    assert refused.status_code == 403


async def test_csv_cells_never_start_a_formula(
    client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any]
) -> None:
    """A division named like a spreadsheet formula reaches the CSV as text."""
    async with engine_of(client).begin() as conn:
        await create_division(conn, seeded.jurisdiction_pk, "evil", '=HYPERLINK("x")')
        await move_service(conn, seeded.jurisdiction_pk, "GRAFFITI", "evil", by="test")
    response = await _report(
        client, seeded, city["admin"], "service-promise.csv", start="2025-01-01"
    )
    assert response.status_code == 200, response.text
    labels = [line["label"] for line in csv.DictReader(io.StringIO(response.text))]
    assert '\'=HYPERLINK("x")' in labels
    assert not any(label.startswith(("=", "+", "-", "@")) for label in labels)


async def test_the_workers_pass_keeps_built_rollups_current(
    client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any]
) -> None:
    """refresh_built (the worker's pass) recomputes the days changed since the last report,
    only for jurisdictions whose rollups were built."""
    engine = engine_of(client)
    assert await reports.refresh_built(engine) == 0  # never reported on: nothing built
    first = await _report(client, seeded, city["admin"], "service-promise.json", start="2025-01-01")
    assert first.json()["total"]["received"] == 5
    await make_request(
        engine,
        seeded.jurisdiction_pk,
        seeded.service_pks["POTHOLE"],
        requested_at=at("2025-07-01T10:00"),
    )
    assert await reports.refresh_built(engine) >= 1
    async with engine.connect() as conn:
        sums = await report_store.sum_days(
            conn,
            seeded.jurisdiction_pk,
            "all",
            date(2025, 1, 1),
            date(2025, 12, 31),
            by_month=False,
        )
    assert sum(s.received for s in sums) == (await _direct(client, seeded, 2025)).received == 6


async def test_a_sandbox_key_with_the_reports_scope_is_refused(
    client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any]
) -> None:
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(
            conn, "Sandbox", app="Council office", scopes=["reports"], sandbox=True
        )
    refused = await _report(client, seeded, key, "key-metrics.json")
    assert refused.status_code == 403, refused.text
    assert "Sandbox" in refused.json()[0]["description"]


async def test_report_calls_draw_from_the_keys_rate_limit(
    client: httpx.AsyncClient, seeded: Seed, city: dict[str, Any]
) -> None:
    """Each report (a refresh, then reads) costs a token of the key's bucket, Bearer or
    api_key: a busy key gets 429s, never the database's time."""
    async with engine_of(client).begin() as conn:
        key, _ = await create_key(
            conn, "Busy", app="Council office", scopes=["reports"], rate_limit_per_minute=2
        )
    answers = [
        (await _report(client, seeded, key, "service-promise.json")).status_code for _ in range(3)
    ]
    assert answers == [200, 200, 429]
    by_param = await client.get(
        f"{BASE}/reports/service-promise.json",
        params={"jurisdiction_id": seeded.jurisdiction_id, "api_key": key},
    )
    assert by_param.status_code == 429

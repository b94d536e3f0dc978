"""A request's life after filing (issue 5), minus webhooks (tests/lifecycle/test_webhooks.py).

Staff updates through the admin API and the CLI, the FixMyStreet-style updates feed (GET and
POST ``servicerequestupdates``), sync extensions of GET requests (``updated_after``/
``updated_before``, page/page_size, keyset cursors under concurrent writes) and batch
submissions turned into requests by the queue worker, including a worker that dies between
claim and commit (PostGIS).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.demo.loader import REQUESTS_FILE, load_ward_map
from app.domain.api_keys import create_key
from app.domain.queue import QueueProcessor
from app.main import create_app
from app.settings import DatabaseSettings, RequestsSettings, Settings, WorkerSettings
from app.store.engine import make_engine
from app.store.tables import ApiKey, RequestToken, RequestUpdate, ServiceRequest, Submission
from tests.conftest import Seed, clear, engine_of, seed_catalog
from tests.factories import make_request
from tests.support import (
    JSON_TYPE,
    XML_TYPE,
    error_descriptions,
    fetch_both,
    validate_schema,
    xml_to_value,
)

BASE = "/open311/v2"
ADMIN = "/admin/v1"
JURISDICTION = "test.example.org"  # tests/data/catalog.json
TZ = ZoneInfo("America/Toronto")  # the test catalogue's (and Toronto's) zone
FORMATS = ("json", "xml")
REQUEST = ServiceRequest.__table__
UPDATE = RequestUpdate.__table__
QUEUE = Submission.__table__
TOKEN = RequestToken.__table__
API_KEY = ApiKey.__table__
UPDATE_FIELDS = [
    "update_id",
    "service_request_id",
    "status",
    "updated_datetime",
    "description",
    "media_url",
    "external_status_code",
]
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'
LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')
Params = dict[str, str]


# ---------------------------------------------------------------------------------------
# Helpers: time


def now_s() -> datetime:
    """Now in UTC, whole seconds (the wire has whole seconds only)."""
    return datetime.now(UTC).replace(microsecond=0)


def local(value: datetime) -> str:
    """How the server must render an instant: W3C, whole seconds, the jurisdiction's zone."""
    return value.astimezone(TZ).isoformat(timespec="seconds")


def zulu(value: datetime) -> str:
    """An instant as a W3C input in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parsed(value: str) -> datetime:
    """A W3C datetime from the wire."""
    return datetime.fromisoformat(value)


# ---------------------------------------------------------------------------------------
# Helpers: apps, keys, clients


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app built from ``settings`` (for a database no fixture provides)."""
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http
    finally:
        await lifespan.__aexit__(None, None, None)


def settings_of(client: httpx.AsyncClient) -> Settings:
    """The settings of the app behind a client."""
    settings: Settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    return settings


def worker_of(client: httpx.AsyncClient, engine: AsyncEngine | None = None) -> QueueProcessor:
    """A queue worker on the client's database (its own engine when given)."""
    return QueueProcessor(engine or engine_of(client), settings_of(client))


async def new_key(engine: AsyncEngine, app: str, scopes: list[str], **options: Any) -> str:
    """A fresh API key of ``app`` with these scopes."""
    async with engine.begin() as conn:
        key, _ = await create_key(conn, app, app=app, scopes=scopes, **options)
    return key


async def key_app_id(engine: AsyncEngine, key_id: int) -> int:
    """The app a key belongs to."""
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(select(API_KEY.c.app_id).where(API_KEY.c.id == key_id))
            ).scalar_one()
        )


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    """Rows of a table (matching ``where``)."""
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


# ---------------------------------------------------------------------------------------
# Helpers: decoding


def xml_items(body: bytes, root: str, item: str) -> list[dict[str, str | None]]:
    """Items of a flat XML list document (e.g. service_request_updates/request_update)."""
    assert body.startswith(XML_DECLARATION), body[:60]
    tree = ET.fromstring(body)  # noqa: S314 - parses this server's own response
    assert tree.tag == root, tree.tag
    assert not tree.attrib
    items = []
    for child in tree:
        assert child.tag == item, child.tag
        assert not child.attrib
        leaves = list(child)
        names = [leaf.tag for leaf in leaves]
        assert len(names) == len(set(names)), names
        assert all(len(leaf) == 0 and not leaf.attrib for leaf in leaves)
        items.append({leaf.tag: leaf.text or None for leaf in leaves})
    return items


def assert_errors(response: httpx.Response, fmt: str, status: int) -> list[str]:
    """A GeoReport errors document with ``status``; its descriptions."""
    assert response.status_code == status, (fmt, response.status_code, response.text[:500])
    if fmt == "json":
        assert response.headers["content-type"] == JSON_TYPE
        descriptions = error_descriptions(response.json())
        assert {e["code"] for e in response.json()} == {status}
        return descriptions
    assert response.headers["content-type"] == XML_TYPE
    items = xml_items(response.content, "errors", "error")
    assert items
    assert all(list(e) == ["code", "description"] for e in items)
    assert {e["code"] for e in items} == {str(status)}
    return [str(e["description"]) for e in items]


async def errors_both(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    status: int,
    *,
    params: Any = None,
    data: Any = None,
) -> list[str]:
    """Call ``path.json`` and ``path.xml``; both are the same errors document."""
    found = []
    for fmt in FORMATS:
        response = await client.request(method, f"{BASE}/{path}.{fmt}", params=params, data=data)
        found.append(assert_errors(response, fmt, status))
    assert found[0] == found[1]
    return found[0]


async def read_request(client: httpx.AsyncClient, request_id: str, **params: str) -> dict[str, Any]:
    """GET requests/{id} in both formats (same content, schema-valid); the item."""
    both = await fetch_both(client, f"requests/{request_id}", params or None)
    validate_schema("requests", both.json)
    assert both.xml_root == "service_requests"
    (item,) = both.json
    assert item["service_request_id"] == request_id
    return dict(item)


async def list_requests(client: httpx.AsyncClient, params: Any) -> list[dict[str, Any]]:
    """GET requests in both formats (same content, page size limit advertised); the items."""
    both = await fetch_both(client, "requests", params)
    validate_schema("requests", both.json)
    assert both.xml_root == "service_requests"
    max_results = str(settings_of(client).requests.max_results)
    for response in (both.json_response, both.xml_response):
        assert response.headers["x-page-size-max"] == max_results
    return list(both.json)


def ids(items: list[dict[str, Any]]) -> list[str]:
    """The service_request_id of each item, in order."""
    return [item["service_request_id"] for item in items]


async def updates_feed(client: httpx.AsyncClient, params: Any) -> list[dict[str, Any]]:
    """GET servicerequestupdates in both formats: same items, fields in order; the items."""
    found = {}
    for fmt in FORMATS:
        response = await client.get(f"{BASE}/servicerequestupdates.{fmt}", params=params)
        assert response.status_code == 200, (fmt, response.text[:500])
        if fmt == "json":
            assert response.headers["content-type"] == JSON_TYPE
            found[fmt] = response.json()
            assert isinstance(found[fmt], list)
        else:
            assert response.headers["content-type"] == XML_TYPE
            found[fmt] = xml_items(response.content, "service_request_updates", "request_update")
    for item in found["json"]:
        assert list(item) == UPDATE_FIELDS, list(item)
        assert all(v is None or isinstance(v, str) for v in item.values()), item
        assert item["status"] == item["status"].lower()
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", item["updated_datetime"]
        )
    assert [list(item) for item in found["xml"]] == [list(item) for item in found["json"]]
    assert found["xml"] == found["json"]
    return list(found["json"])


# ---------------------------------------------------------------------------------------
# Helpers: writes


def auth(key: str) -> dict[str, str]:
    """The admin API's Authorization header."""
    return {"Authorization": f"Bearer {key}"}


def update_url(request_id: str) -> str:
    """Admin URL of a request's updates."""
    return f"{ADMIN}/requests/{request_id}/updates.json"


async def staff_update(
    client: httpx.AsyncClient, key: str, request_id: str, **body: str
) -> dict[str, Any]:
    """A staff update through the admin API (201); the update item."""
    response = await client.post(
        update_url(request_id),
        params={"jurisdiction_id": JURISDICTION},
        json=body,
        headers=auth(key),
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == JSON_TYPE
    item = response.json()
    assert list(item) == UPDATE_FIELDS
    assert item["service_request_id"] == request_id
    return dict(item)


async def history(client: httpx.AsyncClient, key: str, request_id: str) -> list[dict[str, Any]]:
    """The admin update history of a request."""
    response = await client.get(
        update_url(request_id), params={"jurisdiction_id": JURISDICTION}, headers=auth(key)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_TYPE
    value = response.json()
    assert isinstance(value, list)
    return value


async def post_realtime(client: httpx.AsyncClient, seed: Seed, fmt: str = "json") -> str:
    """POST a LITTER.BIN (realtime) request at Toronto City Hall; its id."""
    response = await client.post(
        f"{BASE}/requests.{fmt}",
        data={
            "api_key": seed.api_key,
            "service_code": "LITTER.BIN",
            "lat": "43.6534",
            "long": "-79.3841",
            "description": "The bin is overflowing.",
        },
    )
    assert response.status_code == 200, response.text
    if fmt == "json":
        assert response.headers["content-type"] == JSON_TYPE
        value = response.json()
    else:
        assert response.headers["content-type"] == XML_TYPE
        root, value = xml_to_value(response.content)
        assert root == "service_requests"
    validate_schema("post", value)
    return str(value[0]["service_request_id"])


async def stored(engine: AsyncEngine, seed: Seed, code: str = "LITTER.BIN", **row: Any) -> str:
    """A request stored directly (exact timestamps); its id."""
    return str(await make_request(engine, seed.jurisdiction_pk, seed.service_pks[code], **row))


async def post_app_update(client: httpx.AsyncClient, fmt: str, form: dict[str, str]) -> str:
    """POST servicerequestupdates (FixMyStreet style) successfully; the server's update_id."""
    response = await client.post(f"{BASE}/servicerequestupdates.{fmt}", data=form)
    assert response.status_code == 200, (fmt, response.text)
    if fmt == "json":
        assert response.headers["content-type"] == JSON_TYPE
        value = response.json()
        assert isinstance(value, list)
        assert [list(item) for item in value] == [["update_id"]]
        update_id = value[0]["update_id"]
    else:
        assert response.headers["content-type"] == XML_TYPE
        items = xml_items(response.content, "service_request_updates", "request_update")
        assert [list(item) for item in items] == [["update_id"]]
        update_id = items[0]["update_id"]
    assert isinstance(update_id, str)
    assert update_id.isdigit()
    return update_id


def fms_form(
    key: str, request_id: str, update_id: str, status: str, when: datetime, **more: str
) -> dict[str, str]:
    """The form FixMyStreet sends to POST servicerequestupdates."""
    return {
        "api_key": key,
        "jurisdiction_id": JURISDICTION,
        "service_request_id": request_id,
        "update_id": update_id,
        "updated_datetime": local(when),
        "status": status,
        "description": "",
        "last_name": "-",
        **more,
    }


async def post_batch(client: httpx.AsyncClient, seed: Seed, fmt: str, **more: str) -> str:
    """POST a GRAFFITI (batch) request; its token."""
    form = {
        "api_key": seed.api_key,
        "service_code": "GRAFFITI",
        "lat": "43.6534",
        "long": "-79.3841",
        **more,
    }
    response = await client.post(f"{BASE}/requests.{fmt}", data=form)
    assert response.status_code == 200, response.text
    if fmt == "json":
        value = response.json()
    else:
        _, value = xml_to_value(response.content)
    assert "service_request_id" not in value[0]
    return str(value[0]["token"])


async def resolve(client: httpx.AsyncClient, token: str) -> str | None:
    """GET tokens/{token} in both formats; the request id (None while pending)."""
    both = await fetch_both(client, f"tokens/{token}")
    validate_schema("token", both.json)
    assert both.xml_root == "service_requests"
    (item,) = both.json
    assert item["token"] == token
    assert list(item) == ["service_request_id", "token"]
    return item["service_request_id"]


# ---------------------------------------------------------------------------------------
# Staff updates: admin API


async def test_staff_lifecycle_keeps_core_status_and_history(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    admin = await new_key(engine, "City staff", ["admin"])
    request_id = await post_realtime(client, seeded, "xml")
    # Whole seconds on the wire: move the filing an hour back so updated_datetime visibly moves.
    filed = now_s() - timedelta(hours=1)
    async with engine.begin() as conn:
        await conn.execute(
            update(REQUEST)
            .where(REQUEST.c.id == int(request_id))
            .values(requested_at=filed, updated_at=filed)
        )
    before = await read_request(client, request_id)
    assert before["status"] == "open"
    assert before["status_notes"] is None
    assert before["agency_responsible"] == "Solid Waste"  # the service's default
    assert before["expected_datetime"] is None
    assert before["requested_datetime"] == before["updated_datetime"] == local(filed)

    steps: list[tuple[dict[str, str], str, str, dict[str, Any]]] = [
        (
            {
                "status": "IN_PROGRESS",
                "status_notes": "Crew 7 assigned.",
                "agency_responsible": "Parks Crew 7",
            },
            "in_progress",
            "open",
            {"status_notes": "Crew 7 assigned.", "agency_responsible": "Parks Crew 7"},
        ),
        (
            {"status": "action_scheduled", "expected_datetime": "2031-05-04T13:30:00Z"},
            "action_scheduled",
            "open",
            {
                "status_notes": "Crew 7 assigned.",
                "agency_responsible": "Parks Crew 7",
                "expected_datetime": "2031-05-04T09:30:00-04:00",
            },
        ),
        (
            {
                "status": "Fixed",
                "status_notes": "Emptied and cleaned.",
                "description": "The bin was emptied.",
                "external_status_code": "DONE",
            },
            "fixed",
            "closed",
            {
                "status_notes": "Emptied and cleaned.",
                "agency_responsible": "Parks Crew 7",
                "expected_datetime": "2031-05-04T09:30:00-04:00",
            },
        ),
    ]
    previous = parsed(before["updated_datetime"])
    made = []
    for body, detailed, core, changed in steps:
        start = now_s()
        item = await staff_update(client, admin, request_id, **body)
        end = datetime.now(UTC)
        assert item["status"] == detailed
        assert item["description"] == body.get("description")
        assert item["external_status_code"] == body.get("external_status_code")
        after = await read_request(client, request_id)
        assert after["status"] == core  # never the detailed value
        assert {k: after[k] for k in changed} == changed
        assert after["requested_datetime"] == before["requested_datetime"]
        assert after["description"] == "The bin is overflowing."
        # updated_datetime is the time of the latest update, taken when it was made.
        assert after["updated_datetime"] == item["updated_datetime"]
        stamp = parsed(after["updated_datetime"])
        assert start <= stamp <= end
        assert stamp >= previous
        previous = stamp
        made.append(item)

    assert parsed(made[0]["updated_datetime"]) > parsed(before["updated_datetime"])
    # The list agrees (core statuses only) ...
    listed = await list_requests(client, {"service_request_id": request_id})
    assert [(i["service_request_id"], i["status"]) for i in listed] == [(request_id, "closed")]
    # ... and the history has every update, in order.
    log = await history(client, admin, request_id)
    assert [h["update_id"] for h in log] == [m["update_id"] for m in made]
    assert [int(h["update_id"]) for h in log] == sorted({int(h["update_id"]) for h in log})
    assert [h["status"] for h in log] == ["in_progress", "action_scheduled", "fixed"]
    assert [h["updated_datetime"] for h in log] == [m["updated_datetime"] for m in made]
    assert [h["description"] for h in log] == [None, None, "The bin was emptied."]
    assert [h["external_status_code"] for h in log] == [None, None, "DONE"]
    assert {h["by"] for h in log} == {"staff"}


@pytest.mark.parametrize(
    ("body", "target", "key", "status", "fragment"),
    [
        ({"status": "SORT_OF_DONE"}, None, "admin", 400, "status"),
        ({"expected_datetime": "2031-05-04"}, None, "admin", 400, "expected_datetime"),
        ({"media_url": "ftp://example.org/a.jpg"}, None, "admin", 400, "media_url"),
        ({"status": "closed"}, "999999999", "admin", 404, "999999999"),
        ({"status": "closed"}, "abc", "admin", 404, "abc"),
        ({"status": "closed"}, None, "submit", 403, "admin"),
        ({"status": "closed"}, None, "unknown", 403, "api_key"),
        ({"status": "closed"}, None, "none", 403, "Bearer"),
        ({"status": "closed"}, None, "basic", 403, "Bearer"),
    ],
)
async def test_staff_update_refusals_change_nothing(
    client: httpx.AsyncClient,
    seeded: Seed,
    body: dict[str, str],
    target: str | None,
    key: str,
    status: int,
    fragment: str,
) -> None:
    engine = engine_of(client)
    admin = await new_key(engine, "City staff", ["admin"])
    request_id = await stored(engine, seeded)
    headers = {
        "admin": auth(admin),
        "submit": auth(seeded.api_key),
        "unknown": auth("00000000.not-a-key-of-ours"),
        "none": {},
        "basic": {"Authorization": f"Basic {admin}"},
    }[key]
    response = await client.post(
        update_url(target or request_id),
        params={"jurisdiction_id": JURISDICTION},
        json=body,
        headers=headers,
    )
    descriptions = assert_errors(response, "json", status)
    assert any(fragment in d for d in descriptions), descriptions
    if status == 403:  # reading the history needs the admin scope as well
        assert_errors(await client.get(update_url(request_id), headers=headers), "json", 403)
    assert await history(client, admin, request_id) == []
    assert (await read_request(client, request_id))["status"] == "open"
    assert await count(engine, UPDATE) == 0


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPEN311_DB__SQLITE_PATH": str(db)}
    env.pop("OPEN311_DB__URL", None)
    return subprocess.run(  # noqa: S603 - our own program, fixed arguments, no shell
        [sys.executable, "-m", "app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=db.parent,
    )


async def test_cli_staff_update_on_the_embedded_demo(tmp_path: Path) -> None:
    db = tmp_path / "open311.db"
    # Compared with the captured file below; Toronto only (calls name no jurisdiction).
    demo = _cli(db, "demo", "--original-dates", "--no-sudbury")
    assert demo.returncode == 0, demo.stderr
    records = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))["service_requests"]
    record = next(r for r in records if r["status"] == "closed")
    request_id = str(record["service_request_id"])
    start = now_s()
    result = _cli(
        db,
        "requests",
        "update",
        request_id,
        "--status",
        "IN_PROGRESS",
        "--notes",
        "Reopened: crew dispatched.",
        "--agency",
        "Transportation Services",
        "--expected",
        "2031-01-15T14:00:00Z",
    )
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(
        rf"Update (\d+) of request {request_id}: status in_progress at (\S+)\.\n", result.stdout
    )
    assert match, result.stdout
    update_id, when = match.groups()
    assert start <= parsed(when) <= datetime.now(UTC)

    settings = Settings(
        environment="test",
        db=DatabaseSettings(sqlite_path=db),
        worker=WorkerSettings(in_process=False),
    )
    async with app_client(settings) as http:
        item = await read_request(http, request_id, jurisdiction_id="toronto.ca")
        assert item["status"] == "open"  # it was closed
        assert item["status_notes"] == "Reopened: crew dispatched."
        assert item["agency_responsible"] == "Transportation Services"
        assert item["expected_datetime"] == "2031-01-15T09:00:00-05:00"
        assert item["updated_datetime"] == when
        assert item["requested_datetime"] == local(parsed(record["requested_datetime"]))
        feed = await updates_feed(
            http, {"start_date": zulu(start), "end_date": zulu(now_s() + timedelta(minutes=1))}
        )
        assert [
            (u["update_id"], u["service_request_id"], u["status"], u["updated_datetime"])
            for u in feed
        ] == [(update_id, request_id, "in_progress", when)]


# ---------------------------------------------------------------------------------------
# GET servicerequestupdates


async def test_updates_feed_window_order_fields_and_sandbox(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    admin = await new_key(engine, "City staff", ["admin"])
    fms = await new_key(engine, "FMS", ["update", "staff"])
    first, second = await stored(engine, seeded), await stored(engine, seeded, "POTHOLE")
    sandboxed = await stored(engine, seeded, sandbox=True)
    t1 = now_s() - timedelta(days=2)
    t2, t3 = t1 + timedelta(hours=1), t1 + timedelta(hours=2)
    u1 = await post_app_update(
        client,
        "json",
        fms_form(
            fms,
            first,
            "fms-1",
            "IN_PROGRESS",
            t1,
            description="Looking into it.",
            media_url="https://fms.example.org/photo/1.jpeg",
            external_status_code="INSPECT",
        ),
    )
    u2 = await post_app_update(
        client, "xml", fms_form(fms, second, "fms-2", "ACTION_SCHEDULED", t2)
    )
    u3 = await post_app_update(
        client,
        "json",
        fms_form(fms, first, "fms-3", "FIXED", t3, description="Fixed – merci, Straße."),
    )
    staff = await staff_update(client, admin, second, status="DUPLICATE", description="See #1.")
    await staff_update(client, admin, sandboxed, status="FIXED", description="Sandbox only.")

    everything = await updates_feed(
        client,
        {
            "start_date": zulu(t1 - timedelta(hours=1)),
            "end_date": zulu(now_s() + timedelta(hours=1)),
        },
    )
    assert everything[:3] == [
        {
            "update_id": u1,
            "service_request_id": first,
            "status": "in_progress",
            "updated_datetime": local(t1),
            "description": "Looking into it.",
            "media_url": "https://fms.example.org/photo/1.jpeg",
            "external_status_code": "INSPECT",
        },
        {
            "update_id": u2,
            "service_request_id": second,
            "status": "action_scheduled",
            "updated_datetime": local(t2),
            "description": None,
            "media_url": None,
            "external_status_code": None,
        },
        {
            "update_id": u3,
            "service_request_id": first,
            "status": "fixed",
            "updated_datetime": local(t3),
            "description": "Fixed – merci, Straße.",
            "media_url": None,
            "external_status_code": None,
        },
    ]
    # The staff update comes last (oldest first); the sandbox request's update never shows.
    assert everything[3:] == [staff]
    assert staff["status"] == "duplicate"
    assert sandboxed not in {u["service_request_id"] for u in everything}

    # Bounds are inclusive, on the update's time, in any zone notation.
    windows = [
        ({"start_date": zulu(t1), "end_date": zulu(t3)}, [u1, u2, u3]),
        ({"start_date": local(t1), "end_date": local(t3)}, [u1, u2, u3]),
        (
            {
                "start_date": zulu(t1 + timedelta(seconds=1)),
                "end_date": zulu(t3 - timedelta(seconds=1)),
            },
            [u2],
        ),
        ({"start_date": zulu(t2), "end_date": zulu(t2)}, [u2]),
        (
            {
                "start_date": zulu(t3 + timedelta(seconds=1)),
                "end_date": zulu(now_s() + timedelta(minutes=1)),
            },
            [staff["update_id"]],
        ),
    ]
    for window, expected in windows:
        assert [u["update_id"] for u in await updates_feed(client, window)] == expected, window


async def test_updates_feed_empty(client: httpx.AsyncClient, seeded: Seed) -> None:
    admin = await new_key(engine_of(client), "City staff", ["admin"])
    await staff_update(client, admin, await stored(engine_of(client), seeded), status="FIXED")
    window = {"start_date": "2001-01-01T00:00:00Z", "end_date": "2001-01-02T00:00:00-05:00"}
    assert await updates_feed(client, window) == []
    xml = await client.get(f"{BASE}/servicerequestupdates.xml", params=window)
    assert xml.content.strip() in (
        XML_DECLARATION + b"\n<service_request_updates/>",
        XML_DECLARATION + b"<service_request_updates/>",
        XML_DECLARATION + b"\n<service_request_updates></service_request_updates>",
    ), xml.content
    assert (
        await client.get(f"{BASE}/servicerequestupdates.json", params=window)
    ).content.strip() == b"[]"


# Refused windows (read-only cases: one test walks them all).
BAD_FEED_WINDOWS: list[tuple[Params, str]] = [
    ({"start_date": "yesterday"}, "start_date"),
    ({"end_date": "2024-13-01T00:00:00Z"}, "end_date"),
    ({"start_date": "2024-03-05T14:07:00"}, "start_date"),  # no zone
    ({"start_date": "2024-03-05T00:00:00Z", "end_date": "2024-03-04T00:00:00Z"}, "end_date"),
]


async def test_updates_feed_bad_dates(client: httpx.AsyncClient, seeded: Seed) -> None:
    for params, fragment in BAD_FEED_WINDOWS:
        descriptions = await errors_both(client, "GET", "servicerequestupdates", 400, params=params)
        assert any(fragment in d for d in descriptions), (params, descriptions)


# ---------------------------------------------------------------------------------------
# POST servicerequestupdates: a FixMyStreet-style sync


async def test_fixmystreet_posts_updates_and_syncs_them_back(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    fms = await new_key(engine, "FMS", ["update", "staff"])
    other = await new_key(engine, "Other app", ["submit", "update", "staff"])
    report = await post_realtime(client, seeded)
    second = await post_realtime(client, seeded, "xml")
    now = now_s()
    # (format, request, FMS update id, UPPERCASE status, age, core status afterwards)
    sent = [
        ("xml", report, "c-101", "IN_PROGRESS", timedelta(minutes=90), "open"),
        ("json", report, "c-102", "FIXED", timedelta(minutes=50), "closed"),
        ("xml", report, "c-103", "REOPEN", timedelta(minutes=10), "open"),
        ("json", second, "c-104", "NOT_COUNCILS_RESPONSIBILITY", timedelta(hours=3), "closed"),
        ("xml", second, "c-105", "in_progress", timedelta(minutes=5), "open"),  # any case
    ]
    server_ids: dict[str, str] = {}
    for fmt, request_id, update_id, status, age, core in sent:
        form = fms_form(
            fms,
            request_id,
            update_id,
            status,
            now - age,
            description=f"Update {update_id}",
            media_url=f"https://fms.example.org/c/{update_id}.jpeg",
        )
        server_ids[update_id] = await post_app_update(client, fmt, form)
        assert (await read_request(client, request_id))["status"] == core
    assert len(set(server_ids.values())) == len(sent)

    # The same update_id again from the same app: 400, nothing changes.
    duplicate = fms_form(fms, report, "c-101", "CLOSED", now - timedelta(minutes=1))
    descriptions = await errors_both(client, "POST", "servicerequestupdates", 400, data=duplicate)
    assert any("c-101" in d for d in descriptions), descriptions
    assert (await read_request(client, report))["status"] == "open"
    # Another app may use the same id of its own.
    again = fms_form(other, second, "c-101", "CLOSED", now - timedelta(minutes=2))
    server_ids["other c-101"] = await post_app_update(client, "json", again)
    assert (await read_request(client, second))["status"] == "closed"

    # FixMyStreet's pull: the last two hours (it sends its key and jurisdiction_id).
    end = now_s() + timedelta(seconds=30)
    start = end - timedelta(hours=2)
    ask = {"api_key": fms, "jurisdiction_id": JURISDICTION}
    window = await updates_feed(client, {**ask, "start_date": local(start), "end_date": local(end)})
    expected = {server_ids[k] for k in ("c-101", "c-102", "c-103", "c-105", "other c-101")}
    assert {u["update_id"] for u in window} == expected
    assert len(window) == len(expected)
    assert all(start <= parsed(u["updated_datetime"]) <= end for u in window)
    by_id = {u["update_id"]: u for u in window}
    assert by_id[server_ids["c-102"]] == {
        "update_id": server_ids["c-102"],
        "service_request_id": report,
        "status": "fixed",
        "updated_datetime": local(now - timedelta(minutes=50)),
        "description": "Update c-102",
        "media_url": "https://fms.example.org/c/c-102.jpeg",
        "external_status_code": None,
    }
    assert by_id[server_ids["c-103"]]["status"] == "open"  # REOPEN: open again
    assert by_id[server_ids["c-105"]]["status"] == "in_progress"

    # Two overlapping polls, de-duplicated on update_id, give each update exactly once.
    early = await updates_feed(
        client, {**ask, "start_date": zulu(start), "end_date": zulu(now - timedelta(minutes=30))}
    )
    late = await updates_feed(
        client, {**ask, "start_date": zulu(now - timedelta(minutes=60)), "end_date": zulu(end)}
    )
    overlap = {u["update_id"] for u in early} & {u["update_id"] for u in late}
    assert overlap == {server_ids["c-102"]}
    merged: dict[str, dict[str, Any]] = {}
    for item in early + late:
        merged.setdefault(item["update_id"], item)
    assert set(merged) == expected
    assert (
        sorted(merged.values(), key=lambda u: (parsed(u["updated_datetime"]), int(u["update_id"])))
        == window
    )


SUBMIT_KEY = "<the seeded key: submit scope only>"


@pytest.mark.parametrize(
    ("changes", "status", "fragment"),
    [
        # None removes the field; every missing field is reported at once.
        ({"service_request_id": None}, 400, "service_request_id"),
        (
            {"update_id": None, "updated_datetime": None, "status": ""},
            400,
            "update_id updated_datetime status",
        ),
        ({"status": "MAYBE_LATER"}, 400, "status"),
        ({"updated_datetime": "2024-03-05T14:07:00"}, 400, "updated_datetime"),  # no zone
        ({"service_request_id": "999999999"}, 404, "999999999"),
        ({"api_key": "00000000.not-a-key-of-ours"}, 403, "api_key"),
        ({"api_key": None}, 403, "api_key"),
        ({"api_key": SUBMIT_KEY}, 403, "update"),
    ],
)
async def test_post_update_refusals_store_nothing(
    client: httpx.AsyncClient,
    seeded: Seed,
    changes: dict[str, str | None],
    status: int,
    fragment: str,
) -> None:
    engine = engine_of(client)
    fms = await new_key(engine, "FMS", ["update", "staff"])
    request_id = await stored(engine, seeded)
    form = fms_form(fms, request_id, "c-1", "FIXED", now_s() - timedelta(minutes=5))
    for name, value in changes.items():
        if value is None:
            del form[name]
        else:
            form[name] = seeded.api_key if value == SUBMIT_KEY else value
    descriptions = await errors_both(client, "POST", "servicerequestupdates", status, data=form)
    for word in fragment.split():
        assert any(word in d for d in descriptions), (word, descriptions)
    assert len(descriptions) == len(fragment.split())
    assert await count(engine, UPDATE) == 0
    assert (await read_request(client, request_id))["status"] == "open"


async def test_post_update_in_the_future_is_refused(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    fms = await new_key(engine, "FMS", ["update", "staff"])
    request_id = await stored(engine, seeded)
    form = fms_form(fms, request_id, "c-1", "FIXED", now_s() + timedelta(hours=1))
    descriptions = await errors_both(client, "POST", "servicerequestupdates", 400, data=form)
    assert any("updated_datetime" in d for d in descriptions), descriptions
    assert await count(engine, UPDATE) == 0


# ---------------------------------------------------------------------------------------
# GET requests: sync extensions


async def test_updated_after_and_before_filter_and_order(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    admin = await new_key(engine, "City staff", ["admin"])
    base = now_s() - timedelta(days=10)
    filed = base - timedelta(days=1)

    async def at(hours: int, requested: datetime = filed) -> str:
        return await stored(
            engine, seeded, requested_at=requested, updated_at=base + timedelta(hours=hours)
        )

    r0, r1, r2a, r2b, r3, r4 = [await at(h) for h in (0, 1, 2, 2, 3, 4)]
    # Filed 200 days ago: outside the default 90-day window.
    ancient = await stored(
        engine,
        seeded,
        requested_at=base - timedelta(days=190),
        updated_at=base - timedelta(days=140),
    )
    revived = await stored(
        engine,
        seeded,
        requested_at=base - timedelta(days=190),
        updated_at=base - timedelta(days=190),
    )
    before_update = now_s()
    await staff_update(
        client, admin, revived, status="IN_PROGRESS", status_notes="Looked at again."
    )

    default = ids(await list_requests(client, {}))
    assert ancient not in default
    assert revived not in default
    assert set(default) == {r0, r1, r2a, r2b, r3, r4}

    cases = [
        # Inclusive bounds, newest update first, ties by id (newest id first).
        (
            {
                "updated_after": local(base + timedelta(hours=1)),
                "updated_before": local(base + timedelta(hours=3)),
            },
            [r3, r2b, r2a, r1],
        ),
        (
            {
                "updated_after": zulu(base + timedelta(hours=2)),
                "updated_before": zulu(base + timedelta(hours=2)),
            },
            [r2b, r2a],
        ),
        # Only updated_after: up to now, no 90-day window on requested_datetime.
        ({"updated_after": zulu(before_update)}, [revived]),
        ({"updated_after": zulu(base + timedelta(hours=4))}, [revived, r4]),
        # Only updated_before: no default window either.
        ({"updated_before": zulu(base + timedelta(hours=1))}, [r1, r0, ancient]),
        # Combined with the core filters.
        (
            {"updated_before": zulu(base), "status": "open", "service_code": "LITTER.BIN"},
            [r0, ancient],
        ),
    ]
    for params, expected in cases:
        items = await list_requests(client, params)
        assert ids(items) == expected, params
    revived_item = (await list_requests(client, {"updated_after": zulu(before_update)}))[0]
    assert revived_item["status"] == "open"
    assert revived_item["status_notes"] == "Looked at again."
    assert revived_item["requested_datetime"] == local(base - timedelta(days=190))
    assert before_update <= parsed(revived_item["updated_datetime"]) <= datetime.now(UTC)


async def test_page_and_page_size(client: httpx.AsyncClient, seeded: Seed) -> None:
    engine = engine_of(client)
    base = now_s() - timedelta(days=3)
    made = [
        await stored(engine, seeded, requested_at=base + timedelta(minutes=i), updated_at=base)
        for i in range(7)
    ]
    newest_first = made[::-1]
    assert ids(await list_requests(client, {})) == newest_first
    pages = [
        ids(await list_requests(client, {"page_size": "3", "page": str(page)}))
        for page in (1, 2, 3)
    ]
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:]]
    assert ids(await list_requests(client, {"page_size": "3"})) == pages[0]  # page defaults to 1
    assert await list_requests(client, {"page_size": "3", "page": "4"}) == []
    assert await list_requests(client, {"page_size": "3", "page": "999"}) == []
    # Paging also applies in the sync order.
    sync = {"updated_after": zulu(base), "page_size": "4"}
    assert ids(await list_requests(client, {**sync, "page": "2"})) == newest_first[4:]


async def test_page_zero_is_page_one(client: httpx.AsyncClient, seeded: Seed) -> None:
    """Spec digest §10.1 [REC]: page is 1-based and page=0 means page 1."""
    engine = engine_of(client)
    made = [await stored(engine, seeded) for _ in range(3)]
    first = ids(await list_requests(client, {"page_size": "2", "page": "1"}))
    assert first == made[::-1][:2]
    assert ids(await list_requests(client, {"page_size": "2", "page": "0"})) == first


# Refused sync parameters of GET requests (read-only cases: one test walks them all).
BAD_SYNC_PARAMETERS: list[tuple[Params, str]] = [
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "1001"}, "page_size"),  # over the default limit, 1000
    ({"page_size": "ten"}, "page_size"),
    ({"page": "-1"}, "page"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    # Well-formed base64 JSON, but not a position of ours (kind "x").
    ({"cursor": "eyJrIjoieCIsInQiOiIyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwiaSI6MX0"}, "cursor"),
    ({"updated_after": "last week"}, "updated_after"),
    ({"updated_before": "2024-02-30T00:00:00Z"}, "updated_before"),
    (
        {"updated_after": "2024-03-05T00:00:00Z", "updated_before": "2024-03-04T00:00:00Z"},
        "updated_before",
    ),
]


async def test_sync_parameters_refused(client: httpx.AsyncClient, seeded: Seed) -> None:
    for params, fragment in BAD_SYNC_PARAMETERS:
        descriptions = await errors_both(client, "GET", "requests", 400, params=params)
        assert any(fragment in d for d in descriptions), (params, descriptions)


async def test_configured_page_size_limit_is_advertised_and_enforced(
    client: httpx.AsyncClient, make_client: Any, seeded: Seed
) -> None:
    small = await make_client(requests=RequestsSettings(max_results=5))
    engine = engine_of(small)
    made = [await stored(engine, seeded) for _ in range(6)]
    full = await list_requests(small, {})  # also checks X-Page-Size-Max: 5
    assert ids(full) == made[::-1][:5]
    assert ids(await list_requests(small, {"page_size": "5", "page": "2"})) == made[:1]
    descriptions = await errors_both(small, "GET", "requests", 400, params={"page_size": "6"})
    assert any("page_size" in d and "5" in d for d in descriptions), descriptions


def next_link(response: httpx.Response, page_size: int, items: int) -> str | None:
    """The next page's URL (Link rel=next), checked against X-Next-Cursor."""
    link = response.headers.get("link")
    if items < page_size:
        assert link is None
        assert "x-next-cursor" not in response.headers
        return None
    assert link is not None, "a full page links to the next one"
    match = LINK.match(link)
    assert match, link
    url = match["url"]
    query = parse_qs(urlsplit(url).query)
    assert query["cursor"] == [response.headers["x-next-cursor"]]
    assert "page" not in query
    return url


# Each order once, each format once (the Link URL keeps the format of the page it is on).
@pytest.mark.parametrize(("order", "fmt"), [("requested", "xml"), ("updated", "json")])
async def test_cursor_paging_under_concurrent_writes(
    client: httpx.AsyncClient, seeded: Seed, fmt: str, order: str
) -> None:
    engine = engine_of(client)
    admin = await new_key(engine, "City staff", ["admin"])
    base = now_s() - timedelta(days=5)
    # Twelve requests, two per timestamp, so page boundaries fall inside ties.
    existing = []
    for i in range(12):
        stamp = base + timedelta(hours=i // 2)
        existing.append(await stored(engine, seeded, requested_at=stamp, updated_at=stamp))
    # Ids grow with the stamps: newest first with ties by id (newest first) is id order.
    expected = sorted(existing, key=int, reverse=True)
    pass_start = now_s()
    params = {"page_size": "5"}
    if order == "updated":
        params["updated_after"] = zulu(base - timedelta(days=1))
    response = await client.get(f"{BASE}/requests.{fmt}", params=params)
    seen: list[str] = []
    touched: set[str] = set()
    created: list[str] = []
    for _ in range(10):
        assert response.status_code == 200, response.text
        assert response.headers["x-page-size-max"] == "1000"
        if fmt == "json":
            assert response.headers["content-type"] == JSON_TYPE
            items = response.json()
        else:
            assert response.headers["content-type"] == XML_TYPE
            root, items = xml_to_value(response.content)
            assert root == "service_requests"
        seen += ids(items or [])
        url = next_link(response, 5, len(items or []))
        if url is None:
            break
        # Writes between page reads: a new request, an update of a request already read and
        # of one not read yet.
        created.append(await stored(engine, seeded))
        unseen = [r for r in expected if r not in seen and r not in touched]
        read = [r for r in seen if r in existing and r not in touched]
        for victim in unseen[-1:] + read[:1]:
            await staff_update(client, admin, victim, status_notes=f"Touched after {len(seen)}.")
            touched.add(victim)
        response = await client.get(url)  # the Link URL as given
    else:
        pytest.fail("paging did not end")
    assert touched
    assert len(seen) == len(set(seen)), "no request twice"
    untouched = [r for r in expected if r not in touched]
    assert [r for r in seen if r in untouched] == untouched, "every untouched request, in order"
    assert not set(seen) & set(created), "requests filed after the first page sort before it"
    if order == "requested":
        # Updates do not move a request in requested_datetime order: all of them, once.
        assert seen == expected
    else:
        # In updated_datetime order a touched request moves to the front: the next sync pass
        # (updated_after the start of this one) picks up every write made during the pass.
        again = await list_requests(client, {"updated_after": zulu(pass_start)})
        assert set(ids(again)) == touched | set(created)


# ---------------------------------------------------------------------------------------
# Batch services, tokens and the worker


async def test_batch_tokens_resolve_after_the_worker_runs(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    engine = engine_of(client)
    form = {
        "api_key": seeded.api_key,
        "service_code": "GRAFFITI",
        "lat": "43.6561",
        "long": "-79.3802",
        "description": "Tag on the north wall.",
        "attribute[SURFACE]": "WALL",
        "attribute[fixmystreet_id]": "4242",
        "email": "reporter@example.org",
    }
    both = await fetch_both(client, "requests", method="POST", data=form)
    validate_schema("post", both.json)
    assert both.xml_root == "service_requests"
    tokens = [both.json[0]["token"], both.xml[0]["token"]]
    assert len(set(tokens)) == 2
    for item in (both.json[0], both.xml[0]):
        assert "service_request_id" not in item
    for token in tokens:
        assert await resolve(client, token) is None
    assert await count(engine, REQUEST) == 0
    assert await count(engine, QUEUE, QUEUE.c.state == "queued") == 2
    assert ids(await list_requests(client, {})) == []

    assert await worker_of(client).run_once() == 2
    request_ids = [await resolve(client, token) for token in tokens]
    assert all(request_ids)
    assert len(set(request_ids)) == 2
    app_id = await key_app_id(engine, seeded.api_key_id)
    for request_id in request_ids:
        assert request_id is not None
        item = await read_request(client, request_id)
        assert item["service_code"] == "GRAFFITI"
        assert item["status"] == "open"
        assert item["description"] == "Tag on the north wall."
        assert (item["lat"], item["long"]) == (43.6561, -79.3802)
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        REQUEST.c.attributes,
                        REQUEST.c.app_id,
                        REQUEST.c.api_key_id,
                        REQUEST.c.email,
                        REQUEST.c.sandbox,
                    ).where(REQUEST.c.id == int(request_id))
                )
            ).one()
        assert row.attributes == {"SURFACE": "WALL", "fixmystreet_id": "4242"}
        assert (row.app_id, row.api_key_id) == (app_id, seeded.api_key_id)
        assert row.email == "reporter@example.org"
        assert row.sandbox is False
    assert await count(engine, QUEUE, QUEUE.c.state == "done", QUEUE.c.attempts == 1) == 2
    assert set(ids(await list_requests(client, {}))) == set(request_ids)
    # Nothing left: a second pass does nothing.
    assert await worker_of(client).run_once() == 0
    assert await count(engine, REQUEST) == 2


async def test_batch_post_outside_every_ward_is_refused_before_queueing(
    client: httpx.AsyncClient,
) -> None:
    engine = engine_of(client)
    seed = await seed_catalog(engine, code="toronto.ca")
    await load_ward_map(engine, "toronto.ca", 5.0)
    client.app.state.open311.jurisdictions.invalidate()  # type: ignore[attr-defined]
    ottawa = {
        "api_key": seed.api_key,
        "service_code": "GRAFFITI",
        "lat": "45.4215",
        "long": "-75.6972",
    }
    descriptions = await errors_both(client, "POST", "requests", 400, data=ottawa)
    assert any("outside" in d and "toronto.ca" in d for d in descriptions), descriptions
    assert await count(engine, QUEUE) == 0
    assert await count(engine, TOKEN) == 0

    # City Hall is in ward 10: queued, then created with its ward.
    tokens = [await post_batch(client, seed, fmt) for fmt in FORMATS]
    assert await count(engine, QUEUE) == 2
    assert await worker_of(client).run_once() == 2
    for token in tokens:
        request_id = await resolve(client, token)
        assert request_id is not None
        item = await read_request(client, request_id, extensions="true")
        assert item["extended_attributes"]["ward"] == "10"


# ---------------------------------------------------------------------------------------
# The worker on PostGIS: crash between claim and commit, concurrent workers


def postgis_settings(url: str) -> Settings:
    """Test settings on the session's PostGIS database."""
    return Settings(
        environment="test",
        db=DatabaseSettings(url=url, pool_size=5),
        worker=WorkerSettings(in_process=False),
    )


@pytest.fixture
async def pg_client(postgis_database: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an emptied PostGIS database (these tests are about row locks)."""
    async with app_client(postgis_settings(postgis_database)) as http:
        await clear(engine_of(http))
        yield http


async def lock_waiter(engine: AsyncEngine, worker: asyncio.Task[int]) -> int:
    """The backend pid of the (one) session waiting on a row lock: the blocked worker."""
    deadline = time.monotonic() + 30
    async with engine.connect() as conn:
        while time.monotonic() < deadline and not worker.done():
            pid = (
                await conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar()
            # pg_stat_activity is a snapshot per transaction: end it to see changes.
            await conn.commit()
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.02)
    if worker.done():
        pytest.fail(f"the worker ended instead of blocking: {worker.result()!r}")
    pytest.fail("the worker never blocked on the locked token")


async def assert_all_processed_once(client: httpx.AsyncClient, tokens: list[str]) -> None:
    """Every token points at its own request; one request and one attempt per submission."""
    engine = engine_of(client)
    async with engine.connect() as conn:
        pointed = dict(
            (await conn.execute(select(TOKEN.c.token, TOKEN.c.service_request_id))).all()
        )
    assert set(pointed) == set(tokens)
    assert None not in pointed.values()
    assert len(set(pointed.values())) == len(tokens)
    assert await count(engine, REQUEST) == len(tokens)
    assert await count(engine, QUEUE, QUEUE.c.state == "done", QUEUE.c.attempts == 1) == len(tokens)
    # The API agrees (first and last token).
    for token in {tokens[0], tokens[-1]}:
        assert await resolve(client, token) == str(pointed[token])


async def test_worker_crash_between_claim_and_commit_loses_nothing(
    pg_client: httpx.AsyncClient,
) -> None:
    engine = engine_of(pg_client)
    seed = await seed_catalog(engine)
    tokens = [
        await post_batch(pg_client, seed, FORMATS[i % 2], description=f"n{i}") for i in range(5)
    ]
    async with engine.connect() as locker:
        await locker.begin()
        # Hold the third token: the worker claims all five, creates two requests, then waits.
        await locker.execute(
            select(TOKEN.c.token).where(TOKEN.c.token == tokens[2]).with_for_update()
        )
        crashed = asyncio.create_task(worker_of(pg_client).run_once())
        try:
            pid = await lock_waiter(engine, crashed)
            # Meanwhile another worker skips the claimed rows instead of taking them twice.
            assert await worker_of(pg_client).run_once() == 0
            async with engine.connect() as killer:
                # It is mid-job: its (uncommitted) requests have drawn ids from the sequence,
                # which the emptied database had restarted.
                drawn = (
                    await killer.execute(
                        text(
                            "SELECT last_value FROM "
                            "pg_sequences WHERE sequencename = 'service_request_id_seq'"
                        )
                    )
                ).scalar()
                assert drawn is not None
                assert drawn >= 2
                # Its session dies (as when the worker process is killed).
                assert (await killer.execute(select(func.pg_terminate_backend(pid)))).scalar()
            with pytest.raises(DBAPIError):
                await crashed
        finally:
            if not crashed.done():  # the test failed while the worker was blocked
                crashed.cancel()
        await locker.rollback()
    # Nothing of the dead worker's transaction remains ...
    assert await count(engine, REQUEST) == 0
    assert await count(engine, QUEUE, QUEUE.c.state == "queued", QUEUE.c.attempts == 0) == 5
    for token in tokens:
        assert await resolve(pg_client, token) is None
    # ... and the next pass does all of it, once.
    assert await worker_of(pg_client).run_once() == 5
    await assert_all_processed_once(pg_client, tokens)
    assert await worker_of(pg_client).run_once() == 0


async def drain(worker: QueueProcessor, limit: int) -> int:
    """Run a worker in batches of ``limit`` until it finds nothing; how many it processed."""
    done = 0
    while processed := await worker.run_once(limit=limit):
        done += processed
    return done


async def test_concurrent_workers_never_double_process(pg_client: httpx.AsyncClient) -> None:
    engine = engine_of(pg_client)
    seed = await seed_catalog(engine)
    settings = settings_of(pg_client)
    # Two workers with their own engines, as two processes would have.
    engines = [make_engine(settings), make_engine(settings)]
    try:
        workers = [worker_of(pg_client, e) for e in engines]
        tokens = [await post_batch(pg_client, seed, "json") for _ in range(50)]
        # Two passes at the same time over 50 queued submissions ...
        first = await asyncio.gather(*(w.run_once() for w in workers))
        assert sum(first) == 50
        assert await count(engine, REQUEST) == 50
        # ... and two workers draining 21 more in small, interleaved batches.
        tokens += [await post_batch(pg_client, seed, "xml") for _ in range(21)]
        second = await asyncio.gather(*(drain(w, 3) for w in workers))
        assert sum(second) == 21
    finally:
        for e in engines:
            await e.dispose()
    await assert_all_processed_once(pg_client, tokens)

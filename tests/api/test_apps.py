"""Third-party apps on one shared backend (issue 4): keys, admin API, privacy, sandbox,
idempotency and rate limits, over real HTTP on both backends and in both formats.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.api_keys import create_key, reset_sandbox, revoke_key
from app.domain.catalog_import import upsert_jurisdiction
from app.settings import RateLimitSettings
from app.store.tables import ApiKey, ClientApp, IdempotencyRecord, ServiceRequest, Submission
from tests.conftest import AppFactory, Seed, engine_of
from tests.support import (
    JSON_TYPE,
    XML_TYPE,
    assert_parity,
    error_descriptions,
    fetch_both,
    validate_schema,
    xml_to_value,
)

BASE = "/open311/v2"
ADMIN = "/admin/v1"
FORMATS = ("json", "xml")
TYPES = {"json": JSON_TYPE, "xml": XML_TYPE}
FORM_TYPE = "application/x-www-form-urlencoded"

REQUEST = ServiceRequest.__table__
API_KEY = ApiKey.__table__
APP = ClientApp.__table__
RECORD = IdempotencyRecord.__table__
QUEUED = Submission.__table__

Pairs = list[tuple[str, str]]
LAT_LONG: Pairs = [("lat", "43.6534"), ("long", "-79.3841")]
MARK = "ZQSENT"  # in every sentinel contact string


def sentinels(tag: str) -> dict[str, str]:
    """Contact strings that must never reach a public response."""
    return {
        "email": f"{MARK}.mail.{tag}@example.org",
        "phone": f"+1-555-{MARK}-{tag}",
        "first_name": f"{MARK}-First-{tag}",
        "last_name": f"{MARK}-Last-{tag}",
        "device_id": f"{MARK}-device-{tag}",
        "account_id": f"{MARK}-account-{tag}",
    }


# ---------------------------------------------------------------------------------------
# Helpers


@dataclass
class Key:
    """An API key created for a test, with its app."""

    key: str
    id: int
    app: str
    app_id: int


async def make_key(
    client: httpx.AsyncClient,
    app: str,
    *scopes: str,
    sandbox: bool = False,
    jurisdiction: str | None = None,
    rate_limit: int | None = None,
) -> Key:
    """A key of ``app`` (created when new) stored through the domain function."""
    engine = engine_of(client)
    async with engine.begin() as conn:
        key, key_id = await create_key(
            conn,
            f"{app} key",
            app=app,
            scopes=list(scopes or ("submit",)),
            jurisdiction=jurisdiction,
            sandbox=sandbox,
            rate_limit_per_minute=rate_limit,
        )
    return Key(key, key_id, app, await app_id_of(engine, app))


async def app_id_of(engine: AsyncEngine, name: str) -> int:
    """The id of a stored app."""
    async with engine.connect() as conn:
        return int((await conn.execute(select(APP.c.id).where(APP.c.name == name))).scalar_one())


def body(key: str | None, service: str = "LITTER.BIN", *extra: tuple[str, str]) -> Pairs:
    """A valid POST body (a realtime service with a location) plus ``extra`` fields."""
    pairs: Pairs = [] if key is None else [("api_key", key)]
    return [*pairs, ("service_code", service), *LAT_LONG, *extra]


async def post(
    client: httpx.AsyncClient,
    fmt: str,
    pairs: Pairs,
    *,
    idem: str | None = None,
) -> httpx.Response:
    """POST requests.{fmt} with a form body (and an Idempotency-Key when given)."""
    headers = {"content-type": FORM_TYPE}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    content = urlencode(pairs, quote_via=quote).encode("ascii")
    response = await client.post(f"{BASE}/requests.{fmt}", content=content, headers=headers)
    assert response.headers["content-type"] == TYPES[fmt], response.headers
    return response


def decode(response: httpx.Response, fmt: str) -> tuple[str | None, Any]:
    """(XML root or None, value) of a GeoReport body in ``fmt``, Content-Type checked."""
    assert response.headers["content-type"] == TYPES[fmt], response.headers
    if fmt == "json":
        return None, response.json()
    return xml_to_value(response.content)


def created(response: httpx.Response, fmt: str) -> dict[str, Any]:
    """The single item of a successful POST in ``fmt``."""
    assert response.status_code == 200, (fmt, response.status_code, response.text[:300])
    root, value = decode(response, fmt)
    if fmt == "json":
        validate_schema("post", value)
    else:
        assert root == "service_requests"
    assert isinstance(value, list), value
    assert len(value) == 1, value
    item: dict[str, Any] = value[0]
    assert item["service_request_id"], item
    return item


def errors(response: httpx.Response, fmt: str, status: int) -> list[str]:
    """The descriptions of a GeoReport error document with ``status`` in ``fmt``."""
    assert response.status_code == status, (fmt, response.status_code, response.text[:300])
    root, value = decode(response, fmt)
    if fmt == "xml":
        assert root == "errors", root
        assert all(set(item) == {"code", "description"} for item in value), value
        value = [{"code": int(i["code"]), "description": i["description"]} for i in value]
    descriptions = error_descriptions(value)
    assert {item["code"] for item in value} == {status}, value
    return descriptions


async def rows(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every stored service request, oldest first."""
    async with engine_of(client).connect() as conn:
        result = await conn.execute(select(REQUEST).order_by(REQUEST.c.id))
        return [dict(r._mapping) for r in result]


async def count(client: httpx.AsyncClient, table: Any = REQUEST) -> int:
    """Rows in a table."""
    async with engine_of(client).connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def leaked(response: httpx.Response, values: Any) -> list[str]:
    """The values found anywhere in a response body."""
    text = response.content.decode("utf-8")
    return [v for v in values if v in text]


async def admin(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    token: str | None,
    json: Any = None,
    **kwargs: Any,
) -> httpx.Response:
    """Call the admin API (``token`` sent as a Bearer credential when given)."""
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await client.request(method, f"{ADMIN}/{path}", json=json, headers=headers, **kwargs)


def admin_json(response: httpx.Response, status: int) -> Any:
    """The JSON body of a successful admin call."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == JSON_TYPE
    return response.json()


async def list_items(
    client: httpx.AsyncClient, path: str, api_key: str | None = None, **params: str
) -> dict[str, Any]:
    """GET a requests resource in both formats: items by id (also checks parity)."""
    if api_key is not None:
        params["api_key"] = api_key
    both = await fetch_both(client, path, params)
    assert both.xml_root == "service_requests"
    validate_schema("requests", both.json)
    return {item["service_request_id"]: item for item in both.json}


async def post_ok(client: httpx.AsyncClient, pairs: Pairs, fmt: str = "json") -> str:
    """POST a valid request; its id."""
    return str(created(await post(client, fmt, pairs), fmt)["service_request_id"])


# ---------------------------------------------------------------------------------------
# Admin API


def admin_calls(key_id: int) -> list[tuple[str, str, Any]]:
    """Every admin endpoint with a valid body."""
    return [
        ("GET", "apps.json", None),
        ("POST", "apps.json", {"name": "Intruder app"}),
        ("GET", "keys.json", None),
        ("POST", "keys.json", {"app": "Intruder app", "scopes": ["admin"]}),
        ("POST", f"keys/{key_id}/rotate.json", None),
        ("POST", f"keys/{key_id}/revoke.json", None),
        ("POST", "sandbox/reset.json", {}),
    ]


async def test_admin_api_needs_an_admin_key(make_client: AppFactory, seeded: Seed) -> None:
    # Dozens of bad credentials from one address: beyond the failed-auth limit they would be
    # 429s (tests/security/test_limits_failed_auth.py); here each must be its own 403.
    client = await make_client(rate_limits=RateLimitSettings(failed_auth_per_minute=1000))
    victim = await make_key(client, "Victim app", "submit", sandbox=True)
    sandbox_id = await post_ok(client, body(victim.key))
    revoked = await make_key(client, "Ops", "admin")
    answer = await admin(client, "POST", f"keys/{revoked.id}/revoke.json", revoked.key)
    assert admin_json(answer, 200) == {"id": revoked.id, "revoked": True}
    submit_only = await make_key(client, "Other app", "submit")
    reader = await make_key(client, "Other app", "read_private", "submit")
    credentials: dict[str, dict[str, str]] = {
        "none": {},
        "basic": {"Authorization": f"Basic {seeded.api_key}"},
        "empty bearer": {"Authorization": "Bearer "},
        "unknown key": {"Authorization": "Bearer 0123abcd.never-issued-by-this-server-xyz"},
        "submit key": {"Authorization": f"Bearer {submit_only.key}"},
        "read_private key": {"Authorization": f"Bearer {reader.key}"},
        "revoked admin key": {"Authorization": f"Bearer {revoked.key}"},
    }
    keys_before = await count(client, API_KEY)
    apps_before = await count(client, APP)
    for credential, headers in credentials.items():
        for method, path, json in admin_calls(victim.id):
            response = await admin(client, method, path, None, json, headers=headers)
            assert response.headers["content-type"] == JSON_TYPE, (credential, path)
            assert "detail" not in response.text, (credential, path)
            errors(response, "json", 403)
    assert await count(client, API_KEY) == keys_before
    assert await count(client, APP) == apps_before
    # Nothing happened: the victim's key still works and its sandbox request is still there.
    assert [r["id"] for r in await rows(client)] == [int(sandbox_id)]
    await post_ok(client, body(victim.key))


async def test_admin_key_lifecycle(client: httpx.AsyncClient, seeded: Seed) -> None:
    ops = await make_key(client, "Operators", "admin")
    app_in = {"name": "Civic App", "contact": "dev@civic.example"}
    made = admin_json(await admin(client, "POST", "apps.json", ops.key, app_in), 201)
    assert made["name"] == "Civic App"
    assert made["contact"] == "dev@civic.example"
    listed = {
        a["name"]: a for a in admin_json(await admin(client, "GET", "apps.json", ops.key), 200)
    }
    assert listed["Civic App"]["id"] == made["id"]
    assert listed["Civic App"]["contact"] == "dev@civic.example"
    assert listed["Civic App"]["active_keys"] == 0

    key_in = {
        "app": "Civic App",
        "name": "ios build",
        "scopes": ["submit", "read_private"],
        "jurisdiction_id": seeded.jurisdiction_id,
        "rate_limit_per_minute": 120,
    }
    new = admin_json(await admin(client, "POST", "keys.json", ops.key, key_in), 201)
    key, key_id = new["key"], new["id"]
    assert new["prefix"] == key[:8]
    assert new["app"] == "Civic App"
    listing = await admin(client, "GET", "keys.json", ops.key)
    assert key not in listing.text
    assert key[8:] not in listing.text
    entry = {k["id"]: k for k in admin_json(listing, 200)}[key_id]
    assert "key" not in entry
    assert "key_hash" not in entry
    assert entry["prefix"] == key[:8]
    assert entry["app"] == "Civic App"
    assert entry["name"] == "ios build"
    assert entry["scopes"] == ["submit", "read_private"]
    assert entry["jurisdiction_id"] == seeded.jurisdiction_id
    assert entry["rate_limit_per_minute"] == 120
    assert entry["sandbox"] is False
    assert entry["revoked_at"] is None
    apps = admin_json(await admin(client, "GET", "apps.json", ops.key), 200)
    assert {a["name"]: a["active_keys"] for a in apps}["Civic App"] == 1

    first_id = await post_ok(client, body(key))
    rotated = admin_json(await admin(client, "POST", f"keys/{key_id}/rotate.json", ops.key), 201)
    assert rotated["replaces"] == key_id
    assert rotated["key"] != key
    assert rotated["prefix"] == rotated["key"][:8]
    second_id = await post_ok(client, body(rotated["key"]), "xml")
    for fmt in FORMATS:
        errors(await post(client, fmt, body(key)), fmt, 403)
    stored = {str(r["id"]): r for r in await rows(client)}
    assert stored[first_id]["api_key_id"] == key_id
    assert stored[second_id]["api_key_id"] == rotated["id"]
    assert stored[first_id]["app_id"] == stored[second_id]["app_id"] == made["id"]
    listing = await admin(client, "GET", "keys.json", ops.key)
    assert rotated["key"] not in listing.text
    entries = {k["id"]: k for k in admin_json(listing, 200)}
    assert entries[key_id]["revoked_at"] is not None
    assert entries[rotated["id"]]["revoked_at"] is None
    assert entries[rotated["id"]]["scopes"] == ["submit", "read_private"]
    assert entries[rotated["id"]]["rate_limit_per_minute"] == 120

    revoked = await admin(client, "POST", f"keys/{rotated['id']}/revoke.json", ops.key)
    assert admin_json(revoked, 200) == {"id": rotated["id"], "revoked": True}
    for fmt in FORMATS:
        errors(await post(client, fmt, body(rotated["key"])), fmt, 403)
    assert len(await rows(client)) == 2
    # Revoked or unknown key ids are 404 for both actions; nothing is created.
    keys_before = await count(client, API_KEY)
    for key_id_text in (str(rotated["id"]), str(key_id), str(rotated["id"] + 999)):
        for action in ("rotate", "revoke"):
            response = await admin(client, "POST", f"keys/{key_id_text}/{action}.json", ops.key)
            errors(response, "json", 404)
    assert await count(client, API_KEY) == keys_before


BAD_BODIES: list[tuple[str, Any]] = [
    ("keys.json", {"app": "Civic App", "scopes": ["submit", "superuser"]}),
    ("keys.json", {"app": "Civic App", "scopes": []}),
    ("keys.json", {"app": "Civic App", "rate_limit_per_minute": 0}),
    ("keys.json", {"app": "Civic App", "rate_limit_per_minute": -5}),
    ("keys.json", {"app": "Civic App", "rate_limit_per_minute": "fast"}),
    ("keys.json", {"scopes": ["submit"]}),
    ("keys.json", {"app": ""}),
    ("keys.json", {"app": "Civic App", "sandbox": "perhaps"}),
    ("keys.json", ["not", "an", "object"]),
    ("keys.json", b"app=Civic+App"),
    ("apps.json", {}),
    ("apps.json", {"name": ""}),
]


async def test_a_key_revoked_by_another_process_is_refused_at_once(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    """A POST may rely on its key's cached verification only because the realtime write
    checks the key in its own transaction: a key revoked where this process's cache cannot
    hear of it (the CLI, another worker) stores nothing and claims no Idempotency-Key from
    its very next call, and its reads lose the private fields at once, on both backends."""
    key = await make_key(client, "Civic App", "submit", "read_private")
    # Verified (and cached) by this process, by a POST and by a read.
    first = await post_ok(client, body(key.key, "LITTER.BIN", *sentinels("R").items()))
    mine = await fetch_both(client, f"requests/{first}", {"api_key": key.key})
    assert mine.json[0]["reporter"] == sentinels("R")
    async with engine_of(client).begin() as conn:  # as `open311 keys revoke` would
        assert await revoke_key(conn, key.id)
    # A realtime service (the write checks the key) and a batch one (queued: checked anew).
    for service in ("GRAFFITI", "LITTER.BIN"):
        for fmt in FORMATS:
            idem = f"after-revoke-{service}-{fmt}"
            response = await post(client, fmt, body(key.key, service), idem=idem)
            assert any("api_key" in d for d in errors(response, fmt, 403))
    after = await fetch_both(client, f"requests/{first}", {"api_key": key.key})
    assert "reporter" not in after.json[0]
    for response in (after.json_response, after.xml_response):
        assert MARK not in response.text
    assert [str(r["id"]) for r in await rows(client)] == [first]
    assert await count(client, RECORD) == 0
    assert await count(client, QUEUED) == 0


async def test_admin_bad_body_is_400_in_georeport_shape(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    ops = await make_key(client, "Operators", "admin")
    keys_before = await count(client, API_KEY)
    apps_before = await count(client, APP)
    for path, payload in BAD_BODIES:
        if isinstance(payload, bytes):
            headers = {"content-type": "application/json"}
            response = await admin(client, "POST", path, ops.key, content=payload, headers=headers)
        else:
            response = await admin(client, "POST", path, ops.key, payload)
        assert response.status_code == 400, (payload, response.status_code, response.text)
        assert "detail" not in response.text, payload
        errors(response, "json", 400)
    assert await count(client, API_KEY) == keys_before
    assert await count(client, APP) == apps_before


async def test_admin_sandbox_reset_deletes_only_that_apps_sandbox(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    ops = await make_key(client, "Operators", "admin")
    a_sandbox = await make_key(client, "App A", "submit", sandbox=True)
    a_real = await make_key(client, "App A", "submit")
    b_sandbox = await make_key(client, "App B", "submit", sandbox=True)
    b_real = await make_key(client, "App B", "submit")
    for key in (a_sandbox, a_sandbox, a_real, b_sandbox, b_real):
        await post_ok(client, body(key.key))
    before = {r["id"]: r for r in await rows(client)}

    answer = await admin(client, "POST", "sandbox/reset.json", ops.key, {"app": "App A"})
    assert admin_json(answer, 200) == {"deleted": 2, "app": "App A"}
    after = {r["id"]: r for r in await rows(client)}
    gone = set(before) - set(after)
    assert {before[i]["api_key_id"] for i in gone} == {a_sandbox.id}
    assert len(gone) == 2
    assert {r["api_key_id"] for r in after.values()} == {a_real.id, b_sandbox.id, b_real.id}

    unknown = await admin(client, "POST", "sandbox/reset.json", ops.key, {"app": "No such app"})
    errors(unknown, "json", 404)
    assert len(await rows(client)) == 3

    everything = await admin(client, "POST", "sandbox/reset.json", ops.key, {})
    assert admin_json(everything, 200) == {"deleted": 1, "app": None}
    assert {r["api_key_id"] for r in await rows(client)} == {a_real.id, b_real.id}
    assert all(r["sandbox"] is False for r in await rows(client))


# ---------------------------------------------------------------------------------------
# Keys


def secret_bits(key: str) -> int:
    """A lower bound of the random bits of a key beyond its visible prefix."""
    secret = key[8:].replace(".", "")
    alphabet_bits = 4 if re.fullmatch(r"[0-9a-f]*", secret) else 6
    return len(secret) * alphabet_bits


async def test_keys_are_random_and_stored_only_as_a_hash(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    ops = await make_key(client, "Operators", "admin")
    keys = {ops.id: ops.key}
    for _ in range(3):
        made = await admin(client, "POST", "keys.json", ops.key, {"app": "Civic App"})
        created_key = admin_json(made, 201)
        keys[created_key["id"]] = created_key["key"]
    for i in range(8):
        key = await make_key(client, f"App {i}")
        keys[key.id] = key.key
    for key in keys.values():
        assert re.fullmatch(r"[A-Za-z0-9._~-]+", key), key  # safe in a form or a header
        assert secret_bits(key) >= 128, key
    assert len(set(keys.values())) == len(keys)
    assert len({k[8:] for k in keys.values()}) == len(keys)
    assert len({k[:8] for k in keys.values()}) == len(keys)  # prefixes are random too

    async with engine_of(client).connect() as conn:
        result = await conn.execute(select(API_KEY).where(API_KEY.c.id.in_(keys)))
        stored = [dict(r._mapping) for r in result]
    assert len(stored) == len(keys)
    for row in stored:
        key = keys[row["id"]]
        for column, value in row.items():
            assert key not in str(value), column
            assert key[8:] not in str(value), column
        assert row["key_hash"] == hashlib.sha256(key.encode("utf-8")).hexdigest()
        assert row["prefix"] == key[:8]


async def test_key_rights_are_enforced_on_post(client: httpx.AsyncClient, seeded: Seed) -> None:
    async with engine_of(client).begin() as conn:
        other = {**seeded.catalog["jurisdiction"], "jurisdiction_id": "other.example.org"}
        await upsert_jurisdiction(conn, other)
    where = ("jurisdiction_id", seeded.jurisdiction_id)
    elsewhere = await make_key(client, "Other City App", jurisdiction="other.example.org")
    refused = [(elsewhere, "jurisdiction")] + [
        (await make_key(client, "Reader app", *scopes), "submit")
        for scopes in (("read_private",), ("admin",), ("read_private", "admin"))
    ]
    for key, named in refused:
        for fmt in FORMATS:
            response = await post(client, fmt, body(key.key, "LITTER.BIN", where))
            descriptions = errors(response, fmt, 403)
            assert any(named in d for d in descriptions), descriptions
    assert await rows(client) == []
    here = await make_key(client, "Local App", jurisdiction=seeded.jurisdiction_id)
    for fmt in FORMATS:
        created(await post(client, fmt, body(here.key, "LITTER.BIN", where)), fmt)
    assert [r["api_key_id"] for r in await rows(client)] == [here.id, here.id]


async def test_each_request_records_its_app_and_key(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    a = await make_key(client, "App A")
    a2 = await make_key(client, "App A")
    b = await make_key(client, "App B")
    posted = {}
    for key, fmt in ((a, "json"), (a2, "xml"), (b, "json"), (b, "xml")):
        posted[await post_ok(client, body(key.key), fmt)] = key
    stored = {str(r["id"]): r for r in await rows(client)}
    assert set(stored) == set(posted)
    for request_id, key in posted.items():
        assert stored[request_id]["app_id"] == key.app_id
        assert stored[request_id]["api_key_id"] == key.id
    assert a.app_id == a2.app_id != b.app_id


# ---------------------------------------------------------------------------------------
# Privacy


async def test_private_fields_only_for_the_submitting_app(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    a = await make_key(client, "App A", "submit", "read_private")
    b = await make_key(client, "App B", "submit", "read_private")
    a_plain = await make_key(client, "App A", "submit")
    a_request = await post_ok(client, body(a.key, "LITTER.BIN", *sentinels("A").items()))
    b_request = await post_ok(client, body(b.key, "LITTER.BIN", *sentinels("B").items()), "xml")
    every = set(sentinels("A").values()) | set(sentinels("B").values())
    # viewer's api_key -> (sentinel tag, request id) it may read private fields of
    viewers: dict[str | None, tuple[str, str] | None] = {
        None: None,
        "not-a-valid-key-0123456789": None,  # ignored: anonymous, never 403
        a.key: ("A", a_request),
        b.key: ("B", b_request),
        a_plain.key: None,  # A's own key, but without read_private
    }
    for api_key, own in viewers.items():
        allowed = set(sentinels(own[0]).values()) if own else set()
        for path, extra in (
            ("requests", {}),
            ("requests", {"extensions": "true"}),
            ("requests", {"service_request_id": f"{a_request},{b_request}"}),
            (f"requests/{a_request}", {}),
            (f"requests/{b_request}", {}),
        ):
            params = dict(extra)
            if api_key is not None:
                params["api_key"] = api_key
            both = await fetch_both(client, path, params)  # 200, parity of JSON and XML
            assert both.xml_root == "service_requests"
            validate_schema("requests", both.json)
            assert both.json, path
            for item in both.json:
                if own is not None and item["service_request_id"] == own[1]:
                    assert item["reporter"] == sentinels(own[0]), item
                else:
                    assert "reporter" not in item, (api_key, item)
            for response in (both.json_response, both.xml_response):
                assert leaked(response, every - allowed) == [], (api_key, path)
                if own is None:
                    assert MARK not in response.text, (api_key, path)


async def test_sentinels_never_in_error_bodies(client: httpx.AsyncClient, seeded: Seed) -> None:
    a = await make_key(client, "App A", "submit", "read_private")
    contact = list(sentinels("E").items())
    broken_email = [("email", f"{MARK}@@not-an-address"), *contact[1:]]
    long_phone = [*contact[:1], ("phone", f"{MARK}-" * 20), *contact[2:]]
    bad_names = [*contact[:2], ("first_name", f"{MARK}\x01ctl"), *contact[3:]]
    cases: list[tuple[Pairs, int]] = [
        (body("bogus-key-0123456789", "LITTER.BIN", *contact), 403),
        ([("api_key", a.key), *LAT_LONG, *contact], 400),
        (body(a.key, "NO.SUCH.SERVICE", *contact), 404),
        ([("api_key", a.key), ("service_code", "LITTER.BIN"), *contact], 400),
        (
            [
                ("api_key", a.key),
                ("service_code", "LITTER.BIN"),
                ("lat", "91"),
                ("long", "0"),
                *contact,
            ],
            400,
        ),
        (body(a.key, "POTHOLE", *contact), 400),
        (body(a.key, "LITTER.BIN", *broken_email), 400),
        (body(a.key, "LITTER.BIN", *long_phone), 400),
        (body(a.key, "LITTER.BIN", *bad_names), 400),
    ]
    for pairs, status in cases:
        for fmt in FORMATS:
            response = await post(client, fmt, pairs)
            errors(response, fmt, status)
            assert MARK not in response.text, (status, response.text)
    assert await rows(client) == []


async def test_server_owned_fields_are_never_stored(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    a = await make_key(client, "App A")
    b = await make_key(client, "App B")
    owned: Pairs = [
        ("status", "closed"),
        ("status_notes", "Fixed by the client"),
        ("service_request_id", "999999"),
        ("requested_datetime", "2001-01-01T00:00:00Z"),
        ("updated_datetime", "2001-01-02T00:00:00Z"),
        ("expected_datetime", "2001-01-03T00:00:00Z"),
        ("ward", "99"),
        ("agency_responsible", "Client-chosen agency"),
        ("service_notice", "Client-chosen notice"),
        ("app_id", str(b.app_id)),
        ("api_key_id", str(b.id)),
        ("sandbox", "true"),
    ]
    started = time.time()
    ids = [await post_ok(client, body(a.key, "LITTER.BIN", *owned), fmt) for fmt in FORMATS]
    assert "999999" not in ids
    for row in await rows(client):
        assert row["status"] == "open"
        assert row["status_notes"] is None
        assert row["requested_at"].timestamp() >= started - 5
        assert row["updated_at"].timestamp() >= started - 5
        assert row["expected_at"] is None
        assert row["ward_id"] is None
        assert row["agency_responsible"] == "Solid Waste"  # LITTER.BIN's, from the catalogue
        assert row["service_notice"] is None
        assert (row["app_id"], row["api_key_id"], row["sandbox"]) == (a.app_id, a.id, False)
    items = await list_items(client, "requests")
    assert set(items) == set(ids)
    for item in items.values():
        assert item["status"] == "open"
        assert item["status_notes"] is None
        assert not item["requested_datetime"].startswith("2001")
        assert item["agency_responsible"] == "Solid Waste"
        assert item["service_notice"] is None
        assert item["expected_datetime"] is None


# ---------------------------------------------------------------------------------------
# Sandbox


async def test_sandbox_requests_never_mix_with_real_ones(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    a_sandbox = await make_key(client, "App A", "submit", "read_private", sandbox=True)
    a_real = await make_key(client, "App A", "submit", "read_private")
    b_sandbox = await make_key(client, "App B", "submit", "read_private", sandbox=True)
    sandbox_id = await post_ok(client, body(a_sandbox.key, "LITTER.BIN", *sentinels("S").items()))
    real_id = await post_ok(client, body(a_real.key), "xml")
    b_sandbox_id = await post_ok(client, body(b_sandbox.key))
    stored = {str(r["id"]): r for r in await rows(client)}
    assert [stored[i]["sandbox"] for i in (sandbox_id, real_id, b_sandbox_id)] == [
        True,
        False,
        True,
    ]

    visible = {
        None: {real_id},
        a_real.key: {real_id},
        a_sandbox.key: {sandbox_id},
        b_sandbox.key: {b_sandbox_id},
    }
    for api_key, expected in visible.items():
        assert set(await list_items(client, "requests", api_key)) == expected, api_key
        for request_id in (sandbox_id, real_id, b_sandbox_id):
            if request_id in expected:
                found = await list_items(client, f"requests/{request_id}", api_key)
                assert set(found) == {request_id}
                if request_id == sandbox_id:  # the sandbox app reads its own test data
                    assert found[request_id]["reporter"] == sentinels("S")
            else:
                params = {} if api_key is None else {"api_key": api_key}
                both = await fetch_both(client, f"requests/{request_id}", params, expect=404)
                assert both.xml_root == "errors"
                error_descriptions(both.json)
                assert MARK not in both.json_response.text + both.xml_response.text

    # What `open311 sandbox-reset --app "App A"` runs: one app's sandbox only.
    async with engine_of(client).begin() as conn:
        assert await reset_sandbox(conn, "App A") == 1
    assert {str(r["id"]) for r in await rows(client)} == {real_id, b_sandbox_id}
    assert set(await list_items(client, "requests", a_sandbox.key)) == set()
    assert set(await list_items(client, "requests", b_sandbox.key)) == {b_sandbox_id}
    assert set(await list_items(client, "requests")) == {real_id}
    async with engine_of(client).begin() as conn:
        assert await reset_sandbox(conn) == 1  # `open311 sandbox-reset`: every app's
    assert {str(r["id"]) for r in await rows(client)} == {real_id}


# ---------------------------------------------------------------------------------------
# Idempotency


def replayed(response: httpx.Response) -> bool:
    """True when the response is marked as a replay."""
    return response.headers.get("Idempotent-Replayed", "").lower() == "true"


async def test_idempotent_retry_replays_the_original(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    made = []
    for first, other in (("json", "xml"), ("xml", "json")):
        idem = f"retry-{first}"
        pairs = body(seeded.api_key, "LITTER.BIN", ("description", f"Bin overflowing {first}"))
        original = await post(client, first, pairs, idem=idem)
        item = created(original, first)
        assert not replayed(original)
        again = await post(client, first, pairs, idem=idem)
        assert again.status_code == original.status_code
        assert replayed(again)
        assert created(again, first) == item
        assert again.content == original.content, (original.text, again.text)
        elsewhere = await post(client, other, pairs, idem=idem)
        assert replayed(elsewhere)
        replay = created(elsewhere, other)
        assert_parity(*((item, replay) if first == "json" else (replay, item)))
        made.append(str(item["service_request_id"]))
    assert [str(r["id"]) for r in await rows(client)] == made


async def test_same_key_different_body_is_422(client: httpx.AsyncClient, seeded: Seed) -> None:
    pairs = body(seeded.api_key)
    original = created(await post(client, "json", pairs, idem="k-422"), "json")
    for fmt in FORMATS:
        for changed in (
            body(seeded.api_key, "LITTER.BIN", ("description", "something else")),
            body(seeded.api_key, "FEEDBACK"),
            [(k, "43.7" if k == "lat" else v) for k, v in pairs],
        ):
            response = await post(client, fmt, changed, idem="k-422")
            errors(response, fmt, 422)
            assert not replayed(response)
        assert replayed(await post(client, fmt, pairs, idem="k-422"))
    assert [str(r["id"]) for r in await rows(client)] == [original["service_request_id"]]


async def test_idempotency_keys_are_scoped_per_api_key(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    a = await make_key(client, "App A")
    b = await make_key(client, "App B")
    made = {}
    for key in (a, b):
        first = await post(client, "json", body(key.key), idem="shared-key")
        assert not replayed(first)
        made[key.id] = created(first, "json")["service_request_id"]
    assert made[a.id] != made[b.id]
    for key in (a, b):
        again = await post(client, "xml", body(key.key), idem="shared-key")
        assert replayed(again)
        assert created(again, "xml")["service_request_id"] == made[key.id]
    stored = {str(r["id"]): r["api_key_id"] for r in await rows(client)}
    assert stored == {made[a.id]: a.id, made[b.id]: b.id}


async def test_failed_post_does_not_burn_the_key(client: httpx.AsyncClient, seeded: Seed) -> None:
    for fmt, broken, status in (
        ("json", [("api_key", seeded.api_key), ("service_code", "LITTER.BIN")], 400),
        ("xml", body(seeded.api_key, "POTHOLE"), 400),
        ("json", body("not-a-valid-key-0123456789"), 403),
    ):
        errors(await post(client, fmt, broken, idem="fix-and-retry"), fmt, status)
    assert await rows(client) == []
    assert await count(client, RECORD) == 0
    fixed = await post(client, "xml", body(seeded.api_key), idem="fix-and-retry")
    assert not replayed(fixed)
    item = created(fixed, "xml")
    again = await post(client, "xml", body(seeded.api_key), idem="fix-and-retry")
    assert replayed(again)
    assert created(again, "xml") == item
    assert [str(r["id"]) for r in await rows(client)] == [item["service_request_id"]]


async def test_unusable_idempotency_key_is_400(client: httpx.AsyncClient, seeded: Seed) -> None:
    for header in ("", "   ", "k" * 256, "tab\tinside"):
        for fmt in FORMATS:
            response = await post(client, fmt, body(seeded.api_key), idem=header)
            descriptions = errors(response, fmt, 400)
            assert any("Idempotency-Key" in d for d in descriptions), descriptions
    assert await rows(client) == []
    longest = await post(client, "json", body(seeded.api_key), idem="k" * 255)
    created(longest, "json")
    assert len(await rows(client)) == 1


async def test_concurrent_duplicates_create_one_request(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    pairs = body(seeded.api_key, "LITTER.BIN", ("description", "Posted 100 times at once"))
    started = time.monotonic()
    responses = await asyncio.gather(
        *(post(client, FORMATS[i % 2], pairs, idem="burst-1") for i in range(100))
    )
    assert time.monotonic() - started < 15  # typically 1-3 s
    items = [created(r, FORMATS[i % 2]) for i, r in enumerate(responses)]
    assert len({str(item["service_request_id"]) for item in items}) == 1
    assert sum(not replayed(r) for r in responses) == 1
    stored = await rows(client)
    assert [str(r["id"]) for r in stored] == [str(items[0]["service_request_id"])]
    assert await count(client, RECORD) == 1


# ---------------------------------------------------------------------------------------
# Rate limits

LIMIT = 30


def check_refusal(response: httpx.Response, fmt: str, limit: int) -> None:
    """A 429 in the GeoReport error format with Retry-After and RateLimit headers."""
    errors(response, fmt, 429)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 60, retry_after
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"


@dataclass
class Burst:
    """POSTs sent in a row: (client index, response) and the seconds they took."""

    results: list[tuple[int, httpx.Response]]
    seconds: float

    def accepted(self, which: int | None = None) -> list[httpx.Response]:
        """The accepted responses (of one client, or of all)."""
        return [r for w, r in self.results if r.status_code == 200 and which in (None, w)]

    def ceiling(self) -> int:
        """The most a token bucket of LIMIT may accept in that time (refill included)."""
        return LIMIT + math.ceil(self.seconds * LIMIT / 60)


async def burst(clients: list[httpx.AsyncClient], key: str, total: int) -> Burst:
    """``total`` POSTs, alternating clients and formats."""
    out = []
    started = time.monotonic()
    for i in range(total):
        fmt = FORMATS[i % 2]
        which = (i // 2) % len(clients)
        response = await post(clients[which], fmt, body(key))
        if response.status_code == 200:
            created(response, fmt)
        else:
            check_refusal(response, fmt, LIMIT)
        out.append((which, response))
    return Burst(out, time.monotonic() - started)


async def test_per_key_rate_limit(client: httpx.AsyncClient, seeded: Seed) -> None:
    key = await make_key(client, "Busy app", rate_limit=LIMIT)
    other = await make_key(client, "Quiet app")
    sent = await burst([client], key.key, 2 * LIMIT)
    results = [r for _, r in sent.results]
    accepted = sent.accepted()
    # LIMIT, plus what refilled during the run (0.5 a second: usually 0 to 2).
    assert LIMIT <= len(accepted) <= sent.ceiling(), (len(accepted), sent.seconds)
    assert all(r.status_code == 200 for r in results[:LIMIT])
    assert {r.status_code for r in results} == {200, 429}
    remaining = [int(r.headers["RateLimit-Remaining"]) for r in accepted]
    assert remaining[0] == LIMIT - 1
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[-1] == 0
    assert all(r.headers["RateLimit-Limit"] == str(LIMIT) for r in accepted)
    assert len(await rows(client)) == len(accepted)
    # Another key has its own bucket (the default limit).
    fresh = await post(client, "json", body(other.key))
    created(fresh, "json")
    assert fresh.headers["RateLimit-Limit"] == "600"


async def test_key_bucket_shared_across_server_instances(
    client: httpx.AsyncClient, seeded: Seed, make_client: Any, backend: str
) -> None:
    second = await make_client()  # a second server process on the same database
    key = await make_key(client, "Busy app", rate_limit=LIMIT)
    sent = await burst([client, second], key.key, 4 * LIMIT)
    per_instance = [len(sent.accepted(i)) for i in (0, 1)]
    if backend == "postgis":
        # Both instances draw from one bucket in the rate_bucket table.
        assert LIMIT <= sum(per_instance) <= sent.ceiling(), (per_instance, sent.seconds)
        assert min(per_instance) >= LIMIT // 2 - 1, per_instance
    else:
        # The embedded default is one process: each instance keeps its own bucket
        # (documented in app/domain/ratelimit.py), and each enforces the limit.
        for n in per_instance:
            assert LIMIT <= n <= sent.ceiling(), (per_instance, sent.seconds)
    assert len(await rows(client)) == sum(per_instance)


async def test_anonymous_get_limit_per_ip(
    client: httpx.AsyncClient, seeded: Seed, make_client: Any
) -> None:
    limited = await make_client(rate_limits=RateLimitSettings(anonymous_per_minute=10))
    reader = await make_key(client, "Reader app", "read_private")
    remaining = []
    for i in range(10):
        fmt = FORMATS[i % 2]
        # An invalid api_key is ignored: the call is anonymous and draws from the IP bucket.
        params = {"api_key": "not-a-valid-key-0123456789"} if i % 3 == 0 else {}
        response = await limited.get(f"{BASE}/requests.{fmt}", params=params)
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"] == TYPES[fmt]
        assert response.headers["RateLimit-Limit"] == "10"
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == list(range(9, -1, -1))
    for path, params in (
        ("requests", {}),
        ("requests", {"api_key": "not-a-valid-key-0123456789"}),
        ("services", {}),
    ):
        for fmt in FORMATS:
            response = await limited.get(f"{BASE}/{path}.{fmt}", params=params)
            check_refusal(response, fmt, 10)
    # A valid key draws from its own bucket, not the exhausted IP bucket.
    both = await fetch_both(limited, "requests", {"api_key": reader.key})
    assert both.json_response.headers["RateLimit-Limit"] == "600"

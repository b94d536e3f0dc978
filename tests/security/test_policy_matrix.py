"""The authorization matrix: every cell of ``app.domain.policy.POLICY`` driven through HTTP.

For each operation (a row) and each kind of caller (a column) the test performs the row's
call as that caller against the row's target and checks that it succeeded exactly when the
policy says it may, on both backends. A row without a driver here, a documented route without
a row, or a CLI command without a row fails the suite, so a new route or CLI action cannot
be added without deciding who may use it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from sqlalchemy import func, select, update

from app.cli import cli
from app.domain.api_keys import create_key, verify_key
from app.domain.catalog import read_services
from app.domain.divisions import create_division, list_divisions, list_moves, move_service
from app.domain.media import photo_owner
from app.domain.policy import CLI_ACTIONS, CLI_POLICY, POLICY, Caller, Operation
from app.domain.service_levels import format_service_levels, parse_service_levels
from app.domain.subscriptions import FeedSpec, create_feed
from app.domain.webhooks import create_subscription
from app.federation.partners import add_remote
from app.media.errors import ObjectNotFound
from app.media.objects import ObjectStore, new_photo_prefix
from app.media.runtime import object_store
from app.media.settings import MediaSettings
from app.settings import RateLimitSettings
from app.store.tables import ApiKey, ServiceRequest
from tests.conftest import AppFactory, Seed, clear, engine_of, seed_catalog
from tests.factories import make_request
from tests.support import POTHOLE_AT_CITY_HALL

BASE = "/open311/v2"
J2 = "other.example.org"
REMOTE = "partner.example.net"  # a partner city (remote jurisdiction) in the first city's region
PARTNER_HOST = "http://partner-city.test"
HOOK = "https://93.184.216.34/open311-hook"  # a public address literal: no DNS needed
REQUEST = ServiceRequest.__table__
API_KEY = ApiKey.__table__

# The keys of each kind of caller (see app.domain.policy.Caller): app A's keys, the city's
# admin key, and app B's key.
KEY_SPECS: dict[Caller, dict[str, Any]] = {
    Caller.SUBMIT: {"app": "A", "scopes": ["submit"]},
    Caller.UPDATE: {"app": "A", "scopes": ["update"]},
    Caller.READ_PRIVATE: {"app": "A", "scopes": ["read_private"]},
    Caller.STAFF: {"app": "A", "scopes": ["submit", "update", "staff"]},
    Caller.ADMIN: {"app": "ops", "scopes": ["admin"]},
    Caller.SANDBOX: {"app": "A", "scopes": ["submit", "update", "read_private"], "sandbox": True},
    Caller.RESTRICTED: {
        "app": "A",
        "scopes": ["submit", "update", "staff", "read_private", "admin"],
        "jurisdiction": J2,
    },
    Caller.REVOKED: {"app": "A", "scopes": ["submit", "update", "staff", "read_private", "admin"]},
    Caller.OTHER_APP: {"app": "B", "scopes": ["submit", "update", "read_private"]},
}


@dataclass
class World:
    """Two cities, the callers' keys and the targets of the rows (all in the first city)."""

    client: httpx.AsyncClient
    seed: Seed
    keys: dict[Caller, str | None]
    own_request: str  # public, submitted by app A, with the reporter's e-mail
    third_request: str  # public, submitted by app C
    sandbox_request: str  # app A's sandbox
    token: str
    c_app: str  # app C's name: another city's app (its key is unrestricted)
    c_key_prefix: str
    counter: list[int] = field(default_factory=lambda: [0])

    def key(self, caller: Caller) -> str | None:
        return self.keys[caller]

    def params(self, caller: Caller, **extra: str) -> dict[str, str]:
        out = {"jurisdiction_id": self.seed.jurisdiction_id, **extra}
        key = self.key(caller)
        if key is not None:
            out["api_key"] = key
        return out

    def bearer(self, caller: Caller) -> dict[str, str]:
        key = self.key(caller)
        return {"Authorization": f"Bearer {key}"} if key is not None else {}

    def unique(self, prefix: str) -> str:
        self.counter[0] += 1
        return f"{prefix}-{self.counter[0]}-{uuid.uuid4().hex[:6]}"


async def _app_key(engine: Any, app: str, **options: Any) -> tuple[str, int]:
    async with engine.begin() as conn:
        return await create_key(conn, app, app=app, **options)


@pytest.fixture
async def world(make_client: AppFactory, tmp_path: Path) -> World:
    # Refused calls are the point here: the per-address limit on bad credentials (tested in
    # test_limits_failed_auth.py) would turn the later cells into 429s.
    client = await make_client(
        rate_limits=RateLimitSettings(failed_auth_per_minute=0),
        media=MediaSettings(local_dir=tmp_path / "media"),
    )
    engine = engine_of(client)
    await clear(engine)
    seeded = await seed_catalog(engine)
    await seed_catalog(engine, code=J2)
    keys: dict[Caller, str | None] = {Caller.ANONYMOUS: None}
    app_ids: dict[str, int] = {}
    for caller, spec in KEY_SPECS.items():
        spec = dict(spec)
        app = spec.pop("app")
        key, key_id = await _app_key(engine, app, **spec)
        keys[caller] = key
        async with engine.connect() as conn:
            app_ids[app] = (await verify_key(conn, key)).app_id or 0
        if caller is Caller.REVOKED:
            async with engine.begin() as conn:
                await conn.execute(
                    update(API_KEY).where(API_KEY.c.id == key_id).values(revoked_at=func.now())
                )
    c_key, _ = await _app_key(engine, "C")
    async with engine.connect() as conn:
        app_ids["C"] = (await verify_key(conn, c_key)).app_id or 0
    pothole = seeded.service_pks["POTHOLE"]
    own = await make_request(
        engine,
        seeded.jurisdiction_pk,
        pothole,
        app_id=app_ids["A"],
        email="reporter@example.org",
        description="App A's public request",
    )
    third = await make_request(engine, seeded.jurisdiction_pk, pothole, app_id=app_ids["C"])
    sandboxed = await make_request(
        engine, seeded.jurisdiction_pk, pothole, app_id=app_ids["A"], sandbox=True
    )
    batch = await client.post(
        f"{BASE}/requests.json",
        data={
            "api_key": seeded.api_key,
            "jurisdiction_id": seeded.jurisdiction_id,
            "service_code": "GRAFFITI",
            "address_string": "100 Queen St W",
        },
    )
    assert batch.status_code == 200, batch.text
    w = World(
        client=client,
        seed=seeded,
        keys=keys,
        own_request=str(own),
        third_request=str(third),
        sandbox_request=str(sandboxed),
        token=batch.json()[0]["token"],
        c_app="C",
        c_key_prefix=c_key[:8],
    )
    # A public update of app A's request, for the updates feed.
    staff = await client.post(
        f"/admin/v1/requests/{own}/updates.json",
        params={"jurisdiction_id": seeded.jurisdiction_id},
        json={"status": "IN_PROGRESS", "description": "Crew assigned."},
        headers=w.bearer(Caller.ADMIN),
    )
    assert staff.status_code == 201, staff.text
    await add_remote(
        engine,
        code=REMOTE,
        name="Partner city",
        url=f"{PARTNER_HOST}/open311/v2",
        fmt="json",
        partner_key="our-key-at-the-partner",
        partner_jurisdiction="partner.example.org",
        timezone="America/Toronto",
    )
    return w


Driver = Callable[[World, Caller], Awaitable[bool]]
DRIVERS: dict[str, Driver] = {}


def driver(name: str) -> Callable[[Driver], Driver]:
    def register(fn: Driver) -> Driver:
        DRIVERS[name] = fn
        return fn

    return register


async def _ok(response: httpx.Response) -> bool:
    if response.status_code < 300:
        return True
    # A refusal is a GeoReport error document, never a crash.
    assert response.status_code in (400, 403, 404), (response.status_code, response.text)
    return False


async def _get(w: World, caller: Caller, path: str, **params: str) -> httpx.Response:
    return await w.client.get(f"{BASE}/{path}", params=w.params(caller, **params))


# --- reads ---------------------------------------------------------------------------------


@driver("discovery.read")
async def _discovery(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, "discovery.json"))


@driver("services.list")
async def _services(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, "services.xml"))


@driver("services.definition")
async def _definition(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, "services/POTHOLE.json"))


@driver("areas.list")
async def _areas(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, "areas.json"))


@driver("areas.geojson")
async def _areas_geojson(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, "areas.geojson"))


def _photos(w: World) -> ObjectStore:
    return object_store(w.client.app.state.open311.settings.media)  # type: ignore[attr-defined]


@driver("media.read")
async def _media(w: World, c: Caller) -> bool:
    key = f"{new_photo_prefix(sandbox=False)}full.jpg"
    await _photos(w).put(key, b"\xff\xd8\xff photo", "image/jpeg")
    return await _ok(await _get(w, c, f"media/{key}"))


@driver("jurisdictions.list")
async def _jurisdictions(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, "jurisdictions.json"))


@driver("jurisdictions.read")
async def _jurisdiction(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, f"jurisdictions/{w.seed.jurisdiction_id}.json"))


@driver("jurisdictions.check")
async def _check(w: World, c: Caller) -> bool:
    # The partner city behind the remote jurisdiction is a mocked upstream that answers.
    w.client.app.state.federation_mounts = {  # type: ignore[attr-defined]
        PARTNER_HOST: httpx.MockTransport(lambda request: httpx.Response(200, json=[]))
    }
    response = await w.client.get(
        f"{BASE}/jurisdictions/{REMOTE}.json",
        params=w.params(c, check="true"),
        headers=w.bearer(c),
    )
    return await _ok(response)


@driver("requests.list")
async def _list(w: World, c: Caller) -> bool:
    response = await _get(w, c, "requests.json")
    assert response.status_code == 200, response.text
    return w.own_request in [item["service_request_id"] for item in response.json()]


@driver("requests.geojson")
async def _list_geojson(w: World, c: Caller) -> bool:
    response = await _get(w, c, "requests.geojson")
    assert response.status_code == 200, response.text
    return w.own_request in [feature["id"] for feature in response.json()["features"]]


@driver("requests.read_geojson")
async def _read_geojson(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, f"requests/{w.own_request}.geojson"))


@driver("requests.nearby")
async def _nearby(w: World, c: Caller) -> bool:
    # own_request is a POTHOLE at the factory's default point.
    response = await _get(
        w, c, "requests/nearby.json", service_code="POTHOLE", lat="43.6535", long="-79.3841"
    )
    assert response.status_code == 200, response.text
    return w.own_request in [item["service_request_id"] for item in response.json()]


@driver("exports.requests")
async def _export(w: World, c: Caller) -> bool:
    response = await _get(w, c, "exports/requests.ndjson")
    assert response.status_code == 200, response.text
    ids = [json.loads(line)["service_request_id"] for line in response.text.splitlines()]
    return w.own_request in ids


@driver("exports.private")
async def _export_private(w: World, c: Caller) -> bool:
    # The reporter's e-mail of app A's request is in no export, whoever asks.
    for fmt in ("csv", "geojson", "ndjson"):
        response = await _get(w, c, f"exports/requests.{fmt}", extensions="true")
        assert response.status_code == 200, response.text
        if b"reporter@example.org" in response.content:
            return True
    return False


@driver("requests.read")
async def _read(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, f"requests/{w.own_request}.json"))


@driver("requests.read_sandbox")
async def _read_sandbox(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, f"requests/{w.sandbox_request}.xml"))


@driver("requests.read_private")
async def _read_private(w: World, c: Caller) -> bool:
    response = await _get(w, c, f"requests/{w.own_request}.json", extensions="true")
    if not await _ok(response):
        return False
    [item] = response.json()
    return item.get("reporter", {}).get("email") == "reporter@example.org"


@driver("tokens.read")
async def _token(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, f"tokens/{w.token}.json"))


@driver("updates.list")
async def _updates(w: World, c: Caller) -> bool:
    now = datetime.now(UTC)
    response = await _get(
        w,
        c,
        "servicerequestupdates.json",
        start_date=(now - timedelta(days=1)).isoformat(),
        end_date=(now + timedelta(days=1)).isoformat(),
    )
    assert response.status_code == 200, response.text
    return w.own_request in [item["service_request_id"] for item in response.json()]


@driver("map.read")
async def _map(w: World, c: Caller) -> bool:
    page = await w.client.get("/map")
    summary = await w.client.get("/web/summary.json", params=w.params(c))
    return await _ok(page) and await _ok(summary)


async def _from_afar(w: World, c: Caller, path: str) -> bool:
    """GET ``path`` from a public address, with the caller's key as bearer and parameter."""
    transport = httpx.ASGITransport(app=w.client.app, client=("203.0.113.9", 40000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as far:
        response = await far.get(path, params=w.params(c), headers=w.bearer(c))
    if response.status_code < 300:
        return True
    assert response.status_code == 403, (response.status_code, response.text)
    return False


@driver("ops.health_live")
async def _health_live(w: World, c: Caller) -> bool:
    return await _from_afar(w, c, "/health/live")


@driver("ops.health_ready")
async def _health_ready(w: World, c: Caller) -> bool:
    return await _from_afar(w, c, "/health/ready")


@driver("ops.metrics")
async def _metrics(w: World, c: Caller) -> bool:
    return await _from_afar(w, c, "/metrics")


async def _report(w: World, c: Caller, path: str) -> bool:
    response = await w.client.get(path, params=w.params(c), headers=w.bearer(c))
    if response.status_code < 300:
        return True
    assert response.status_code == 403, (response.status_code, response.text)
    return False


@driver("reports.service_promise")
async def _reports_service_promise(w: World, c: Caller) -> bool:
    return await _report(w, c, f"{BASE}/reports/service-promise.json")


@driver("reports.key_metrics")
async def _reports_key_metrics(w: World, c: Caller) -> bool:
    return await _report(w, c, f"{BASE}/reports/key-metrics.csv")


@driver("reports.page")
async def _reports_page(w: World, c: Caller) -> bool:
    return await _report(w, c, "/web/reports/service-promise.html")


# --- writes --------------------------------------------------------------------------------


async def _submit(w: World, c: Caller) -> str | None:
    response = await w.client.post(
        f"{BASE}/requests.json",
        data={
            **w.params(c),
            **POTHOLE_AT_CITY_HALL,
        },
    )
    if not await _ok(response):
        return None
    return str(response.json()[0]["service_request_id"])


async def _public(w: World, request_id: str) -> bool:
    response = await w.client.get(
        f"{BASE}/requests/{request_id}.json", params={"jurisdiction_id": w.seed.jurisdiction_id}
    )
    return response.status_code == 200


@driver("requests.create")
async def _create(w: World, c: Caller) -> bool:
    created = await _submit(w, c)
    return created is not None and await _public(w, created)


@driver("requests.create_staff")
async def _create_staff(w: World, c: Caller) -> bool:
    response = await w.client.post(
        f"{BASE}/requests.json",
        data={
            **w.params(c),
            **POTHOLE_AT_CITY_HALL,
            "channel": "counter",
            "status": "fixed",
        },
    )
    if not await _ok(response):
        return False
    request_pk = int(response.json()[0]["service_request_id"])
    async with engine_of(w.client).connect() as conn:
        row = (
            await conn.execute(
                select(REQUEST.c.status, REQUEST.c.channel, REQUEST.c.first_contact_resolved).where(
                    REQUEST.c.id == request_pk
                )
            )
        ).one()
    assert (row.status, row.channel, bool(row.first_contact_resolved)) == (
        "closed",
        "counter",
        True,
    )
    return True


@driver("requests.create_sandbox")
async def _create_sandbox(w: World, c: Caller) -> bool:
    created = await _submit(w, c)
    return created is not None and not await _public(w, created)


async def _status_notes(w: World, request_id: str) -> str | None:
    async with engine_of(w.client).connect() as conn:
        return (
            await conn.execute(
                select(REQUEST.c.status_notes).where(REQUEST.c.id == int(request_id))
            )
        ).scalar()


async def _app_update(w: World, c: Caller, request_id: str) -> bool:
    note = w.unique("note")
    response = await w.client.post(
        f"{BASE}/servicerequestupdates.json",
        data={
            **w.params(c),
            "service_request_id": request_id,
            "update_id": w.unique("upd"),
            "updated_datetime": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": "IN_PROGRESS",
            "description": note,
        },
    )
    allowed = await _ok(response)
    # Refused: the request is untouched.
    assert allowed == (await _status_notes(w, request_id) == note)
    return allowed


@driver("updates.create")
async def _update_own(w: World, c: Caller) -> bool:
    return await _app_update(w, c, w.own_request)


@driver("updates.create_other")
async def _update_other(w: World, c: Caller) -> bool:
    return await _app_update(w, c, w.third_request)


@driver("updates.create_sandbox")
async def _update_sandbox(w: World, c: Caller) -> bool:
    return await _app_update(w, c, w.sandbox_request)


@driver("webhooks.create")
async def _hook_create(w: World, c: Caller) -> bool:
    url = f"{HOOK}/{w.unique('hook')}"
    response = await w.client.post(f"{BASE}/webhooks.json", data={**w.params(c), "url": url})
    return await _ok(response)


@driver("webhooks.list")
async def _hook_list(w: World, c: Caller) -> bool:
    return await _ok(await _get(w, c, "webhooks.json"))


@driver("webhooks.delete")
async def _hook_delete(w: World, c: Caller) -> bool:
    engine = engine_of(w.client)
    async with engine.connect() as conn:
        app_id = (await verify_key(conn, w.keys[Caller.SUBMIT])).app_id
    async with engine.begin() as conn:
        assert app_id is not None
        hook_id, _ = await create_subscription(conn, app_id=app_id, url=f"{HOOK}/{w.unique('h')}")
    response = await w.client.request(
        "DELETE", f"{BASE}/webhooks/{hook_id}.json", params=w.params(c)
    )
    return await _ok(response)


@driver("webhooks.create_feed")
async def _hook_create_feed(w: World, c: Caller) -> bool:
    url = f"{HOOK}/{w.unique('feed')}"
    data = {**w.params(c), "url": url, "events": "created,updated"}
    return await _ok(await w.client.post(f"{BASE}/webhooks.json", data=data))


async def _feed_of_a(w: World) -> int:
    engine = engine_of(w.client)
    async with engine.connect() as conn:
        app_id = (await verify_key(conn, w.keys[Caller.SUBMIT])).app_id
    assert app_id is not None
    spec = FeedSpec(("created",), None, None, None, None)
    async with engine.begin() as conn:
        hook_id, _ = await create_feed(
            conn, app_id=app_id, url=f"{HOOK}/{w.unique('f')}", spec=spec
        )
    return hook_id


@driver("webhooks.deliveries")
async def _hook_deliveries(w: World, c: Caller) -> bool:
    hook_id = await _feed_of_a(w)
    return await _ok(await _get(w, c, f"webhooks/{hook_id}/deliveries.json"))


@driver("webhooks.replay")
async def _hook_replay(w: World, c: Caller) -> bool:
    hook_id = await _feed_of_a(w)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    response = await w.client.post(
        f"{BASE}/webhooks/{hook_id}/replay.json", data={**w.params(c), "since": since}
    )
    return await _ok(response)


# --- admin API -----------------------------------------------------------------------------


async def _admin(
    w: World, c: Caller, method: str, path: str, body: Any = None, **params: str
) -> httpx.Response:
    return await w.client.request(
        method, f"/admin/v1/{path}", json=body, params=params or None, headers=w.bearer(c)
    )


@driver("admin.apps.list")
async def _apps_list(w: World, c: Caller) -> bool:
    response = await _admin(w, c, "GET", "apps.json")
    return await _ok(response) and w.c_app in [app["name"] for app in response.json()]


@driver("admin.apps.create")
async def _apps_create(w: World, c: Caller) -> bool:
    return await _ok(await _admin(w, c, "POST", "apps.json", {"name": w.unique("app")}))


@driver("admin.keys.list")
async def _keys_list(w: World, c: Caller) -> bool:
    response = await _admin(w, c, "GET", "keys.json")
    return await _ok(response) and w.c_key_prefix in [k["prefix"] for k in response.json()]


@driver("admin.keys.create")
async def _keys_create(w: World, c: Caller) -> bool:
    body = {"app": w.unique("minted"), "scopes": ["admin"]}
    response = await _admin(w, c, "POST", "keys.json", body)
    if not await _ok(response):
        return False
    async with engine_of(w.client).connect() as conn:
        minted = await verify_key(conn, response.json()["key"])
    return minted.jurisdiction_pk is None


async def _fresh_c_key(w: World) -> int:
    _, key_id = await _app_key(engine_of(w.client), w.c_app)
    return key_id


@driver("admin.keys.rotate")
async def _keys_rotate(w: World, c: Caller) -> bool:
    key_id = await _fresh_c_key(w)
    return await _ok(await _admin(w, c, "POST", f"keys/{key_id}/rotate.json"))


@driver("admin.keys.revoke")
async def _keys_revoke(w: World, c: Caller) -> bool:
    key_id = await _fresh_c_key(w)
    return await _ok(await _admin(w, c, "POST", f"keys/{key_id}/revoke.json"))


@driver("admin.sandbox.reset")
async def _sandbox_reset(w: World, c: Caller) -> bool:
    engine = engine_of(w.client)
    async with engine.connect() as conn:
        app_id = (
            await conn.execute(select(REQUEST.c.app_id).where(REQUEST.c.id == int(w.third_request)))
        ).scalar()
    victim = await make_request(
        engine, w.seed.jurisdiction_pk, w.seed.service_pks["POTHOLE"], app_id=app_id, sandbox=True
    )
    owner = photo_owner(w.seed.jurisdiction_pk, app_id)
    photo = f"{new_photo_prefix(sandbox=True, owner=owner)}full.jpg"
    await _photos(w).put(photo, b"\xff\xd8\xff photo", "image/jpeg")
    await _admin(w, c, "POST", "sandbox/reset.json", {})
    async with engine.connect() as conn:
        left = (await conn.execute(select(REQUEST.c.id).where(REQUEST.c.id == victim))).scalar()
    try:
        await _photos(w).get(photo)
        photo_left = True
    except ObjectNotFound:
        photo_left = False
    # The photo goes with its request, or neither does.
    assert photo_left == (left is not None), (c, left, photo_left)
    return left is None


@driver("admin.requests.update")
async def _admin_update(w: World, c: Caller) -> bool:
    note = w.unique("staff")
    response = await _admin(
        w,
        c,
        "POST",
        f"requests/{w.third_request}/updates.json",
        {"status_notes": note},
        jurisdiction_id=w.seed.jurisdiction_id,
    )
    allowed = await _ok(response)
    assert allowed == (await _status_notes(w, w.third_request) == note)
    return allowed


@driver("admin.requests.history")
async def _admin_history(w: World, c: Caller) -> bool:
    response = await _admin(
        w,
        c,
        "GET",
        f"requests/{w.third_request}/updates.json",
        jurisdiction_id=w.seed.jurisdiction_id,
    )
    return await _ok(response)


@driver("admin.requests.read")
async def _admin_request(w: World, c: Caller) -> bool:
    response = await _admin(
        w, c, "GET", f"requests/{w.own_request}.json", jurisdiction_id=w.seed.jurisdiction_id
    )
    return await _ok(response) and response.json()["service_request_id"] == w.own_request


# --- admin API: the service promise ----------------------------------------------------------


async def _division(w: World, prefix: str = "div") -> str:
    """A fresh division of the first city, made by the operator; its code."""
    code = w.unique(prefix).lower()
    async with engine_of(w.client).begin() as conn:
        await create_division(conn, w.seed.jurisdiction_pk, code, f"Division {code}")
    return code


async def _divisions(w: World) -> dict[str, str]:
    async with engine_of(w.client).connect() as conn:
        return {d.code: d.name for d in await list_divisions(conn, w.seed.jurisdiction_pk)}


async def _promise(w: World, c: Caller, method: str, path: str, body: Any = None) -> httpx.Response:
    return await _admin(w, c, method, path, body, jurisdiction_id=w.seed.jurisdiction_id)


@driver("admin.divisions.list")
async def _divisions_list(w: World, c: Caller) -> bool:
    code = await _division(w)
    response = await _promise(w, c, "GET", "divisions.json")
    return await _ok(response) and code in [d["code"] for d in response.json()]


@driver("admin.divisions.create")
async def _divisions_create(w: World, c: Caller) -> bool:
    code = w.unique("new").lower()
    body = {"code": code, "name": f"New {code}"}
    allowed = await _ok(await _promise(w, c, "POST", "divisions.json", body))
    assert allowed == (code in await _divisions(w))
    return allowed


@driver("admin.divisions.update")
async def _divisions_update(w: World, c: Caller) -> bool:
    code = await _division(w)
    name = f"Renamed {code}"
    allowed = await _ok(await _promise(w, c, "POST", f"divisions/{code}.json", {"name": name}))
    assert allowed == ((await _divisions(w))[code] == name)
    return allowed


@driver("admin.divisions.delete")
async def _divisions_delete(w: World, c: Caller) -> bool:
    code = await _division(w)
    allowed = await _ok(await _promise(w, c, "DELETE", f"divisions/{code}.json"))
    assert allowed == (code not in await _divisions(w))
    return allowed


@driver("admin.services.list")
async def _services_list(w: World, c: Caller) -> bool:
    response = await _promise(w, c, "GET", "services.json")
    return await _ok(response) and "POTHOLE" in [s["service_code"] for s in response.json()]


@driver("admin.services.move")
async def _services_move(w: World, c: Caller) -> bool:
    code = await _division(w)
    response = await _promise(w, c, "POST", "services/GRAFFITI/move.json", {"division": code})
    allowed = await _ok(response)
    async with engine_of(w.client).connect() as conn:
        moves = await list_moves(conn, w.seed.jurisdiction_pk, "GRAFFITI", limit=1)
    assert allowed == (bool(moves) and moves[0].to_code == code)
    return allowed


@driver("admin.services.levels")
async def _services_levels(w: World, c: Caller) -> bool:
    w.counter[0] += 1
    days = w.counter[0] % 300 + 1
    body = {"resolve": {"amount": days, "unit": "business_days"}}
    allowed = await _ok(await _promise(w, c, "POST", "services/GRAFFITI/levels.json", body))
    async with engine_of(w.client).connect() as conn:
        [graffiti] = [
            s for s in await read_services(conn, w.seed.jurisdiction_pk) if s.code == "GRAFFITI"
        ]
    assert allowed == (
        graffiti.service_levels
        == format_service_levels(parse_service_levels(f"resolve={days} business_days"))
    )
    return allowed


@driver("admin.moves.list")
async def _moves_list(w: World, c: Caller) -> bool:
    code = await _division(w)
    async with engine_of(w.client).begin() as conn:
        await move_service(conn, w.seed.jurisdiction_pk, "FEEDBACK", code, by="matrix")
    response = await _promise(w, c, "GET", "moves.json")
    return await _ok(response) and response.json()[0]["to_division"] == code


@driver("admin.catalog.import")
async def _catalog_import(w: World, c: Caller) -> bool:
    service = w.unique("IMPORTED")
    body = {"format": "csv", "content": f"service_code,service_name\n{service},Imported\n"}
    allowed = await _ok(await _promise(w, c, "POST", "catalog/import.json", body))
    async with engine_of(w.client).connect() as conn:
        codes = {s.code for s in await read_services(conn, w.seed.jurisdiction_pk)}
    assert allowed == (service in codes)
    return allowed


@driver("admin.calendar.read")
async def _calendar_read(w: World, c: Caller) -> bool:
    response = await _promise(w, c, "GET", "calendar.json")
    return await _ok(response) and response.json()["jurisdiction_id"] == w.seed.jurisdiction_id


# --- the matrix ----------------------------------------------------------------------------


@pytest.mark.parametrize("row", POLICY, ids=lambda row: row.name)
async def test_policy_cells(world: World, row: Operation) -> None:
    drive = DRIVERS[row.name]
    outcome = {caller: await drive(world, caller) for caller in Caller}
    expected = {caller: row.allows(caller) for caller in Caller}
    wrong = {c.value: f"got {outcome[c]}" for c in Caller if outcome[c] != expected[c]}
    assert not wrong, f"{row.name} ({row.target}): {wrong}"


def test_every_row_has_a_driver_and_names_are_unique() -> None:
    names = [row.name for row in (*POLICY, *CLI_POLICY)]
    assert len(names) == len(set(names))
    assert set(DRIVERS) == {row.name for row in POLICY}


async def test_every_documented_route_has_a_row(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    surfaces = {
        row.surface.split("?")[0].replace("{base}", BASE).replace("{format}", "{format}")
        for row in POLICY
    }
    missing = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if f"{method.upper()} {path}" not in surfaces
    ]
    assert not missing, f"routes without a row in app.domain.policy.POLICY: {missing}"


def _commands(app: typer.Typer, prefix: str = "") -> set[str]:
    names = set()
    for command in app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        names.add(f"{prefix}{name.replace('_', '-')}")
    for group in app.registered_groups:
        assert group.typer_instance is not None
        names |= _commands(group.typer_instance, f"{prefix}{group.name} ")
    return names


def test_every_cli_command_has_a_row_and_no_api_caller_reaches_it() -> None:
    assert _commands(cli) == set(CLI_ACTIONS)
    for row in CLI_POLICY:
        assert not any(row.allows(caller) for caller in Caller), row.name

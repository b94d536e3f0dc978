"""POST requests end to end: key, scope, rate limit, idempotency, validation, storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.db import autocommit_connection, write_transaction
from app.domain import idempotency
from app.domain.api_keys import KeyCache, KeyInfo, require_scope, verify_key
from app.domain.boundaries import WardIndexCache
from app.domain.catalog import CatalogCache
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.queue import enqueue
from app.domain.ratelimit import Decision, KeyRevoked, RateLimiter
from app.domain.requests import check_location, create_request, first, validate_submission
from app.errors import BadRequest, Forbidden, TooManyRequests
from app.observability import record_created
from app.settings import Settings


@dataclass(slots=True)
class Outcome:
    """What to answer a POST with."""

    status_code: int
    item: dict[str, Any]
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


async def check_key_and_limit(
    engine: Any,
    limiter: RateLimiter,
    settings: Settings,
    api_key: str | None,
    keys: KeyCache | None = None,
) -> tuple[KeyInfo, Decision]:
    """Verify a key and take a token from its bucket (429 when empty)."""
    if keys is not None:
        key = await keys.verify(api_key)
    else:
        async with engine.connect() as conn:
            key = await verify_key(conn, api_key)
    try:
        decision = await limiter.take_key(
            key.id, key.rate_limit_per_minute or settings.rate_limits.per_key_per_minute
        )
    except KeyRevoked:
        if keys is not None:
            keys.invalidate()
        raise
    if not decision.allowed:
        raise TooManyRequests(headers=decision.headers())
    return key, decision


async def submit(
    *,
    settings: Settings,
    engine: Any,
    postgis: bool,
    limiter: RateLimiter,
    catalogs: CatalogCache,
    wards: WardIndexCache,
    jurisdiction: JurisdictionInfo,
    params: Sequence[tuple[str, str]],
    path: str,
    idempotency_key: str | None,
    keys: KeyCache | None = None,
) -> Outcome:
    """Handle one POST requests call; raises Open311Error subclasses for every refusal."""
    key, decision = await check_key_and_limit(
        engine, limiter, settings, first(params, "api_key"), keys
    )
    require_scope(key, "submit")
    if key.jurisdiction_pk is not None and key.jurisdiction_pk != jurisdiction.pk:
        raise Forbidden("This api_key is not valid for this jurisdiction.")
    service_code = first(params, "service_code")
    if service_code is None:
        raise BadRequest("service_code is required.")
    forward_to: int | None = None
    if jurisdiction.kind != "local":
        # Remote or region: validated against the partner's mirror, queued for the partner.
        from app.federation.routing import plan_forward

        plan = await plan_forward(
            engine=engine,
            settings=settings,
            catalogs=catalogs,
            wards=wards,
            jurisdiction=jurisdiction,
            service_code=service_code,
            params=params,
        )
        service, submission, forward_to = plan.service, plan.submission, plan.target_pk
    else:
        service = (await catalogs.get(jurisdiction.pk)).get(service_code)
        submission = validate_submission(params, service, settings.requests)
    ward_index = None
    if not postgis and jurisdiction.ward_set_id is not None:
        ward_index = await wards.get(jurisdiction.ward_set_id)
    status = settings.requests.success_status_code
    headers = decision.headers()

    async def store(conn: Any) -> dict[str, Any]:
        item = await create_request(
            conn,
            jurisdiction=jurisdiction,
            service=service,
            sub=submission,
            key=key,
            postgis=postgis,
            ward_index=ward_index,
            tolerance_m=settings.wards.tolerance_m,
        )
        record_created(jurisdiction.code, service.code)
        return item

    if postgis and idempotency_key is None and service.type != "batch" and forward_to is None:
        # One atomic INSERT (ward lookup and outside check included): no transaction needed,
        # so the request costs a single round trip.
        async with autocommit_connection(engine) as conn:
            return Outcome(status, await store(conn), False, headers)
    async with write_transaction(engine) as conn:
        if idempotency_key is not None:
            idem = idempotency.check_key(idempotency_key)
            replay = await idempotency.claim(
                conn, key.id, idem, idempotency.fingerprint(path, params)
            )
            if replay is not None:
                return Outcome(
                    replay.status_code,
                    replay.item,
                    True,
                    {**headers, "Idempotent-Replayed": "true"},
                )
        if forward_to is not None:
            token = await enqueue(conn, jurisdiction, service.pk, submission, key, forward_to)
            item = {"token": token, "service_notice": None, "account_id": submission.account_id}
            if idempotency_key is not None:
                await idempotency.record(conn, key.id, idem, status, item)
            return Outcome(status, item, False, headers)
        if service.type == "batch":
            await check_location(
                conn,
                jurisdiction,
                submission,
                postgis=postgis,
                ward_index=ward_index,
                tolerance_m=settings.wards.tolerance_m,
            )
            token = await enqueue(conn, jurisdiction, service.pk, submission, key)
            item = {
                "token": token,
                "service_notice": service.service_notice,
                "account_id": submission.account_id,
            }
            if idempotency_key is not None:
                await idempotency.record(conn, key.id, idem, status, item)
            return Outcome(status, item, False, headers)
        item = await store(conn)
        if idempotency_key is not None:
            await idempotency.record(conn, key.id, idem, status, item)
    return Outcome(status, item, False, headers)

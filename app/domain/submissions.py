"""POST requests end to end: key, scope, rate limit, idempotency, validation, storage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain import idempotency, one_trip, ratelimit
from app.domain.api_keys import KeyCache, KeyInfo, verify_key
from app.domain.boundaries import WardIndexCache
from app.domain.catalog import CatalogCache, ServiceInfo
from app.domain.forwarding import plan_forward
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.policy import require_jurisdiction, require_scope
from app.domain.queue import enqueue
from app.domain.ratelimit import Decision, KeyRevoked, RateLimiter
from app.domain.requests import (
    Submission,
    check_location,
    create_request,
    outside_error,
    validate_submission,
)
from app.errors import BadRequest, Open311Error, TooManyRequests
from app.georeport.params import single
from app.observability import record_created
from app.settings import Settings
from app.store.engine import Direct, autocommit_connection, write_transaction


@dataclass(slots=True)
class Outcome:
    """What to answer a POST with."""

    status_code: int
    item: dict[str, Any]
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


async def _verify(engine: Any, keys: KeyCache | None, api_key: str | None) -> KeyInfo:
    if keys is not None:
        return await keys.verify(api_key)
    async with engine.connect() as conn:
        return await verify_key(conn, api_key)


@contextlib.contextmanager
def _forgetting_revoked(keys: KeyCache | None) -> Iterator[None]:
    # A key found revoked while taking its token is dropped from this process's cache too.
    try:
        yield
    except KeyRevoked:
        if keys is not None:
            keys.invalidate()
        raise


def _per_minute(key: KeyInfo, settings: Settings) -> int:
    return key.rate_limit_per_minute or settings.rate_limits.per_key_per_minute


async def _take(
    limiter: RateLimiter, settings: Settings, key: KeyInfo, keys: KeyCache | None
) -> Decision:
    """Take a token from the key's bucket (429 when empty, 403 when revoked meanwhile)."""
    with _forgetting_revoked(keys):
        decision = await limiter.take_key(key.id, _per_minute(key, settings))
    if not decision.allowed:
        raise TooManyRequests(headers=decision.headers())
    return decision


async def check_key_and_limit(
    engine: Any,
    limiter: RateLimiter,
    settings: Settings,
    api_key: str | None,
    keys: KeyCache | None = None,
) -> tuple[KeyInfo, Decision]:
    """Verify a key and take a token from its bucket (429 when empty)."""
    key = await _verify(engine, keys, api_key)
    return key, await _take(limiter, settings, key, keys)


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
    direct: Direct,
    keys: KeyCache | None = None,
) -> Outcome:
    """Handle one POST requests call; raises Open311Error subclasses for every refusal.

    The key's rate-limit token is taken first, so an exhausted key gets a 429 whatever else is
    wrong. On PostgreSQL a realtime submission defers it into the one statement that also
    claims the Idempotency-Key and stores the request (``app.domain.one_trip``): the checks
    that need no database run first, and a refusal among them takes the token before it is
    answered, so the order of answers stays the same.
    """
    key = await _verify(engine, keys, single(params, "api_key"))
    in_one_trip = postgis and jurisdiction.kind == "local"
    decision: Decision | None = None
    if not in_one_trip:
        decision = await _take(limiter, settings, key, keys)
    try:
        require_scope(key, "submit")
        require_jurisdiction(key, jurisdiction.pk)
        service_code = single(params, "service_code")
        if service_code is None:
            raise BadRequest("service_code is required.")
        forward_to: int | None = None
        if jurisdiction.kind != "local":
            # Remote or region: validated against the partner's mirror, queued for the partner.
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
        idem = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    except Open311Error:
        if decision is None:
            await _take(limiter, settings, key, keys)
        raise
    status = settings.requests.success_status_code
    if in_one_trip and service.type == "realtime":
        attempt = await _submit_in_one_trip(
            direct,
            settings,
            key,
            keys,
            jurisdiction,
            service,
            submission,
            path,
            params,
            idem,
        )
        assert attempt.tokens is not None  # a refused token was raised as 429/403  # noqa: S101 - invariant, not an input check
        decision = ratelimit.decision_for(attempt.tokens, _per_minute(key, settings))
        if attempt.service_request_id is not None:
            record_created(jurisdiction.code, service.code)
            item = {
                "service_request_id": attempt.service_request_id,
                "service_notice": service.service_notice,
                "account_id": submission.account_id,
            }
            return Outcome(status, item, False, decision.headers())
        if attempt.outside:
            raise outside_error(jurisdiction)
        # The Idempotency-Key was claimed by an earlier request: replayed below.
        assert idem is not None  # noqa: S101 - invariant, not an input check
        assert not attempt.claimed  # noqa: S101 - invariant, not an input check
    elif decision is None:
        decision = await _take(limiter, settings, key, keys)
    ward_index = None
    if not postgis and jurisdiction.ward_set_id is not None:
        ward_index = await wards.get(jurisdiction.ward_set_id)
    assert decision is not None  # noqa: S101 - invariant, not an input check
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
        if idem is not None:
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
            if idem is not None:
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
            if idem is not None:
                await idempotency.record(conn, key.id, idem, status, item)
            return Outcome(status, item, False, headers)
        item = await store(conn)
        if idem is not None:
            await idempotency.record(conn, key.id, idem, status, item)
    return Outcome(status, item, False, headers)


async def _submit_in_one_trip(
    direct: Direct,
    settings: Settings,
    key: KeyInfo,
    keys: KeyCache | None,
    jurisdiction: JurisdictionInfo,
    service: ServiceInfo,
    submission: Submission,
    path: str,
    params: Sequence[tuple[str, str]],
    idem: str | None,
) -> one_trip.Attempt:
    """Run the one statement; raise what a refused token means (429, or 403 if revoked)."""
    per_minute = _per_minute(key, settings)
    claim = None
    if idem is not None:
        status = settings.requests.success_status_code
        claim = (idem, idempotency.fingerprint(path, params), status)
    attempt = await one_trip.submit_realtime(
        direct,
        jurisdiction=jurisdiction,
        service=service,
        sub=submission,
        key=key,
        per_minute=per_minute,
        tolerance_m=settings.wards.tolerance_m,
        idempotency=claim,
    )
    if attempt.tokens is None:
        with _forgetting_revoked(keys):
            refused = await ratelimit.refusal(direct, key.id, per_minute)
        raise TooManyRequests(headers=refused.headers())
    return attempt

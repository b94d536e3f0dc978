"""POST requests end to end: key, scope, rate limit, idempotency, validation, storage.

A submission takes one of two write paths, both through the store:

- a realtime service of a local jurisdiction: ``Store.create_request``, the request and its
  Idempotency-Key claim in one call (on PostgreSQL one statement that also takes the key's
  rate-limit token; on SQLite one hop on the writer connection);
- everything else (batch and blackbox services, partner cities, a replayed Idempotency-Key):
  one transaction on ``Store.transaction`` (claim or replay the key, then queue or store).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.domain import idempotency, ratelimit
from app.domain.api_keys import KeyCache, KeyInfo, verify_key
from app.domain.boundaries import WardIndexCache
from app.domain.catalog import CatalogCache, ServiceInfo
from app.domain.forwarding import plan_forward
from app.domain.geocoding import Locator
from app.domain.jurisdictions import JurisdictionInfo
from app.domain.media import NOTHING, PhotoIntake, Uploaded, photo_owner
from app.domain.policy import require_jurisdiction, require_scope
from app.domain.queue import enqueue
from app.domain.ratelimit import Decision, KeyRevoked, RateLimiter
from app.domain.requests import (
    Submission,
    check_location,
    create_request,
    new_request,
    outside_error,
    validate_submission,
)
from app.errors import BadRequest, Open311Error, TooManyRequests
from app.georeport.params import single
from app.models.requests import IdempotencyClaim
from app.observability import record_created
from app.settings import Settings
from app.store.base import TokenBucket
from app.store.engine import read_connection
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from app.store.base import Store


@dataclass(slots=True)
class Outcome:
    """What to answer a POST with."""

    status_code: int
    item: dict[str, Any]
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


async def _verify(engine: AsyncEngine, keys: KeyCache | None, api_key: str | None) -> KeyInfo:
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
    engine: AsyncEngine,
    limiter: RateLimiter,
    settings: Settings,
    api_key: str | None,
    keys: KeyCache | None = None,
) -> tuple[KeyInfo, Decision]:
    """Verify a key and take a token from its bucket (429 when empty)."""
    key = await _verify(engine, keys, api_key)
    return key, await _take(limiter, settings, key, keys)


def _realtime_write(plan: _Plan) -> bool:
    """Whether a submission is stored by the store's realtime write (``create_request``): a
    local realtime service, and no staff intake (whose status or expected datetime also
    writes the request's history: the transaction path)."""
    return (
        plan.partner_pk is None
        and plan.service.type == "realtime"
        and not plan.submission.staff_intake
    )


@dataclass(frozen=True, slots=True)
class PostForm:
    """One POST requests call as received: its parameters (body, then query string), its path,
    its Idempotency-Key header, its photos (``media`` file parts, bounded by the parser) and
    the public base URL their URLs start with."""

    params: Sequence[tuple[str, str]]
    path: str
    idempotency_key: str | None = None
    photos: Sequence[bytes] = ()
    public_base: str = ""

    def fingerprint(self) -> str:
        """What the call asks for, as an Idempotency-Key record keeps it (its photos by
        their digests)."""
        params = list(self.params)
        params += [("\x00media", hashlib.sha256(data).hexdigest()) for data in self.photos]
        return idempotency.fingerprint(self.path, params)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A valid submission and where it goes."""

    service: ServiceInfo
    submission: Submission
    partner_pk: int | None  # the partner city it is queued for (remote or region jurisdiction)
    idempotency_key: str | None  # the checked header


@dataclass(frozen=True, slots=True)
class Submissions:
    """POST requests: everything a submission needs, shared by every call."""

    settings: Settings
    store: Store
    limiter: RateLimiter
    catalogs: CatalogCache
    wards: WardIndexCache
    keys: KeyCache | None = None
    photos: PhotoIntake | None = None
    locator: Locator | None = None

    async def submit(self, jurisdiction: JurisdictionInfo, form: PostForm) -> Outcome:
        """Handle one POST requests call; raises Open311Error subclasses for every refusal.

        The key's rate-limit token is taken first, so an exhausted key gets a 429 whatever
        else is wrong. Where the store takes it with the realtime write (one statement), the
        checks that need no database run first, and a refusal among them takes the token
        before it is answered, so the order of answers stays the same.
        """
        api_key = single(form.params, "api_key")
        cached = False
        if self.keys is not None:
            key, cached = await self.keys.verify_for_write(api_key)
        else:
            key = await _verify(self.store.engine, None, api_key)
        # With photos the token comes first: an exhausted key never gets an image decoded.
        with_write = (
            self.store.takes_rate_limit_token and jurisdiction.kind == "local" and not form.photos
        )
        decision = None if with_write else await self._take(key)
        try:
            plan = await self._plan(key, jurisdiction, form)
        except Open311Error:
            if decision is None:
                await self._take(key)
            raise
        locator = self.locator
        if cached and self.keys is not None and not self._write_checks_key(plan, form):
            # A cached verification holds only for the realtime write, which checks the key
            # itself; photos, an outside geocoder or any other write need it checked now.
            key = await self.keys.verify(api_key)
        if locator is not None and plan.partner_pk is None and locator.wants(plan.submission):
            if decision is None and locator.remote:
                # An outside service is called: the key's token first (429 before any call).
                decision = await self._take(key)
            await locator.complete(jurisdiction, plan.submission)
        uploaded = await self._store_photos(key, jurisdiction, form, plan)
        if self.photos is None:
            return await self._write(key, jurisdiction, form, plan, decision)
        async with self.photos.kept_unless_failed(uploaded):
            outcome = await self._write(key, jurisdiction, form, plan, decision)
        if outcome.replayed:
            # The first call's answer is replayed: its photos are the ones that count.
            await self.photos.discard(uploaded)
        return outcome

    def _write_checks_key(self, plan: _Plan, form: PostForm) -> bool:
        """Whether this POST's only work is the realtime write, and that write checks the
        key is still active (``Store.checks_key_on_write``)."""
        return (
            self.store.checks_key_on_write
            and _realtime_write(plan)
            and not form.photos
            and (self.locator is None or not self.locator.remote)
        )

    async def _store_photos(
        self, key: KeyInfo, jurisdiction: JurisdictionInfo, form: PostForm, plan: _Plan
    ) -> Uploaded:
        """Check and store the photos of a valid submission; their URLs come first in its
        media_urls (media_url is the first photo)."""
        if not form.photos:
            return NOTHING
        if self.photos is None:  # the parser refuses file parts when photos are off
            raise BadRequest("Photos are switched off on this server.")
        sub = plan.submission
        most = self.settings.requests.max_media_urls
        if len(form.photos) + len(sub.media_urls) > most:
            raise BadRequest(f"At most {most} media (photos and media_url values) are accepted.")
        uploaded = await self.photos.accept(
            form.photos,
            sandbox=key.sandbox,
            owner=photo_owner(jurisdiction.pk, key.app_id),
            public_base=form.public_base,
        )
        sub.media_urls = uploaded.urls + [u for u in sub.media_urls if u not in uploaded.urls]
        sub.photos = uploaded.records
        return uploaded

    async def _write(
        self,
        key: KeyInfo,
        jurisdiction: JurisdictionInfo,
        form: PostForm,
        plan: _Plan,
        decision: Decision | None,
    ) -> Outcome:
        # A store that takes the token with the write gets the one-statement path only while
        # the token is still to take (photos and HTTP geocoding take it first: the
        # transactional path then, whose cost their own work outweighs many times over).
        one_call = decision is None or not self.store.takes_rate_limit_token
        if _realtime_write(plan) and one_call:
            outcome, decision = await self._create_realtime(key, jurisdiction, form, plan, decision)
            if outcome is not None:
                return outcome
            # The Idempotency-Key has a record already: replayed (or reclaimed) below.
        if decision is None:
            decision = await self._take(key)
        return await self._in_transaction(key, jurisdiction, form, plan, decision.headers())

    async def _take(self, key: KeyInfo) -> Decision:
        return await _take(self.limiter, self.settings, key, self.keys)

    async def _plan(self, key: KeyInfo, jurisdiction: JurisdictionInfo, form: PostForm) -> _Plan:
        """Scope, jurisdiction, the service and the validated submission (400/403/404)."""
        require_scope(key, "submit")
        require_jurisdiction(key, jurisdiction.pk)
        service_code = single(form.params, "service_code")
        if service_code is None:
            raise BadRequest("service_code is required.")
        partner_pk = None
        if jurisdiction.kind != "local":
            # Remote or region: validated against the partner's mirror, queued for the partner.
            forward = await plan_forward(
                engine=self.store.engine,
                settings=self.settings,
                catalogs=self.catalogs,
                wards=self.wards,
                jurisdiction=jurisdiction,
                service_code=service_code,
                params=form.params,
            )
            service, submission, partner_pk = forward.service, forward.submission, forward.target_pk
        else:
            service = (await self.catalogs.get(jurisdiction.pk)).get(service_code)
            submission = validate_submission(
                form.params, service, self.settings.requests, staff=key.can("staff")
            )
        idem = form.idempotency_key
        checked = idempotency.check_key(idem) if idem is not None else None
        return _Plan(service, submission, partner_pk, checked)

    async def _create_realtime(
        self,
        key: KeyInfo,
        jurisdiction: JurisdictionInfo,
        form: PostForm,
        plan: _Plan,
        decision: Decision | None,
    ) -> tuple[Outcome | None, Decision]:
        """The request and its Idempotency-Key claim in one store call (with the rate-limit
        token when ``decision`` is None); no outcome when the key has a record already."""
        settings, service = self.settings, plan.service
        status = settings.requests.success_status_code
        per_minute = _per_minute(key, settings)
        claim = None
        if plan.idempotency_key is not None:
            claim = IdempotencyClaim(key.id, plan.idempotency_key, form.fingerprint(), status)
        new = new_request(
            jurisdiction, service, plan.submission, key, utcnow(), settings.wards.tolerance_m
        )
        created = await self.store.create_request(
            new,
            claim=claim,
            bucket=TokenBucket(key.id, per_minute) if decision is None else None,
            wards=self.wards,
        )
        if created.revoked:
            with _forgetting_revoked(self.keys):
                raise KeyRevoked()
        if created.refused:
            with _forgetting_revoked(self.keys):
                async with read_connection(self.store.engine) as conn:
                    refused = await ratelimit.refusal(conn, key.id, per_minute)
            raise TooManyRequests(headers=refused.headers())
        if decision is None:
            assert created.tokens is not None  # noqa: S101 - the store took one
            decision = ratelimit.decision_for(created.tokens, per_minute)
        if created.request_pk is not None:
            record_created(jurisdiction.code, service.code)
            item = {
                "service_request_id": str(created.request_pk),
                "service_notice": service.service_notice,
                "account_id": plan.submission.account_id,
            }
            return Outcome(status, item, False, decision.headers()), decision
        if created.outside:
            raise outside_error(jurisdiction)
        assert created.claimed_before  # noqa: S101 - invariant, not an input check
        return None, decision

    async def _in_transaction(
        self,
        key: KeyInfo,
        jurisdiction: JurisdictionInfo,
        form: PostForm,
        plan: _Plan,
        headers: dict[str, str],
    ) -> Outcome:
        """Claim or replay the Idempotency-Key, then queue (partner city, batch service) or
        store the submission, in one transaction (one statement when that is all it is)."""
        settings, service, submission = self.settings, plan.service, plan.submission
        status = settings.requests.success_status_code
        idem = plan.idempotency_key
        queued = plan.partner_pk is not None or service.type == "batch"
        # A staff intake's history entry is a second statement: a real transaction.
        single = idem is None and not queued and not submission.staff_intake
        async with self.store.transaction(one_statement=single) as conn:
            if idem is not None:
                replay = await idempotency.claim(conn, key.id, idem, form.fingerprint())
                if replay is not None:
                    replayed = {**headers, "Idempotent-Replayed": "true"}
                    return Outcome(replay.status_code, replay.item, True, replayed)
            if plan.partner_pk is not None:
                token = await enqueue(
                    conn, jurisdiction, service.pk, submission, key, plan.partner_pk
                )
                item = {"token": token, "service_notice": None, "account_id": submission.account_id}
            elif service.type == "batch":
                await check_location(
                    conn,
                    jurisdiction,
                    submission,
                    wards=self.wards,
                    tolerance_m=settings.wards.tolerance_m,
                )
                token = await enqueue(conn, jurisdiction, service.pk, submission, key)
                item = {
                    "token": token,
                    "service_notice": service.service_notice,
                    "account_id": submission.account_id,
                }
            else:
                item = await create_request(
                    conn,
                    jurisdiction=jurisdiction,
                    service=service,
                    sub=submission,
                    key=key,
                    wards=self.wards,
                    tolerance_m=settings.wards.tolerance_m,
                )
                record_created(jurisdiction.code, service.code)
            if idem is not None:
                await idempotency.record(conn, key.id, idem, status, item)
        return Outcome(status, item, False, headers)

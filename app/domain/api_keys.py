"""Client apps and API keys: random, shown once, stored as a SHA-256 hash with a short prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.domain.boundaries import jurisdiction_pk
from app.domain.channels import parse_channel
from app.domain.media import clear_sandbox_photos
from app.errors import BadRequest, Forbidden, InvalidApiKey, NotFound
from app.store import keys as store
from app.store.keys import ApiKeyListing as ApiKeyListing

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from app.media.objects import ObjectStore
    from app.store.base import Store

PREFIX_LENGTH = 8
SCOPES = ("submit", "update", "staff", "read_private", "admin", "reports")


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key_text() -> str:
    """A fresh key: an 8-character prefix, a dot and 192 random bits."""
    return f"{secrets.token_hex(PREFIX_LENGTH // 2)}.{secrets.token_urlsafe(24)}"


def parse_scopes(scopes: str | Sequence[str]) -> tuple[str, ...]:
    """Validated scopes, in canonical order."""
    items = scopes.replace(",", " ").split() if isinstance(scopes, str) else list(scopes)
    unknown = [s for s in items if s not in SCOPES]
    if unknown:
        raise BadRequest(f"Unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}.")
    if not items:
        raise BadRequest("A key needs at least one scope.")
    return tuple(s for s in SCOPES if s in items)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A verified key and what it may do."""

    id: int
    app_id: int | None
    app_name: str | None
    scopes: frozenset[str]
    jurisdiction_pk: int | None
    sandbox: bool
    rate_limit_per_minute: int | None
    # The intake channel of what it files (app.domain.channels): its own, else its app's.
    channel: str = "api"

    def can(self, scope: str) -> bool:
        """True when the key has the scope."""
        return scope in self.scopes


async def get_or_create_app(
    conn: AsyncConnection, name: str, contact: str | None = None, channel: str | None = None
) -> int:
    """The id of the app with this name, created when missing (``contact``, ``channel``:
    set when given)."""
    app_channel = None if channel is None else parse_channel(channel).value
    found = await store.find_app(conn, name)
    if found is not None:
        if contact:
            await store.set_app_contact(conn, found, contact)
        if app_channel is not None:
            await store.set_app_channel(conn, found, app_channel)
        return found
    return await store.insert_app(conn, name, contact, app_channel or "api")


async def app_channel(conn: AsyncConnection, app_id: int) -> str:
    """An app's intake channel."""
    return await store.app_channel(conn, app_id)


async def app_within(conn: AsyncConnection, name: str, jurisdiction: int) -> bool:
    """True when the app ``name`` is new or every key of it is restricted to
    ``jurisdiction`` (what an admin restricted to that jurisdiction may change)."""
    return not await store.app_has_keys_outside(conn, name, jurisdiction)


async def list_apps(conn: AsyncConnection, within: int | None = None) -> list[dict[str, object]]:
    """Every app with its number of active keys (``within``: only apps with a key restricted
    to that jurisdiction and none outside it)."""
    return [
        {
            "id": a.id,
            "name": a.name,
            "contact": a.contact,
            "channel": a.channel,
            "created_at": a.created_at,
            "active_keys": a.active_keys,
        }
        for a in await store.list_apps(conn, within)
    ]


async def _jurisdiction_pk(conn: AsyncConnection, code: str | None) -> int | None:
    return await jurisdiction_pk(conn, code) if code else None


async def create_key(
    conn: AsyncConnection,
    name: str,
    key: str | None = None,
    *,
    app: str | None = None,
    contact: str | None = None,
    scopes: str | Sequence[str] = "submit",
    jurisdiction: str | None = None,
    jurisdiction_pk: int | None = None,
    sandbox: bool = False,
    rate_limit_per_minute: int | None = None,
    channel: str | None = None,
) -> tuple[str, int]:
    """Store a new key (random unless given) for an app (created when missing); (key, id).

    The key is restricted to the jurisdiction named by code (``jurisdiction``) or primary key
    (``jurisdiction_pk``), if any; ``channel``: its own intake channel (None: its app's)."""
    key = key or new_key_text()
    if len(key) < 8:
        raise BadRequest("An API key must be at least 8 characters long.")
    scope_list = parse_scopes(scopes)
    if sandbox and "admin" in scope_list:
        # A policy refusal (see app.domain.policy: sandbox keys never use the admin API).
        raise Forbidden("A sandbox key cannot have the admin scope.")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise BadRequest("rate_limit_per_minute must be a positive number.")
    key_channel = None if channel is None else parse_channel(channel).value
    app_id = await get_or_create_app(conn, app or name, contact)
    rights = store.KeyRights(
        name=name,
        app_id=app_id,
        scopes=" ".join(scope_list),
        jurisdiction_id=(
            jurisdiction_pk
            if jurisdiction_pk is not None
            else await _jurisdiction_pk(conn, jurisdiction)
        ),
        sandbox=sandbox,
        rate_limit_per_minute=rate_limit_per_minute,
        channel=key_channel,
    )
    key_id = await store.insert_key(
        conn, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key), rights=rights
    )
    return key, key_id


async def ensure_key(
    conn: AsyncConnection, name: str, key: str, scopes: Sequence[str] | None = None
) -> bool:
    """Store this key (app ``name``, the default scope unless ``scopes``) unless it is stored
    already; True when created."""
    if await store.key_hash_exists(conn, hash_key(key)):
        return False
    if scopes is None:
        await create_key(conn, name, key)
    else:
        await create_key(conn, name, key, scopes=scopes)
    return True


async def rotate_key(
    conn: AsyncConnection, key_id: int, within: int | None = None
) -> tuple[str, int]:
    """Replace an active key by a new one with the same app and rights; (new key, new id).

    ``within``: only a key restricted to that jurisdiction (404 otherwise)."""
    rights = await store.active_key_rights(conn, key_id, within)
    if rights is None:
        raise NotFound(f"No active key {key_id}.")
    key = new_key_text()
    new_id = await store.insert_key(
        conn, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key), rights=rights
    )
    await revoke_key(conn, key_id)
    return key, new_id


async def list_keys(conn: AsyncConnection, within: int | None = None) -> list[ApiKeyListing]:
    """Every key, oldest first (``within``: only keys restricted to that jurisdiction)."""
    return await store.list_keys(conn, within)


async def revoke_key(conn: AsyncConnection, key_id: int, within: int | None = None) -> bool:
    """Revoke a key; False when there is no such active key (``within``: restricted to that
    jurisdiction)."""
    return await store.revoke_key(conn, key_id, within)


def _checked(key: str | None) -> str:
    """A key that may be looked up (403 otherwise)."""
    # No stored key holds a NUL (PostgreSQL text cannot), and one must not reach the query.
    if not key or len(key) < PREFIX_LENGTH or len(key) > 256 or "\x00" in key:
        raise InvalidApiKey()
    return key


def _match(digest: str, found: Sequence[store.KeyCandidate]) -> KeyInfo:
    """The candidate whose hash is ``digest``, compared in constant time (403 when none)."""
    info: KeyInfo | None = None
    for candidate in found:
        # Every candidate is compared, so the time taken does not depend on which matched.
        if hmac.compare_digest(candidate.key_hash, digest):
            info = KeyInfo(
                id=candidate.id,
                app_id=candidate.app_id,
                app_name=candidate.app_name,
                scopes=frozenset(candidate.scopes.split()),
                jurisdiction_pk=candidate.jurisdiction_id,
                sandbox=candidate.sandbox,
                rate_limit_per_minute=candidate.rate_limit_per_minute,
                channel=candidate.channel,
            )
    if info is None:
        raise InvalidApiKey("The api_key is not valid (unknown or revoked).")
    return info


async def verify_key(conn: AsyncConnection, key: str | None) -> KeyInfo:
    """The verified, unrevoked key, or 403 (compared in constant time)."""
    key = _checked(key)
    return _match(hash_key(key), await store.key_candidates(conn, key[:PREFIX_LENGTH]))


async def reset_sandbox(
    conn: AsyncConnection,
    app: str | None = None,
    within: int | None = None,
    *,
    photos: ObjectStore | None = None,
) -> int:
    """Delete sandbox requests (of one app, or all; ``within``: of that jurisdiction only)
    and, given the object store, their photos; how many requests.

    The photos go after the rows, in the same transaction: a store that fails rolls the
    rows back (the reset can be run again)."""
    app_id = None
    if app is not None:
        app_id = await store.find_app(conn, app)
        if app_id is None:
            raise NotFound(f"No app {app!r}.")
    deleted = await store.delete_sandbox_requests(conn, app_id=app_id, within=within)
    if photos is not None:
        await clear_sandbox_photos(conn, photos, app_id=app_id, within=within)
    return deleted


class KeyCache:
    """Verified keys, remembered in process for ``ttl`` seconds (saves a query per call).

    Only successful verifications are cached, by the key's hash. Revocation still takes
    effect at once: the per-key rate-limit statement checks the key is active, and so does
    the realtime write of a POST.
    """

    def __init__(self, keys: Store, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self._store = keys
        # Every call, where key buckets are shared in the database (PostgreSQL): there every
        # keyed call's rate-limit statement re-checks that the key is active. Elsewhere (the
        # embedded default) only a POST's (``verify_for_write``), whose realtime write checks
        # the key in its transaction; other calls verify each time (one hop on a reader).
        self._ttl = ttl if keys.takes_rate_limit_token else 0.0
        self._write_ttl = ttl if keys.checks_key_on_write else self._ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, KeyInfo]] = {}

    def invalidate(self) -> None:
        """Forget every cached key."""
        self._entries.clear()

    async def verify(self, key: str | None) -> KeyInfo:
        """The verified key (403 when invalid), from the cache when fresh."""
        info, _ = await self._verify(key, self._ttl)
        return info

    async def verify_for_write(self, key: str | None) -> tuple[KeyInfo, bool]:
        """The verified key of a POST, and whether it came from the cache (then only a write
        that checks the key itself, ``Store.checks_key_on_write``, may rely on it: any other
        path calls ``verify`` again)."""
        return await self._verify(key, self._write_ttl)

    async def _verify(self, key: str | None, ttl: float) -> tuple[KeyInfo, bool]:
        key = _checked(key)
        digest = hash_key(key)
        if ttl:
            entry = self._entries.get(digest)
            if entry is not None and time.monotonic() < entry[0]:
                return entry[1], True
        info = _match(digest, await self._store.key_candidates(key[:PREFIX_LENGTH]))
        if ttl:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + ttl, info)
        return info, False

"""Intake channels and first-contact resolution.

**Channel.** Every request records how it came in, one of ``app.georeport.models.Channel``
(phone, web, mobile_app, email, counter, kiosk, social_media, partner, api). It comes from the
key that files it: a key's own channel, else its app's, else ``api`` (set with the admin API
or ``open311 keys create --channel``). A key with the ``staff`` scope (a city's contact
centre, counter or kiosk software) may name the channel of each intake instead (the POST
``channel`` field); any other key naming one is refused (403).

**First-contact resolution.** A request is resolved at first contact when it is closed
during the contact that filed it:

* a staff key files it already closed (the POST ``status`` field; only staff keys may), or
* the first change that closes it is made by the same API key that filed it, that key has
  the ``staff`` or ``admin`` scope, and the change is timed at most
  ``service_promise.first_contact_minutes`` (default 30) after the request was made.

Reopening a request clears it (the contact did not resolve it after all). Both facts appear
in ``extensions=true`` and in the admin API (``GET /admin/v1/requests/{id}.json``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.errors import Forbidden, InvalidParameter
from app.georeport.models import CHANNELS, Channel

if TYPE_CHECKING:
    from app.domain.api_keys import KeyInfo

# Longest channel text read (checked before any other work).
MAX_CHANNEL_TEXT = 32
DEFAULT_CHANNEL = Channel.api


def parse_channel(text: str) -> Channel:
    """A channel from text in any case, ``-`` or a space for ``_`` (``Mobile app``); 400 else."""
    if len(text) > MAX_CHANNEL_TEXT:
        raise InvalidParameter(f"channel is longer than {MAX_CHANNEL_TEXT} characters.")
    normal = text.strip().lower().replace("-", "_").replace(" ", "_")
    if normal not in CHANNELS:
        raise InvalidParameter(f"channel {text!r} is not one of {', '.join(CHANNELS)}.")
    return Channel(normal)


def optional_channel(text: str | None) -> Channel | None:
    """A channel, or None for absent or blank text."""
    return None if text is None or not text.strip() else parse_channel(text)


def key_channel(key: KeyInfo | None) -> Channel:
    """The channel a key files requests through (its own, else its app's, else api)."""
    if key is None:
        return DEFAULT_CHANNEL
    return Channel(key.channel) if key.channel in CHANNELS else DEFAULT_CHANNEL


def intake_channel(key: KeyInfo | None, sent: str | None) -> Channel:
    """The channel of a new request: the one a staff key names (POST ``channel``), else the
    key's. A key without the ``staff`` scope naming one is refused (403)."""
    if sent is None or not sent.strip():
        return key_channel(key)
    if key is None or not key.can("staff"):
        raise Forbidden("Only a key with the staff scope may name the intake channel.")
    return parse_channel(sent)


def resolved_at_intake(key: KeyInfo | None, status: str | None) -> bool:
    """Whether a new request filed with core ``status`` (None: open) is resolved at first
    contact; filing a request already closed is for staff keys only (403 otherwise)."""
    if status is None or status == "open":
        return False
    if key is None or not key.can("staff"):
        raise Forbidden("Only a key with the staff scope may file a request already closed.")
    return status == "closed"


def resolved_on_update(
    *,
    closing: bool,
    filed_by_key: int | None,
    requested_at: datetime,
    actor: KeyInfo | None,
    at: datetime,
    window: timedelta,
) -> bool:
    """Whether a change closing a request resolves it at first contact (module docstring):
    the same staff or admin key that filed it, within ``window`` of the request."""
    return (
        closing
        and actor is not None
        and filed_by_key is not None
        and filed_by_key == actor.id
        and (actor.can("staff") or actor.can("admin"))
        and timedelta(0) <= at - requested_at <= window
    )


def extension_fields(channel: str | None, first_contact_resolved: bool) -> dict[str, Any]:
    """The channel fields of a request's ``extended_attributes`` (read path)."""
    return {
        "channel": channel if channel in CHANNELS else None,
        "first_contact_resolution": bool(first_contact_resolved),
    }

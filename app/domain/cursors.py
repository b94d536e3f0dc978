"""Opaque keyset cursors: the position after which the next page of a list starts.

A cursor names the sort key of the last item of a page, ``(kind, timestamp, id)``, as
URL-safe base64 of a small JSON object. ``kind`` says which list and order it belongs to, so
a cursor of one list is refused by another. GET requests uses kinds ``r`` (by requested time)
and ``u`` (by update time), the updates feed kind ``f``.

Cursors are not signed: a caller who forges one only moves its own position in a list it may
read anyway (every page applies the same visibility rules). Every value is checked to be one
the database takes, so a forged cursor is a 400, never a database error.
"""

from __future__ import annotations

import base64
from collections.abc import Container
from datetime import UTC, datetime

import orjson

# Ids are PostgreSQL bigints: a cursor naming a larger one is not one of ours.
ID_MAX = 2**63 - 1
MAX_LENGTH = 200


def encode(kind: str, stamp: datetime, pk: int) -> str:
    """The opaque cursor of the position ``(stamp, pk)`` in list ``kind``."""
    raw = orjson.dumps({"k": kind, "t": stamp.isoformat(), "i": pk})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(text: str, kinds: Container[str]) -> tuple[str, datetime, int]:
    """``(kind, stamp, pk)`` of a cursor of one of ``kinds`` (ValueError when it is not one
    of ours: malformed, too long, of another list, a naive or out-of-range time, an id
    outside 0..2**63-1)."""
    if len(text) > MAX_LENGTH:
        raise ValueError(text[:MAX_LENGTH])
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(raw)
        kind, stamp, pk = data["k"], datetime.fromisoformat(data["t"]), data["i"]
        if stamp.tzinfo is not None:
            stamp.astimezone(UTC)  # OverflowError near year 1 or 9999
    except (ValueError, KeyError, TypeError, OverflowError, orjson.JSONDecodeError) as exc:
        raise ValueError(text) from exc
    if type(kind) is not str or kind not in kinds or stamp.tzinfo is None:
        raise ValueError(text)
    if type(pk) is not int or not 0 <= pk <= ID_MAX:
        raise ValueError(text)
    return kind, stamp, pk

"""Errors of app.media (pure Python, no FastAPI import).

InvalidMedia (app.errors.BadRequest, 400): an uploaded file is refused; ``reason`` says why
ObjectStoreError
├── ObjectStoreUnavailable: the store failed: unreachable, refused, misconfigured (503)
├── ObjectNotFound: no object under that key (404 where media are served)
└── InvalidObjectKey: a key or prefix outside the server's key grammar (a 404 too: such a
    key was never handed out)
"""

from __future__ import annotations

from enum import StrEnum

from app.errors import BadRequest


class Rejection(StrEnum):
    """Why an upload was refused."""

    TOO_MANY_FILES = "too_many_files"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    UNSUPPORTED_TYPE = "unsupported_type"
    TOO_MANY_PIXELS = "too_many_pixels"
    UNDECODABLE = "undecodable"


class InvalidMedia(BadRequest):
    """400: an uploaded media file is not an accepted photo within the limits."""

    def __init__(self, reason: Rejection, description: str) -> None:
        self.reason = reason
        super().__init__(description)


class ObjectStoreError(Exception):
    """A failure of the object store."""


class ObjectStoreUnavailable(ObjectStoreError):
    """The object store could not do what was asked (unreachable, refused, misconfigured)."""


class ObjectNotFound(ObjectStoreError):
    """No object is stored under this key."""


class InvalidObjectKey(ObjectStoreError, ValueError):
    """A key or prefix outside the server's key grammar (never one the server made)."""

"""What a database exception means, for callers that must not know the drivers' exception
classes (``app.cli_errors`` explains failures of the ``open311`` command with these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import asyncpg
from sqlalchemy import exc as sa

# Failures to reach or log in to the database (a closed port, a wrong password, no such
# database, a server starting up or gone).
_CONNECT: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidPasswordError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


@dataclass(frozen=True, slots=True)
class DatabaseFault:
    """A failure of the database: ``connect`` (it cannot be reached) or ``use`` (it answered
    with an error: not running properly, not migrated, ...). ``cause`` is the exception whose
    text says what went wrong."""

    kind: Literal["connect", "use"]
    cause: BaseException


def is_bad_url(exc: BaseException) -> bool:
    """True when the exception refuses a database URL (SQLAlchemy cannot parse or use it)."""
    return isinstance(exc, sa.ArgumentError)


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (SQLAlchemy's ``orig``) and what caused it."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return seen


def database_fault(exc: BaseException) -> DatabaseFault | None:
    """The database failure behind an exception, if it is one."""
    chain = exception_chain(exc)
    for item in chain:
        if isinstance(item, _CONNECT) or (isinstance(item, OSError) and item.filename is None):
            return DatabaseFault("connect", item)
    if isinstance(exc, sa.DBAPIError | sa.OperationalError) or any(
        isinstance(item, asyncpg.PostgresError) for item in chain
    ):
        return DatabaseFault("use", getattr(exc, "orig", None) or exc)
    return None

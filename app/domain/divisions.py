"""Divisions (agencies) of a jurisdiction, and services moved between them.

Each service belongs to at most one division of its jurisdiction; the division's name is the
service's ``agency_responsible`` (copied into each request at intake). A division has a short
``code`` operators type (``pfr``: lower-case letters, digits, ``-`` and ``_``) and a ``name``
(``Parks, Forestry & Recreation``), each unique in the jurisdiction. A division holding
services cannot be removed (move them first). Every move of a service is recorded: who, when,
from which division to which, and why if given (``open311 services moves``,
``GET /admin/v1/moves.json``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.domain.records import extend
from app.errors import Conflict, InvalidParameter, NotFound, ServiceNotFound
from app.store import catalog as catalog_store
from app.store import divisions as store
from app.store.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from app.domain.api_keys import KeyInfo

CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_CODE = 64
MAX_NAME = 255
MAX_CONTACT = 1000
MAX_REASON = 1000
MAX_MOVES = 1000
_CONTROL = re.compile("[\x00-\x1f\x7f\ufffe\uffff]")


class DivisionNotFound(NotFound):
    """404: no division with this code in the jurisdiction."""


@dataclass(frozen=True, slots=True)
class DivisionInfo(store.DivisionRow):
    """A division of a jurisdiction, with how many services it holds."""

    def item(self) -> dict[str, Any]:
        """The admin API's view."""
        return {
            "code": self.code,
            "name": self.name,
            "contact": self.contact,
            "services": self.services,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class MoveInfo(store.MoveRow):
    """A recorded move of a service between divisions."""

    def item(self) -> dict[str, Any]:
        """The admin API's view."""
        return {
            "service_code": self.service_code,
            "from_division": self.from_code,
            "from_name": self.from_name,
            "to_division": self.to_code,
            "to_name": self.to_name,
            "moved_by": self.moved_by,
            "reason": self.reason,
            "moved_at": self.moved_at,
        }


def _info(row: store.DivisionRow) -> DivisionInfo:
    return extend(DivisionInfo, row)


def check_code(text: str) -> str:
    """A division code in its stored form (lower case), or 400."""
    if len(text) > MAX_CODE + 16:
        raise InvalidParameter(f"A division code is at most {MAX_CODE} characters.")
    code = text.strip().lower()
    if CODE.fullmatch(code) is None:
        raise InvalidParameter(
            f"{text[:40]!r} is not a division code: 1 to {MAX_CODE} letters, digits, '-' and "
            "'_', starting with a letter or digit (e.g. pfr)."
        )
    return code


def check_text(text: str, what: str, limit: int, *, required: bool = True) -> str | None:
    """One line of text, trimmed (None when blank and not required), or 400."""
    if len(text) > limit + 64:
        raise InvalidParameter(f"{what} is longer than {limit} characters.")
    value = text.strip()
    if len(value) > limit:
        raise InvalidParameter(f"{what} is longer than {limit} characters.")
    if _CONTROL.search(value):
        raise InvalidParameter(f"{what} contains control characters.")
    if not value:
        if required:
            raise InvalidParameter(f"{what} is empty.")
        return None
    return value


def actor_name(key: KeyInfo | None, *, cli_user: str | None = None, via: str = "") -> str:
    """Who did it, as recorded: an admin key (with its app) or the operator on the CLI."""
    if key is not None:
        who = f"admin key {key.id}" + (f" ({key.app_name})" if key.app_name else "")
    else:
        who = f"cli ({cli_user})" if cli_user else "cli"
    return f"{who}{via}"[:255]


async def list_divisions(conn: AsyncConnection, jurisdiction_pk: int) -> list[DivisionInfo]:
    """Every division of a jurisdiction, by code."""
    return [_info(row) for row in await store.list_divisions(conn, jurisdiction_pk)]


async def _find(conn: AsyncConnection, jurisdiction_pk: int, code: str) -> store.DivisionRow:
    found = await store.find_division(conn, jurisdiction_pk, check_code(code))
    if found is None:
        raise DivisionNotFound(f"No division {code[:64]!r} in this jurisdiction.")
    return found


async def get_division(conn: AsyncConnection, jurisdiction_pk: int, code: str) -> DivisionInfo:
    """One division, or 404."""
    return _info(await _find(conn, jurisdiction_pk, code))


async def create_division(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    code: str,
    name: str,
    contact: str | None = None,
) -> DivisionInfo:
    """Add a division; 409 when its code or name is taken in the jurisdiction."""
    code = check_code(code)
    clean_name = check_text(name, "The division name", MAX_NAME)
    assert clean_name is not None  # noqa: S101 - required text is never None
    clean_contact = (
        None if contact is None else check_text(contact, "contact", MAX_CONTACT, required=False)
    )
    if await store.find_division(conn, jurisdiction_pk, code) is not None:
        raise Conflict(f"A division {code!r} exists already.")
    taken = await store.division_named(conn, jurisdiction_pk, clean_name)
    if taken is not None:
        raise Conflict(f"The division {taken!r} is already named {clean_name!r}.")
    pk = await store.insert_division(
        conn, jurisdiction_pk, code=code, name=clean_name, contact=clean_contact
    )
    if pk is None:
        raise Conflict(f"A division {code!r} or named {clean_name!r} exists already.")
    return await get_division(conn, jurisdiction_pk, code)


async def update_division(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    code: str,
    *,
    name: str | None = None,
    contact: str | None = None,
) -> DivisionInfo:
    """Rename a division or change its contact (None: unchanged; an empty contact clears it).

    Its services' ``agency_responsible`` follows the new name for requests made from now on.
    """
    found = await _find(conn, jurisdiction_pk, code)
    new_name = found.name if name is None else check_text(name, "The division name", MAX_NAME)
    assert new_name is not None  # noqa: S101 - required text is never None
    new_contact = (
        found.contact
        if contact is None
        else check_text(contact, "contact", MAX_CONTACT, required=False)
    )
    if new_name.lower() != found.name.lower():
        taken = await store.division_named(conn, jurisdiction_pk, new_name)
        if taken is not None:
            raise Conflict(f"The division {taken!r} is already named {new_name!r}.")
    if not await store.update_division(conn, found.pk, name=new_name, contact=new_contact):
        raise Conflict(f"A division is already named {new_name!r}.")
    if new_name != found.name:
        await store.touch_services(conn, found.pk)
    return await get_division(conn, jurisdiction_pk, found.code)


async def remove_division(conn: AsyncConnection, jurisdiction_pk: int, code: str) -> None:
    """Remove a division that holds no service (409 otherwise: move them first)."""
    found = await _find(conn, jurisdiction_pk, code)
    if found.services:
        raise Conflict(
            f"The division {found.code!r} still holds {found.services} service"
            f"{'s' if found.services != 1 else ''}: move them to another division first."
        )
    await store.delete_division(conn, found.pk)


async def service_pk(conn: AsyncConnection, jurisdiction_pk: int, service_code: str) -> int:
    """The primary key of a service of the jurisdiction (active or not), or 404."""
    if len(service_code) > 255:
        raise ServiceNotFound("service_code is longer than 255 characters.")
    pk = (await catalog_store.service_pks(conn, jurisdiction_pk)).get(service_code)
    if pk is None:
        raise ServiceNotFound(f"No service {service_code[:64]!r} in this jurisdiction.")
    return pk


async def current_division(
    conn: AsyncConnection, jurisdiction_pk: int, service_code: str
) -> str | None:
    """The code of the division a service is in (None: none), or 404 for no such service."""
    return await store.service_division(conn, await service_pk(conn, jurisdiction_pk, service_code))


async def record_move(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    service: int,
    source: str | None,
    target: str | None,
    *,
    by: str,
    reason: str | None = None,
) -> None:
    """Put a service in division ``target`` (a code; None: none) and record the move from
    ``source`` (both checked to exist by the caller)."""
    rows = {row.code: row for row in await store.list_divisions(conn, jurisdiction_pk)}
    source_row = rows.get(source) if source else None
    target_row = rows.get(target) if target else None
    await catalog_store.set_service_division(conn, service, target_row.pk if target_row else None)
    await store.insert_move(
        conn,
        jurisdiction_pk=jurisdiction_pk,
        service_pk=service,
        source=source_row,
        target=target_row,
        moved_by=by,
        reason=reason,
        moved_at=utcnow(),
    )


async def move_service(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    service_code: str,
    division_code: str,
    *,
    by: str,
    reason: str | None = None,
) -> MoveInfo | None:
    """Move a service into a division, recorded with who, when and why; None when it is
    there already (nothing recorded)."""
    clean_reason = (
        None if reason is None else check_text(reason, "reason", MAX_REASON, required=False)
    )
    pk = await service_pk(conn, jurisdiction_pk, service_code)
    target = await _find(conn, jurisdiction_pk, division_code)
    source = await current_division(conn, jurisdiction_pk, service_code)
    if source == target.code:
        return None
    await record_move(conn, jurisdiction_pk, pk, source, target.code, by=by, reason=clean_reason)
    moves = await store.list_moves(conn, jurisdiction_pk, service_pk=pk, limit=1)
    return _move(moves[0])


def _move(row: store.MoveRow) -> MoveInfo:
    return extend(MoveInfo, row)


async def list_moves(
    conn: AsyncConnection,
    jurisdiction_pk: int,
    service_code: str | None = None,
    limit: int = 100,
) -> list[MoveInfo]:
    """Recorded moves, newest first (of one service when a code is given), at most ``limit``."""
    pk = None if service_code is None else await service_pk(conn, jurisdiction_pk, service_code)
    rows = await store.list_moves(
        conn, jurisdiction_pk, service_pk=pk, limit=max(1, min(limit, MAX_MOVES))
    )
    return [_move(row) for row in rows]

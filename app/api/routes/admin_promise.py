"""Admin JSON API of the service promise: divisions, services and their service levels, moves,
catalogue imports, the business calendar in use, and a request's promise facts.

Every route takes ``jurisdiction_id`` (optional on a single-jurisdiction server) and is
refused (403) to an admin key restricted to another jurisdiction. Same key check, prefix and
error documents as the rest of the admin API (``app.api.routes.admin_auth``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.responses import Response

from app.api.docs import documented, json_responses
from app.api.routes.admin_auth import (
    AUTH,
    BODY,
    NAME,
    REQUEST_ID_MAX,
    TEXT,
    AdminCallDep,
    AdminRoute,
    ChannelName,
    admin_json,
    whole_number,
)
from app.api.schemas import JURISDICTION_ID, WS
from app.domain import divisions
from app.domain.catalog import read_services
from app.domain.catalog_files import CatalogFileError, parse_catalogue
from app.domain.catalog_import import apply_import, plan_import
from app.domain.service_levels import MAX_AMOUNT, Unit
from app.domain.service_promise import (
    request_facts,
    set_service_levels,
    show_calendar,
)
from app.errors import InvalidParameter
from app.store.engine import write_transaction

router = APIRouter(prefix="/admin/v1", tags=["admin"], route_class=AdminRoute)

# A division code as the server reads it: trimmed, any case (stored in lower case).
CODE = f"^[{WS}]*[A-Za-z0-9][A-Za-z0-9_-]{{0,63}}[{WS}]*$"
CODE_MAX = divisions.MAX_CODE + 16
DivisionCode = Annotated[
    str,
    Path(
        max_length=CODE_MAX,
        pattern=CODE,
        description="The division's code (any case).",
        examples=["pfr"],
    ),
]
ServiceCode = Annotated[
    str, Path(description="A service_code of the jurisdiction.", examples=["TO-0024"])
]
# Largest catalogue text an import takes (the body limit, http.max_body_bytes, comes first).
MAX_IMPORT_TEXT = 1_000_000
WITH_JURISDICTION = documented(JURISDICTION_ID)
READ = (*AUTH, 400)
WRITE = (*BODY, 409)


def _code_field(description: str, *, required: bool = True) -> Any:
    return Field(
        ... if required else None,
        max_length=CODE_MAX,
        pattern=CODE,
        description=description,
        examples=["pfr"],
    )


class DivisionIn(BaseModel):
    """A new division."""

    model_config = ConfigDict(extra="forbid", strict=True)

    code: str = _code_field("Short code, e.g. pfr (letters, digits, '-', '_').")
    name: str = Field(
        min_length=1,
        max_length=255,
        pattern=NAME,
        description="Its name: the agency_responsible of its services.",
    )
    contact: str | None = Field(default=None, max_length=1000, pattern=TEXT)


class DivisionChange(BaseModel):
    """A division's new name or contact (omitted: unchanged; an empty contact clears it)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=255, pattern=NAME)
    contact: str | None = Field(default=None, max_length=1000, pattern=TEXT)


class AdminDivision(BaseModel):
    """A division with the number of services it holds."""

    code: str
    name: str
    contact: str | None
    services: int
    created_at: str = Field(description="ISO 8601 datetime (UTC).")
    updated_at: str = Field(description="ISO 8601 datetime (UTC).")


class AdminDivisionRemoved(BaseModel):
    """A removed division."""

    code: str
    removed: bool


class AdminService(BaseModel):
    """A service with its division and service levels."""

    service_code: str
    service_name: str
    type: str
    active: bool = Field(description="false: no longer offered (its requests are kept).")
    division: str | None
    agency_responsible: str | None
    service_levels: str | None = Field(
        description="Its targets, e.g. 'acknowledge=1 business_day; resolve=5 business_days'."
    )


class MoveIn(BaseModel):
    """Where a service moves, and why."""

    model_config = ConfigDict(extra="forbid", strict=True)

    division: str = _code_field("The division (code) the service moves to.")
    reason: str | None = Field(default=None, max_length=1000, pattern=TEXT)


class AdminMove(BaseModel):
    """A recorded move of a service between divisions."""

    service_code: str
    from_division: str | None
    from_name: str | None
    to_division: str | None
    to_name: str | None
    moved_by: str = Field(description="The admin key (and its app) or 'cli (login)'.")
    reason: str | None
    moved_at: str = Field(description="ISO 8601 datetime (UTC).")


class AdminMoveResult(BaseModel):
    """The move made, or none when the service was in that division already."""

    service_code: str
    division: str
    moved: bool
    move: AdminMove | None


class DayTarget(BaseModel):
    """A target counted in days."""

    model_config = ConfigDict(extra="forbid", strict=True)

    amount: Annotated[
        int, Field(ge=1, le=MAX_AMOUNT[Unit.BUSINESS_DAYS]), BeforeValidator(whole_number)
    ]
    unit: Literal["business_days", "calendar_days"]


class HourTarget(BaseModel):
    """A target counted in hours."""

    model_config = ConfigDict(extra="forbid", strict=True)

    amount: Annotated[
        int, Field(ge=1, le=MAX_AMOUNT[Unit.BUSINESS_HOURS]), BeforeValidator(whole_number)
    ]
    unit: Literal["business_hours", "calendar_hours"]


class LevelsIn(BaseModel):
    """A service's targets (omitted or null: none). With the same unit, acknowledge is at
    most resolve."""

    model_config = ConfigDict(extra="forbid", strict=True)

    acknowledge: DayTarget | HourTarget | None = None
    resolve: DayTarget | HourTarget | None = Field(
        default=None, description="Gives the expected_datetime of new requests."
    )


class AdminServiceLevels(BaseModel):
    """A service's targets as stored."""

    service_code: str
    service_levels: str | None


class ImportIn(BaseModel):
    """A catalogue to import (as ``open311 services import`` reads a file)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["json", "csv"]
    content: str = Field(
        min_length=1,
        max_length=MAX_IMPORT_TEXT,
        description='The file\'s text: a JSON catalogue ({"divisions": [...], "services": '
        "[...]}) or CSV with a header row.",
    )
    division: str | None = _code_field(
        "Onboard this division: its services are the file's, and its services the file leaves "
        "out are no longer offered (unless keep_missing).",
        required=False,
    )
    division_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=NAME,
        description="The name of `division` (creates or renames it).",
    )
    keep_missing: bool = Field(
        default=False, description="With division: keep its services the file leaves out."
    )
    dry_run: bool = Field(default=False, description="Show what would change; write nothing.")


class ImportedField(BaseModel):
    """One field an import changes."""

    field: str
    before: str | None
    after: str | None


class ImportedService(BaseModel):
    """One service an import changes."""

    service_code: str
    service_name: str
    change: Literal["added", "changed", "moved", "removed"]
    fields: list[ImportedField]
    from_division: str | None
    to_division: str | None
    reactivated: bool


class ImportedDivision(BaseModel):
    """A division an import adds or renames."""

    code: str
    name: str
    change: Literal["added", "renamed"]
    before: str | None


class ImportSummary(BaseModel):
    """How many services of each kind of change."""

    added: int
    changed: int
    moved: int
    removed: int
    unchanged: int


class AdminImport(BaseModel):
    """What an import changes (dry run) or changed."""

    jurisdiction_id: str
    division: str | None
    applied: bool
    summary: ImportSummary
    divisions: list[ImportedDivision]
    services: list[ImportedService]
    warnings: list[str]
    diff: list[str] = Field(description="The readable diff, one line each (as the CLI shows).")


class AdminCalendar(BaseModel):
    """The business calendar a jurisdiction uses and where it comes from."""

    jurisdiction_id: str
    source: Literal["stored", "example", "none"]
    calendar: dict[str, Any] | None = Field(
        description='{"timezone", "hours", "holidays", "closures"} (README: Service levels).'
    )


class AdminRequestFacts(BaseModel):
    """A request's service promise: division, channel, first contact, target, overdue."""

    service_request_id: str
    status: str
    detailed_status: str | None
    service_code: str
    division: str | None
    division_name: str | None
    agency_responsible: str | None
    channel: ChannelName | None
    first_contact_resolution: bool
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    overdue: bool
    app: str | None
    key_id: int | None
    sandbox: bool


DIVISION_EXAMPLE = {
    "code": "pfr",
    "name": "Parks, Forestry & Recreation",
    "contact": None,
    "services": 1,
    "created_at": "2026-11-02T14:05:11+00:00",
    "updated_at": "2026-11-02T14:05:11+00:00",
}
MOVE_EXAMPLE = {
    "service_code": "TO-0024",
    "from_division": "transportation",
    "from_name": "Transportation Services",
    "to_division": "pfr",
    "to_name": "Parks, Forestry & Recreation",
    "moved_by": "admin key 3 (ops)",
    "reason": "Urban Forestry handles tree emergencies",
    "moved_at": "2026-11-02T14:05:11+00:00",
}


@router.get(
    "/divisions.json",
    operation_id="admin-divisions-list",
    response_class=Response,
    responses=json_responses(
        AdminDivision,
        many=True,
        errors=READ,
        description="Every division of the jurisdiction.",
        example=[DIVISION_EXAMPLE],
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def get_divisions(call: AdminCallDep) -> Response:
    """Every division of the jurisdiction with its number of services."""
    async with call.state.engine.connect() as conn:
        found = await divisions.list_divisions(conn, call.jurisdiction.pk)
    return admin_json([d.item() for d in found])


@router.post(
    "/divisions.json",
    operation_id="admin-divisions-create",
    response_class=Response,
    status_code=201,
    responses=json_responses(
        AdminDivision,
        many=False,
        errors=WRITE,
        status=201,
        description="The new division (409: its code or name is taken).",
        example=DIVISION_EXAMPLE,
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def post_division(body: DivisionIn, call: AdminCallDep) -> Response:
    """Add a division (its name becomes its services' agency_responsible)."""
    async with write_transaction(call.state.engine) as conn:
        made = await divisions.create_division(
            conn, call.jurisdiction.pk, body.code, body.name, body.contact
        )
    return admin_json(made.item(), 201)


@router.post(
    "/divisions/{division_code}.json",
    operation_id="admin-divisions-update",
    response_class=Response,
    responses=json_responses(
        AdminDivision,
        many=False,
        errors=WRITE,
        description="The division as changed (409: the name is another division's).",
        example=DIVISION_EXAMPLE,
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def post_division_change(
    division_code: DivisionCode,
    body: DivisionChange,
    call: AdminCallDep,
) -> Response:
    """Rename a division or change its contact; new requests carry the new name."""
    async with write_transaction(call.state.engine) as conn:
        changed = await divisions.update_division(
            conn, call.jurisdiction.pk, division_code, name=body.name, contact=body.contact
        )
    # The request handlers' catalogue (agency_responsible, service levels) is read again.
    call.state.catalogs.invalidate()
    return admin_json(changed.item())


@router.delete(
    "/divisions/{division_code}.json",
    operation_id="admin-divisions-delete",
    response_class=Response,
    responses=json_responses(
        AdminDivisionRemoved,
        many=False,
        errors=(*READ, 409),
        description="The division is removed (409: it still holds services).",
        example={"code": "pfr", "removed": True},
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def delete_division(division_code: DivisionCode, call: AdminCallDep) -> Response:
    """Remove a division that holds no service (move its services first)."""
    async with write_transaction(call.state.engine) as conn:
        await divisions.remove_division(conn, call.jurisdiction.pk, division_code)
    return admin_json({"code": division_code.strip().lower(), "removed": True})


@router.get(
    "/services.json",
    operation_id="admin-services-list",
    response_class=Response,
    responses=json_responses(
        AdminService,
        many=True,
        errors=READ,
        description="Every service, offered or not, with its division and service levels.",
        example=[
            {
                "service_code": "TO-0024",
                "service_name": "Tree Emergency Clean-Up",
                "type": "realtime",
                "active": True,
                "division": "pfr",
                "agency_responsible": "Parks, Forestry & Recreation",
                "service_levels": "acknowledge=4 calendar_hours; resolve=2 calendar_days",
            }
        ],
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def get_services(call: AdminCallDep) -> Response:
    """Every service of the jurisdiction with its division and service levels."""
    async with call.state.engine.connect() as conn:
        found = await read_services(conn, call.jurisdiction.pk, inactive=True)
    return admin_json(
        [
            {
                "service_code": s.code,
                "service_name": s.name,
                "type": s.type,
                "active": s.active,
                "division": s.division,
                "agency_responsible": s.agency_responsible,
                "service_levels": s.service_levels,
            }
            for s in found
        ]
    )


@router.post(
    "/services/{service_code}/move.json",
    operation_id="admin-services-move",
    response_class=Response,
    responses=json_responses(
        AdminMoveResult,
        many=False,
        errors=BODY,
        description="The move, recorded with who and when (none when it was there already).",
        example={"service_code": "TO-0024", "division": "pfr", "moved": True, "move": MOVE_EXAMPLE},
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def post_move(
    service_code: ServiceCode,
    body: MoveIn,
    call: AdminCallDep,
) -> Response:
    """Move a service to another division; the move is recorded (who, when, why)."""
    async with write_transaction(call.state.engine) as conn:
        move = await divisions.move_service(
            conn,
            call.jurisdiction.pk,
            service_code,
            body.division,
            by=divisions.actor_name(call.admin),
            reason=body.reason,
        )
    # The request handlers' catalogue (agency_responsible, service levels) is read again.
    call.state.catalogs.invalidate()
    return admin_json(
        {
            "service_code": service_code,
            "division": divisions.check_code(body.division),
            "moved": move is not None,
            "move": move.item() if move is not None else None,
        }
    )


@router.get(
    "/moves.json",
    operation_id="admin-moves-list",
    response_class=Response,
    responses=json_responses(
        AdminMove,
        many=True,
        errors=READ,
        description="Recorded moves of services between divisions, newest first (at most 1000).",
        example=[MOVE_EXAMPLE],
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def get_moves(call: AdminCallDep) -> Response:
    """Recorded moves of the jurisdiction's services, newest first."""
    async with call.state.engine.connect() as conn:
        found = await divisions.list_moves(conn, call.jurisdiction.pk, limit=divisions.MAX_MOVES)
    return admin_json([m.item() for m in found])


@router.post(
    "/services/{service_code}/levels.json",
    operation_id="admin-services-levels",
    response_class=Response,
    responses=json_responses(
        AdminServiceLevels,
        many=False,
        errors=BODY,
        description="The service's targets as stored.",
        example={
            "service_code": "TO-0007",
            "service_levels": "acknowledge=1 business_day; resolve=5 business_days",
        },
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def post_levels(
    service_code: ServiceCode,
    body: LevelsIn,
    call: AdminCallDep,
) -> Response:
    """Set a service's service levels; new requests get their expected_datetime from them."""
    targets = {
        kind: f"{target.amount} {target.unit}"
        for kind, target in (("acknowledge", body.acknowledge), ("resolve", body.resolve))
        if target is not None
    }
    async with write_transaction(call.state.engine) as conn:
        stored = await set_service_levels(conn, call.jurisdiction.pk, service_code, targets or None)
    # The request handlers' catalogue (agency_responsible, service levels) is read again.
    call.state.catalogs.invalidate()
    return admin_json({"service_code": service_code, "service_levels": stored})


@router.post(
    "/catalog/import.json",
    operation_id="admin-catalog-import",
    response_class=Response,
    responses=json_responses(
        AdminImport,
        many=False,
        errors=WRITE,
        description="What the import changes (dry_run) or changed; 400 lists every problem of "
        "the file, and nothing is written.",
        example={
            "jurisdiction_id": "toronto.ca",
            "division": "pfr",
            "applied": False,
            "summary": {"added": 1, "changed": 0, "moved": 1, "removed": 0, "unchanged": 0},
            "divisions": [
                {
                    "code": "pfr",
                    "name": "Parks, Forestry & Recreation",
                    "change": "added",
                    "before": None,
                }
            ],
            "services": [
                {
                    "service_code": "PFR-001",
                    "service_name": "Park washroom cleaning",
                    "change": "added",
                    "fields": [],
                    "from_division": None,
                    "to_division": "pfr",
                    "reactivated": False,
                },
                {
                    "service_code": "TO-0024",
                    "service_name": "Tree Emergency Clean-Up",
                    "change": "moved",
                    "fields": [],
                    "from_division": "transportation",
                    "to_division": "pfr",
                    "reactivated": False,
                },
            ],
            "warnings": [],
            "diff": [
                "+ division pfr: 'Parks, Forestry & Recreation' (new)",
                "+ PFR-001  Park washroom cleaning [pfr]",
                "> TO-0024  Tree Emergency Clean-Up: moved from transportation to pfr",
            ],
        },
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def post_import(body: ImportIn, call: AdminCallDep) -> Response:
    """Import a catalogue (services, attributes, divisions, service levels), or with dry_run
    show what it would change."""
    try:
        catalogue = parse_catalogue(body.content, body.format, f"the {body.format} content")
    except CatalogFileError as exc:
        raise InvalidParameter(*exc.problems[:50]) from None
    options: dict[str, Any] = {
        "division": body.division,
        "division_name": body.division_name,
        "keep_missing": body.keep_missing,
        "has_calendar": call.jurisdiction.calendar is not None,
    }
    if body.dry_run:
        async with call.state.engine.connect() as conn:
            plan = await plan_import(
                conn, call.jurisdiction.pk, call.jurisdiction.code, catalogue, **options
            )
        return admin_json(plan.item())
    async with write_transaction(call.state.engine) as conn:
        plan = await apply_import(
            conn,
            call.jurisdiction.pk,
            call.jurisdiction.code,
            catalogue,
            by=divisions.actor_name(call.admin),
            **options,
        )
    # The request handlers' catalogue (agency_responsible, service levels) is read again.
    call.state.catalogs.invalidate()
    return admin_json(plan.item())


@router.get(
    "/calendar.json",
    operation_id="admin-calendar-read",
    response_class=Response,
    responses=json_responses(
        AdminCalendar,
        many=False,
        errors=READ,
        description="The jurisdiction's business calendar (set with 'open311 jurisdictions "
        "calendar').",
        example={
            "jurisdiction_id": "toronto.ca",
            "source": "example",
            "calendar": {
                "timezone": "America/Toronto",
                "hours": "Mon-Fri 08:30-16:30",
                "holidays": {
                    "country": "CA",
                    "subdivision": "ON",
                    "also": ["Civic Holiday", "Canada Day"],
                },
            },
        },
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def get_calendar(call: AdminCallDep) -> Response:
    """The business calendar the jurisdiction's service levels are counted on."""
    async with call.state.engine.connect() as conn:
        return admin_json(await show_calendar(conn, call.jurisdiction))


@router.get(
    "/requests/{service_request_id}.json",
    operation_id="admin-requests-read",
    response_class=Response,
    responses=json_responses(
        AdminRequestFacts,
        many=False,
        errors=READ,
        description="The request's service promise.",
        example={
            "service_request_id": "638344",
            "status": "closed",
            "detailed_status": "fixed",
            "service_code": "TO-0007",
            "division": "transportation",
            "division_name": "Transportation Services",
            "agency_responsible": "Transportation Services",
            "channel": "phone",
            "first_contact_resolution": False,
            "requested_datetime": "2026-11-02T09:12:00-05:00",
            "updated_datetime": "2026-11-04T15:40:00-05:00",
            "expected_datetime": "2026-11-09T09:12:00-05:00",
            "overdue": False,
            "app": "311 Contact Centre",
            "key_id": 12,
            "sandbox": False,
        },
    ),
    openapi_extra=WITH_JURISDICTION,
)
async def get_request_facts(
    service_request_id: Annotated[int, Path(ge=1, le=REQUEST_ID_MAX, examples=[638344])],
    call: AdminCallDep,
) -> Response:
    """A request's division, channel, first-contact resolution, expected datetime, overdue."""
    async with call.state.engine.connect() as conn:
        return admin_json(await request_facts(conn, call.jurisdiction, service_request_id))

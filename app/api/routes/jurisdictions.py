"""Extension: the jurisdictions served (local, remote partners, regions) with their health."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from app.api import examples
from app.api.deps import AppState, FormatDep, QueryDep, StateDep, bearer_token
from app.api.docs import documented, responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.api.schemas import JURISDICTION_CHECK
from app.domain import policy
from app.domain.api_keys import KeyInfo
from app.domain.submissions import check_key_and_limit
from app.errors import Forbidden, JurisdictionNotFound
from app.federation import partners
from app.federation.service import Federation
from app.messages import Text

router = APIRouter(tags=["jurisdictions (extension)"], route_class=LeanRoute)


class JurisdictionItem(BaseModel):
    """An item of GET jurisdictions."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"xml": {"name": "jurisdiction"}})

    jurisdiction_id: str = Field(description="The value of the jurisdiction_id parameter.")
    name: str
    kind: Literal["local", "remote", "region"] = Field(
        description="local: served from this database; remote: a partner city's server, "
        "mirrored; region: a set of partners answered as one."
    )
    status: Literal["ok", "degraded", "down", "unknown"] = Field(
        description="Health of the partner(s) by the last refresh; local is always ok."
    )
    last_synced_at: str | None = Field(
        description="W3C datetime of the last complete refresh of the partner's data "
        "(a region: its stalest partner); null for local or never synced."
    )
    partner_url: str | None = Field(description="Base URL of a remote partner; else null.")


def _listing(description: str, errors: tuple[int, ...]) -> dict[int | str, dict[str, Any]]:
    return responses(
        JurisdictionItem,
        root="jurisdictions",
        many=True,
        errors=errors,
        description=description,
        examples={"federated": ("A city and one partner", examples.JURISDICTIONS)},
    )


@router.get(
    "/jurisdictions.{format}",
    operation_id="jurisdictions-list",
    response_class=Response,
    responses=_listing("Every jurisdiction this server answers for.", ()),
)
async def list_jurisdictions(fmt: FormatDep, state: StateDep) -> Response:
    """Every jurisdiction: jurisdiction_id, name, kind, status, last_synced_at, partner_url."""
    async with state.engine.connect() as conn:
        items = await partners.listing(conn)
    return render("jurisdictions", items, fmt)


async def _require_admin(
    request: Request, state: AppState, authorization: str | None, jurisdiction_id: str
) -> None:
    """403 unless the call carries an admin key (``api_key`` or ``Authorization: Bearer``)
    that may act for this jurisdiction.

    A live probe makes this server call a partner: an outsider must not be able to trigger
    that. The GeoReport router's read_access already verified (and rate-limited) a valid
    ``api_key`` of the query string; a bearer key is verified and rate-limited here.
    """
    key: KeyInfo | None = getattr(request.state, "viewer", None)
    token = bearer_token(authorization)
    if key is None and token is not None:
        key, _ = await check_key_and_limit(
            state.engine, state.limiter, state.settings, token, state.keys
        )
    if key is None:
        raise Forbidden(
            "check=true calls the partner live: it needs an API key with the admin scope "
            "(api_key or 'Authorization: Bearer <key>')."
        )
    policy.require_admin(key)
    if key.jurisdiction_pk is not None:
        policy.require_jurisdiction(key, (await state.jurisdictions.resolve(jurisdiction_id)).pk)


@router.get(
    "/jurisdictions/{jurisdiction_id}.{format}",
    operation_id="jurisdictions-get",
    response_class=Response,
    responses=_listing(
        "The jurisdiction, as a list of one (like GET requests/{id}).", (403, 502, 504)
    ),
    openapi_extra=documented(*JURISDICTION_CHECK),
)
async def get_jurisdiction_status(
    request: Request,
    jurisdiction_id: Annotated[
        str, Path(description="A jurisdiction_id.", examples=["toronto.ca"])
    ],
    fmt: FormatDep,
    state: StateDep,
    query: QueryDep,
    authorization: Annotated[
        str | None,
        Header(description="Bearer <API key with the admin scope>, instead of api_key."),
    ] = None,
) -> Response:
    """One jurisdiction, optionally after probing a remote partner live (admin keys only)."""
    # api_key: read by the GeoReport router's read_access (see _require_admin).
    if (query.one("check") or "").strip().lower() in ("true", "1"):
        await _require_admin(request, state, authorization, jurisdiction_id)
        mounts = getattr(request.app.state, "federation_mounts", None)
        async with Federation(state.engine, state.settings, mounts=mounts) as federation:
            await federation.check(jurisdiction_id)
    async with state.engine.connect() as conn:
        items = [
            i
            for i in await partners.listing(conn)
            if i["jurisdiction_id"].lower() == jurisdiction_id.strip().lower()
        ]
    if not items:
        raise JurisdictionNotFound(
            Text("jurisdiction_id {id!r} is not served here.", id=jurisdiction_id)
        )
    return render("jurisdictions", items, fmt)

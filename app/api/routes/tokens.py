"""GET service_request_id from a token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from app.api import examples
from app.api.deps import FormatDep, JurisdictionDep, StateDep
from app.api.docs import documented, responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.api.schemas import JURISDICTION_ID
from app.domain.tokens import resolve_token
from app.georeport.models import TokenResult
from app.store.engine import read_connection

router = APIRouter(tags=["tokens"], route_class=LeanRoute)


@router.get(
    "/tokens/{token}.{format}",
    operation_id="tokens-get",
    response_class=Response,
    responses=responses(
        TokenResult,
        root="service_requests",
        many=True,
        errors=(400,),
        description="The token and its request id (null while pending).",
        examples={"resolved": ("A resolved token", examples.TOKEN)},
    ),
    openapi_extra=documented(JURISDICTION_ID),
)
async def get_token(
    token: Annotated[
        str,
        Path(
            description="The token of a POST to a batch service.",
            examples=[examples.TOKEN[0]["token"]],
        ),
    ],
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
) -> Response:
    """The service_request_id a batch token resolved to (null while still pending)."""
    async with read_connection(state.engine) as conn:
        item = await resolve_token(conn, jurisdiction, token)
    return render("service_requests", [item], fmt)

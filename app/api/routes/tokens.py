"""GET service_request_id from a token."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import FormatDep, JurisdictionDep, StateDep
from app.api.docs import responses
from app.api.responses import render
from app.domain.tokens import resolve_token
from app.georeport.models import TokenResult

router = APIRouter(tags=["tokens"])


@router.get(
    "/tokens/{token}.{format}",
    operation_id="tokens-get",
    response_class=Response,
    responses=responses(
        TokenResult, many=True, errors=(400, 404), description="The token and its request id."
    ),
)
async def get_token(
    token: str, fmt: FormatDep, state: StateDep, jurisdiction: JurisdictionDep
) -> Response:
    """The service_request_id a batch token resolved to (null while still pending)."""
    async with state.engine.connect() as conn:
        item = await resolve_token(conn, jurisdiction, token)
    return render("service_requests", [item], fmt)

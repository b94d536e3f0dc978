"""Service discovery."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api import examples
from app.api.deps import FormatDep, StateDep, public_base
from app.api.docs import responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.domain.discovery import discovery_document
from app.georeport.models import Discovery

router = APIRouter(tags=["discovery"], route_class=LeanRoute)


@router.get(
    "/discovery.{format}",
    operation_id="discovery-get",
    response_class=Response,
    responses=responses(
        Discovery,
        root="discovery",
        many=False,
        errors=(),
        description="The discovery document.",
        examples={"discovery": ("This server's endpoints", examples.DISCOVERY)},
    ),
)
async def get_discovery(request: Request, fmt: FormatDep, state: StateDep) -> Response:
    """Where the endpoints of this server are, which formats they speak, and whom to contact."""
    settings = state.settings
    base = public_base(request, settings)
    jurisdictions = await state.jurisdictions.all()
    changed = [(await state.catalogs.get(j.pk)).changed_at for j in jurisdictions]
    contact = key_service = None
    if len(jurisdictions) == 1:
        contact, key_service = jurisdictions[0].contact, jurisdictions[0].key_service
    document = discovery_document(
        settings,
        endpoint_url=base + settings.base_path,
        changeset=max(changed) if changed else state.started_at,
        contact=contact,
        key_service=key_service,
    )
    return render("discovery", document, fmt)

"""Service discovery (cached by HTTP)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app import messages
from app.api import examples
from app.api.caching import (
    CONDITIONAL_HEADERS,
    app_memo,
    cache_headers,
    cached_answer,
    not_modified_response,
)
from app.api.deps import FormatDep, StateDep, public_base
from app.api.docs import documented, responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.domain.discovery import discovery_document
from app.errors import JurisdictionNotFound
from app.georeport.models import Discovery

router = APIRouter(tags=["discovery"], route_class=LeanRoute)


@router.get(
    "/discovery.{format}",
    operation_id="discovery-get",
    response_class=Response,
    responses={
        **responses(
            Discovery,
            root="discovery",
            many=False,
            errors=(),
            description="The discovery document.",
            examples={"discovery": ("This server's endpoints", examples.DISCOVERY)},
            headers=cache_headers(languages=False),
        ),
        **not_modified_response(languages=False),
    },
    openapi_extra=documented(*CONDITIONAL_HEADERS),
)
async def get_discovery(request: Request, fmt: FormatDep, state: StateDep) -> Response:
    """Where the endpoints of this server are, which formats they speak, and whom to contact."""
    settings = state.settings
    registry = state.jurisdictions
    endpoint_url = public_base(request, settings) + settings.base_path
    jurisdictions = await registry.all()
    changed = [(await state.catalogs.get(j.pk)).changed_at for j in jurisdictions]
    changeset = max(changed) if changed else state.started_at
    contact = key_service = None
    if len(jurisdictions) == 1:
        contact, key_service = jurisdictions[0].contact, jurisdictions[0].key_service
    elif jurisdictions and not await registry.is_multi():
        # Several, one the default (default_jurisdiction): it speaks for the server.
        try:
            default = await registry.resolve(None)
        except JurisdictionNotFound:  # a configured default that does not exist (yet)
            pass
        else:
            contact, key_service = default.contact, default.key_service

    # The languages on offer: the server's messages' and every catalogue's, default first.
    offered = [*messages.locales()]
    for jurisdiction in jurisdictions:
        offered += (await state.catalogs.get(jurisdiction.pk)).locales
    locales = list(dict.fromkeys(offered))

    async def make() -> Response:
        document = discovery_document(
            settings,
            endpoint_url=endpoint_url,
            changeset=changeset,
            contact=contact,
            key_service=key_service,
            max_page_size=settings.requests.max_results,
            locales=locales,
        )
        return render("discovery", document, fmt)

    return await cached_answer(
        request,
        app_memo(request, "open311_discovery_documents"),
        # Everything the document is made of (the settings' part is fixed for the app).
        (endpoint_url, changeset, contact, key_service, tuple(locales), fmt),
        changeset,
        settings.cache.control,
        {},
        make,
    )

"""GET Service List and GET Service Definition (in the caller's language, cached by HTTP)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from app.api import examples
from app.api.caching import (
    CONDITIONAL_HEADERS,
    cache_headers,
    cached_answer,
    catalog_memo,
    not_modified_response,
)
from app.api.deps import CatalogDep, FormatDep, JurisdictionDep, StateDep
from app.api.docs import documented, responses
from app.api.i18n import LocalesDep, documented_languages, language_headers
from app.api.lean import LeanRoute
from app.api.responses import render
from app.api.schemas import JURISDICTION_ID
from app.federation.headers import synced_headers
from app.georeport.models import Service, ServiceDefinition

router = APIRouter(tags=["services"], route_class=LeanRoute)

PARAMETERS = (*documented_languages(JURISDICTION_ID), *CONDITIONAL_HEADERS)


@router.get(
    "/services.{format}",
    operation_id="services-list",
    response_class=Response,
    responses={
        **responses(
            Service,
            root="services",
            many=True,
            errors=(400,),
            description="The services.",
            examples={"services": ("Three services, one of each type", examples.SERVICE_LIST)},
            headers=cache_headers(languages=True),
        ),
        **not_modified_response(languages=True),
    },
    openapi_extra=documented(*PARAMETERS),
)
async def list_services(
    request: Request,
    fmt: FormatDep,
    catalog: CatalogDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    preferred: LocalesDep,
) -> Response:
    """Every service (request type) the jurisdiction accepts."""
    locale = catalog.negotiate(preferred)
    headers = language_headers(locale)
    headers.update(await synced_headers(state.engine, jurisdiction))  # federation: freshness

    async def make() -> Response:
        services = catalog.view(locale).services
        return render("services", [s.wire() for s in services], fmt, headers=headers)

    return await cached_answer(
        request,
        catalog_memo(catalog),
        ("services", locale, fmt),
        catalog.changed_at,
        state.settings.cache.control,
        headers,
        make,
    )


@router.get(
    "/services/{service_code}.{format}",
    operation_id="services-definition",
    response_class=Response,
    responses={
        **responses(
            ServiceDefinition,
            root="service_definition",
            many=False,
            errors=(400,),
            description="The service definition (empty attributes when metadata is false).",
            examples={"definition": ("Every datatype", examples.SERVICE_DEFINITION)},
            headers=cache_headers(languages=True),
        ),
        **not_modified_response(languages=True),
    },
    openapi_extra=documented(*PARAMETERS),
)
async def get_service_definition(
    request: Request,
    service_code: Annotated[
        str, Path(description="A service_code of GET services.", examples=["POTHOLE"])
    ],
    fmt: FormatDep,
    catalog: CatalogDep,
    state: StateDep,
    preferred: LocalesDep,
) -> Response:
    """The attributes a client must or may submit for one service."""
    locale = catalog.negotiate(preferred)
    service = catalog.view(locale).get(service_code)

    async def make() -> Response:
        return render("service_definition", service.definition(), fmt)

    return await cached_answer(
        request,
        catalog_memo(catalog),
        ("definition", service.code, locale, fmt),
        catalog.changed_at,
        state.settings.cache.control,
        language_headers(locale),
        make,
    )

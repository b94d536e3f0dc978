"""GET Service List and GET Service Definition."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from app.api import examples
from app.api.deps import CatalogDep, FormatDep, JurisdictionDep, StateDep
from app.api.docs import documented, responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.api.schemas import JURISDICTION_ID
from app.federation.headers import synced_headers
from app.georeport.models import Service, ServiceDefinition

router = APIRouter(tags=["services"], route_class=LeanRoute)


@router.get(
    "/services.{format}",
    operation_id="services-list",
    response_class=Response,
    responses=responses(
        Service,
        root="services",
        many=True,
        errors=(400,),
        description="The services.",
        examples={"services": ("Three services, one of each type", examples.SERVICE_LIST)},
    ),
    openapi_extra=documented(JURISDICTION_ID),
)
async def list_services(
    fmt: FormatDep, catalog: CatalogDep, state: StateDep, jurisdiction: JurisdictionDep
) -> Response:
    """Every service (request type) the jurisdiction accepts."""
    headers = await synced_headers(state.engine, jurisdiction)  # federation: freshness
    return render("services", [s.wire() for s in catalog.services], fmt, headers=headers)


@router.get(
    "/services/{service_code}.{format}",
    operation_id="services-definition",
    response_class=Response,
    responses=responses(
        ServiceDefinition,
        root="service_definition",
        many=False,
        errors=(400,),
        description="The service definition (empty attributes when metadata is false).",
        examples={"definition": ("Every datatype", examples.SERVICE_DEFINITION)},
    ),
    openapi_extra=documented(JURISDICTION_ID),
)
async def get_service_definition(
    service_code: Annotated[
        str, Path(description="A service_code of GET services.", examples=["POTHOLE"])
    ],
    fmt: FormatDep,
    catalog: CatalogDep,
) -> Response:
    """The attributes a client must or may submit for one service."""
    return render("service_definition", catalog.get(service_code).definition(), fmt)

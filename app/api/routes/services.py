"""GET Service List and GET Service Definition."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import CatalogDep, FormatDep
from app.api.docs import responses
from app.api.responses import render
from app.georeport.models import Service, ServiceDefinition

router = APIRouter(tags=["services"])


@router.get(
    "/services.{format}",
    operation_id="services-list",
    response_class=Response,
    responses=responses(Service, many=True, errors=(400, 404), description="The services."),
)
async def list_services(fmt: FormatDep, catalog: CatalogDep) -> Response:
    """Every service (request type) the jurisdiction accepts."""
    return render("services", [s.wire() for s in catalog.services], fmt)


@router.get(
    "/services/{service_code}.{format}",
    operation_id="services-definition",
    response_class=Response,
    responses=responses(
        ServiceDefinition, many=False, errors=(400, 404), description="The service definition."
    ),
)
async def get_service_definition(
    service_code: str, fmt: FormatDep, catalog: CatalogDep
) -> Response:
    """The attributes a client must or may submit for one service."""
    return render("service_definition", catalog.get(service_code).definition(), fmt)

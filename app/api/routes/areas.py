"""Extension: the areas (wards) of a jurisdiction."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from app.api import examples
from app.api.caching import (
    CONDITIONAL_HEADERS,
    app_memo,
    cache_headers,
    cached_answer,
    not_modified_response,
)
from app.api.deps import FormatDep, JurisdictionDep, QueryDep, StateDep
from app.api.docs import documented, error_response, responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.api.schemas import AREA_FILTERS, JURISDICTION_ID
from app.domain.areas import area_features, areas_version, list_areas
from app.errors import InvalidParameter
from app.store.engine import read_connection

router = APIRouter(tags=["areas (extension)"], route_class=LeanRoute)


def _geometry_schema(schema: dict[str, Any]) -> None:
    schema.clear()
    schema.update(
        description="Only with geometry=true: the GeoJSON geometry (EPSG:4326), an object in "
        "JSON and the same GeoJSON as text in XML.",
        anyOf=[{"type": "object"}, {"type": "string", "contentMediaType": "application/geo+json"}],
    )


class AreaItem(BaseModel):
    """An item of GET areas."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"xml": {"name": "area"}})

    code: str
    name: str
    kind: str
    boundary_set: str
    current: bool
    geometry: dict[str, object] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_geometry_schema
    )


GEOJSON = "application/geo+json"
_POSITIONS = {"type": "array", "items": {"type": "number"}, "minItems": 2}
_FEATURE_COLLECTION: dict[str, Any] = {
    "type": "object",
    "description": "RFC 7946 FeatureCollection of the areas (EPSG:4326).",
    "required": ["type", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id", "properties", "geometry"],
                "properties": {
                    "type": {"const": "Feature"},
                    "id": {"type": "string"},
                    "properties": {
                        "type": "object",
                        "required": ["code", "name", "kind", "boundary_set", "current"],
                        "properties": {
                            "code": {"type": "string"},
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "boundary_set": {"type": "string"},
                            "current": {"type": "boolean"},
                        },
                    },
                    "geometry": {
                        "type": "object",
                        "required": ["type", "coordinates"],
                        "properties": {
                            "type": {"enum": ["Polygon", "MultiPolygon"]},
                            "coordinates": {"type": "array"},
                        },
                    },
                },
            },
        },
    },
}


@router.get(
    "/areas.geojson",
    operation_id="areas-geojson",
    response_class=Response,
    responses={
        200: {
            "description": "The areas as GeoJSON (an empty collection when the jurisdiction "
            "has none).",
            "content": {GEOJSON: {"schema": _FEATURE_COLLECTION}},
            "headers": cache_headers(languages=False),
        },
        **not_modified_response(languages=False),
        **{status: error_response(status, xml=False) for status in (400, 404, 429, 500, 503)},
    },
    openapi_extra=documented(*AREA_FILTERS[:2], JURISDICTION_ID, *CONDITIONAL_HEADERS),
)
async def get_areas_geojson(
    request: Request,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
) -> Response:
    """The areas of the jurisdiction's current sets as a GeoJSON FeatureCollection."""
    problems: list[str] = []
    boundary_set, kind = query.one("boundary_set", problems), query.one("kind", problems)
    if problems:
        raise InvalidParameter(*problems)
    async with read_connection(state.engine) as conn:
        version = await areas_version(conn, jurisdiction)

        async def make() -> Response:
            body = await area_features(conn, jurisdiction, boundary_set=boundary_set, kind=kind)
            return Response(body, media_type=GEOJSON)

        return await cached_answer(
            request,
            app_memo(request, "open311_areas_documents"),
            (jurisdiction.pk, jurisdiction.code, version.sets, boundary_set, kind, "geojson"),
            version.changed_at or state.started_at,
            state.settings.cache.control,
            {},
            make,
        )


@router.get(
    "/areas.{format}",
    operation_id="areas-list",
    response_class=Response,
    responses={
        **responses(
            AreaItem,
            root="areas",
            many=True,
            errors=(400,),
            description="The areas (empty when the jurisdiction has none).",
            examples={"wards": ("Two wards", examples.AREAS)},
            headers=cache_headers(languages=False),
        ),
        **not_modified_response(languages=False),
    },
    openapi_extra=documented(*AREA_FILTERS, JURISDICTION_ID, *CONDITIONAL_HEADERS),
)
async def get_areas(
    request: Request,
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
) -> Response:
    """Wards (and other areas) the jurisdiction's requests are geocoded to."""
    problems: list[str] = []
    boundary_set, kind = query.one("boundary_set", problems), query.one("kind", problems)
    wanted = (query.one("geometry", problems) or "").strip().lower() in ("true", "1")
    if problems:
        raise InvalidParameter(*problems)
    async with read_connection(state.engine) as conn:
        version = await areas_version(conn, jurisdiction)

        async def make() -> Response:
            items = await list_areas(
                conn, jurisdiction, boundary_set=boundary_set, kind=kind, geometry=wanted
            )
            return render("areas", items, fmt)

        return await cached_answer(
            request,
            app_memo(request, "open311_areas_documents"),
            (jurisdiction.pk, jurisdiction.code, version.sets, boundary_set, kind, wanted, fmt),
            version.changed_at or state.started_at,
            state.settings.cache.control,
            {},
            make,
        )

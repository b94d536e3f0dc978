"""Extension: the areas (wards) of a jurisdiction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from app.api import examples
from app.api.deps import FormatDep, JurisdictionDep, QueryDep, StateDep
from app.api.docs import responses
from app.api.lean import LeanRoute
from app.api.responses import render
from app.db import read_connection
from app.domain.areas import list_areas
from app.domain.requests import first

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


@router.get(
    "/areas.{format}",
    operation_id="areas-list",
    response_class=Response,
    responses=responses(
        AreaItem,
        root="areas",
        many=True,
        errors=(400,),
        description="The areas (empty when the jurisdiction has none).",
        examples={"wards": ("Two wards", examples.AREAS)},
    ),
)
async def get_areas(
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    boundary_set: Annotated[
        str | None,
        Query(
            description="A named boundary set (default: the current sets); unknown: 404.",
            examples=["wards-2018"],
        ),
    ] = None,
    kind: Annotated[
        str | None, Query(description="Only areas of this kind.", examples=["ward"])
    ] = None,
    geometry: Annotated[
        str | None,
        Query(description="true (or 1) adds each area's GeoJSON geometry.", examples=["true"]),
    ] = None,
) -> Response:
    """Wards (and other areas) the jurisdiction's requests are geocoded to."""
    wanted = (first(query, "geometry") or "").strip().lower() in ("true", "1")
    async with read_connection(state.engine) as conn:
        items = await list_areas(
            conn,
            jurisdiction,
            boundary_set=first(query, "boundary_set"),
            kind=first(query, "kind"),
            geometry=wanted,
        )
    return render("areas", items, fmt)

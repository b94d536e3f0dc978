"""Extension: the areas (wards) of a jurisdiction."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.responses import Response

from app.api.deps import FormatDep, JurisdictionDep, QueryDep, StateDep, first
from app.api.docs import responses
from app.api.responses import render
from app.domain.areas import list_areas

router = APIRouter(tags=["areas (extension)"])


class AreaItem(BaseModel):
    """An item of GET areas."""

    code: str
    name: str
    kind: str
    boundary_set: str
    current: bool
    geometry: dict[str, object] | None = None


@router.get(
    "/areas.{format}",
    operation_id="areas-list",
    response_class=Response,
    responses=responses(AreaItem, many=True, errors=(400, 404), description="The areas."),
)
async def get_areas(
    fmt: FormatDep,
    state: StateDep,
    jurisdiction: JurisdictionDep,
    query: QueryDep,
    boundary_set: Annotated[
        str | None, Query(description="A named boundary set (default: the current sets).")
    ] = None,
    kind: Annotated[str | None, Query(description="Only areas of this kind, e.g. ward.")] = None,
    geometry: Annotated[
        str | None, Query(description="true adds each area's GeoJSON geometry.")
    ] = None,
) -> Response:
    """Wards (and other areas) the jurisdiction's requests are geocoded to."""
    wanted = (first(query, "geometry") or "").strip().lower() in ("true", "1")
    async with state.engine.connect() as conn:
        items = await list_areas(
            conn,
            jurisdiction,
            boundary_set=first(query, "boundary_set"),
            kind=first(query, "kind"),
            geometry=wanted,
        )
    return render("areas", items, fmt)

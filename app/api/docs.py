"""OpenAPI declarations shared by the routes: both media types, every error status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.georeport.models import Error

_XML = {"schema": {"type": "string", "contentMediaType": "text/xml"}}


def _schema(model: type[BaseModel], many: bool) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"type": "array", "items": ref} if many else ref


ERROR_TEXT = {
    400: "Invalid parameters, or jurisdiction_id missing on a multi-jurisdiction server.",
    403: "Missing or invalid api_key.",
    404: "Unknown jurisdiction, resource, or format suffix.",
    413: "Request body too large.",
}


def responses(
    model: type[BaseModel], *, many: bool, errors: tuple[int, ...], description: str
) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route: 200 in XML and JSON plus GeoReport errors."""
    out: dict[int | str, dict[str, Any]] = {
        200: {
            "description": description,
            "content": {"application/json": {"schema": _schema(model, many)}, "text/xml": _XML},
        }
    }
    for status in errors:
        out[status] = {
            "description": ERROR_TEXT[status],
            "content": {
                "application/json": {"schema": _schema(Error, True)},
                "text/xml": _XML,
            },
        }
    return out

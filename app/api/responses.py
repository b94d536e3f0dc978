"""The one place a response format is chosen: ``render(root, value, fmt)``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from app.georeport.codec import encode_json, encode_xml
from app.georeport.formats import Format


def render(
    root: str,
    value: Any,
    fmt: Format,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A GeoReport document as an XML or JSON response with the spec's Content-Type."""
    body = encode_xml(root, value) if fmt is Format.xml else encode_json(value)
    return Response(
        content=body, status_code=status_code, headers=headers, media_type=fmt.media_type
    )


def render_errors(
    errors: list[tuple[int, str]],
    fmt: Format,
    status_code: int,
    headers: dict[str, str] | None = None,
) -> Response:
    """A GeoReport ``errors`` document."""
    value = [{"code": code, "description": description} for code, description in errors]
    return render("errors", value, fmt, status_code=status_code, headers=headers)

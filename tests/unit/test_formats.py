"""Format selection from the path suffix."""

from __future__ import annotations

import pytest

from app.georeport.formats import Format, format_from_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/open311/v2/services.json", Format.json),
        ("/open311/v2/services.JSON", Format.json),
        ("/open311/v2/services/a.b.json", Format.json),
        ("/open311/v2/services.xml", Format.xml),
        ("/open311/v2/services", Format.xml),
        ("/open311/v2/services.html", Format.xml),
        ("/open311/v2/areas.geojson", Format.json),
        ("/open311/v2/areas.GeoJSON", Format.json),
        ("/", Format.xml),
    ],
)
def test_format_from_path(path: str, expected: Format) -> None:
    assert format_from_path(path) is expected


def test_media_types_carry_charset() -> None:
    assert Format.xml.media_type == "text/xml; charset=utf-8"
    assert Format.json.media_type == "application/json; charset=utf-8"

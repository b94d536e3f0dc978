"""Output formats selected by the path suffix (``.xml`` / ``.json``)."""

from __future__ import annotations

from enum import StrEnum


class Format(StrEnum):
    """A GeoReport v2 response format."""

    xml = "xml"
    json = "json"

    @classmethod
    def _missing_(cls, value: object) -> Format | None:
        # Suffixes are accepted case-insensitively (``.JSON``); we always emit lowercase.
        if isinstance(value, str):
            lowered = value.lower()
            for member in cls:
                if member.value == lowered:
                    return member
        return None

    @property
    def media_type(self) -> str:
        """The Content-Type for this format, with the charset the spec requires."""
        return MEDIA_TYPES[self]


MEDIA_TYPES: dict[Format, str] = {
    Format.xml: "text/xml; charset=utf-8",
    Format.json: "application/json; charset=utf-8",
}


def format_from_path(path: str) -> Format:
    """The format named by the last ``.suffix`` of a path; XML when there is none or it is unknown.

    JSON for ``.geojson``, and for any suffix under ``/exports/``. XML is the one
    format every GeoReport client must understand, so errors on paths without a usable suffix
    are rendered in XML.
    """
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if "." in last:
        suffix = last.rsplit(".", 1)[1]
        # A GeoJSON document's errors are JSON: what its client reads; so are an export's
        # (CSV and NDJSON have no error document of their own), whatever their suffix.
        # Elsewhere an unknown suffix such as requests.csv stays an XML 404 (spec digest
        # §12 #36).
        if suffix.lower() == "geojson" or "/exports/" in path:
            return Format.json
        try:
            return Format(suffix)
        except ValueError:
            return Format.xml
    return Format.xml

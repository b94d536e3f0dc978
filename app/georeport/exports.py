"""The formats of request exports (CSV, GeoJSON, NDJSON), written in parts.

An export is written as a head, the encodings of batches of wire items, and a tail, so that
the whole document is never held in memory (``app.domain.exports``). Pure functions: no I/O.

CSV: one header line, then one line per request (RFC 4180, UTF-8, CRLF line ends). With
extensions, the ``extended_attributes`` become columns of their own. A text value that a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) is written with a leading apostrophe (OWASP's advice against CSV injection);
numbers and datetimes are never changed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Final

from app.georeport import geojson
from app.georeport.models import REQUEST_FIELDS


class ExportFormat(StrEnum):
    """A format of ``GET exports/requests.{format}`` and of ``open311 export``."""

    csv = "csv"
    geojson = "geojson"
    ndjson = "ndjson"

    @property
    def media_type(self) -> str:
        """The Content-Type of an export in this format."""
        return MEDIA_TYPES[self]


MEDIA_TYPES: Final = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.geojson: geojson.MEDIA_TYPE,
    ExportFormat.ndjson: "application/x-ndjson",
}
# The CSV columns of every export, in order (the public fields of a request's wire item).
CSV_COLUMNS: Final = REQUEST_FIELDS
# With extensions, these columns follow (the fields of ``extended_attributes``).
CSV_EXTENSION_COLUMNS: Final = ("ward", "ward_name", "channel", "first_contact_resolution")
# Fields written as given: a spreadsheet formula cannot start them.
_NOT_TEXT: Final = frozenset(
    {"service_request_id", "requested_datetime", "updated_datetime", "expected_datetime"}
)
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and name not in _NOT_TEXT and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class Encoder:
    """Writes one export: ``head()``, ``batch(items)`` for each batch, ``tail()``."""

    def __init__(self, fmt: ExportFormat, *, extensions: bool = False) -> None:
        self.format = fmt
        self.extensions = extensions
        self._first = True
        self.columns = CSV_COLUMNS + (CSV_EXTENSION_COLUMNS if extensions else ())

    def head(self) -> bytes:
        """What the document starts with."""
        if self.format is ExportFormat.csv:
            return self._csv([list(self.columns)])
        if self.format is ExportFormat.geojson:
            return geojson.COLLECTION_HEAD.encode()
        return b""

    def batch(self, items: Sequence[dict[str, Any]]) -> bytes:
        """The encoding of a batch of wire items."""
        if not items:
            return b""
        if self.format is ExportFormat.csv:
            return self._csv([self._csv_row(item) for item in items])
        if self.format is ExportFormat.ndjson:
            return "".join(_dumps(item) + "\n" for item in items).encode()
        text = ",\n".join(_dumps(geojson.request_feature(item)) for item in items)
        if not self._first:
            text = ",\n" + text
        self._first = False
        return text.encode()

    def tail(self) -> bytes:
        """What the document ends with."""
        if self.format is ExportFormat.geojson:
            return geojson.COLLECTION_TAIL.encode()
        return b""

    def _csv_row(self, item: dict[str, Any]) -> list[Any]:
        row = [_cell(name, item.get(name)) for name in CSV_COLUMNS]
        if self.extensions:
            extra = item.get("extended_attributes") or {}
            row += [_cell(name, extra.get(name)) for name in CSV_EXTENSION_COLUMNS]
        return row

    @staticmethod
    def _csv(rows: list[list[Any]]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        return out.getvalue().encode()

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
# (Also the formula guard of the SQL that writes exports on PostgreSQL, app.store.exports.)
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and name not in _NOT_TEXT and value.startswith(FORMULA_START):
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


class CopiedRows:
    """Makes what PostgreSQL's COPY of an export writes (``app.store.exports``: the rows
    formatted by the database) into exactly the bytes ``Encoder`` writes for the same items.

    COPY ends CSV rows in "\\n" where ``Encoder`` writes "\\r\\n" (a "\\n" inside a quoted field
    stays as it is: quotes are counted across chunks); it writes a GeoJSON Feature per line
    where ``Encoder`` joins them with ",\\n"; NDJSON lines are already the same. Chunks may
    end anywhere."""

    def __init__(self, fmt: ExportFormat, *, extensions: bool = False) -> None:
        self.encoder = Encoder(fmt, extensions=extensions)
        self.quoted = False  # CSV: the last chunk ended inside a quoted field
        self.held = b""  # GeoJSON: the last bytes, held back until more come

    def head(self) -> bytes:
        """What the document starts with."""
        return self.encoder.head()

    def chunk(self, data: bytes) -> bytes:
        """The bytes of a chunk of COPY output (some may be held back till the next)."""
        fmt = self.encoder.format
        if fmt is ExportFormat.ndjson:
            return data
        if fmt is ExportFormat.geojson:
            # A line break in COPY's output ends a Feature (JSON text holds none raw); the
            # ",\n" after the last one is never written.
            data = self.held + data.replace(b"\n", b",\n")
            self.held = data[-2:]
            return data[:-2]
        if b'"' not in data:
            return data if self.quoted else data.replace(b"\n", b"\r\n")
        parts = data.split(b'"')  # every other part is inside quotes ("" toggles twice)
        for index in range(1 if self.quoted else 0, len(parts), 2):
            parts[index] = parts[index].replace(b"\n", b"\r\n")
        if len(parts) % 2 == 0:
            self.quoted = not self.quoted
        return b'"'.join(parts)

    def tail(self) -> bytes:
        """What the document ends with."""
        return self.encoder.tail()

"""Files of address points (an address string and a WGS84 point each) read into records.

Three formats, each read whole after a size check (an operator's import, not a caller's
input; the limits keep a wrong file from exhausting memory):

* CSV with a header: the address in ``ADDRESS_FIELDS`` (or a house-number and a street
  column, e.g. Toronto's ``ADDRESS_NUMBER`` + ``LINEAR_NAME_FULL``), an optional locality
  (``MUNICIPALITY``, ``CITY``) appended after a comma, and the point in a latitude and a
  longitude column or a ``geometry`` column (GeoJSON or WKT point). Names are matched
  without regard to case; the caller may name the columns instead.
* GeoJSON: a FeatureCollection of Point (or one-point MultiPoint) features, the address in a
  property found the same way.
* GeoReport v2 requests (JSON): ``{"service_requests": [...]}`` or a list, using each
  request's ``address`` and ``lat``/``long`` — how the Toronto demo builds its gazetteer
  from the captured requests.

A row without an address or without a point is skipped and counted; a row whose values are
wrong (a latitude that is not a number, out of range, an address longer than
``MAX_ADDRESS_LENGTH``) stops the import with an ``AddressPointsError`` naming the row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import shapely

from app.geo.addresses import MAX_ADDRESS_LENGTH
from app.geo.points import check_lat_long

MAX_FILE_BYTES = 512 << 20
MAX_RECORDS = 2_000_000

ADDRESS_FIELDS = ("address", "address_full", "full_address", "address_string", "addr")
NUMBER_FIELDS = ("address_number", "house_number", "civic_number", "number", "housenumber")
STREET_FIELDS = ("linear_name_full", "street_name", "street", "road")
LOCALITY_FIELDS = ("municipality", "city", "locality")
LAT_FIELDS = ("lat", "latitude", "y")
LON_FIELDS = ("lon", "long", "lng", "longitude", "x")
GEOMETRY_FIELDS = ("geometry", "geom", "the_geom", "wkt")


class AddressPointsError(ValueError):
    """A file of address points that cannot be read (the message says where and why)."""


@dataclass(frozen=True, slots=True)
class AddressRecord:
    """One address and its point (WGS84)."""

    address: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class AddressPoints:
    """The records read from a file, and how many rows were skipped (no address or point)."""

    records: list[AddressRecord]
    skipped: int


@dataclass(frozen=True, slots=True)
class _Columns:
    address: str | None
    number: str | None
    street: str | None
    locality: str | None
    lat: str | None
    lon: str | None
    geometry: str | None


def read_address_points(
    path: Path,
    *,
    address_field: str | None = None,
    lat_field: str | None = None,
    lon_field: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_records: int = MAX_RECORDS,
) -> AddressPoints:
    """Records from a CSV, GeoJSON or GeoReport requests file (by its suffix and content)."""
    data = _read_bytes(path, max_bytes)
    if path.suffix.lower() in {".csv", ".txt"}:
        return parse_csv(
            data,
            address_field=address_field,
            lat_field=lat_field,
            lon_field=lon_field,
            max_records=max_records,
            source=path.name,
        )
    document = _load_json(data, path.name)
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        return parse_geojson(
            document, address_field=address_field, max_records=max_records, source=path.name
        )
    if isinstance(document, list) or (
        isinstance(document, dict) and "service_requests" in document
    ):
        return parse_requests(document, max_records=max_records, source=path.name)
    raise AddressPointsError(
        f"{path.name}: neither CSV (by its suffix), a GeoJSON FeatureCollection nor GeoReport "
        "service requests."
    )


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise AddressPointsError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if len(data) > max_bytes:
        raise AddressPointsError(f"{path.name}: larger than the limit of {max_bytes} bytes.")
    return data


def _load_json(data: bytes, source: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise AddressPointsError(f"{source}: not valid JSON ({exc}).") from exc


def parse_csv(
    data: bytes,
    *,
    address_field: str | None = None,
    lat_field: str | None = None,
    lon_field: str | None = None,
    max_records: int = MAX_RECORDS,
    source: str = "CSV",
) -> AddressPoints:
    """Records from CSV bytes (UTF-8, a header row first)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AddressPointsError(f"{source}: not UTF-8 (byte {exc.start}).") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise AddressPointsError(f"{source}: unreadable header ({exc}).") from exc
    if not header:
        raise AddressPointsError(f"{source}: empty (a header row is needed).")
    columns = _columns(header, address_field, lat_field, lon_field, source)
    records: list[AddressRecord] = []
    skipped = 0
    try:
        for row in reader:
            where = f"{source} line {reader.line_num}"
            address = _address(row, columns)
            point = _csv_point(row, columns, where)
            if not address or point is None:
                skipped += 1
                continue
            records.append(_record(address, point, where))
            if len(records) > max_records:
                raise AddressPointsError(f"{source}: more than {max_records} records.")
    except csv.Error as exc:
        # The row that failed starts on the line after the last one read.
        raise AddressPointsError(f"{source} line {reader.line_num + 1}: {exc}.") from exc
    return AddressPoints(records, skipped)


def _find(header: Iterable[str], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    by_name = {name.strip().lower(): name for name in header if name}
    if wanted is not None:
        return by_name.get(wanted.strip().lower())
    return next((by_name[c] for c in candidates if c in by_name), None)


def _columns(
    header: Iterable[str],
    address_field: str | None,
    lat_field: str | None,
    lon_field: str | None,
    source: str,
) -> _Columns:
    names = list(header)
    columns = _Columns(
        address=_find(names, address_field, ADDRESS_FIELDS),
        number=_find(names, None, NUMBER_FIELDS),
        street=_find(names, None, STREET_FIELDS),
        locality=_find(names, None, LOCALITY_FIELDS),
        lat=_find(names, lat_field, LAT_FIELDS),
        lon=_find(names, lon_field, LON_FIELDS),
        geometry=_find(names, None, GEOMETRY_FIELDS),
    )
    if address_field is not None and columns.address is None:
        raise AddressPointsError(f"{source}: no column named {address_field!r}.")
    if columns.address is None and (columns.number is None or columns.street is None):
        raise AddressPointsError(
            f"{source}: no address column (looked for {', '.join(ADDRESS_FIELDS)}, or a "
            f"number ({', '.join(NUMBER_FIELDS)}) and a street ({', '.join(STREET_FIELDS)}))."
        )
    if (columns.lat is None or columns.lon is None) and columns.geometry is None:
        raise AddressPointsError(
            f"{source}: no point columns (looked for latitude {', '.join(LAT_FIELDS)} and "
            f"longitude {', '.join(LON_FIELDS)}, or {', '.join(GEOMETRY_FIELDS)})."
        )
    return columns


def _text(row: Mapping[str, Any], column: str | None) -> str:
    value = row.get(column) if column is not None else None
    return " ".join(str(value).split()) if value is not None else ""


def _address(row: Mapping[str, Any], columns: _Columns) -> str:
    address = _text(row, columns.address)
    if not address:
        number, street = _text(row, columns.number), _text(row, columns.street)
        address = f"{number} {street}".strip() if street else ""
    locality = _text(row, columns.locality)
    # A locality column is appended only to a bare street part (no comma yet).
    if address and locality and "," not in address:
        address = f"{address}, {locality}"
    return address


def _number(value: Any, what: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AddressPointsError(f"{where}: {what} {value!r} is not a number.")
    try:
        number = float(value)
    except ValueError as exc:
        raise AddressPointsError(f"{where}: {what} {value!r} is not a number.") from exc
    if not math.isfinite(number):
        raise AddressPointsError(f"{where}: {what} {value!r} is not a finite number.")
    return number


def _csv_point(row: Mapping[str, Any], columns: _Columns, where: str) -> tuple[float, float] | None:
    if columns.lat is not None and columns.lon is not None:
        lat = _number(row.get(columns.lat), "latitude", where)
        lon = _number(row.get(columns.lon), "longitude", where)
        if lat is not None and lon is not None:
            return lat, lon
        if columns.geometry is None:
            return None
    text = _text(row, columns.geometry)
    if not text:
        return None
    if text.startswith("{"):
        try:
            geometry = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise AddressPointsError(f"{where}: geometry is not valid JSON.") from exc
        return _geojson_point(geometry, where)
    try:
        shape = shapely.from_wkt(text)
    except shapely.errors.GEOSException as exc:
        raise AddressPointsError(f"{where}: geometry {text[:40]!r} is not WKT.") from exc
    return _geojson_point(shapely.geometry.mapping(shape), where)


def _geojson_point(geometry: Any, where: str) -> tuple[float, float] | None:
    if geometry is None:
        return None
    if not isinstance(geometry, dict):
        raise AddressPointsError(f"{where}: geometry is not a GeoJSON object.")
    coordinates = geometry.get("coordinates")
    kind = geometry.get("type")
    if kind == "MultiPoint" and isinstance(coordinates, list | tuple) and len(coordinates) == 1:
        kind, coordinates = "Point", coordinates[0]
    if kind != "Point":
        raise AddressPointsError(f"{where}: geometry is a {kind}, not a Point.")
    if not isinstance(coordinates, list | tuple) or len(coordinates) < 2:
        raise AddressPointsError(f"{where}: a Point needs [longitude, latitude].")
    lon = _number(coordinates[0], "longitude", where)
    lat = _number(coordinates[1], "latitude", where)
    return (lat, lon) if lat is not None and lon is not None else None


def _record(address: str, point: tuple[float, float], where: str) -> AddressRecord:
    if len(address) > MAX_ADDRESS_LENGTH:
        raise AddressPointsError(
            f"{where}: the address is longer than {MAX_ADDRESS_LENGTH} characters."
        )
    lat, lon = point
    if problems := check_lat_long(lat, lon):
        raise AddressPointsError(f"{where}: {' '.join(problems)}")
    return AddressRecord(address, lat, lon)


def parse_geojson(
    document: Any,
    *,
    address_field: str | None = None,
    max_records: int = MAX_RECORDS,
    source: str = "GeoJSON",
) -> AddressPoints:
    """Records from a parsed GeoJSON FeatureCollection of points."""
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list):
        raise AddressPointsError(f"{source}: a FeatureCollection needs a features list.")
    if len(features) > max_records:
        raise AddressPointsError(f"{source}: more than {max_records} records.")
    records: list[AddressRecord] = []
    skipped = 0
    columns: _Columns | None = None
    for index, feature in enumerate(features):
        where = f"{source} feature {index}"
        if not isinstance(feature, dict):
            raise AddressPointsError(f"{where}: not a GeoJSON Feature.")
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise AddressPointsError(f"{where}: properties is not an object.")
        if not properties:
            skipped += 1
            continue
        # The first feature with properties names the columns (a collection's features
        # share their properties' names).
        if columns is None:
            columns = _property_columns(properties, address_field, where)
        address = _address(properties, columns)
        point = _geojson_point(feature.get("geometry"), where)
        if not address or point is None:
            skipped += 1
            continue
        records.append(_record(address, point, where))
    return AddressPoints(records, skipped)


def _property_columns(
    properties: dict[str, Any], address_field: str | None, where: str
) -> _Columns:
    names = list(properties)
    columns = _Columns(
        address=_find(names, address_field, ADDRESS_FIELDS),
        number=_find(names, None, NUMBER_FIELDS),
        street=_find(names, None, STREET_FIELDS),
        locality=_find(names, None, LOCALITY_FIELDS),
        lat=None,
        lon=None,
        geometry=None,
    )
    if columns.address is None and (columns.number is None or columns.street is None):
        raise AddressPointsError(
            f"{where}: no address property (looked for {', '.join(ADDRESS_FIELDS)}, or a "
            f"number ({', '.join(NUMBER_FIELDS)}) and a street ({', '.join(STREET_FIELDS)}))."
        )
    return columns


def parse_requests(
    document: Any, *, max_records: int = MAX_RECORDS, source: str = "requests"
) -> AddressPoints:
    """Records from parsed GeoReport v2 requests (``address`` and ``lat``/``long``)."""
    requests = document.get("service_requests") if isinstance(document, dict) else document
    if not isinstance(requests, list):
        raise AddressPointsError(f"{source}: service_requests is not a list.")
    if len(requests) > max_records:
        raise AddressPointsError(f"{source}: more than {max_records} records.")
    records: list[AddressRecord] = []
    skipped = 0
    for index, request in enumerate(requests):
        where = f"{source} request {index}"
        if not isinstance(request, dict):
            raise AddressPointsError(f"{where}: not an object.")
        address = _text(request, "address")
        lat = _number(request.get("lat"), "lat", where)
        lon = _number(request.get("long"), "long", where)
        if not address or lat is None or lon is None:
            skipped += 1
            continue
        records.append(_record(address, (lat, lon), where))
    return AddressPoints(records, skipped)

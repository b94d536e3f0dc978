"""Reading address points: CSV, GeoJSON and GeoReport requests, with bounded sizes and clear
errors. The files are written from the captured Toronto requests in each test."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from app.geo.address_points import (
    AddressPointsError,
    AddressRecord,
    read_address_points,
)
from app.geo.addresses import MAX_ADDRESS_LENGTH, StreetAddress, parse_address
from app.geo.gazetteer import Gazetteer
from tests.geo.toronto import REQUESTS_FILE, captured


def toronto_rows() -> list[dict[str, str]]:
    """The captured street addresses as rows of Toronto's Address Points file (its column
    names: ADDRESS_NUMBER, LINEAR_NAME_FULL, MUNICIPALITY, LATITUDE, LONGITUDE)."""
    rows = []
    for item in captured():
        if item.is_intersection:
            continue
        number, _, street = item.street_part.partition(" ")
        municipality = item.address.split(",")[1].strip()
        rows.append(
            {
                "ADDRESS_POINT_ID": str(len(rows) + 1),
                "ADDRESS_NUMBER": number,
                "LINEAR_NAME_FULL": street,
                "MUNICIPALITY": municipality,
                "LATITUDE": repr(item.lat),
                "LONGITUDE": repr(item.lon),
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_toronto_style_csv_with_number_street_and_municipality(tmp_path: Path) -> None:
    rows = toronto_rows()
    points = read_address_points(write_csv(tmp_path / "address_points.csv", rows))
    assert points.skipped == 0
    assert len(points.records) == len(rows)
    for row, record in zip(rows, points.records, strict=True):
        assert record.lat == float(row["LATITUDE"])
        assert record.lon == float(row["LONGITUDE"])
        parsed = parse_address(record.address)
        assert isinstance(parsed, StreetAddress)
        assert parsed.number == row["ADDRESS_NUMBER"].partition("-")[0].upper()
        expected_locality = row["MUNICIPALITY"].upper().removeprefix("FORMER ") or None
        assert parsed.locality == expected_locality


def test_a_gazetteer_from_csv_finds_what_one_from_the_requests_finds(tmp_path: Path) -> None:
    from_csv = Gazetteer(read_address_points(write_csv(tmp_path / "a.csv", toronto_rows())).records)
    from_json = Gazetteer(read_address_points(REQUESTS_FILE).records)
    for item in captured():
        if item.is_intersection:
            continue
        one, other = from_csv.locate(item.address), from_json.locate(item.address)
        assert one is not None
        assert other is not None
        assert (one.lat, one.lon, one.address) == (other.lat, other.lon, other.address)


def test_csv_with_an_address_column_and_a_geometry_column(tmp_path: Path) -> None:
    items = [c for c in captured() if not c.is_intersection][:20]
    rows = []
    for index, item in enumerate(items):
        geometry = (
            f"POINT ({item.lon} {item.lat})"
            if index % 2
            else json.dumps({"type": "MultiPoint", "coordinates": [[item.lon, item.lat]]})
        )
        rows.append({"Address": item.address, "geometry": geometry})
    points = read_address_points(write_csv(tmp_path / "g.csv", rows))
    assert [(r.address, r.lat, r.lon) for r in points.records] == [
        (i.address, i.lat, i.lon) for i in items
    ]


def test_named_columns_win(tmp_path: Path) -> None:
    item = captured()[0]
    rows = [{"where": item.address, "north": str(item.lat), "east": str(item.lon), "x": "1"}]
    path = write_csv(tmp_path / "named.csv", rows)
    points = read_address_points(path, address_field="WHERE", lat_field="north", lon_field="east")
    assert points.records == [AddressRecord(item.address, item.lat, item.lon)]
    with pytest.raises(AddressPointsError, match="no column named 'street'"):
        read_address_points(path, address_field="street")


def test_rows_without_an_address_or_a_point_are_skipped_and_counted(tmp_path: Path) -> None:
    item = captured()[0]
    rows = [
        {"address": item.address, "lat": str(item.lat), "lon": str(item.lon)},
        {"address": "", "lat": str(item.lat), "lon": str(item.lon)},
        {"address": item.address, "lat": "", "lon": str(item.lon)},
        {"address": item.address, "lat": " ", "lon": " "},
    ]
    points = read_address_points(write_csv(tmp_path / "gaps.csv", rows))
    assert len(points.records) == 1
    assert points.skipped == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"address": "1 Elm St", "lat": "north", "lon": "-79.4"}, r"line 3: latitude 'north'"),
        (
            {"address": "1 Elm St", "lat": "43.6", "lon": "nan"},
            r"line 3: longitude 'nan' is not a fin",
        ),
        ({"address": "1 Elm St", "lat": "95", "lon": "-79.4"}, r"line 3: lat must be"),
        ({"address": "1 Elm St", "lat": "43.6", "lon": "-190"}, r"line 3: long must be"),
        (
            {"address": "1 " + "E" * MAX_ADDRESS_LENGTH, "lat": "43.6", "lon": "-79.4"},
            rf"line 3: the address is longer than {MAX_ADDRESS_LENGTH}",
        ),
    ],
)
def test_a_wrong_value_stops_the_import_naming_the_line(
    tmp_path: Path, row: dict[str, str], message: str
) -> None:
    good = {"address": "2 Elm St", "lat": "43.6", "lon": "-79.4"}
    path = write_csv(tmp_path / "bad.csv", [good, row])
    with pytest.raises(AddressPointsError, match=message):
        read_address_points(path)


def test_csv_structure_errors(tmp_path: Path) -> None:
    no_address = write_csv(tmp_path / "a.csv", [{"lat": "43.6", "lon": "-79.4"}])
    with pytest.raises(AddressPointsError, match="no address column"):
        read_address_points(no_address)
    no_point = write_csv(tmp_path / "b.csv", [{"address": "1 Elm St", "ward": "3"}])
    with pytest.raises(AddressPointsError, match="no point columns"):
        read_address_points(no_point)
    empty = tmp_path / "c.csv"
    empty.write_bytes(b"")
    with pytest.raises(AddressPointsError, match="empty"):
        read_address_points(empty)
    latin = tmp_path / "d.csv"
    latin.write_bytes("address,lat,lon\n1 Côte St,43.6,-79.4\n".encode("latin-1"))
    with pytest.raises(AddressPointsError, match="not UTF-8"):
        read_address_points(latin)
    quoted = tmp_path / "e.csv"
    quoted.write_text('address,lat,lon\n"1 Elm St"x,43.6,-79.4\n', encoding="utf-8")
    with pytest.raises(AddressPointsError, match="line 2"):
        read_address_points(quoted)
    wkt = write_csv(tmp_path / "f.csv", [{"address": "1 Elm St", "geometry": "POINT (oops"}])
    with pytest.raises(AddressPointsError, match="not WKT"):
        read_address_points(wkt)
    line = write_csv(
        tmp_path / "g.csv", [{"address": "1 Elm St", "geometry": "LINESTRING (0 0, 1 1)"}]
    )
    with pytest.raises(AddressPointsError, match="LineString, not a Point"):
        read_address_points(line)


def test_sizes_are_bounded_before_parsing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "all.csv", toronto_rows())
    size = path.stat().st_size
    with pytest.raises(AddressPointsError, match=f"larger than the limit of {size - 1} bytes"):
        read_address_points(path, max_bytes=size - 1)
    assert read_address_points(path, max_bytes=size).records
    with pytest.raises(AddressPointsError, match="more than 10 records"):
        read_address_points(path, max_records=10)
    with pytest.raises(AddressPointsError, match="more than 10 records"):
        read_address_points(REQUESTS_FILE, max_records=10)
    with pytest.raises(AddressPointsError, match="cannot be read"):
        read_address_points(tmp_path / "missing.csv")


def geojson_of(items: list[tuple[str, float, float]]) -> dict[str, object]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"ADDRESS_FULL": address, "OBJECTID": n},
            }
            for n, (address, lat, lon) in enumerate(items)
        ],
    }


def test_geojson_points(tmp_path: Path) -> None:
    items = [(c.address, c.lat, c.lon) for c in captured()]
    path = tmp_path / "points.geojson"
    path.write_text(json.dumps(geojson_of(items)), encoding="utf-8")
    points = read_address_points(path)
    # Whitespace runs are collapsed ("Stephen Leacock  C.C.").
    assert [(r.address, r.lat, r.lon) for r in points.records] == [
        (" ".join(a.split()), lat, lon) for a, lat, lon in items
    ]
    assert points.skipped == 0
    with pytest.raises(AddressPointsError, match="more than 5 records"):
        read_address_points(path, max_records=5)


def test_geojson_errors(tmp_path: Path) -> None:
    def write(document: object, name: str = "x.geojson") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    feature = geojson_of([("1 Elm St", 43.6, -79.4)])
    polygon = json.loads(json.dumps(feature))
    polygon["features"][0]["geometry"] = {"type": "Polygon", "coordinates": []}
    with pytest.raises(AddressPointsError, match="feature 0: geometry is a Polygon"):
        read_address_points(write(polygon))
    short = json.loads(json.dumps(feature))
    short["features"][0]["geometry"]["coordinates"] = [-79.4]
    with pytest.raises(AddressPointsError, match=r"\[longitude, latitude\]"):
        read_address_points(write(short))
    no_address = json.loads(json.dumps(feature))
    no_address["features"][0]["properties"] = {"OBJECTID": 1}
    with pytest.raises(AddressPointsError, match="no address property"):
        read_address_points(write(no_address))
    with pytest.raises(AddressPointsError, match="features list"):
        read_address_points(write({"type": "FeatureCollection", "features": {}}))
    with pytest.raises(AddressPointsError, match="neither CSV"):
        read_address_points(write({"type": "Feature"}))
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(AddressPointsError, match="not valid JSON"):
        read_address_points(broken)


def test_georeport_requests_skip_those_without_a_point(tmp_path: Path) -> None:
    document = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))
    requests = document["service_requests"]
    as_list = tmp_path / "requests.json"
    as_list.write_text(json.dumps(requests), encoding="utf-8")
    points = read_address_points(as_list)
    with_point = [
        r for r in requests if r.get("address") and r["lat"] is not None and r["long"] is not None
    ]
    assert len(points.records) == len(with_point)
    assert points.skipped == len(requests) - len(with_point)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"address": "1 Elm St", "lat": True, "long": 1}]))
    with pytest.raises(AddressPointsError, match="request 0: lat True is not a number"):
        read_address_points(bad)

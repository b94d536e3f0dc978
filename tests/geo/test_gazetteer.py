"""The embedded gazetteer, built from the captured Toronto requests' own addresses and points.

Every expected point is read from the data: the first record (in file order) with the same
normalised address in the same locality, the nearest known house number on the street, the
recorded point of an intersection.
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest
from rapidfuzz import fuzz

from app.geo.address_points import AddressRecord, read_address_points
from app.geo.addresses import Intersection, StreetAddress, parse_address, street_parts
from app.geo.gazetteer import Gazetteer
from app.geo.geocode import Geocoder, NoGeocoder, build_geocoder
from app.geo.place import METRES_PER_DEGREE, haversine_m
from app.geo.settings import GeocodeSettings
from tests.geo.toronto import (
    REQUESTS_FILE,
    Captured,
    address_respellings,
    captured,
    intersection_respellings,
)


@cache
def records() -> tuple[AddressRecord, ...]:
    return tuple(read_address_points(REQUESTS_FILE).records)


@cache
def gazetteer() -> Gazetteer:
    return Gazetteer(records())


@cache
def parsed_records() -> tuple[tuple[Captured, StreetAddress | Intersection], ...]:
    out = []
    for item in captured():
        parsed = parse_address(item.address)
        assert parsed is not None
        out.append((item, parsed))
    return tuple(out)


def first_with_key(key: str, locality: str | None) -> Captured:
    """The first record with this address key in this locality (the one the gazetteer
    keeps)."""
    for item, parsed in parsed_records():
        if isinstance(parsed, StreetAddress) and (parsed.key, parsed.locality) == (key, locality):
            return item
    raise AssertionError(key)


def first_with_pair(pair: tuple[str, str], locality: str | None) -> Captured:
    for item, parsed in parsed_records():
        if (
            isinstance(parsed, Intersection)
            and set(pair) <= set(parsed.streets)
            and parsed.locality == locality
        ):
            return item
    raise AssertionError(pair)


def same_point(lat: float, lon: float, item: Captured | AddressRecord) -> bool:
    return haversine_m(lat, lon, item.lat, item.lon) < 0.01


def test_the_reader_keeps_every_request_with_an_address_and_a_point() -> None:
    points = read_address_points(REQUESTS_FILE)
    assert len(points.records) == len(captured())
    assert points.skipped == 1000 - len(captured())
    built = gazetteer()
    assert built.unparsed == 0
    counts = built.counts
    assert counts["addresses"] > 500
    assert counts["intersections"] > 250
    assert len(built) + built.duplicates == len(captured())


def test_every_captured_address_is_found_at_its_recorded_point() -> None:
    built = gazetteer()
    for item, parsed in parsed_records():
        place = built.locate(item.address)
        assert place is not None, item.address
        if isinstance(parsed, StreetAddress):
            expected = first_with_key(parsed.key, parsed.locality)
            assert place.kind == "address"
            assert place.address == parse_address(expected.address).normalized  # type: ignore[union-attr]
        else:
            pair = next(iter(parsed.pairs()))
            expected = first_with_pair(pair, parsed.locality)
            assert place.kind == "intersection"
            assert place.address == " & ".join(pair)
        assert same_point(place.lat, place.lon, expected), (item.address, place)
        assert place.confidence == 1.0
        assert place.label == expected.street_part


def points_for(key: str) -> list[Captured]:
    """The first record of each locality with this normalised address or pair of streets."""
    seen: dict[str | None, Captured] = {}
    for item, parsed in parsed_records():
        if isinstance(parsed, StreetAddress):
            if parsed.key == key:
                seen.setdefault(parsed.locality, item)
        elif set(key.split(" & ")) <= set(parsed.streets):
            seen.setdefault(parsed.locality, item)
    return list(seen.values())


def test_respelled_addresses_are_found_at_the_same_point() -> None:
    built = gazetteer()
    moved = 0
    for item in captured():
        wanted = built.locate(item.address)
        assert wanted is not None
        spellings = (
            intersection_respellings(item) if item.is_intersection else address_respellings(item)
        )
        candidates = points_for(parse_address(wanted.address).key)  # type: ignore[union-attr]
        for respelled in spellings:
            place = built.locate(respelled)
            assert place is not None, respelled
            if same_point(place.lat, place.lon, wanted):
                continue
            # No captured house address repeats in two localities; intersections do.
            assert item.is_intersection, respelled
            # The respelling changed the locality that told two places with one name apart
            # (Bloor St W meets Dundas St W twice): the one in the locality it names, else
            # one of them at half confidence — or a stored intersection of another pair of
            # its streets that is not ambiguous.
            found = [c for c in points_for(place.address) if same_point(place.lat, place.lon, c)]
            assert found, respelled
            pair = set(place.address.split(" & "))
            assert pair <= set(parse_address(item.address).streets), respelled  # type: ignore[union-attr]
            asked = parse_address(respelled)
            assert asked is not None
            if pair == set(wanted.address.split(" & ")) and asked.locality != place_locality(
                found[0]
            ):
                assert len(candidates) > 1
                assert place.confidence <= 0.5
            moved += 1
    assert moved < 100


async def test_the_gazetteer_is_a_geocoder() -> None:
    geocoder: Geocoder = gazetteer()
    item = next(c for c in captured() if not c.is_intersection)
    place = await geocoder.forward(item.address)
    assert place is not None
    assert same_point(place.lat, place.lon, first_with_key(place.address, place_locality(item)))
    near = await geocoder.reverse(item.lat, item.lon)
    assert near is not None
    assert near.distance_m == 0.0
    await geocoder.aclose()


def place_locality(item: Captured) -> str | None:
    parsed = parse_address(item.address)
    assert parsed is not None
    return parsed.locality


def street_houses() -> dict[str, list[tuple[int, int, Captured]]]:
    """Known house numbers (ranges) per street, from the data (first of each key)."""
    seen: set[str] = set()
    houses: dict[str, list[tuple[int, int, Captured]]] = defaultdict(list)
    for item, parsed in parsed_records():
        if isinstance(parsed, StreetAddress) and parsed.house is not None:
            if parsed.key in seen:
                continue
            seen.add(parsed.key)
            assert parsed.house_to is not None
            houses[parsed.street].append((parsed.house, parsed.house_to, item))
    return houses


def test_a_missing_house_number_takes_the_nearest_on_the_same_street() -> None:
    built = gazetteer()
    checked = 0
    for street, known in street_houses().items():
        numbers = {n for low, high, _ in known for n in range(low, high + 1)}
        for low, high, _ in known:
            for asked in (high + 2, max(1, low - 2)):
                if asked in numbers:
                    continue
                gaps = sorted(
                    (min(abs(asked - a), abs(asked - b)), (a - asked) % 2, n, i)
                    for n, (a, b, i) in enumerate(known)
                )
                if len(gaps) > 1 and gaps[0][:2] == gaps[1][:2]:
                    continue  # two neighbours as near: either is right
                place = built.locate(f"{asked} {street}")
                assert place is not None, (asked, street)
                assert same_point(place.lat, place.lon, gaps[0][3]), (asked, street)
                assert place.kind == "address"
                assert 0 < place.confidence < 1
                checked += 1
    assert checked > 500


def test_a_number_inside_a_captured_range_is_that_range() -> None:
    built = gazetteer()
    checked = 0
    for street, known in street_houses().items():
        numbers = {low for low, _, _ in known}
        for low, high, item in known:
            if high == low or low + 1 in numbers:
                continue
            place = built.locate(f"{low + 1} {street}")
            assert place is not None
            assert same_point(place.lat, place.lon, item)
            assert place.confidence == 0.95
            checked += 1
    assert checked >= 5


def test_a_house_number_far_from_every_known_one_is_not_found() -> None:
    built = Gazetteer(records(), max_number_gap=10)
    for street, known in list(street_houses().items())[:100]:
        highest = max(high for _, high, _ in known)
        assert built.locate(f"{highest + 12} {street}") is None


def key(street: str) -> str:
    """A street's name proper as the fuzzy match compares it (no THE, no spaces)."""
    parts = street_parts(street)
    assert parts is not None
    return parts.base.removeprefix("THE ").replace(" ", "")


def typo(name: str) -> str:
    """The name with one interior letter dropped."""
    middle = len(name) // 2
    return name[:middle] + name[middle + 1 :]


def test_a_misspelt_street_name_is_matched_fuzzily_and_conservatively() -> None:
    built = gazetteer()
    bases = {key(s) for s in street_houses()}
    checked = refused = 0
    for street, known in street_houses().items():
        parts = street_parts(street)
        assert parts is not None
        if len(parts.base) < 8 or " " in parts.base:
            continue
        wrong = typo(parts.base)
        # Expected only where the typo is close to this name alone (ratio ≥ 90).
        close = {b for b in bases if fuzz.ratio(wrong, b) >= 90}
        low, _, item = known[0]
        asked = f"{low} {parts.name.replace(parts.base, wrong)}"
        place = built.locate(asked)
        if close == {key(street)}:
            assert place is not None, asked
            assert same_point(place.lat, place.lon, item), asked
            assert place.confidence < 1
            checked += 1
        elif not close:
            assert place is None, asked
            refused += 1
    assert checked > 100


@pytest.mark.parametrize(
    "asked",
    ["1 Nowhere Rd", "12 Em St", "Nowhere Rd / Nothing Ave", "Zzzzz", "Unit 4, 99 Qqqqqq Ave"],
)
def test_what_is_not_there_is_not_found(asked: str) -> None:
    assert gazetteer().locate(asked) is None


def test_bare_street_names_resolve_intersections_by_their_streets() -> None:
    built = gazetteer()
    checked = 0
    for _, parsed in parsed_records():
        if not isinstance(parsed, Intersection) or len(parsed.streets) != 2:
            continue
        bare = []
        for street in parsed.streets:
            parts = street_parts(street)
            assert parts is not None
            bare.append(parts.base)
        # A name proper that ends like a type or direction ("The East" of The East Mall)
        # is no name on its own.
        if any(street_parts(b).base != b for b in bare):  # type: ignore[union-attr]
            continue
        if set(bare) & set(parsed.streets):
            continue  # a name without a type is already bare
        place = built.locate(" / ".join(bare))
        assert place is not None, bare
        # Some stored intersection of two streets with these names.
        streets = place.address.split(" & ")
        assert sorted(street_parts(s).base for s in streets) == sorted(bare)  # type: ignore[union-attr]
        assert place.confidence < 1
        checked += 1
    assert checked > 200


def test_intersections_are_worked_out_from_address_points_when_not_stored() -> None:
    only_addresses = [r for r in records() if isinstance(parse_address(r.address), StreetAddress)]
    limit = 100.0
    built = Gazetteer(only_addresses, intersection_distance_m=limit)
    found = 0
    for item, parsed in parsed_records():
        if not isinstance(parsed, Intersection):
            continue
        place = built.locate(item.address)
        if place is None:
            continue
        found += 1
        assert place.kind == "intersection"
        assert place.confidence <= 0.6
        # Midway between two address points that are at most `limit` apart, each near
        # its own street: within a block of the recorded intersection.
        assert haversine_m(place.lat, place.lon, item.lat, item.lon) < 2 * limit
    assert found >= 2


def grid_records() -> list[AddressRecord]:
    """Two parallel east-west streets 45 m apart (back-to-back lots) and one north-south
    street crossing both, houses every 15 m, in metres around a Toronto point."""
    lat0, lon0 = 43.70, -79.40
    ky, kx = METRES_PER_DEGREE, METRES_PER_DEGREE * math.cos(math.radians(lat0))

    def at(x: float, y: float) -> tuple[float, float]:
        return lat0 + y / ky, lon0 + x / kx

    out = []
    for i in range(40):
        x = -300 + 15 * i
        if abs(x) < 20:
            continue
        out.append(AddressRecord(f"{100 + 2 * i} Alpha St", *at(x, 0.0)))
        out.append(AddressRecord(f"{100 + 2 * i} Beta St", *at(x, 45.0)))
        y = -300 + 15 * i
        if abs(y) > 20 and abs(y - 45) > 20:
            out.append(AddressRecord(f"{100 + 2 * i} Gamma Ave", *at(10.0, y)))
    return out


def test_parallel_streets_do_not_make_an_intersection() -> None:
    built = Gazetteer(grid_records(), intersection_distance_m=60.0)
    assert built.locate("Alpha St & Beta St") is None
    crossing = built.locate("Alpha St & Gamma Ave")
    assert crossing is not None
    lat0, lon0 = 43.70, -79.40
    # Gamma Ave runs along x = 10 m; Alpha St along y = 0.
    kx = METRES_PER_DEGREE * math.cos(math.radians(lat0))
    assert haversine_m(crossing.lat, crossing.lon, lat0, lon0 + 10 / kx) < 30
    assert crossing.kind == "intersection"


def test_a_bare_street_is_found_at_low_confidence_on_one_of_its_points() -> None:
    built = gazetteer()
    on_street: dict[str, list[Captured]] = defaultdict(list)
    for item, parsed in parsed_records():
        streets = parsed.streets if isinstance(parsed, Intersection) else (parsed.street,)
        for street in streets:
            on_street[street].append(item)
    for street in list(street_houses())[:100]:
        place = built.locate(street)
        assert place is not None
        assert place.kind == "street"
        assert place.address == street
        assert place.confidence <= 0.5
        assert any(same_point(place.lat, place.lon, i) for i in on_street[street])


def test_reverse_finds_every_captured_point_itself() -> None:
    built = gazetteer()
    for item in captured():
        place = built.nearest(item.lat, item.lon)
        assert place is not None
        assert place.distance_m == 0.0
        assert same_point(place.lat, place.lon, item)
        assert place.confidence == 1.0


def test_reverse_returns_the_nearest_within_the_distance_only() -> None:
    built = gazetteer()
    items = list(captured())
    lonely = []
    for item in items:
        others = [haversine_m(item.lat, item.lon, o.lat, o.lon) for o in items]
        if sorted(others)[1] > 300:  # [0] is itself (or a repeat at the same point)
            lonely.append(item)
    assert len(lonely) > 20
    for item in lonely:
        north = item.lat + 40 / METRES_PER_DEGREE
        place = built.nearest(north, item.lon)
        assert place is not None
        assert same_point(place.lat, place.lon, item)
        assert place.distance_m is not None
        assert abs(place.distance_m - 40) < 0.5
        assert 0.5 < place.confidence < 1
        far = item.lat + (built.max_distance_m + 20) / METRES_PER_DEGREE
        assert built.nearest(far, item.lon) is None


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 0.0), (0.0, 181.0), (math.nan, 0.0)])
def test_reverse_of_an_invalid_point_is_none(lat: float, lon: float) -> None:
    assert gazetteer().nearest(lat, lon) is None


def test_an_empty_gazetteer_finds_nothing() -> None:
    empty = Gazetteer([])
    assert empty.locate("333 King St E") is None
    assert empty.nearest(43.65, -79.38) is None
    assert len(empty) == 0


def test_records_that_name_no_street_are_counted_not_indexed() -> None:
    built = Gazetteer([AddressRecord("Unit 4", 43.6, -79.4), AddressRecord("", 43.6, -79.4)])
    assert built.unparsed == 2
    assert len(built) == 0


def test_an_address_longer_than_the_limit_is_not_looked_up() -> None:
    item = next(c for c in captured() if not c.is_intersection)
    built = Gazetteer(records(), max_address_length=len(item.street_part) - 1)
    assert built.locate(item.street_part) is None


async def test_settings_choose_the_geocoder(tmp_path: Path) -> None:
    none = build_geocoder(GeocodeSettings(kind="none"))
    assert isinstance(none, NoGeocoder)
    assert await none.forward("333 King St E") is None
    assert await none.reverse(43.65, -79.37) is None
    embedded = build_geocoder(GeocodeSettings(max_distance_m=5.0), records())
    assert isinstance(embedded, Gazetteer)
    assert embedded.max_distance_m == 5.0
    item = captured()[0]
    assert await embedded.reverse(item.lat + 10 / METRES_PER_DEGREE, item.lon) is None

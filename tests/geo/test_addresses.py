"""Street-address normalisation, on the real captured Toronto address strings.

Expected values come from the data: a respelling of a captured address must parse to the
same key as the original, an intersection's streets in any order to the same streets.
"""

from __future__ import annotations

import re
import time

import pytest

from app.geo.addresses import (
    MAX_ADDRESS_LENGTH,
    MAX_STREETS,
    Intersection,
    StreetAddress,
    normalize_street,
    parse_address,
    query_text,
    street_parts,
)
from tests.geo.toronto import (
    DIRECTION_WORDS,
    TYPE_WORDS,
    Captured,
    address_respellings,
    captured,
    intersection_respellings,
    spelled_out,
)


def addresses() -> list[Captured]:
    return [c for c in captured() if not c.is_intersection]


def intersections() -> list[Captured]:
    return [c for c in captured() if c.is_intersection]


def test_the_data_has_both_kinds() -> None:
    assert len(addresses()) > 500
    assert len(intersections()) > 300


def test_every_captured_street_address_parses_to_its_number_and_street() -> None:
    for item in addresses():
        parsed = parse_address(item.address)
        assert isinstance(parsed, StreetAddress), item.address
        written_number, _, written_street = item.street_part.partition(" ")
        # "184-192 Limestone Cres": a range; its start is the house number.
        start, _, end = written_number.partition("-")
        assert parsed.number == start.upper(), item.address
        assert parsed.number_to == (end.upper() or None), item.address
        assert parsed.street == normalize_street(written_street), item.address
        assert parsed.unit is None
        # Toronto's ward and landmark notes are not part of the address.
        assert not re.search(r"\bWARD\b", parsed.normalized)
        assert parsed.text == item.street_part


def test_every_captured_intersection_parses_to_its_distinct_streets() -> None:
    for item in intersections():
        parsed = parse_address(item.address)
        assert isinstance(parsed, Intersection), item.address
        written = {normalize_street(s) for s in item.street_part.split("/")}
        assert set(parsed.streets) == written
        assert list(parsed.streets) == sorted(parsed.streets)
        assert len(list(parsed.pairs())) == len(written) * (len(written) - 1) // 2


def test_normalising_twice_changes_nothing() -> None:
    for item in captured():
        parsed = parse_address(item.address)
        assert parsed is not None
        again = parse_address(parsed.normalized)
        assert again is not None
        assert again.normalized == parsed.normalized, item.address


@pytest.mark.parametrize("index", range(10))
def test_respelled_addresses_mean_the_same_address(index: int) -> None:
    for item in addresses():
        original = parse_address(item.address)
        assert isinstance(original, StreetAddress)
        respelled = list(address_respellings(item))[index]
        parsed = parse_address(respelled)
        assert isinstance(parsed, StreetAddress), respelled
        assert parsed.key == original.key, (item.address, respelled)
        assert parsed.number_to == original.number_to, respelled


def test_units_are_kept_apart_from_the_address() -> None:
    for item in addresses()[:50]:
        for respelled in list(address_respellings(item))[6:9]:
            parsed = parse_address(respelled)
            assert isinstance(parsed, StreetAddress)
            assert parsed.unit in {"7", "1200"}, respelled


def test_respelled_intersections_mean_the_same_streets() -> None:
    for item in intersections():
        original = parse_address(item.address)
        assert isinstance(original, Intersection)
        for respelled in intersection_respellings(item):
            parsed = parse_address(respelled)
            assert isinstance(parsed, Intersection), respelled
            assert parsed.streets == original.streets, (item.address, respelled)
            assert parsed.key == original.key


def test_toronto_localities_are_read_and_former_toronto_is_toronto() -> None:
    for item in captured():
        parsed = parse_address(item.address)
        assert parsed is not None
        parts = [p.strip() for p in item.address.split(",")[1:] if p.strip()]
        municipality = parts[0].upper().removeprefix("FORMER ") if parts else None
        if municipality is not None and not municipality.startswith("WARD"):
            assert parsed.locality == municipality, item.address


def test_street_types_and_directions_of_the_data_spelled_out_normalise_back() -> None:
    for item in captured():
        for street in item.street_part.split("/"):
            name = street.strip()
            if name[:1].isdigit():
                name = name.partition(" ")[2]
            assert normalize_street(spelled_out(name)) == normalize_street(name), name


@pytest.mark.parametrize(
    ("written", "same_as"),
    [
        ("345 Queen Street West", "345 Queen St W"),
        ("345 QUEEN ST. W.", "345 Queen St W"),
        ("Unit 4, 345 Queen St W, Toronto, ON M5V 2T6", "345 Queen St W"),
        ("12-345 Queen St W", "345 Queen St W"),
        ("#12 - 345 Queen St W", "345 Queen St W"),
        ("345 Queen St W Apt 12", "345 Queen St W"),
        ("345 Queen St W Toronto ON M5V2T6", "345 Queen St W"),
        ("345 Queen St W, Toronto, Ontario, Canada", "345 Queen St W"),
        ("100 Saint Clair Avenue East", "100 St. Clair Ave E"),
        ("10 Mount Pleasant Road", "10 Mt Pleasant Rd"),
        ("5 Côte-des-Neiges Rd", "5 Cote des Neiges Road"),
        ("7 Queen's Park Crescent East", "7 Queens Park Cres E"),
        ("12 1/2 Main Street", "12 Main St"),
        ("1 Wellesley Court", "1 Wellesley Ct"),
        ("3 Bayview Circle", "3 Bayview Cir"),
        ("9 Ontario Street Northeast", "9 Ontario St NE"),
    ],
)
def test_spellings_of_one_address(written: str, same_as: str) -> None:
    parsed, expected = parse_address(written), parse_address(same_as)
    assert isinstance(parsed, StreetAddress)
    assert isinstance(expected, StreetAddress)
    assert parsed.key == expected.key


def test_a_city_named_like_the_street_is_only_cut_after_the_street() -> None:
    # Toronto Street exists; "Toronto" at the end after its type is the city.
    assert parse_address("10 Toronto St") == parse_address("10 Toronto St Toronto")
    parsed = parse_address("10 Toronto St")
    assert isinstance(parsed, StreetAddress)
    assert parsed.street == normalize_street("Toronto Street")
    north = parse_address("5 North York Blvd")
    assert isinstance(north, StreetAddress)
    assert "YORK" in north.street


@pytest.mark.parametrize(
    ("written", "number", "number_to", "unit"),
    [
        ("184-192 Limestone Cres", "184", "192", None),  # same parity, A < B: a range
        ("1-23 Bonis Ave", "1", "23", None),
        ("12-345 Queen St W", "345", None, "12"),  # parity differs: unit 12
        ("2-1000 Bay St", "1000", None, "2"),  # span over MAX_RANGE_SPAN: unit 2
        ("30-20 Elm St", "20", None, "30"),  # A > B: unit
        ("255B Forest Hill Rd", "255B", None, None),
        ("Unit 4, 345 Queen St W", "345", None, "4"),
        ("Apt 3B, 10 Elm St", "10", None, "3B"),
    ],
)
def test_house_numbers_ranges_and_units(
    written: str, number: str, number_to: str | None, unit: str | None
) -> None:
    parsed = parse_address(written)
    assert isinstance(parsed, StreetAddress)
    assert (parsed.number, parsed.number_to, parsed.unit) == (number, number_to, unit)


@pytest.mark.parametrize(
    "written",
    [
        "Queen St W & Spadina Ave",
        "Queen St W and Spadina Ave",
        "Spadina Ave / Queen St W",
        "Queen Street West/Spadina Avenue",
        "corner of Spadina Avenue and Queen Street West",
        "At the corner of Queen St. W. & Spadina Ave., Toronto, ON",
        "Queen St W at Spadina Ave",
        "the intersection of Queen St W and Spadina Ave",
        "QUEEN ST W @ SPADINA AVE",
    ],
)
def test_intersection_spellings(written: str) -> None:
    parsed = parse_address(written)
    assert isinstance(parsed, Intersection)
    assert parsed.streets == tuple(
        sorted(n for s in ("Queen St W", "Spadina Ave") if (n := normalize_street(s)))
    )


def test_street_names_that_start_like_a_corner_keep_their_name() -> None:
    junction = parse_address("Junction Rd & Dundas St W")
    assert isinstance(junction, Intersection)
    assert junction.streets == ("DUNDAS ST W", "JUNCTION RD")
    house = parse_address("100 Junction Rd")
    assert isinstance(house, StreetAddress)
    assert house.street == "JUNCTION RD"


def test_bare_names_make_an_intersection_of_bare_names() -> None:
    parsed = parse_address("Queen/Spadina")
    assert isinstance(parsed, Intersection)
    assert parsed.streets == ("QUEEN", "SPADINA")
    assert parse_address("corner of Spadina and Queen") == parsed


def test_parts_of_a_street_name() -> None:
    for item in captured():
        for street in item.street_part.split("/"):
            parts = street_parts(street)
            assert parts is not None
            assert parts.name == normalize_street(street)
            words = street.split()
            if len(words) >= 3 and words[-1] in DIRECTION_WORDS and words[-2] in TYPE_WORDS:
                assert parts.direction == words[-1]
                assert parts.type is not None


def test_a_name_made_only_of_a_type_or_direction_stays_a_name() -> None:
    north = street_parts("North Rd")
    assert north is not None
    assert (north.base, north.type) == ("NORTH", "RD")
    avenue = street_parts("Avenue Road")
    assert avenue is not None
    assert (avenue.base, avenue.type) == ("AVENUE", "RD")


@pytest.mark.parametrize(
    "written",
    ["", "   ", ", , ,", "Unit 4", "#7", "1234", "12-34", "/ & /"],
)
def test_nothing_to_parse(written: str) -> None:
    assert parse_address(written) is None


def test_too_long_or_too_many_streets_is_refused_before_work() -> None:
    assert parse_address("1 " + "A" * MAX_ADDRESS_LENGTH + " St") is None
    streets = " / ".join(f"Street{i} Ave" for i in range(MAX_STREETS + 1))
    assert len(streets) <= MAX_ADDRESS_LENGTH
    assert parse_address(streets) is None
    fewer = " / ".join(f"Street{i} Ave" for i in range(MAX_STREETS))
    parsed = parse_address(fewer)
    assert isinstance(parsed, Intersection)
    assert len(parsed.streets) == MAX_STREETS


def test_hostile_inputs_are_answered_promptly() -> None:
    hostile = [
        "1-" * (MAX_ADDRESS_LENGTH // 2),
        "#" * MAX_ADDRESS_LENGTH,
        "UNIT " * (MAX_ADDRESS_LENGTH // 5),
        " " * MAX_ADDRESS_LENGTH,
        "/" * MAX_ADDRESS_LENGTH,
        "A" * (MAX_ADDRESS_LENGTH - 3) + " ON",
        "x" * 1_000_000,
    ]
    started = time.perf_counter()
    for text in hostile:
        for _ in range(50):
            parse_address(text)
    # Generous: the whole loop takes milliseconds; a backtracking expression would take ages.
    assert time.perf_counter() - started < 5.0


def test_query_text_leaves_out_unit_and_tail() -> None:
    parsed = parse_address("Unit 4, 345 Queen Street West, Toronto, ON M5V 2T6")
    assert parsed is not None
    text = query_text(parsed)
    assert text == parsed.key
    assert not re.search(r"UNIT|TORONTO|M5V", text)
    crossing = parse_address("Spadina Avenue / Queen Street West, former Toronto")
    assert crossing is not None
    assert query_text(crossing) == " & ".join(crossing.streets)

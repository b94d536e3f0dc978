"""Street addresses of North American cities (Toronto first), parsed and normalised.

``parse_address`` turns what a person or a city system writes into one of two values:

* ``StreetAddress``: a house number (or a range, or none: a bare street) on one street,
  e.g. ``"Unit 4, 345 Queen Street West, Toronto, ON M5V 2T6"`` → ``345 QUEEN ST W``;
* ``Intersection``: two or more streets, e.g. ``"Queen St W & Spadina Ave"``,
  ``"corner of Queen and Spadina"``, Toronto's own ``"Quilter Rd / Burnett Ave, North York"``
  (the streets are sorted, so the order in which they were written does not matter).

What normalisation does to a street name: upper case, accents and apostrophes dropped,
punctuation to spaces, whitespace collapsed; the street type (the last word, or the one before
a trailing direction) to one abbreviation (``Street``/``St``/``Str`` → ``ST``, ``Avenue`` →
``AVE``, ``Court``/``Ct`` → ``CRT`` …, the forms Toronto's data uses); a direction word
first or last to one letter or two (``West`` → ``W``, ``Northeast`` → ``NE``); ``Saint`` →
``ST`` and ``Mount`` → ``MT`` inside the name. Words are never reordered and nothing in the
middle of a name is expanded, so two spellings of one street meet only when they differ in
the ways above; the gazetteer's fuzzy match takes care of typos.

What is cut off: everything after the street part's comma (city, former municipality,
province, postal code, Toronto's ``Ward: …`` and landmark notes), a unit or suite
(``Unit 4, …``, ``Suite 200 - …``, ``#4 …``, ``… Apt 3``, and the Canadian ``12-345 …``), and
without commas a trailing postal code, province and known city name. The house-number rule
for ``A-B``: a *range* (``184-192 Limestone Cres``) when A < B, both have the same parity and
B - A ≤ ``MAX_RANGE_SPAN``; otherwise ``A`` is the unit and ``B`` the number (``12-345``).

Every input is bounded before any work: longer than ``MAX_ADDRESS_LENGTH`` characters, or
naming more than ``MAX_STREETS`` streets, is refused (``None``). The expressions are linear
(no nested repetition).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations

MAX_ADDRESS_LENGTH = 400
MAX_STREETS = 8
# The widest house-number span read as a range (wider: unit + number, e.g. "2-1000 Bay St").
MAX_RANGE_SPAN = 200

# Street types: every spelling → the abbreviation Toronto's data uses (Canada Post's where
# Toronto has none). A word is a type only in the type position (see street_parts).
STREET_TYPES: dict[str, str] = {}
for _canonical, _spellings in {
    "ST": ("STREET", "STR"),
    "AVE": ("AVENUE", "AV", "AVEN"),
    "RD": ("ROAD",),
    "BLVD": ("BOULEVARD", "BOUL", "BLV"),
    "DR": ("DRIVE", "DRV"),
    "CRES": ("CRESCENT", "CRESC", "CR", "CRS"),
    "CRT": ("COURT", "CT"),
    "CRCL": ("CIRCLE", "CIR", "CIRC"),
    "PL": ("PLACE",),
    "LANE": ("LN",),
    "TER": ("TERRACE", "TERR"),
    "TRL": ("TRAIL", "TR"),
    "PKWY": ("PARKWAY", "PKY", "PWY"),
    "GRV": ("GROVE", "GV"),
    "GDNS": ("GARDENS", "GDN", "GARDEN"),
    "GT": ("GATE",),
    "SQ": ("SQUARE",),
    "HTS": ("HEIGHTS",),
    "HWY": ("HIGHWAY",),
    "EXPY": ("EXPRESSWAY", "EXPWY"),
    "WAY": (),
    "WALK": ("WLK",),
    "PATH": (),
    "ROW": (),
    "MEWS": (),
    "GRN": ("GREEN",),
    "HILL": (),
    "LINE": (),
    "QUAY": (),
    "MALL": (),
    "VISTA": (),
    "RIDGE": (),
    "CLOSE": (),
    "GLEN": (),
    "LANDNG": ("LANDING",),
    "PROM": ("PROMENADE",),
    "CIRCT": ("CIRCUIT",),
    "CRCS": ("CIRCUS",),
    "WOOD": (),
    "CROSS": ("CROSSING",),
    "SDRD": ("SIDEROAD",),
}.items():
    STREET_TYPES[_canonical] = _canonical
    for _spelling in _spellings:
        STREET_TYPES[_spelling] = _canonical

DIRECTIONS: dict[str, str] = {
    "N": "N",
    "NORTH": "N",
    "S": "S",
    "SOUTH": "S",
    "E": "E",
    "EAST": "E",
    "W": "W",
    "WEST": "W",
    "NE": "NE",
    "NORTHEAST": "NE",
    "NW": "NW",
    "NORTHWEST": "NW",
    "SE": "SE",
    "SOUTHEAST": "SE",
    "SW": "SW",
    "SOUTHWEST": "SW",
}

# Words of a street's name (not its type) written one way here.
NAME_WORDS = {"SAINT": "ST", "MOUNT": "MT"}

# Canadian provinces and territories, US states are not listed: a trailing one is cut only
# after a comma (any part after the street is dropped) or before a postal code.
PROVINCES = frozenset(
    {
        "ON",
        "ONT",
        "ONTARIO",
        "QC",
        "QUEBEC",
        "BC",
        "AB",
        "MB",
        "SK",
        "NS",
        "NB",
        "NL",
        "PE",
        "PEI",
        "YT",
        "NT",
        "NU",
    }
)
COUNTRIES = frozenset({"CANADA", "CA", "USA", "US"})
# City names cut from the end of an address written without commas ("345 Queen St W
# Toronto"): Toronto and its former municipalities, the names its own data uses.
DEFAULT_LOCALITIES = frozenset(
    {"TORONTO", "FORMER TORONTO", "NORTH YORK", "SCARBOROUGH", "ETOBICOKE", "YORK", "EAST YORK"}
)

# A unit word and its value: "UNIT 4", "SUITE 200", "APT 3B", "#4"; the value starts with a
# digit or is one letter and digits, so a name ("Apt Anne") is never read as a unit.
_UNIT = (
    r"(?:(?:UNIT|SUITE|APT|APARTMENT|BSMT|RM|ROOM|FLOOR|FL|PH)\s+|#\s*)"
    r"(\d[A-Z0-9]{0,7}|[A-Z]\d{0,7})(?![A-Z0-9])"
)
# A unit written on its own ("Unit 4", "#4", "Suite 200").
_UNIT_ONLY = re.compile(rf"^{_UNIT}$")
# A unit before the number: "Unit 4 345 …", "Suite 200 - 345 …", "#4-345 …".
_UNIT_LEADING = re.compile(rf"^{_UNIT}\s*(?:-\s*)?(?=\d)")
# A unit after the street: "… Unit 4", "… #4", "… Apt 3B".
_UNIT_TRAILING = re.compile(rf"\s+{_UNIT}$")
# A house number, a number range or unit-number ("12-345"), optionally with a letter ("255B").
_NUMBER = re.compile(r"^(\d{1,6})([A-Z]?)(?:\s*-\s*(\d{1,6})([A-Z]?))?(?=\s)")
# A half ("12 1/2 Main St"), dropped: its slash is not an intersection.
_HALF = re.compile(r"(?<=\d) 1/2\b")
_CA_POSTAL = re.compile(r"\s+[A-Z]\d[A-Z]\s?\d[A-Z]\d$")
_US_ZIP = re.compile(r"\s+\d{5}(?:-\d{4})?$")
# Intersection separators: "/", "&", "@", "+", and the words AND / AT.
_SEPARATOR = re.compile(r"\s*(?:/|&|@|\+|\bAND\b|\bAT\b)\s*")
# "corner of", "at the intersection of": only with OF, so "Junction Rd" keeps its name.
_CORNER = re.compile(r"^(?:(?:AT|ON)\s+)?(?:THE\s+)?(?:CORNER|INTERSECTION|JUNCTION)\s+OF\s+")
_NOT_WORD = re.compile(r"[^A-Z0-9#/&@+\- ]+")
_SPACES = re.compile(r"\s+")
_HAS_LETTER = re.compile(r"[A-Z]")
# Toronto's "Ward: Davenport (17)" note.
_WARD = re.compile(r"^WARD\b")


def fold(text: str) -> str:
    """Upper case without accents, apostrophes or punctuation (``/ & @ + - #`` kept), with
    single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()
    plain = plain.replace("'", "").replace("’", "").replace("`", "")
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", plain)).strip()


@dataclass(frozen=True, slots=True)
class StreetParts:
    """A normalised street name split into its parts."""

    prefix: str | None  # a leading direction ("N QUEEN ST": N)
    base: str  # the name proper ("QUEEN", "ST CLAIR", "THE QUEENSWAY")
    type: str | None  # "ST", "AVE" … when the name ends with one
    direction: str | None  # a trailing direction ("QUEEN ST W": W)

    @property
    def name(self) -> str:
        """The whole normalised name."""
        return " ".join(p for p in (self.prefix, self.base, self.type, self.direction) if p)


def street_parts(street: str) -> StreetParts | None:
    """The parts of a street name (normalised here; ``None`` when it has no letters)."""
    words = fold(street).replace("-", " ").replace("#", " ").split()
    words = [w for w in words if w not in {"/", "&", "@", "+"}]
    if not words or not any(_HAS_LETTER.search(w) for w in words):
        return None
    direction = prefix = kind = None
    # At least one word always stays as the name: "North Rd" is ROAD "NORTH", not nothing.
    if len(words) >= 2 and words[-1] in DIRECTIONS:
        direction = DIRECTIONS[words.pop()]
    if len(words) >= 2 and words[-1] in STREET_TYPES:
        kind = STREET_TYPES[words.pop()]
    if len(words) >= 2 and words[0] in DIRECTIONS:
        prefix = DIRECTIONS[words.pop(0)]
    base = " ".join(NAME_WORDS.get(w, w) for w in words)
    return StreetParts(prefix, base, kind, direction)


def normalize_street(street: str) -> str | None:
    """One spelling of a street name: ``"Queen Street West"`` → ``"QUEEN ST W"``."""
    parts = street_parts(street)
    return parts.name if parts is not None else None


@dataclass(frozen=True, slots=True)
class StreetAddress:
    """A house number (or range, or none) on one street, normalised."""

    street: str  # "QUEEN ST W"
    number: str | None = None  # "345", "255B"; the start of a range
    number_to: str | None = None  # the end of a range ("184-192": 192)
    unit: str | None = None
    locality: str | None = None  # the part after the street ("NORTH YORK"), if any
    text: str = field(default="", compare=False)  # the street part as written

    @property
    def house(self) -> int | None:
        """The numeric part of the house number (``255B`` → 255)."""
        return _house(self.number)

    @property
    def house_to(self) -> int | None:
        """The numeric end of a range, else the house number."""
        return _house(self.number_to) if self.number_to else self.house

    @property
    def key(self) -> str:
        """The lookup key: number (a range's start) and street."""
        return f"{self.number} {self.street}" if self.number else self.street

    @property
    def normalized(self) -> str:
        """The whole normalised address, a range as ``A-B``."""
        if self.number and self.number_to:
            return f"{self.number}-{self.number_to} {self.street}"
        return self.key


@dataclass(frozen=True, slots=True)
class Intersection:
    """Two or more streets meeting, normalised and sorted (so order-insensitive)."""

    streets: tuple[str, ...]
    locality: str | None = None
    text: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """The lookup key: the sorted streets joined by `` & ``."""
        return " & ".join(self.streets)

    @property
    def normalized(self) -> str:
        """The whole normalised intersection (the key)."""
        return self.key

    def pairs(self) -> Iterator[tuple[str, str]]:
        """Every pair of the streets (each sorted)."""
        return combinations(self.streets, 2)


ParsedAddress = StreetAddress | Intersection


def _house(number: str | None) -> int | None:
    if not number:
        return None
    digits = number.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return int(digits) if digits.isdigit() else None


def _strip_tail(part: str, localities: frozenset[str]) -> str:
    """``part`` without a trailing postal code, country, province and known city."""
    stripped = _US_ZIP.sub("", _CA_POSTAL.sub("", part))
    words = stripped.split()
    while len(words) > 2 and words[-1] in COUNTRIES | PROVINCES:
        words.pop()
    # A city is cut after a postal code, province or country ("6 Wooded Carseway Toronto
    # ON"), or after a street type or direction ("10 Toronto St Toronto"); never from a bare
    # name ("10 Toronto St" keeps its Toronto).
    after_tail = len(words) < len(part.split())
    for size in (2, 1):
        tail = " ".join(words[-size:])
        if len(words) > size + 1 and tail in localities:
            before = words[-size - 1]
            if after_tail or before in STREET_TYPES or before in DIRECTIONS:
                words = words[:-size]
                break
    return " ".join(words)


def _locality(parts: list[str]) -> str | None:
    """The first part after the street that names a place (not a ward, postal code or
    province)."""
    for part in parts:
        if not part or _WARD.match(part) or _CA_POSTAL.search(" " + part):
            continue
        words = part.split()
        if all(w in PROVINCES | COUNTRIES for w in words):
            continue
        return part.removeprefix("FORMER ").strip() or None
    return None


def _split_units(parts: list[str]) -> tuple[str | None, list[str]]:
    """A unit given as its own leading part ("Unit 4, 345 …"), and the rest."""
    unit = None
    while parts and (match := _UNIT_ONLY.match(parts[0])):
        unit = match.group(1)
        parts = parts[1:]
    return unit, parts


def parse_address(
    text: str, *, localities: frozenset[str] = DEFAULT_LOCALITIES
) -> ParsedAddress | None:
    """A street address or intersection read from ``text``, or ``None`` when it names no
    street (or is longer than ``MAX_ADDRESS_LENGTH``, or names more than ``MAX_STREETS``)."""
    if len(text) > MAX_ADDRESS_LENGTH:
        return None
    # Commas split the street part from what follows; the text as written is kept for
    # labels (same comma positions: fold() never adds or removes a comma).
    written = [_SPACES.sub(" ", p).strip() for p in text.split(",")]
    folded = [fold(p) for p in text.split(",")]
    pairs = [(f, w) for f, w in zip(folded, written, strict=True) if f]
    unit, rest = _split_units([f for f, _ in pairs])
    if not rest:
        return None
    offset = len(pairs) - len(rest)
    head, label = rest[0], pairs[offset][1]
    locality = _locality(rest[1:])
    head = _strip_tail(head, localities)
    head = _HALF.sub("", _CORNER.sub("", head))
    streets = [s for s in _SEPARATOR.split(head) if s]
    if len(streets) > MAX_STREETS:
        return None
    if len(streets) >= 2:
        names = sorted({n for s in streets if (n := normalize_street(s)) is not None})
        if len(names) >= 2:
            return Intersection(tuple(names), locality, label)
        if not names:
            return None
        return StreetAddress(names[0], locality=locality, text=label)
    return _street_address(head, unit, locality, label)


def _street_address(
    head: str, unit: str | None, locality: str | None, label: str
) -> StreetAddress | None:
    if match := _UNIT_LEADING.match(head):
        unit, head = match.group(1), head[match.end() :]
    if match := _UNIT_TRAILING.search(head):
        unit, head = match.group(1), head[: match.start()]
    head = head.lstrip("#").strip()
    number = number_to = None
    if match := _NUMBER.match(head):
        first, first_letter, second, second_letter = match.groups()
        head = head[match.end() :]
        if second is None:
            number = first + first_letter
        elif _is_range(int(first), int(second)):
            number, number_to = first + first_letter, second + second_letter
        else:
            unit, number = first + first_letter, second + second_letter
    street = normalize_street(head)
    if street is None:
        return None
    return StreetAddress(street, number, number_to, unit, locality, label)


def _is_range(first: int, second: int) -> bool:
    return first < second and (second - first) % 2 == 0 and second - first <= MAX_RANGE_SPAN


def query_text(parsed: ParsedAddress) -> str:
    """What to send an outside geocoder for ``parsed``: number and street, or the streets
    joined by ``&``; the unit and everything after the street left out."""
    return parsed.key if isinstance(parsed, StreetAddress) else " & ".join(parsed.streets)

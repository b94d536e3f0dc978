"""The captured Toronto requests (real address strings and points) and ways to respell them.

The respellings are what people write for the same place: full words for Toronto's
abbreviations, other case and punctuation, a city/province/postal-code tail instead of the
municipality and ward, a unit. Tests expect each to mean what the original means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import app.demo

REQUESTS_FILE = Path(app.demo.__file__).parent / "data" / "toronto_requests_2018.json"

# Toronto's abbreviations in the type position, as a person writes them out.
TYPE_WORDS = {
    "St": "Street",
    "Ave": "Avenue",
    "Rd": "Road",
    "Dr": "Drive",
    "Blvd": "Boulevard",
    "Cres": "Crescent",
    "Crt": "Court",
    "Trl": "Trail",
    "Pkwy": "Parkway",
    "Crcl": "Circle",
    "Grv": "Grove",
    "Gdns": "Gardens",
    "Gt": "Gate",
    "Ter": "Terrace",
    "Pl": "Place",
    "Sq": "Square",
}
DIRECTION_WORDS = {"E": "East", "W": "West", "N": "North", "S": "South"}


@dataclass(frozen=True)
class Captured:
    """One captured request's address and point."""

    address: str
    lat: float
    lon: float

    @property
    def street_part(self) -> str:
        """The text before the first comma (Toronto writes the street part first)."""
        return self.address.split(",")[0].strip()

    @property
    def is_intersection(self) -> bool:
        """Toronto joins the streets of an intersection with " / "."""
        return "/" in self.street_part


@cache
def captured() -> tuple[Captured, ...]:
    """Every captured request that has an address and a point, in file order."""
    document = json.loads(REQUESTS_FILE.read_text(encoding="utf-8"))
    return tuple(
        Captured(r["address"], float(r["lat"]), float(r["long"]))
        for r in document["service_requests"]
        if r.get("address") and r.get("lat") is not None and r.get("long") is not None
    )


def spelled_out(street: str) -> str:
    """A street written with full words: "St Clair Ave W" -> "St Clair Avenue West"."""
    words = street.split()
    if len(words) >= 3 and words[-1] in DIRECTION_WORDS:
        words[-1] = DIRECTION_WORDS[words[-1]]
        if words[-2] in TYPE_WORDS:
            words[-2] = TYPE_WORDS[words[-2]]
    elif len(words) >= 2 and words[-1] in TYPE_WORDS:
        words[-1] = TYPE_WORDS[words[-1]]
    return " ".join(words)


def dotted(street: str) -> str:
    """Abbreviations with full stops and doubled spaces: "King  St. E." (number kept)."""
    words = street.split()
    out = [w + "." if w in TYPE_WORDS or w in DIRECTION_WORDS else w for w in words]
    return "  ".join(out)


def address_respellings(item: Captured) -> Iterator[str]:
    """Other ways to write a captured street address."""
    street = item.street_part
    number, _, name = street.partition(" ")
    yield spelled_out(street)
    yield street.lower()
    yield street.upper() + ", TORONTO, ONTARIO"
    yield f"{dotted(street)}, Toronto, ON M5V 2T6"
    yield f"{street} Toronto ON M5V 2T6"
    yield f"{spelled_out(street)}, Toronto, Ontario, Canada"
    yield f"Unit 7, {street}"
    yield f"Suite 1200 - {street}, Toronto"
    yield f"{street} #7, Toronto"
    yield f"  {number}   {name.upper()} ,, "


def intersection_respellings(item: Captured) -> Iterator[str]:
    """Other ways to write a captured intersection (the order of the streets changed)."""
    streets = [s.strip() for s in item.street_part.split("/")]
    back = list(reversed(streets))
    yield " / ".join(back)
    yield "/".join(back)
    yield " & ".join(spelled_out(s) for s in back)
    yield " and ".join(s.lower() for s in back) + ", Toronto, ON"
    if len(streets) == 2:
        yield f"corner of {streets[1]} and {streets[0]}"
        yield f"{spelled_out(streets[0])} at {streets[1]}"
        yield f"{streets[1]} @ {streets[0]}"


PLAIN = re.compile(r"^[A-Za-z0-9 ]+$")

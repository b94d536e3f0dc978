"""The embedded geocoder: a gazetteer built in memory from address points.

Built from ``AddressRecord``s (``app.geo.address_points`` reads them from CSV, GeoJSON or
GeoReport requests). Each record's address is parsed (``app.geo.addresses``): a house
number on a street becomes an *address* entry, two or more streets an *intersection* entry
(stored under every pair of its streets), a bare street a *street* entry. Every entry's
point also belongs to each street it names.

Forward lookup (``locate``):

1. An address whose normalised key (number + street) is known: that point, confidence 1
   (several with that key in different localities: the one in the locality asked about).
2. Otherwise the street is resolved, conservatively: the exact name; the name written
   without its spaces ("Lakeshore" for "Lake Shore"); the name without the type or
   direction the query left out ("Queen" → QUEEN ST W and QUEEN ST E); last a fuzzy match
   of the name proper (rapidfuzz ratio ≥ ``fuzzy_cutoff``, names of 4+ letters, same type and
   direction when the query gives them). On those streets the house number is kept exact,
   or else the nearest number within ``max_number_gap`` is taken (its own address is
   returned, at a lower confidence).
3. An intersection: a stored intersection of the two streets; otherwise the nearest pair of
   points of the two streets within ``intersection_distance_m``, their midpoint, at low
   confidence — unless the close points spread along the streets (parallel streets back to
   back are near each other everywhere; crossing streets only at the corner).
4. A bare street: the point nearest the middle of its points, confidence ≤ 0.5.

Reverse lookup (``nearest``): an STRtree over every entry returns the nearest within
``max_distance_m`` (an address before an intersection at the same distance).

Distances are measured on a plane: an equirectangular projection around the median
latitude of the records, true to well under 1 % within a city's extent; reported distances
are great-circle (haversine) metres.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from rapidfuzz import fuzz, process

from app.geo.address_points import AddressRecord
from app.geo.addresses import (
    DEFAULT_LOCALITIES,
    MAX_ADDRESS_LENGTH,
    Intersection,
    StreetAddress,
    StreetParts,
    parse_address,
    street_parts,
)
from app.geo.place import METRES_PER_DEGREE, Place, PlaceKind, haversine_m
from app.geo.points import check_lat_long

# Streets considered for one name (the best first); bounds the work of one lookup.
MAX_CANDIDATES = 6
# The shortest name proper (without spaces) that may be matched fuzzily.
MIN_FUZZY_LENGTH = 4


def _squash(name: str) -> str:
    return name.replace(" ", "")


def _base_key(parts: StreetParts) -> str:
    """The name proper without a leading THE and without spaces (the fuzzy match's key)."""
    return _squash(parts.base.removeprefix("THE "))


@dataclass(slots=True)
class _Entry:
    lat: float
    lon: float
    x: float
    y: float
    address: str
    label: str
    kind: PlaceKind
    locality: str | None
    house: int | None = None
    house_to: int | None = None

    def place(
        self,
        confidence: float,
        *,
        address: str | None = None,
        kind: PlaceKind | None = None,
        distance_m: float | None = None,
    ) -> Place:
        return Place(
            lat=self.lat,
            lon=self.lon,
            address=address or self.address,
            label=address if kind == "street" and address else self.label,
            kind=kind or self.kind,
            confidence=round(min(1.0, max(0.0, confidence)), 2),
            distance_m=distance_m,
        )


@dataclass(slots=True)
class _Street:
    name: str
    parts: StreetParts
    houses: list[_Entry] = field(default_factory=list)
    points: list[_Entry] = field(default_factory=list)
    _xy: Any = None
    _tree: shapely.STRtree | None = None

    def xy(self) -> Any:
        if self._xy is None:
            self._xy = np.array([(e.x, e.y) for e in self.points], dtype=float)
        return self._xy

    def tree(self) -> shapely.STRtree:
        if self._tree is None:
            self._tree = shapely.STRtree(shapely.points(self.xy()))
        return self._tree

    def nearest_house(self, house: int) -> tuple[_Entry, int] | None:
        """The address entry whose number (or range) is nearest ``house``, and the gap; on a
        tie the same side of the street (parity) wins."""
        best: tuple[int, int, _Entry] | None = None
        for entry in self.houses:
            low, high = entry.house or 0, entry.house_to or entry.house or 0
            gap = 0 if low <= house <= high else min(abs(house - low), abs(house - high))
            rank = (gap, 0 if (low - house) % 2 == 0 else 1)
            if best is None or rank < best[:2]:
                best = (*rank, entry)
        return (best[2], best[0]) if best is not None else None

    def middle(self) -> _Entry:
        """The entry nearest the centroid of the street's points."""
        xy = self.xy()
        centre = xy.mean(axis=0)
        index = int(np.argmin(((xy - centre) ** 2).sum(axis=1)))
        return self.points[index]


class Gazetteer:
    """An in-memory gazetteer over address points, and the embedded ``Geocoder``."""

    def __init__(
        self,
        records: Iterable[AddressRecord],
        *,
        max_distance_m: float = 100.0,
        intersection_distance_m: float = 60.0,
        max_number_gap: int = 100,
        fuzzy_cutoff: float = 90.0,
        max_address_length: int = MAX_ADDRESS_LENGTH,
        localities: frozenset[str] = DEFAULT_LOCALITIES,
    ) -> None:
        self.max_address_length = max_address_length
        self.max_distance_m = max_distance_m
        self.intersection_distance_m = intersection_distance_m
        self.max_number_gap = max_number_gap
        self.fuzzy_cutoff = fuzzy_cutoff
        self.localities = localities
        self._addresses: dict[str, list[_Entry]] = {}
        self._intersections: dict[tuple[str, str], list[_Entry]] = {}
        self._streets: dict[str, _Street] = {}
        self._by_squashed: dict[str, list[str]] = {}
        self._by_base: dict[str, list[str]] = {}
        self._entries: list[_Entry] = []
        self._seen: set[tuple[str, float, float]] = set()
        # Records that name no street (or have no valid point), and records repeating one
        # already read (same normalised address, same point).
        self.unparsed = 0
        self.duplicates = 0
        parsed: list[tuple[AddressRecord, StreetAddress | Intersection]] = []
        for record in records:
            result = parse_address(record.address, localities=localities)
            if result is None or check_lat_long(record.lat, record.lon):
                self.unparsed += 1
                continue
            parsed.append((record, result))
        lat0 = statistics.median(r.lat for r, _ in parsed) if parsed else 0.0
        self._kx = METRES_PER_DEGREE * math.cos(math.radians(lat0))
        self._ky = METRES_PER_DEGREE
        for record, result in parsed:
            self._add(record, result)
        self._seen.clear()  # only needed while building
        for street in self._streets.values():
            street.houses.sort(key=lambda e: e.house or 0)
        self._bases = list(self._by_base)
        xy: Any = np.array([(e.x, e.y) for e in self._entries], dtype=float).reshape(-1, 2)
        self._tree = shapely.STRtree(shapely.points(xy))

    # -- building

    def _street(self, name: str) -> _Street:
        street = self._streets.get(name)
        if street is None:
            # Names come from parse_address, so they always have parts.
            parts = street_parts(name) or StreetParts(None, name, None, None)
            street = self._streets[name] = _Street(name, parts)
            self._by_squashed.setdefault(_squash(name), []).append(name)
            self._by_base.setdefault(_base_key(parts), []).append(name)
        return street

    def _add(self, record: AddressRecord, parsed: StreetAddress | Intersection) -> None:
        """Index one record. A record repeating a known key (in the same locality) is not
        looked up by name again (the first wins), but a point of its own still answers
        reverse lookups; a record repeating a key and its point is dropped."""
        x, y = record.lon * self._kx, record.lat * self._ky
        spot = (parsed.normalized, round(record.lat, 7), round(record.lon, 7))
        if spot in self._seen:
            self.duplicates += 1
            return
        self._seen.add(spot)
        kind: PlaceKind
        if isinstance(parsed, Intersection):
            kind, address, streets = "intersection", parsed.key, parsed.streets
        elif parsed.number is not None:
            kind, address, streets = "address", parsed.normalized, (parsed.street,)
        else:
            kind, address, streets = "street", parsed.street, (parsed.street,)
        entry = _Entry(
            record.lat,
            record.lon,
            x,
            y,
            address,
            parsed.text,
            kind,
            parsed.locality,
            parsed.house if isinstance(parsed, StreetAddress) else None,
            parsed.house_to if isinstance(parsed, StreetAddress) else None,
        )
        self._entries.append(entry)
        if isinstance(parsed, Intersection):
            pairs = [p for p in parsed.pairs() if not self._known(self._intersections, p, entry)]
            if not pairs:
                return
            for pair in pairs:
                self._intersections.setdefault(pair, []).append(entry)
        elif parsed.number is not None:
            if self._known(self._addresses, parsed.key, entry):
                return
            self._addresses.setdefault(parsed.key, []).append(entry)
            self._street(parsed.street).houses.append(entry)
        for name in streets:
            self._street(name).points.append(entry)

    @staticmethod
    def _known(index: dict[Any, list[_Entry]], key: Any, entry: _Entry) -> bool:
        return any(e.locality == entry.locality for e in index.get(key, ()))

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def counts(self) -> dict[str, int]:
        """How many addresses, intersections and streets the gazetteer knows."""
        return {
            "addresses": sum(len(v) for v in self._addresses.values()),
            "intersections": len({id(e) for v in self._intersections.values() for e in v}),
            "streets": len(self._streets),
        }

    # -- the Geocoder protocol

    async def forward(self, address: str) -> Place | None:
        """The place an address or intersection names (``locate``)."""
        return self.locate(address)

    async def reverse(self, lat: float, lon: float) -> Place | None:
        """The nearest known place to a point (``nearest``)."""
        return self.nearest(lat, lon)

    async def aclose(self) -> None:
        """Nothing to release."""

    # -- forward

    def locate(self, text: str) -> Place | None:
        """The place ``text`` names, or None when it is not found or ambiguous beyond use."""
        if len(text) > self.max_address_length:
            return None
        parsed = parse_address(text, localities=self.localities)
        if parsed is None or not self._entries:
            return None
        if isinstance(parsed, Intersection):
            return self._locate_intersection(parsed)
        if parsed.number is None:
            return self._locate_street(parsed.street)
        return self._locate_address(parsed)

    def streets_for(self, name: str) -> list[tuple[str, float]]:
        """Known streets a street name may mean, with a score (1: exact), best first."""
        parts = street_parts(name)
        if parts is None:
            return []
        if name in self._streets:
            if parts.type is not None:
                return [(name, 1.0)]
            # A bare name that is also a street ("Black Creek", a creek) may still mean
            # the street that has a type ("Black Creek Dr").
            others = [n for n in self._by_base.get(_base_key(parts), ()) if n != name]
            return [(name, 1.0)] + [(n, 0.9) for n in others[: MAX_CANDIDATES - 1]]
        squashed = self._by_squashed.get(_squash(name))
        if squashed:
            return [(n, 0.95) for n in squashed[:MAX_CANDIDATES]]
        key = _base_key(parts)
        same_base = [n for n in self._by_base.get(key, ()) if self._fits(n, parts)]
        if same_base:
            return [(n, 0.9) for n in same_base[:MAX_CANDIDATES]]
        if len(key) < MIN_FUZZY_LENGTH:
            return []
        found: list[tuple[str, float]] = []
        for base, score, _ in process.extract(
            key, self._bases, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff, limit=8
        ):
            found += [(n, 0.8 * score / 100) for n in self._by_base[base] if self._fits(n, parts)]
        found.sort(key=lambda c: -c[1])
        return found[:MAX_CANDIDATES]

    def _fits(self, name: str, query: StreetParts) -> bool:
        """True when the street agrees with every type and direction the query gives."""
        known = self._streets[name].parts
        return all(
            asked is None or asked == have
            for asked, have in (
                (query.type, known.type),
                (query.direction, known.direction),
                (query.prefix, known.prefix),
            )
        )

    def _pick(self, entries: Sequence[_Entry], locality: str | None) -> tuple[_Entry, float]:
        """One of several entries with one key: the one in ``locality``, else the first (at
        half confidence when they lie apart)."""
        if len(entries) == 1:
            return entries[0], 1.0
        local = [e for e in entries if locality is not None and e.locality == locality]
        if len(local) == 1:
            return local[0], 1.0
        first = entries[0]
        apart = any(self._metres(first, e) > self.max_distance_m for e in entries[1:])
        return first, 0.5 if apart else 1.0

    def _metres(self, a: _Entry, b: _Entry) -> float:
        return math.hypot(a.x - b.x, a.y - b.y)

    def _locate_address(self, parsed: StreetAddress) -> Place | None:
        entries = self._addresses.get(parsed.key)
        if entries:
            entry, factor = self._pick(entries, parsed.locality)
            return entry.place(factor)
        streets = self.streets_for(parsed.street)
        exact = [
            (score, entry)
            for name, score in streets
            for entry in self._addresses.get(f"{parsed.number} {name}", ())
        ]
        if exact:
            return self._best(exact)
        house = parsed.house
        if house is None:
            return None
        near: list[tuple[float, _Entry]] = []
        for name, score in streets:
            found = self._streets[name].nearest_house(house)
            if found is not None and found[1] <= self.max_number_gap:
                entry, gap = found
                factor = 0.95 if gap == 0 else 0.9 - 0.5 * gap / max(self.max_number_gap, 1)
                near.append((score * factor, entry))
        return self._best(near) if near else None

    def _best(self, scored: list[tuple[float, _Entry]]) -> Place:
        """The best-scored entry; halved when another as good lies elsewhere (ambiguous)."""
        scored.sort(key=lambda c: -c[0])
        score, entry = scored[0]
        rivals = [e for s, e in scored[1:] if s >= score - 1e-9]
        if any(self._metres(entry, e) > self.max_distance_m for e in rivals):
            score *= 0.5
        return entry.place(score)

    def _locate_street(self, name: str) -> Place | None:
        streets = self.streets_for(name)
        if not streets:
            return None
        best, score = streets[0]
        ambiguous = any(s >= score - 1e-9 for _, s in streets[1:])
        street = self._streets[best]
        if not street.points:
            return None
        return street.middle().place(
            score * (0.25 if ambiguous else 0.5), address=best, kind="street"
        )

    def _locate_intersection(self, parsed: Intersection) -> Place | None:
        best: Place | None = None
        for a, b in parsed.pairs():
            found = self._pair(a, b, parsed.locality)
            if found is not None and (best is None or found.confidence > best.confidence):
                best = found
            if best is not None and best.confidence >= 1.0:
                break
        return best

    def _pair(self, a: str, b: str, locality: str | None) -> Place | None:
        first, second = self.streets_for(a), self.streets_for(b)
        stored: list[tuple[float, _Entry, str]] = []
        for name_a, score_a in first:
            for name_b, score_b in second:
                pair = (name_a, name_b) if name_a < name_b else (name_b, name_a)
                entries = self._intersections.get(pair)
                if entries:
                    entry, factor = self._pick(entries, locality)
                    stored.append((score_a * score_b * factor, entry, " & ".join(pair)))
        if stored:
            stored.sort(key=lambda c: -c[0])
            score, entry, address = stored[0]
            return entry.place(score, address=address)
        computed: list[tuple[float, float, float, float, str]] = []
        for name_a, score_a in first:
            for name_b, score_b in second:
                if name_a == name_b:
                    continue
                meeting = self._meeting(self._streets[name_a], self._streets[name_b])
                if meeting is not None:
                    distance, x, y = meeting
                    address = " & ".join(sorted((name_a, name_b)))
                    computed.append((distance, -score_a * score_b, x, y, address))
        if not computed:
            return None
        computed.sort()
        _, negative_score, x, y, address = computed[0]
        return Place(
            lat=y / self._ky,
            lon=x / self._kx,
            address=address,
            label=address,
            kind="intersection",
            confidence=round(-negative_score * 0.6, 2),
        )

    def _meeting(self, one: _Street, other: _Street) -> tuple[float, float, float] | None:
        """Where two streets meet: the nearest pair of their points within
        ``intersection_distance_m`` (distance, x, y of the midpoint), or None (too far, or
        close all along: parallel)."""
        if not one.points or not other.points:
            return None
        if len(one.points) > len(other.points):
            one, other = other, one
        limit = self.intersection_distance_m
        pairs, distances = other.tree().query_nearest(
            shapely.points(one.xy()), max_distance=limit, return_distance=True
        )
        if len(distances) == 0:
            return None
        close = np.vstack([one.xy()[np.unique(pairs[0])], other.xy()[np.unique(pairs[1])]])
        spread = float(np.hypot(*(close.max(axis=0) - close.min(axis=0))))
        if spread > 3 * limit:
            return None
        best = int(np.argmin(distances))
        middle = (one.xy()[pairs[0][best]] + other.xy()[pairs[1][best]]) / 2
        return float(distances[best]), float(middle[0]), float(middle[1])

    # -- reverse

    def nearest(self, lat: float, lon: float) -> Place | None:
        """The known place nearest a point, within ``max_distance_m``, or None."""
        if check_lat_long(lat, lon) or not self._entries:
            return None
        here = shapely.Point(lon * self._kx, lat * self._ky)
        indexes, distances = self._tree.query_nearest(
            here, max_distance=self.max_distance_m, return_distance=True, all_matches=True
        )
        if len(indexes) == 0:
            return None
        candidates = sorted(
            (round(float(d), 3), self._entries[int(i)].kind != "address", int(i))
            for i, d in zip(indexes, distances, strict=True)
        )
        entry = self._entries[candidates[0][2]]
        metres = haversine_m(lat, lon, entry.lat, entry.lon)
        if metres > self.max_distance_m:
            return None
        return entry.place(1.0 - 0.5 * metres / self.max_distance_m, distance_m=round(metres, 1))

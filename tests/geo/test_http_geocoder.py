"""The HTTP geocoder against a real local HTTP server standing in for Nominatim and Pelias.

The fake services answer from the captured Toronto requests (a house's point, the nearest
captured point for a reverse lookup), so expected places come from the data. Failures are
real too: a service that sleeps, trickles, answers too much, compresses, redirects, breaks
its JSON, or is not there. Only the cache's clock is a stand-in.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from app.geo.addresses import StreetAddress, parse_address
from app.geo.geocode import build_geocoder
from app.geo.http_geocoder import HttpGeocoder
from app.geo.place import METRES_PER_DEGREE, haversine_m
from app.geo.settings import GeocodeSettings
from tests.geo.toronto import PLAIN, Captured, captured

GeocoderFactory = Callable[..., HttpGeocoder]


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    # Threaded: a handler that sleeps must not hold up the next test's requests.
    httpserver = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    httpserver.start()
    yield httpserver
    httpserver.clear()
    httpserver.stop()


@pytest.fixture
def upstream(server: HTTPServer) -> HTTPServer:
    server.clear()
    return server


@pytest.fixture
async def make_geocoder(upstream: HTTPServer) -> AsyncIterator[GeocoderFactory]:
    made: list[HttpGeocoder] = []

    def factory(**changes: Any) -> HttpGeocoder:
        timer = changes.pop("timer", time.monotonic)
        options: dict[str, Any] = {"kind": "http", "base_url": upstream.url_for("/")}
        geocoder = HttpGeocoder(GeocodeSettings(**{**options, **changes}), timer=timer)
        made.append(geocoder)
        return geocoder

    yield factory
    for geocoder in made:
        await geocoder.aclose()


def houses() -> list[Captured]:
    """Captured house addresses written plainly (what the fake looks up by text)."""
    out = []
    for item in captured():
        parsed = parse_address(item.address)
        if (
            isinstance(parsed, StreetAddress)
            and parsed.number_to is None
            and PLAIN.match(item.street_part)
        ):
            out.append(item)
    return out


def nominatim_item(item: Captured, rank: int = 30) -> dict[str, Any]:
    number, _, street = item.street_part.partition(" ")
    return {
        "place_id": 1,
        "lat": str(item.lat),
        "lon": str(item.lon),
        "category": "place",
        "type": "house",
        "place_rank": rank,
        "display_name": f"{item.street_part}, Toronto, Ontario, Canada",
        "address": {"house_number": number, "road": street, "city": "Toronto"},
    }


def by_text(items: list[Captured]) -> dict[str, Captured]:
    return {item.street_part.upper(): item for item in items}


def fake_nominatim(upstream: HTTPServer, items: list[Captured], prefix: str = "") -> None:
    """GET /search?q= looks the text up among the captured houses; GET /reverse answers
    the nearest captured house."""
    table = by_text(items)

    def search(request: Request) -> Response:
        found = table.get(request.args.get("q", "").upper())
        body = [nominatim_item(found)] if found is not None else []
        return Response(json.dumps(body), content_type="application/json")

    def reverse(request: Request) -> Response:
        lat, lon = float(request.args["lat"]), float(request.args["lon"])
        nearest = min(items, key=lambda i: haversine_m(lat, lon, i.lat, i.lon))
        return Response(json.dumps(nominatim_item(nearest)), content_type="application/json")

    upstream.expect_request(f"{prefix}/search").respond_with_handler(search)
    upstream.expect_request(f"{prefix}/reverse").respond_with_handler(reverse)


def requests_to(upstream: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in upstream.log if request.path == path]


async def test_nominatim_finds_captured_houses(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    items = houses()[:40]
    fake_nominatim(upstream, items)
    geocoder = make_geocoder(user_agent="open311-test (ops@example.org)")
    for item in items:
        place = await geocoder.forward(item.address)
        assert place is not None, item.address
        assert (place.lat, place.lon) == (item.lat, item.lon)
        assert place.kind == "address"
        assert place.address == parse_address(item.address).normalized  # type: ignore[union-attr]
        assert place.label.startswith(item.street_part)
        assert place.confidence == 0.9
    sent = requests_to(upstream, "/search")
    assert len(sent) == len(items)
    for request in sent:
        assert request.headers["User-Agent"] == "open311-test (ops@example.org)"
        assert request.args["format"] == "jsonv2"
        assert request.args["limit"] == "1"
        # Toronto's ward and municipality notes are not sent.
        assert "WARD" not in request.args["q"].split()
    assert geocoder.calls == len(items)


async def test_nominatim_reverse_finds_the_nearest_house_within_the_distance(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    items = houses()
    fake_nominatim(upstream, items)
    geocoder = make_geocoder(max_distance_m=100)
    for item in items[:20]:
        place = await geocoder.reverse(item.lat, item.lon)
        assert place is not None
        assert (place.lat, place.lon) == (item.lat, item.lon)
        # The point asked about is sent to 6 decimals (a tenth of a metre).
        assert place.distance_m is not None
        assert place.distance_m <= 0.2
    # A point in Lake Ontario, kilometres from every captured house: the service's answer
    # is too far to be the place.
    south = min(i.lat for i in items) - 0.05
    assert await geocoder.reverse(south, items[0].lon) is None
    assert requests_to(upstream, "/reverse")[-1].args["zoom"] == "18"


async def test_reverse_of_an_invalid_point_asks_nothing(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    geocoder = make_geocoder()
    assert await geocoder.reverse(91.0, 0.0) is None
    assert await geocoder.reverse(math.nan, 0.0) is None
    assert upstream.log == []


async def test_nominatim_no_result_and_reverse_error(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    upstream.expect_request("/search").respond_with_json([])
    upstream.expect_request("/reverse").respond_with_json({"error": "Unable to geocode"})
    geocoder = make_geocoder()
    assert await geocoder.forward("1 Nowhere Rd") is None
    assert await geocoder.reverse(43.65, -79.38) is None


@pytest.mark.parametrize("rank", [4, 16, 21, 25])
async def test_an_answer_coarser_than_a_street_is_no_place(
    upstream: HTTPServer, make_geocoder: GeocoderFactory, rank: int
) -> None:
    item = houses()[0]
    upstream.expect_request("/search").respond_with_json([nominatim_item(item, rank)])
    assert await make_geocoder().forward(item.address) is None


async def test_a_street_level_answer_is_a_street_at_low_confidence(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    item = houses()[0]
    answer = nominatim_item(item, 26)
    del answer["address"]["house_number"]
    upstream.expect_request("/search").respond_with_json([answer])
    place = await make_geocoder().forward(item.address)
    assert place is not None
    assert place.kind == "street"
    parsed = parse_address(item.address)
    assert isinstance(parsed, StreetAddress)
    assert place.address == parsed.street
    assert place.confidence < 0.5


def pelias_feature(item: Captured, layer: str, confidence: float) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [item.lon, item.lat]},
        "properties": {
            "layer": layer,
            "name": item.street_part.replace(" / ", " & "),
            "label": f"{item.street_part}, Toronto, ON, Canada",
            "confidence": confidence,
        },
    }


async def test_pelias_search_and_reverse(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    house = houses()[3]
    crossing = next(c for c in captured() if c.is_intersection)

    def search(request: Request) -> Response:
        text = request.args["text"]
        item, layer = (crossing, "intersection") if "&" in text else (house, "address")
        body = {"type": "FeatureCollection", "features": [pelias_feature(item, layer, 0.87)]}
        return Response(json.dumps(body), content_type="application/json")

    upstream.expect_request("/v1/search").respond_with_handler(search)
    upstream.expect_request("/v1/reverse").respond_with_json(
        {"type": "FeatureCollection", "features": [pelias_feature(house, "address", 0.8)]}
    )
    geocoder = make_geocoder(flavor="pelias", params={"boundary.country": "CA"})
    place = await geocoder.forward(house.address)
    assert place is not None
    assert (place.lat, place.lon, place.kind, place.confidence) == (
        house.lat,
        house.lon,
        "address",
        0.87,
    )
    corner = await geocoder.forward(crossing.address)
    assert corner is not None
    assert corner.kind == "intersection"
    assert corner.address == parse_address(crossing.address).normalized  # type: ignore[union-attr]
    north = house.lat + 30 / METRES_PER_DEGREE
    near = await geocoder.reverse(north, house.lon)
    assert near is not None
    assert near.distance_m is not None
    assert abs(near.distance_m - 30) < 0.5
    for request in requests_to(upstream, "/v1/search"):
        assert request.args["boundary.country"] == "CA"
        assert request.args["size"] == "1"
    assert float(requests_to(upstream, "/v1/reverse")[0].args["point.lat"]) == round(north, 6)


async def test_pelias_coarse_layers_are_no_place(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    house = houses()[0]
    upstream.expect_request("/v1/search").respond_with_json(
        {"type": "FeatureCollection", "features": [pelias_feature(house, "locality", 0.9)]}
    )
    assert await make_geocoder(flavor="pelias").forward(house.address) is None


class Clock:
    """The cache's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_answers_are_cached_by_normalised_address_until_they_expire(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    items = houses()[:3]
    fake_nominatim(upstream, items)
    clock = Clock()
    geocoder = make_geocoder(cache_ttl_s=60, timer=clock)
    first = await geocoder.forward(items[0].address)
    assert first is not None
    # Other spellings of the same address: answered from the cache.
    number, _, street = items[0].street_part.partition(" ")
    for spelling in (items[0].street_part.lower(), f"Unit 3, {number} {street}, Toronto, ON"):
        assert await geocoder.forward(spelling) == first
    # Not found is an answer too.
    assert await geocoder.forward("1 Nowhere Rd") is None
    assert await geocoder.forward("1 NOWHERE ROAD") is None
    assert geocoder.calls == 2
    clock.now += 61
    assert await geocoder.forward(items[0].address) == first
    assert geocoder.calls == 3
    assert len(requests_to(upstream, "/search")) == 3


async def test_the_cache_holds_at_most_cache_size_answers(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    items = houses()[:3]
    fake_nominatim(upstream, items)
    geocoder = make_geocoder(cache_size=2)
    for item in items:
        assert await geocoder.forward(item.address) is not None
    assert geocoder.calls == 3
    assert await geocoder.forward(items[2].address) is not None
    assert geocoder.calls == 3
    # The oldest was dropped to keep two.
    assert await geocoder.forward(items[0].address) is not None
    assert geocoder.calls == 4
    uncached = make_geocoder(cache_size=0)
    for _ in range(2):
        assert await uncached.forward(items[0].address) is not None
    assert uncached.calls == 2


async def test_a_failure_is_not_cached(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    item = houses()[0]
    upstream.expect_oneshot_request("/search").respond_with_data("busy", status=503)
    upstream.expect_request("/search").respond_with_json([nominatim_item(item)])
    geocoder = make_geocoder()
    assert await geocoder.forward(item.address) is None
    place = await geocoder.forward(item.address)
    assert place is not None
    assert (place.lat, place.lon) == (item.lat, item.lon)
    assert geocoder.calls == 2


def slow(seconds: float, body: Any) -> Callable[[Request], Response]:
    def handler(_: Request) -> Response:
        time.sleep(seconds)
        return Response(json.dumps(body), content_type="application/json")

    return handler


def trickle(seconds: float, chunk: bytes) -> Callable[[Request], Response]:
    """Answers a byte at a time, each well within a read timeout, for ``seconds``."""

    def handler(_: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield b"["
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                time.sleep(0.05)
                yield chunk
            yield b"]"

        return Response(body(), content_type="application/json")

    return handler


async def answered_promptly(call: Awaitable[Any], within: float) -> Any:
    started = time.monotonic()
    result = await call
    # Generous: the point is that it does not wait for the service.
    assert time.monotonic() - started < within
    return result


async def test_a_slow_service_gives_none_within_the_timeouts(
    upstream: HTTPServer, make_geocoder: GeocoderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    item = houses()[0]
    upstream.expect_request("/search").respond_with_handler(slow(2.0, [nominatim_item(item)]))
    geocoder = make_geocoder(read_timeout_s=0.2, total_timeout_s=0.5, connect_timeout_s=0.2)
    with caplog.at_level(logging.WARNING, logger="open311.geocode"):
        assert await answered_promptly(geocoder.forward(item.address), 1.8) is None
    assert [r.getMessage() for r in caplog.records] == ["geocoder search: timed out (ReadTimeout)"]
    # The address looked up never reaches the log.
    street = item.street_part.partition(" ")[2]
    assert street.upper() not in caplog.text.upper()


async def test_a_trickling_service_is_cut_off_by_the_total_timeout(
    upstream: HTTPServer, make_geocoder: GeocoderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.expect_request("/search").respond_with_handler(trickle(3.0, b" "))
    geocoder = make_geocoder(read_timeout_s=1.0, total_timeout_s=0.5, connect_timeout_s=0.5)
    with caplog.at_level(logging.WARNING, logger="open311.geocode"):
        assert await answered_promptly(geocoder.forward("1 Yonge St"), 2.5) is None
    assert "no answer within 0.5 s" in caplog.text


async def test_lookups_in_flight_are_bounded_and_waiting_counts_against_the_timeout(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    item = houses()[0]
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most

    def handler(request: Request) -> Response:
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.8)
        with lock:
            in_flight[0] -= 1
        return slow(0, [nominatim_item(item)])(request)

    upstream.expect_request("/search").respond_with_handler(handler)
    geocoder = make_geocoder(max_concurrency=1, total_timeout_s=1.2, read_timeout_s=2.0)
    first, second = await asyncio.gather(
        geocoder.forward(item.address), geocoder.forward("1 Yonge St")
    )
    # One slot: the second waited 0.8 s for it, then could not get its answer in time.
    assert first is not None
    assert second is None
    assert in_flight[1] == 1


async def test_oversized_answers_are_dropped(
    upstream: HTTPServer, make_geocoder: GeocoderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    item = houses()[0]
    big = [nominatim_item(item)] * 50
    declared = json.dumps(big)
    assert len(declared) > 1024
    upstream.expect_request("/search").respond_with_data(declared, content_type="application/json")
    # No Content-Length: streamed until it passes the limit.
    upstream.expect_request("/reverse").respond_with_handler(trickle(0.6, b"0," * 400))
    geocoder = make_geocoder(max_response_bytes=1024, total_timeout_s=5.0)
    with caplog.at_level(logging.WARNING, logger="open311.geocode"):
        assert await geocoder.forward(item.address) is None
        assert await geocoder.reverse(item.lat, item.lon) is None
    assert caplog.text.count("the answer is larger than 1024 bytes") == 2
    small = make_geocoder(max_response_bytes=len(declared))
    assert await small.forward(item.address) is not None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[{", "the answer is not JSON"),
        (b"<html>busy</html>", "the answer is not JSON"),
        (b'{"lat": "43.6"}', "the answer is not a JSON list"),
        (b"[1]", "a result is not a JSON object"),
        (b'[{"lat": "north", "lon": "-79.4", "place_rank": 30}]', "not a number"),
        (b'[{"lat": "95", "lon": "-79.4", "place_rank": 30}]', "out of range"),
        (b'[{"lat": true, "lon": "-79.4", "place_rank": 30}]', "not a number"),
    ],
)
async def test_malformed_answers_give_none_and_a_log_line(
    upstream: HTTPServer,
    make_geocoder: GeocoderFactory,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    reason: str,
) -> None:
    upstream.expect_request("/search").respond_with_data(body, content_type="application/json")
    geocoder = make_geocoder()
    with caplog.at_level(logging.WARNING, logger="open311.geocode"):
        assert await geocoder.forward("333 King St E") is None
    assert reason in caplog.text
    # Not cached: asked again next time.
    assert await geocoder.forward("333 King St E") is None
    assert geocoder.calls == 2


async def test_a_compressed_answer_is_refused(
    upstream: HTTPServer, make_geocoder: GeocoderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    item = houses()[0]
    packed = gzip.compress(json.dumps([nominatim_item(item)]).encode())
    upstream.expect_request("/search").respond_with_data(
        packed, headers={"Content-Encoding": "gzip"}, content_type="application/json"
    )
    geocoder = make_geocoder()
    with caplog.at_level(logging.WARNING, logger="open311.geocode"):
        assert await geocoder.forward(item.address) is None
    assert "compressed" in caplog.text
    assert requests_to(upstream, "/search")[0].headers["Accept-Encoding"] == "identity"


async def test_redirects_are_not_followed(
    upstream: HTTPServer, make_geocoder: GeocoderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    item = houses()[0]
    elsewhere = upstream.url_for("/elsewhere")
    upstream.expect_request("/search").respond_with_data(
        "", status=302, headers={"Location": elsewhere}
    )
    upstream.expect_request("/elsewhere").respond_with_json([nominatim_item(item)])
    geocoder = make_geocoder()
    with caplog.at_level(logging.WARNING, logger="open311.geocode"):
        assert await geocoder.forward(item.address) is None
    assert "HTTP 302" in caplog.text
    assert requests_to(upstream, "/elsewhere") == []


async def test_calls_go_only_under_the_base_url(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    items = houses()[:2]
    fake_nominatim(upstream, items, prefix="/nominatim")
    geocoder = make_geocoder(base_url=upstream.url_for("/nominatim"))
    assert await geocoder.forward(items[0].address) is not None
    hostile = "../../admin?token=1#x / ..%2Fsecret"
    assert await geocoder.forward(hostile) is None
    assert await geocoder.reverse(items[1].lat, items[1].lon) is not None
    paths = [request.path for request, _ in upstream.log]
    assert paths == ["/nominatim/search", "/nominatim/search", "/nominatim/reverse"]
    assert "ADMIN" in upstream.log[1][0].args["q"]
    assert "token" not in upstream.log[1][0].args


async def test_fixed_parameters_and_the_api_key_are_sent_but_ours_win(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    item = houses()[0]
    fake_nominatim(upstream, [item])
    geocoder = make_geocoder(
        params={"countrycodes": "ca", "format": "xml"},
        api_key="s3cret",
        api_key_param="key",
        query_suffix=", Toronto",
    )
    # The fake finds nothing for the suffixed text; the request is what is checked.
    await geocoder.forward(item.address)
    sent = requests_to(upstream, "/search")[0].args
    assert sent["countrycodes"] == "ca"
    assert sent["format"] == "jsonv2"
    assert sent["key"] == "s3cret"
    assert sent["q"].endswith(", Toronto")


async def test_a_service_that_is_not_there_gives_none(
    make_geocoder: GeocoderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    geocoder = make_geocoder(base_url=f"http://127.0.0.1:{port}/")
    with caplog.at_level(logging.WARNING, logger="open311.geocode"):
        assert await answered_promptly(geocoder.forward("333 King St E"), 3.0) is None
        assert await geocoder.reverse(43.65, -79.37) is None
    assert "cannot reach the service (ConnectError)" in caplog.text


async def test_an_address_too_long_is_not_sent(
    upstream: HTTPServer, make_geocoder: GeocoderFactory
) -> None:
    geocoder = make_geocoder(max_address_length=40)
    assert await geocoder.forward("1 " + "Very Long Street Name " * 3) is None
    assert await geocoder.forward("   ") is None
    assert upstream.log == []


async def test_settings_refuse_what_would_send_calls_astray() -> None:
    with pytest.raises(ValidationError, match="needs base_url"):
        GeocodeSettings(kind="http")
    for url in (
        "ftp://geo.example.org/",
        "http://user:pw@geo.example.org/",
        "https://geo.example.org/?key=1",
        "https://geo.example.org/#x",
        "geo.example.org",
    ):
        with pytest.raises(ValidationError):
            GeocodeSettings(kind="http", base_url=url)
    with pytest.raises(ValidationError, match="printable ASCII"):
        GeocodeSettings(user_agent="open311\r\nX-Evil: 1")
    with pytest.raises(ValidationError, match="total_timeout_s"):
        GeocodeSettings(connect_timeout_s=5, total_timeout_s=1)
    settings = GeocodeSettings(kind="http", base_url=" https://geo.example.org/nominatim ")
    assert settings.base_url == "https://geo.example.org/nominatim/"
    geocoder = build_geocoder(settings)
    assert isinstance(geocoder, HttpGeocoder)
    await geocoder.aclose()

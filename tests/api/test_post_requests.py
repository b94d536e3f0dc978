"""POST requests.{json,xml}: keys, services, locations, attributes, text, encodings, privacy.

Every call is made in both formats; every failing call is checked to have written nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from sqlalchemy import func, select

from app.domain.api_keys import revoke_key
from app.domain.queue import QueueProcessor
from app.settings import RequestsSettings
from app.store.tables import ServiceRequest
from tests.conftest import Seed, engine_of
from tests.support import (
    JSON_TYPE,
    XML_TYPE,
    assert_parity,
    error_descriptions,
    fetch_both,
    validate_schema,
    xml_to_value,
)

BASE = "/open311/v2"
FORM_TYPE = "application/x-www-form-urlencoded"
REQUEST = ServiceRequest.__table__
Pairs = list[tuple[str, str]]

LAT_LONG: Pairs = [("lat", "43.6534"), ("long", "-79.3841")]
# The required answers of POTHOLE (see tests/data/catalog.json).
POTHOLE_ANSWERS: Pairs = [
    ("attribute[SIZE]", "SMALL"),
    ("attribute[DEPTH]", "12.5"),
    ("attribute[LANES][]", "N"),
]


# ---------------------------------------------------------------------------------------
# Helpers


def form(
    seed: Seed,
    service: str | None = "LITTER.BIN",
    *extra: tuple[str, str],
    location: Pairs = LAT_LONG,
    key: str | None = None,
) -> Pairs:
    """A POST body: the seeded key, a service code, a location and any extra fields."""
    pairs: Pairs = [("api_key", seed.api_key if key is None else key)]
    if service is not None:
        pairs.append(("service_code", service))
    return pairs + list(location) + list(extra)


def pothole(seed: Seed, *extra: tuple[str, str], answers: Pairs = POTHOLE_ANSWERS) -> Pairs:
    """A POTHOLE body with the given attribute answers and extra fields."""
    return form(seed, "POTHOLE", *answers, *extra)


def without(pairs: Pairs, *names: str) -> Pairs:
    """The pairs whose name is not among ``names``."""
    return [(k, v) for k, v in pairs if k not in names]


def encode(pairs: Pairs) -> bytes:
    """An application/x-www-form-urlencoded body (brackets percent-encoded)."""
    return urlencode(pairs, quote_via=quote).encode("ascii")


@dataclass
class Posted:
    """One POST made in both formats."""

    json: Any
    xml_root: str
    xml: Any
    responses: dict[str, httpx.Response]


async def count_requests(client: httpx.AsyncClient) -> int:
    """How many service requests are stored."""
    async with engine_of(client).connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(REQUEST))).scalar_one())


async def stored(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    """The stored row of a request (our own database, read directly)."""
    async with engine_of(client).connect() as conn:
        row = (await conn.execute(select(REQUEST).where(REQUEST.c.id == int(request_id)))).one()
    return dict(row._mapping)


async def post_both(
    client: httpx.AsyncClient,
    body: Pairs | bytes | None = None,
    *,
    expect: int,
    params: Any = None,
    query: str = "",
    content_type: str | None = FORM_TYPE,
    files: Any = None,
    data: Any = None,
) -> Posted:
    """POST requests.json and requests.xml; check status and exact Content-Type."""
    responses = {}
    for fmt in ("json", "xml"):
        headers = {}
        content = encode(body) if isinstance(body, list) else body
        if content is not None and content_type is not None:
            headers["content-type"] = content_type
        response = await client.post(
            f"{BASE}/requests.{fmt}{query}",
            content=content,
            params=params,
            headers=headers,
            files=files,
            data=data,
        )
        assert response.status_code == expect, (fmt, response.status_code, response.text[:500])
        assert response.headers["content-type"] == (JSON_TYPE if fmt == "json" else XML_TYPE)
        responses[fmt] = response
    root, xml_value = xml_to_value(responses["xml"].content)
    return Posted(responses["json"].json(), root, xml_value, responses)


async def post_error(
    client: httpx.AsyncClient,
    body: Pairs | bytes | None = None,
    *,
    expect: int = 400,
    **kwargs: Any,
) -> list[str]:
    """A failing POST in both formats: the error document, and nothing written."""
    before = await count_requests(client)
    posted = await post_both(client, body, expect=expect, **kwargs)
    assert posted.xml_root == "errors"
    assert_parity(posted.json, posted.xml)
    descriptions = error_descriptions(posted.json)
    assert {item["code"] for item in posted.json} == {expect}
    assert await count_requests(client) == before, "a failing POST wrote a request"
    return descriptions


async def post_ok(
    client: httpx.AsyncClient,
    body: Pairs | bytes | None = None,
    *,
    expect: int = 200,
    **kwargs: Any,
) -> Posted:
    """A successful POST in both formats: one item each, schema-valid, two rows written."""
    before = await count_requests(client)
    posted = await post_both(client, body, expect=expect, **kwargs)
    assert posted.xml_root == "service_requests"
    validate_schema("post", posted.json)
    assert len(posted.json) == 1, posted.json
    assert len(posted.xml) == 1, posted.xml
    assert list(posted.json[0]) == list(posted.xml[0]), (posted.json, posted.xml)
    # Batch submissions are queued: the worker turns them into requests.
    settings = client.app.state.open311.settings  # type: ignore[attr-defined]
    await QueueProcessor(engine_of(client), settings).run_once()
    assert await count_requests(client) == before + 2
    return posted


def ids(posted: Posted) -> list[str]:
    """The service_request_id of the JSON and of the XML POST (realtime services)."""
    found = [posted.json[0]["service_request_id"], posted.xml[0]["service_request_id"]]
    assert all(isinstance(i, str) and i for i in found), found
    assert found[0] != found[1]
    return found


def names(descriptions: list[str], field: str) -> bool:
    """True when some description names ``field``."""
    return any(field in d for d in descriptions)


async def get_one(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    """GET requests/{id} in both formats; the single item."""
    both = await fetch_both(client, f"requests/{request_id}")
    validate_schema("requests", both.json)
    assert both.xml_root == "service_requests"
    assert len(both.json) == 1
    item: dict[str, Any] = both.json[0]
    assert item["service_request_id"] == request_id
    return item


async def stored_attributes(client: httpx.AsyncClient, posted: Posted) -> list[Any]:
    """The stored attributes of both posted requests."""
    return [(await stored(client, i))["attributes"] for i in ids(posted)]


async def each_rejected(
    client: httpx.AsyncClient,
    subtests: pytest.Subtests,
    cases: list[tuple[str, Pairs | bytes, str]],
    *,
    expect: int = 400,
    only: bool = False,
) -> None:
    """Every (label, body, field) case fails in both formats with a description naming field.

    With ``only``, every description names it (no unrelated problem is reported).
    """
    for label, body, field in cases:
        with subtests.test(label):
            descriptions = await post_error(client, body, expect=expect)
            check = all if only else any
            assert check(field in d for d in descriptions), (field, descriptions)


# ---------------------------------------------------------------------------------------
# api_key

UNKNOWN_KEY = "ffffffff.not-a-key-we-issued"


async def test_bad_api_key_is_403(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    keyless = without(form(seeded), "api_key")
    cases: list[tuple[str, Pairs | bytes, str]] = [("missing", keyless, "api_key")]
    for label, key in [("empty", ""), ("blank", "   "), ("unknown", UNKNOWN_KEY), ("short", "abc")]:
        cases.append((label, [*keyless, ("api_key", key)], "api_key"))
    await each_rejected(client, subtests, cases, expect=403)
    with subtests.test("revoked"):
        await post_ok(client, form(seeded))
        async with engine_of(client).begin() as conn:
            assert await revoke_key(conn, seeded.api_key_id)
        descriptions = await post_error(client, form(seeded), expect=403)
        assert names(descriptions, "api_key")


async def test_api_key_from_query_string_and_body_wins(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    keyless = without(form(seeded), "api_key")
    ids(await post_ok(client, keyless, params={"api_key": seeded.api_key}))
    # A valid key in the body is used even when the query string holds a bad one...
    ids(await post_ok(client, form(seeded), params={"api_key": UNKNOWN_KEY}))
    # ...and a bad key in the body is not rescued by a valid one in the query string.
    await post_error(
        client, form(seeded, key=UNKNOWN_KEY), params={"api_key": seeded.api_key}, expect=403
    )


# ---------------------------------------------------------------------------------------
# service_code


async def test_service_code_missing_is_400_and_unknown_is_404(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    missing: list[tuple[str, Pairs | bytes, str]] = [
        ("missing", form(seeded, None), "service_code"),
        ("empty", form(seeded, None, ("service_code", "")), "service_code"),
        ("blank", form(seeded, None, ("service_code", " ")), "service_code"),
    ]
    await each_rejected(client, subtests, missing, expect=400)
    # Codes are case-sensitive exact matches.
    unknown: list[tuple[str, Pairs | bytes, str]] = [
        (code, form(seeded, code), code) for code in ("NOPE", "pothole", "LITTER")
    ]
    await each_rejected(client, subtests, unknown, expect=404)


# ---------------------------------------------------------------------------------------
# The response per service type


async def test_realtime_response(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    notices = {s["service_code"]: s["service_notice"] for s in seeded.catalog["services"]}
    cases = [(pothole(seeded, ("account_id", "acct-42")), "POTHOLE", "acct-42")]
    cases.append((form(seeded, "LITTER.BIN"), "LITTER.BIN", None))
    for body, service, account_id in cases:
        with subtests.test(service):
            posted = await post_ok(client, body)  # HTTP 200 by default
            for item in (posted.json[0], posted.xml[0]):
                assert list(item) == ["service_request_id", "service_notice", "account_id"]
                assert item["service_notice"] == notices[service]
                assert item["account_id"] == account_id
            for request_id in ids(posted):
                assert (await stored(client, request_id))["account_id"] == account_id
                got = await get_one(client, request_id)
                assert (got["service_code"], got["status"]) == (service, "open")


async def test_batch_gets_a_token_and_blackbox_neither(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    posted = await post_ok(client, form(seeded, "GRAFFITI", ("account_id", "acct-7")))
    tokens = []
    for item in (posted.json[0], posted.xml[0]):
        assert list(item) == ["token", "service_notice", "account_id"]
        assert isinstance(item["token"], str)
        assert item["token"]
        assert item["service_notice"] is None
        assert item["account_id"] == "acct-7"
        tokens.append(item["token"])
    assert tokens[0] != tokens[1]

    posted = await post_ok(client, form(seeded, "FEEDBACK", ("account_id", "acct-9")))
    for item in (posted.json[0], posted.xml[0]):
        assert list(item) == ["service_notice", "account_id"]
        assert item["service_notice"] == "Thank you for your feedback."
        assert item["account_id"] == "acct-9"


async def test_success_status_is_configurable_to_201(
    client: httpx.AsyncClient, seeded: Seed, make_client: Any
) -> None:
    ids(await post_ok(client, form(seeded), expect=200))
    other: httpx.AsyncClient = await make_client(requests=RequestsSettings(success_status_code=201))
    ids(await post_ok(other, form(seeded), expect=201))
    # Failures keep their own status.
    await post_error(other, without(form(seeded), "api_key"), expect=403)


# ---------------------------------------------------------------------------------------
# Location


def _where(
    lat: float | None, long: float | None, address: str | None, address_id: str | None
) -> dict[str, Any]:
    """The location fields GET returns."""
    return {"lat": lat, "long": long, "address": address, "address_id": address_id}


async def test_each_location_variant_alone_succeeds(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    cases: list[tuple[str, Pairs, dict[str, Any]]] = [
        ("lat-long", LAT_LONG, _where(43.6534, -79.3841, None, None)),
        (
            "address_string",
            [("address_string", "100 Queen St W")],
            _where(None, None, "100 Queen St W", None),
        ),
        ("address_id", [("address_id", "ADDR-778899")], _where(None, None, None, "ADDR-778899")),
        ("corner-1", [("lat", "90"), ("long", "-180")], _where(90.0, -180.0, None, None)),
        ("corner-2", [("lat", "-90"), ("long", "180")], _where(-90.0, 180.0, None, None)),
        (
            "empties-are-absent",
            [("lat", ""), ("long", ""), ("address_id", ""), ("address_string", "Main St")],
            _where(None, None, "Main St", None),
        ),
    ]
    for label, location, expected in cases:
        with subtests.test(label):
            posted = await post_ok(client, form(seeded, location=location))
            for request_id in ids(posted):
                got = await get_one(client, request_id)
                assert {k: got[k] for k in expected} == expected


async def test_missing_or_incomplete_location_is_400(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    address = [("address_string", "Main St")]
    cases: list[tuple[str, Pairs | bytes, str]] = [
        ("absent", form(seeded, location=[]), "location"),
        (
            "all-empty",
            form(
                seeded,
                location=[("lat", ""), ("long", ""), ("address_string", " "), ("address_id", "")],
            ),
            "location",
        ),
        # Half a coordinate pair is an error even when an address is present.
        ("lat-only", form(seeded, location=[("lat", "43.65"), *address]), "long"),
        ("long-only", form(seeded, location=[("long", "-79.38"), *address]), "lat"),
        ("long-empty", form(seeded, location=[("lat", "43.65"), ("long", ""), *address]), "long"),
    ]
    await each_rejected(client, subtests, cases)


BAD_NUMBERS = ["NaN", "inf", "1e999", "abc", "43,65"]


async def test_bad_coordinate_is_400_naming_the_field(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    cases = [("lat", "90.0001"), ("lat", "-91"), ("long", "180.5"), ("long", "-181")]
    cases += [(field, v) for field in ("lat", "long") for v in BAD_NUMBERS]
    for field, value in cases:
        with subtests.test(field=field, value=value):
            location = {**dict(LAT_LONG), field: value}
            descriptions = await post_error(client, form(seeded, location=list(location.items())))
            other = "long" if field == "lat" else "lat"
            assert any(d.startswith(f"{field} ") for d in descriptions), descriptions
            assert not any(d.startswith(f"{other} ") for d in descriptions), descriptions


# ---------------------------------------------------------------------------------------
# Attributes (POTHOLE has every datatype)


def answers_with(code: str, *values: str, multi: bool = False) -> Pairs:
    """POTHOLE's required answers with ``code`` answered by ``values`` instead."""
    key = f"attribute[{code}][]" if multi else f"attribute[{code}]"
    kept = [(k, v) for k, v in POTHOLE_ANSWERS if not k.startswith(f"attribute[{code}]")]
    return kept + [(key, v) for v in values]


async def test_required_attribute_missing_is_400(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    cases: list[tuple[str, Pairs | bytes, str]] = []
    for code in ("SIZE", "DEPTH", "LANES"):
        cases.append(
            (f"{code}-absent", pothole(seeded, answers=answers_with(code)), f"attribute[{code}]")
        )
        cases.append(
            (f"{code}-empty", pothole(seeded, answers=answers_with(code, "")), f"attribute[{code}]")
        )
    await each_rejected(client, subtests, cases, only=True)


async def test_all_problems_reported_together(client: httpx.AsyncClient, seeded: Seed) -> None:
    answers = [
        ("attribute[DEPTH]", "deep"),
        ("attribute[LANES][]", "WEST"),
        ("attribute[SEEN]", "2024-03-05T14:07:00"),
    ]
    body = form(
        seeded, "POTHOLE", *answers, ("description", "x" * 4001), ("email", "nobody"), location=[]
    )
    descriptions = await post_error(client, body)
    fields = ["attribute[SIZE]", "attribute[DEPTH]", "attribute[LANES]", "attribute[SEEN]"]
    for field in [*fields, "description", "email", "location"]:
        assert names(descriptions, field), (field, descriptions)
    assert len(descriptions) >= 7


async def test_number_attribute_must_parse(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    for value in ("-3", " 7 ", "1e2"):
        with subtests.test(accepted=value):
            posted = await post_ok(client, pothole(seeded, answers=answers_with("DEPTH", value)))
            for attributes in await stored_attributes(client, posted):
                assert float(attributes["DEPTH"]) == float(value)
    cases: list[tuple[str, Pairs | bytes, str]] = [
        (value, pothole(seeded, answers=answers_with("DEPTH", value)), "attribute[DEPTH]")
        for value in ("deep", "NaN", "1e999", "12,5")
    ]
    await each_rejected(client, subtests, cases, only=True)


async def test_datetime_attribute_needs_iso8601_with_zone(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    for value in ("2024-03-05T14:07:00-05:00", "2024-03-05T19:07:00.250Z"):
        with subtests.test(accepted=value):
            posted = await post_ok(client, pothole(seeded, ("attribute[SEEN]", value)))
            for attributes in await stored_attributes(client, posted):
                assert attributes["SEEN"] == value
    rejected = [
        "2024-03-05T14:07:00",  # no zone
        "2024-03-05",
        "2024-03-05T25:07:00Z",
        "yesterday",
    ]
    cases: list[tuple[str, Pairs | bytes, str]] = [
        (value, pothole(seeded, ("attribute[SEEN]", value)), "attribute[SEEN]")
        for value in rejected
    ]
    await each_rejected(client, subtests, cases, only=True)


async def test_list_values_must_be_allowed_keys(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    cases: list[tuple[str, Pairs | bytes, str]] = [
        (f"SIZE={v}", pothole(seeded, answers=answers_with("SIZE", v)), "attribute[SIZE]")
        for v in ("HUGE", "Smaller than a plate")
    ]
    for values in (["N", "WEST"], ["n"]):
        body = pothole(seeded, answers=answers_with("LANES", *values, multi=True))
        cases.append((f"LANES={values}", body, "attribute[LANES]"))
    await each_rejected(client, subtests, cases, only=True)


async def test_multivaluelist_encodings_accepted(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    head = encode(pothole(seeded, answers=answers_with("LANES")))
    cases = {
        "brackets-encoded": "attribute%5BLANES%5D%5B%5D=N&attribute%5BLANES%5D%5B%5D=S",
        "brackets-raw": "attribute[LANES][]=N&attribute[LANES][]=S",
        "repeated-encoded": "attribute%5BLANES%5D=N&attribute%5BLANES%5D=S",
        "repeated-raw": "attribute[LANES]=N&attribute[LANES]=S",
    }
    for label, raw in cases.items():
        with subtests.test(label):
            posted = await post_ok(client, head + b"&" + raw.encode("ascii"))
            for attributes in await stored_attributes(client, posted):
                assert attributes["LANES"] == ["N", "S"]
                assert attributes["SIZE"] == "SMALL"


async def test_a_field_given_twice_must_say_one_thing(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    """The one rule for repeated parameters (``app.georeport.params``) holds for the fields
    read before the submission is validated too: two different values are a 400, whichever
    comes first."""
    body = form(seeded)
    mine = {
        "api_key": seeded.api_key,
        "service_code": "LITTER.BIN",
        "jurisdiction_id": seeded.jurisdiction_id,
    }
    other = {
        "api_key": UNKNOWN_KEY,
        "service_code": "GRAFFITI",
        "jurisdiction_id": "elsewhere.example.org",
    }
    cases: list[tuple[str, Pairs | bytes, str]] = []
    for name, value in mine.items():
        rest = without(body, name)
        for label, pairs in (
            ("first", [(name, value), (name, other[name])]),
            ("last", [(name, other[name]), (name, value)]),
        ):
            cases.append((f"{name}-{label}", rest + pairs, f"{name} was given more than once"))
    await each_rejected(client, subtests, cases)
    body = [*form(seeded), ("service_code", "LITTER.BIN"), ("jurisdiction_id", "")]
    await post_ok(client, body)  # the same value twice, an empty one: fine


async def test_bad_attribute_keys_are_400(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    twice: dict[str, Pairs] = {
        "SIZE": answers_with("SIZE", "SMALL", "LARGE"),
        "DEPTH": answers_with("DEPTH", "3", "4"),
        "LANDMARK": [*POTHOLE_ANSWERS, ("attribute[LANDMARK]", "a"), ("attribute[LANDMARK]", "b")],
        "SEEN": [*POTHOLE_ANSWERS, ("attribute[SEEN][]", "2024-03-05T19:07:00Z")],
    }
    cases: list[tuple[str, Pairs | bytes, str]] = [
        (f"twice-{label}", pothole(seeded, answers=answers), f"attribute[{label.split('-')[0]}]")
        for label, answers in twice.items()
    ]
    for key in ("attribute[]", "attribute[ ]"):
        cases.append((f"empty-code {key}", pothole(seeded, (key, "x")), "attribute"))
    await each_rejected(client, subtests, cases, only=True)


async def test_unknown_codes_are_kept_and_empty_answers_dropped(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    body = pothole(seeded, ("attribute[fixmystreet_id]", "12345"), ("attribute[uprn]", "1000233"))
    posted = await post_ok(client, body)
    for attributes in await stored_attributes(client, posted):
        assert attributes["fixmystreet_id"] == "12345"
        assert attributes["uprn"] == "1000233"
    # A service without attributes accepts them too.
    posted = await post_ok(client, form(seeded, "LITTER.BIN", ("attribute[easting]", "530000")))
    assert await stored_attributes(client, posted) == [{"easting": "530000"}] * 2
    # Empty optional answers are no answers.
    empties = [("attribute[SEEN]", ""), ("attribute[LANDMARK]", ""), ("attribute[DETAILS]", "")]
    posted = await post_ok(client, pothole(seeded, *empties))
    for attributes in await stored_attributes(client, posted):
        assert float(attributes.pop("DEPTH")) == 12.5
        assert attributes == {"SIZE": "SMALL", "LANES": ["N"]}
    # An optional singlevaluelist sent as "" (as FixMyStreet does) is no answer either.
    await post_ok(client, form(seeded, "GRAFFITI", ("attribute[SURFACE]", "")))
    graffiti = REQUEST.c.service_type_id == seeded.service_pks["GRAFFITI"]
    async with engine_of(client).connect() as conn:
        rows = (await conn.execute(select(REQUEST.c.attributes).where(graffiti))).all()
    assert [row.attributes for row in rows] == [None, None]


async def test_stored_attribute_values(client: httpx.AsyncClient, seeded: Seed) -> None:
    answers: Pairs = [
        ("attribute[SIZE]", "LARGE"),
        ("attribute[DEPTH]", "30"),
        ("attribute[LANES][]", "S"),
        ("attribute[LANES][]", "BIKE"),
        ("attribute[SEEN]", "2024-03-05T14:07:00-05:00"),
        ("attribute[LANDMARK]", "Near the Straße café"),
        ("attribute[DETAILS]", "First line\nsecond line"),
        ("attribute[NOTE]", "informational attribute: not an answer"),
    ]
    posted = await post_ok(client, pothole(seeded, answers=answers))
    for attributes in await stored_attributes(client, posted):
        assert float(attributes.pop("DEPTH")) == 30
        assert attributes == {
            "SIZE": "LARGE",
            "LANES": ["S", "BIKE"],
            "SEEN": "2024-03-05T14:07:00-05:00",
            "LANDMARK": "Near the Straße café",
            "DETAILS": "First line\nsecond line",
        }


# ---------------------------------------------------------------------------------------
# Text fields


async def test_description_limit_and_round_trip(client: httpx.AsyncClient, seeded: Seed) -> None:
    text = "é" * 3999 + "x"  # 4000 characters, more bytes
    posted = await post_ok(client, form(seeded, "LITTER.BIN", ("description", text)))
    for request_id in ids(posted):
        assert (await get_one(client, request_id))["description"] == text
    too_long = form(seeded, "LITTER.BIN", ("description", text + "y"))
    assert names(await post_error(client, too_long), "description")
    # Line breaks and non-ASCII text round-trip.
    text = "Overflowing bin – Straße\nSão Paulo corner\r\n\tsecond line"
    posted = await post_ok(client, form(seeded, "LITTER.BIN", ("description", text)))
    for request_id in ids(posted):
        # get_one checks XML/JSON parity; storing CRLF as LF would be fine too.
        description = (await get_one(client, request_id))["description"]
        assert description in (text, text.replace("\r\n", "\n"))


async def test_invalid_text_fields_are_400(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    def case(label: str, field: str, value: str) -> tuple[str, Pairs | bytes, str]:
        return (label, form(seeded, "LITTER.BIN", (field, value)), field)

    cases = [
        case("nul", "first_name", "Ana\x00"),
        case("escape", "last_name", "Sil\x1bva"),
        case("line-feed", "address_string", "100 Queen\nSt W"),
        case("tab", "address_id", "A\tB"),
        case("delete", "device_id", "dev\x7fice"),
        case("carriage-return", "phone", "555\r0199"),
        case("soh", "account_id", "acct\x01"),
        case("bell-in-description", "description", "bell \x07 inside"),
    ]
    cases += [
        case(f"email {email!r}", "email", email)
        for email in ("not-an-email", "a@b", "a b@example.org")
    ]
    await each_rejected(client, subtests, cases)


async def test_over_long_text_is_400(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    limits = {"address_string": 1000, "first_name": 255, "phone": 64}
    for field, limit in limits.items():
        with subtests.test(field):
            await post_ok(client, form(seeded, "LITTER.BIN", (field, "a" * limit)))
            too_long = form(seeded, "LITTER.BIN", (field, "a" * (limit + 1)))
            assert names(await post_error(client, too_long), field)


async def test_media_url_must_be_http_or_https(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    urls = [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "ftp://example.org/p.jpg",
        "example.org/p.jpg",
        "http://",
    ]
    cases: list[tuple[str, Pairs | bytes, str]] = [
        (url, form(seeded, "LITTER.BIN", ("media_url", url)), "media_url") for url in urls
    ]
    await each_rejected(client, subtests, cases)
    # http and https are fine; repeated values are all stored, the first is media_url.
    urls = ["https://img.example.org/p/991.jpg", "http://img.example.org/p/992.jpg"]
    posted = await post_ok(client, form(seeded, "LITTER.BIN", *[("media_url", u) for u in urls]))
    for request_id in ids(posted):
        assert (await get_one(client, request_id))["media_url"] == urls[0]
        row = await stored(client, request_id)
        assert (row["media_url"], row["media_urls"]) == (urls[0], urls)


# ---------------------------------------------------------------------------------------
# Body encodings and size


async def test_non_utf8_urlencoded_body_is_400(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    head = encode(form(seeded))
    tails = {
        "escape-ff-fe": b"&description=%FF%FE",
        "escape-latin1": b"&description=caf%E9",
        "escape-in-name": b"&%FF=x",
        "raw-latin1": b"&description=caf\xe9",
        "raw-truncated": b"&first_name=\xc3",
    }
    cases: list[tuple[str, Pairs | bytes, str]] = [
        (label, head + tail, "UTF-8") for label, tail in tails.items()
    ]
    await each_rejected(client, subtests, cases)
    with subtests.test("query-string"):
        descriptions = await post_error(client, head, query="?description=%FF%FE")
        assert names(descriptions, "UTF-8")


async def test_multipart_body_works_and_must_be_utf8(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    data: dict[str, Any] = dict(form(seeded, "POTHOLE"))
    data.update({"attribute[SIZE]": "LARGE", "attribute[DEPTH]": "4"})
    data["attribute[LANES][]"] = ["N", "BIKE"]
    # A text part given as a "file" without a file name: the body is multipart.
    files: dict[str, Any] = {"description": (None, "Straße – multipart".encode())}
    posted = await post_ok(client, None, data=data, files=files)
    for request_id in ids(posted):
        got = await get_one(client, request_id)
        assert (got["description"], got["lat"]) == ("Straße – multipart", 43.6534)
        attributes = (await stored(client, request_id))["attributes"]
        assert (attributes["SIZE"], attributes["LANES"]) == ("LARGE", ["N", "BIKE"])
    for value in (b"\xff\xfe", b"caf\xe9"):
        with subtests.test(value=value):
            files = {"description": (None, value)}
            descriptions = await post_error(client, None, data=dict(form(seeded)), files=files)
            assert names(descriptions, "UTF-8")


async def test_unsupported_content_type_is_400(
    client: httpx.AsyncClient, seeded: Seed, subtests: pytest.Subtests
) -> None:
    body = json.dumps(dict(form(seeded))).encode()
    for content_type in ("application/json", "text/plain", "application/xml"):
        with subtests.test(content_type):
            assert names(await post_error(client, body, content_type=content_type), "form")


async def test_body_over_one_mib_is_413(client: httpx.AsyncClient, seeded: Seed) -> None:
    head = encode(form(seeded)) + b"&description="
    descriptions = await post_error(client, head + b"a" * (1 << 20), expect=413)
    assert names(descriptions, str(1 << 20))
    # Exactly 1 MiB is within the limit: it is read (and its long description refused).
    body = head + b"a" * ((1 << 20) - len(head))
    assert names(await post_error(client, body, expect=400), "description")


# ---------------------------------------------------------------------------------------
# Privacy and server-owned fields


SENTINELS = {
    "email": "sentinel.mail.7f3a@example.org",
    "phone": "+1-555-0199-7F3A",
    "first_name": "SentinelFirst7f3a",
    "last_name": "SentinelLast7f3a",
    "device_id": "sentinel-device-7f3a",
}


async def test_contact_data_never_appears_in_responses(
    client: httpx.AsyncClient, seeded: Seed
) -> None:
    posted = await post_ok(client, form(seeded, "LITTER.BIN", *SENTINELS.items()))
    request_ids = ids(posted)
    bodies = [r.text for r in posted.responses.values()]
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    listing = await fetch_both(client, "requests", {"start_date": start})
    assert {i["service_request_id"] for i in listing.json} >= set(request_ids)
    bodies += [listing.json_response.text, listing.xml_response.text]
    for request_id in request_ids:
        single = await fetch_both(client, f"requests/{request_id}")
        bodies += [single.json_response.text, single.xml_response.text]
        row = await stored(client, request_id)
        assert {k: row[k] for k in SENTINELS} == SENTINELS  # stored for staff...
    for body in bodies:  # ...never shown.
        for value in SENTINELS.values():
            assert value not in body
            assert quote(value) not in body


async def test_server_owned_fields_are_ignored(client: httpx.AsyncClient, seeded: Seed) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    body = form(
        seeded,
        "LITTER.BIN",
        ("status", "closed"),
        ("service_request_id", "999"),
        ("requested_datetime", "2001-01-01T00:00:00Z"),
        ("updated_datetime", "2001-01-02T00:00:00Z"),
        ("expected_datetime", "2001-01-03T00:00:00Z"),
        ("agency_responsible", "Client Agency"),
        ("service_notice", "client notice"),
        ("status_notes", "client notes"),
    )
    posted = await post_ok(client, body)
    after = datetime.now(UTC) + timedelta(seconds=1)
    request_ids = ids(posted)
    assert "999" not in request_ids
    assert posted.json[0]["service_notice"] is None
    for request_id in request_ids:
        got = await get_one(client, request_id)
        assert (got["status"], got["agency_responsible"]) == ("open", "Solid Waste")
        assert (got["service_notice"], got["status_notes"], got["expected_datetime"]) == (
            None,
            None,
            None,
        )
        for name in ("requested_datetime", "updated_datetime"):
            assert before <= datetime.fromisoformat(got[name]) <= after, (name, got[name])

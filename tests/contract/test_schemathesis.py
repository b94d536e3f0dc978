"""Contract tests: schemathesis against the app's own OpenAPI document, on a seeded database.

Every GeoReport operation goes through the examples phase (every documented example), the
coverage phase (boundary values, missing and unexpected values, undeclared methods) and the
fuzzing phase (Hypothesis, capped by ``OPEN311_CONTRACT_EXAMPLES``), with all default checks
of schemathesis: no server errors, documented status codes, content types, headers and
response schemas, invalid data rejected and valid data accepted. The ``format`` path parameter
is part of the generated data, so both formats are covered; XML bodies are validated against
the same schemas through their ``xml`` annotations (``xml_schema``). A stateful test follows
the OpenAPI links of POST requests to the new request and to the batch token. Everything
runs on PostGIS and on the embedded SQLite backend (``tests/contract/conftest.py``), each time
over one seeded database whose requests accumulate as the cases write, like a real server's.

Runs are reproducible: the seed is fixed unless ``OPEN311_CONTRACT_SEED`` sets another one
(``random`` draws a new seed each run, to explore).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.schemas import OpenApiSchema

from app.api.schemas import IDEMPOTENCY_KEY
from app.domain import cursors
from app.domain.updates import FEED_CURSOR
from app.georeport.datetimes import parse_w3c, to_utc
from app.main import create_app
from app.settings import Settings
from tests.contract.conftest import (
    ADMIN_KEY,
    BASE,
    CONTRACT_KEY,
    PROTECTED_KEY_IDS,
    SEEDED_REQUEST_IDS,
)
from tests.contract.xml_schema import decode_document

pytestmark = pytest.mark.contract

_SEED = os.environ.get("OPEN311_CONTRACT_SEED", "311")
SEED = random.getrandbits(64) if _SEED == "random" else int(_SEED)
MAX_EXAMPLES = int(os.environ.get("OPEN311_CONTRACT_EXAMPLES", "40"))
# Every list with a NextPage link (GET requests, the updates feed) is one more root of the
# scenarios: 40 no longer reached a POST requests -> GET request chain once the feed got one,
# 60 no longer once GeoJSON and nearby came (schemathesis' state machine takes every operation:
# include() does not narrow it).
STATEFUL_SCENARIOS = int(os.environ.get("OPEN311_CONTRACT_SCENARIOS", "150"))

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "base-url": "http://testserver",
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        # Scenarios chain valid calls; invalid input is the other phases' business.
        "phases": {"stateful": {"max-steps": 6, "generation": {"mode": "positive"}}},
    }
)
# The scenarios' own config: their calls are positive cases, so the check for refused
# negative data has nothing to judge there (it misreads a multipart part under a generated
# extra name, which GeoReport servers ignore, as negative data); test_operation runs it.
STATEFUL_CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "base-url": "http://testserver",
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "phases": {"stateful": {"max-steps": 6, "generation": {"mode": "positive"}}},
        "checks": {"negative_data_rejection": {"enabled": False}},
    }
)

# Codes of the test catalogue (tests/data/catalog.json) whose definitions require no attribute,
# so any schema-valid submission to them must be stored: generated service codes are mapped
# onto them (or kept, to exercise unknown codes). POTHOLE requires answers that a schema shared
# by every service cannot state; its documented example covers it.
# Realtime LITTER.BIN twice: most generated codes then create a request the links can follow.
SUBMITTABLE = ("LITTER.BIN", "GRAFFITI", "LITTER.BIN", "FEEDBACK")
IDEMPOTENCY_KEY_TEXT = re.compile(IDEMPOTENCY_KEY["pattern"])


def _operation_id(case: schemathesis.Case) -> str:
    return str(case.operation.definition.raw.get("operationId"))


# Pairs of bounds the server requires in order (a 400 otherwise), a rule between two
# parameters that a schema of each cannot state.
ORDERED_BOUNDS = (("start_date", "end_date"), ("updated_after", "updated_before"))
TEST_ZONE = ZoneInfo("America/Toronto")  # of the test catalogue's jurisdiction
TEST_JURISDICTION = "test.example.org"


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return to_utc(parse_w3c(value, TEST_ZONE))
    except (ValueError, OverflowError):
        return None


def _order_bounds(query: dict[str, Any]) -> None:
    for low, high in ORDERED_BOUNDS:
        first, last = _instant(query.get(low)), _instant(query.get(high))
        if first is not None and last is not None and last < first:
            query[low], query[high] = query[high], query[low]


# GET requests' where and text filters: rules between parameters (lat, long and radius all or
# none; a box's corners in order, its sides bounded) and on text (q's words) that a schema of
# each cannot state. A positive case gets valid values in their place.
WHERE_EXAMPLE = {"lat": "43.6534", "long": "-79.3841", "radius": "500"}
LIST_OPERATIONS = ("requests-list", "requests-geojson", "exports-requests")  # their filters


def _given(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def _valid_where(query: dict[str, Any]) -> None:
    circle = [name for name in WHERE_EXAMPLE if _given(query.get(name))]
    if circle and len(circle) < len(WHERE_EXAMPLE):
        for name in WHERE_EXAMPLE:
            if not _given(query.get(name)):
                query[name] = WHERE_EXAMPLE[name]
    if _given(query.get("bbox")):
        query["bbox"] = "-79.40,43.64,-79.37,43.66"
    if _given(query.get("q")):
        words = re.findall(r"[^\W_]+", str(query["q"]))
        if not 1 <= len(words) <= 8 or len(str(query["q"])) > 200:
            query["q"] = "pothole"


def _prepare_submission(case: schemathesis.Case, *, scenario: bool) -> None:
    # Choices are deterministic in the generated values, so Hypothesis can replay and shrink.
    # Scenarios always submit for real: they exist to read back what they create.
    body = case.body
    assert isinstance(body, dict)
    key = body.get("api_key")
    if isinstance(key, str) and (scenario or sum(map(ord, key)) % 4):
        # Three cases out of four get the known key; the rest try the generated one (a 403).
        body["api_key"] = CONTRACT_KEY
    code = body.get("service_code")
    if isinstance(code, str) and code.strip() and code not in ("POTHOLE", *SUBMITTABLE):
        choice = sum(map(ord, code)) % (len(SUBMITTABLE) + 1)
        if choice < len(SUBMITTABLE) or scenario:
            body["service_code"] = SUBMITTABLE[choice % len(SUBMITTABLE)]
    if scenario:
        # Naming the intake channel is for staff keys (403 for the contract key): scenarios
        # file as an app does.
        body.pop("channel", None)
    idempotency_key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(idempotency_key, str) and IDEMPOTENCY_KEY_TEXT.search(idempotency_key):
        # A client reuses a key only to retry the same request (another body is a 422, by
        # design): the generated key is made specific to the request, replays stay possible.
        # The media type too: the same values sent urlencoded or as multipart are different
        # requests (a nested value is serialized differently by each).
        request = repr(
            [case.media_type, sorted(body.items(), key=str), sorted((case.query or {}).items())]
        )
        digest = hashlib.sha256(request.encode()).hexdigest()[:12]
        case.headers["Idempotency-Key"] = f"{idempotency_key.strip()[:240]}.{digest}"


# The kinds of cursor each paged list hands out (app.domain.cursors).
CURSOR_KINDS = {
    "requests-list": ("r", "u"),
    "requests-geojson": ("r", "u"),
    "updates-list": (FEED_CURSOR,),
}


def _server_cursor(query: dict[str, Any], kinds: tuple[str, ...]) -> None:
    # A cursor is an opaque position the server hands out (X-Next-Cursor); a made-up one is a
    # 400 by design. Generated text is turned into a well-formed position (deterministically).
    text = query.get("cursor")
    if not isinstance(text, str) or not text.strip():
        return
    try:
        cursors.decode(text.strip(), kinds)
    except ValueError:
        seconds = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
        stamp = datetime(2018, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
        query["cursor"] = cursors.encode(kinds[0], stamp, len(text))


def _aim_at_jurisdiction(values: dict[str, Any], *, always: bool) -> None:
    # Random jurisdiction ids are all 404s: send the seeded one in two cases out of three, and
    # always in scenarios, which read back what they wrote in the same jurisdiction.
    given = values.get("jurisdiction_id")
    if isinstance(given, str) and given.strip() and (always or len(given) % 3 != 0):
        values["jurisdiction_id"] = TEST_JURISDICTION


def _admin_call(case: schemathesis.Case) -> None:
    # The Authorization header is any text for the schema: cases without one (or an empty
    # one), and three out of four others, carry the admin key; the rest keep theirs (a 403).
    # The keys the run relies on are never revoked or rotated away: another id, as valid, is
    # used instead.
    headers = dict(case.headers or {})
    given = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not isinstance(given, str) or not given or sum(map(ord, given)) % 4:
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        case.headers = headers
    path = case.path_parameters or {}
    key_id = path.get("key_id")
    if str(key_id).isascii() and str(key_id).isdigit() and int(key_id) in PROTECTED_KEY_IDS:
        other = int(key_id) + 1000
        path["key_id"] = str(other) if isinstance(key_id, str) else other
    # Most valid cases update or read one of the seeded requests (as valid as any other id).
    request_id = path.get("service_request_id")
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and request_id is not None and SEEDED_REQUEST_IDS and len(str(request_id)) % 3:
        seeded = sorted(SEEDED_REQUEST_IDS)[len(str(request_id)) % len(SEEDED_REQUEST_IDS)]
        path["service_request_id"] = seeded if isinstance(request_id, str) else int(seeded)


# Catalogues a positive import case sends: its content is a file's text, valid or not for a
# schema that can only say "a string" (as POTHOLE's answers, a documented example covers the
# rest); the services are the contract run's own, never the seeded ones.
IMPORT_CONTENT = {
    "json": '{"services": [{"service_code": "CONTRACT-IMPORT", "service_name": "Contract '
    'import", "service_levels": "acknowledge=1 business_day; resolve=5 business_days"}]}',
    "csv": "service_code,service_name,service_levels\nCONTRACT-CSV,Contract CSV,"
    "resolve=48 calendar_hours\n",
}


def _prepare_promise(case: schemathesis.Case) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    if _operation_id(case) == "admin-catalog-import" and body.get("format") in IMPORT_CONTENT:
        body["content"] = IMPORT_CONTENT[body["format"]]
    if _operation_id(case) == "admin-services-levels":
        # Like ORDERED_BOUNDS: with one unit, acknowledge comes no later than resolve.
        first, last = body.get("acknowledge"), body.get("resolve")
        if (
            isinstance(first, dict)
            and isinstance(last, dict)
            and first.get("unit") == last.get("unit")
            and isinstance(first.get("amount"), int | float)
            and isinstance(last.get("amount"), int | float)
            and first["amount"] > last["amount"]
        ):
            first["amount"], last["amount"] = last["amount"], first["amount"]


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: Any) -> None:
    """Give generated requests what a schema cannot: a known key, seeded codes, order.

    Each edit replaces a value that is valid for its schema with another valid one, and only
    such values: a case stays as valid or invalid as it was generated, so the checks judge
    the server's answer by the right expectation.
    """
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    scenario = case.meta is not None and case.meta.phase.name is TestPhase.STATEFUL
    for values in (case.query, case.body, case.path_parameters):
        if isinstance(values, dict):
            _aim_at_jurisdiction(values, always=scenario)
    if isinstance(case.query, dict):
        if positive:
            _order_bounds(case.query)
            if _operation_id(case) in LIST_OPERATIONS:
                _valid_where(case.query)
        if _operation_id(case) in CURSOR_KINDS:
            _server_cursor(case.query, CURSOR_KINDS[_operation_id(case)])
    if _operation_id(case) == "requests-create" and isinstance(case.body, dict):
        _prepare_submission(case, scenario=scenario)
    if _operation_id(case).startswith("admin-"):
        _admin_call(case)
        if positive:
            _prepare_promise(case)


# What the stateful scenarios created and then read back through the links.
CREATED: dict[str, set[str]] = {"service_request_id": set(), "token": set()}
FOLLOWED: dict[str, set[str]] = {"service_request_id": set(), "token": set()}


@schemathesis.hook
def after_call(
    context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response
) -> None:
    """Note the ids and tokens POST requests answers, and the reads that used them."""
    operation = _operation_id(case)
    if response.status_code != 200:
        return
    if operation == "requests-create":
        if "json" in response.headers["content-type"][0]:
            items = response.json()
        else:
            items = [
                {e.tag: e.text for e in request}
                for request in ET.fromstring(response.content)  # noqa: S314 - parses this server's own response
            ]
        for item in items:
            for name, created in CREATED.items():
                if item.get(name):
                    created.add(item[name])
    elif operation in ("requests-get", "tokens-get"):
        name = "service_request_id" if operation == "requests-get" else "token"
        value = (case.path_parameters or {}).get(name)
        if value in CREATED[name]:
            FOLLOWED[name].add(value)


@schemathesis.deserializer("text/xml")
def read_georeport_xml(ctx: schemathesis.DeserializationContext, response: Any) -> Any:
    """XML bodies as the JSON value their documented schema describes (see ``xml_schema``)."""
    document = ctx.operation.schema.raw_schema
    operation = document["paths"][ctx.operation.path][ctx.operation.method.lower()]
    declared = operation["responses"][str(response.status_code)]
    return decode_document(response.content, declared["content"]["text/xml"]["schema"], document)


def _georeport(schema: OpenApiSchema) -> OpenApiSchema:
    # The reports are read-only summaries with no links: in the scenarios they would only
    # dilute the chains that follow POST requests' links.
    return schema.include(path_regex=f"^{BASE}/").exclude(path_regex=f"^{BASE}/reports/")


# Built at import, because the operations parametrize the test. The document does not depend on
# the database, and test_openapi_in_sync checks that the app serves this very document.
# (schemathesis.pytest.from_fixture would load it from the fixture's app, but it does not run
# on pytest 9, whose nodes have no ``_nodeid``.)
# Every operation: the GeoReport API, its extensions and the admin API.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi(), config=CONFIG)


@schema.parametrize()
def test_operation(case: schemathesis.Case, contract_app: FastAPI) -> None:
    """Examples, coverage and fuzzing of one operation, with every default check."""
    case.call_and_validate(app=contract_app)


def test_stateful_links(contract_app: FastAPI) -> None:
    """Scenarios chained by the document's links (POST requests -> GET request / token)."""
    served = schemathesis.openapi.from_asgi("/openapi.json", contract_app, config=STATEFUL_CONFIG)
    machine = _georeport(served).as_state_machine()
    for seen in (*CREATED.values(), *FOLLOWED.values()):
        seen.clear()
    machine.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=_SEED != "random",
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    # The links were followed: what POST requests created was read back by its id or token.
    assert FOLLOWED["service_request_id"] or FOLLOWED["token"], (SEED, CREATED)

"""Each conformance check against a fake upstream server that breaks one rule at a time.

The fake (``fake_server.py``) is conformant as it stands; every case below breaks its data, its
behaviour or the bytes of some responses, and asserts exactly which checks fail and why.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.conformance import CHECKS, Outcome, Report, run_conformance
from app.conformance.checks import DESCRIPTION
from tests.conformance.fake_server import (
    API_KEY,
    BASE_URL,
    FakeServer,
    errors_as_detail,
    rewrite,
    when,
)

ALL_CHECKS = [c.name for c in CHECKS]
POST_CHECKS = [c.name for c in CHECKS if c.needs_api_key]


async def run(fake: FakeServer, *, api_key: str | None = API_KEY, **options: Any) -> Report:
    return await run_conformance(BASE_URL, api_key=api_key, transport=fake.transport(), **options)


def failed(report: Report) -> set[str]:
    return {r.name for r in report.failed}


async def test_the_fake_passes_every_check() -> None:
    report = await run(FakeServer())
    assert [r.line() for r in report.results if r.outcome is not Outcome.passed] == []
    assert [r.name for r in report.results] == ALL_CHECKS
    assert report.summary() == f"{len(ALL_CHECKS)} passed, 0 failed, 0 skipped"
    assert report.exit_code == 0


async def test_without_api_key_nothing_is_posted_and_post_checks_skip() -> None:
    fake = FakeServer()
    report = await run(fake, api_key=None)
    skipped = [r.name for r in report.results if r.outcome is Outcome.skipped]
    assert skipped == POST_CHECKS
    assert set(POST_CHECKS) >= {"post.create", "post.bad_api_key", "tokens.resolve"}
    assert all("needs --api-key" in report.result(n).message for n in POST_CHECKS)
    assert fake.posts == []
    assert report.failed == []
    # The sample for the filters and the single request comes from the default list.
    assert "1001" in report.result("request.single").message


async def test_a_valid_submission_answers_every_datatype() -> None:
    fake = FakeServer()
    report = await run(fake)
    assert report.failed == []
    created = fake.posts[0]
    assert created["service_code"] == ["POTHOLE"]  # realtime, the most attributes
    assert created["api_key"] == [API_KEY]
    assert created["attribute[SIZE]"] == ["SMALL"]  # singlevaluelist: a key
    assert created["attribute[LANES][]"] == ["N"]  # multivaluelist: key[]
    assert float(created["attribute[DEPTH]"][0]) == 1
    assert created["attribute[SEEN]"][0].endswith("+00:00")  # datetime with a zone
    assert "\n" in created["attribute[DETAILS]"][0]  # text: multi-line
    assert "attribute[NOTE]" not in created  # variable=false: informational only
    assert created["lat"] == ["43.65"]  # a location the server already uses
    assert created["long"] == ["-79.38"]
    assert created["description"] == [DESCRIPTION]
    # The missing-attribute POST drops exactly one required attribute.
    missing = [
        p for p in fake.posts if p["service_code"] == ["POTHOLE"] and "attribute[SIZE]" not in p
    ]
    assert len(missing) == 2  # one per format
    assert all(p["attribute[DEPTH]"] == ["1"] and p["api_key"] == [API_KEY] for p in missing)


async def test_service_code_and_jurisdiction_id_options() -> None:
    fake = FakeServer()
    seen: list[httpx.Request] = []

    def record(request: httpx.Request, response: httpx.Response) -> None:
        seen.append(request)

    fake.mutators.append(record)
    report = await run(fake, service_code="GRAFFITI", jurisdiction_id="city.example")
    assert report.failed == []
    assert "GRAFFITI (batch)" in report.result("post.create").message
    assert "resolved to request" in report.result("tokens.resolve").message
    # The batch POST's own token was resolved: no extra POST to another batch service.
    valid = [p for p in fake.posts if p.get("api_key") == [API_KEY] and "attribute[SURFACE]" in p]
    assert len(valid) == 2  # one per format
    assert report.result("post.read_back").outcome is Outcome.skipped
    for request in seen:
        sent = request.url.query.decode() + "&" + request.content.decode()
        assert "jurisdiction_id=city.example" in sent, request.url


@dataclass
class Case:
    """One way to break the fake and what the report must say."""

    id: str
    breaks: Callable[[FakeServer], None]
    fails: set[str]
    says: dict[str, str]
    api_key: str | None = API_KEY
    may_also_fail: set[str] = field(default_factory=set)


def quirk(name: str) -> Callable[[FakeServer], None]:
    return lambda fake: fake.quirks.add(name)


def mutate(mutator: Any) -> Callable[[FakeServer], None]:
    return lambda fake: fake.mutators.append(mutator)


def edit_request(request_id: str, **changes: Any) -> Callable[[FakeServer], None]:
    def apply(fake: FakeServer) -> None:
        for item in fake.requests:
            if item["service_request_id"] == request_id:
                item.update(changes)

    return apply


def edit_attribute(service: str, code: str, **changes: Any) -> Callable[[FakeServer], None]:
    def apply(fake: FakeServer) -> None:
        for item in fake.definitions[service]["attributes"]:
            if item["code"] == code:
                item.update(changes)
                for key, value in changes.items():
                    if value is None:
                        del item[key]

    return apply


def drop_discovery_fields(fake: FakeServer) -> None:
    document = fake.discovery()
    del document["key_service"]
    document["endpoints"][0]["formats"] = ["application/json"]
    fake.discovery = lambda: document  # type: ignore[method-assign]


def drop_group(fake: FakeServer) -> None:
    for service in fake.services:
        del service["group"]


def numeric_service_code(fake: FakeServer) -> None:
    fake.services[2]["service_code"] = 311


def first_item(change: dict[str, Any]) -> Callable[[Any], Any]:
    def edit(value: Any) -> Any:
        value[0].update(change)
        return value

    return edit


def strip_declaration(body: bytes) -> bytes:
    return body.split(b"?>", 1)[1]


CASES = [
    Case(
        "discovery: XML served as application/xml",
        mutate(rewrite(when("discovery", "xml"), content_type="application/xml")),
        {"discovery.formats"},
        {"discovery.formats": "Content-Type 'application/xml'"},
    ),
    Case(
        "discovery: key_service missing, endpoint formats without text/xml",
        drop_discovery_fields,
        {"discovery.fields"},
        {"discovery.fields": "discovery lacks key_service; endpoints[0].formats"},
    ),
    Case(
        "discovery: JSON and XML disagree",
        mutate(rewrite(when("discovery", "json"), edit_json=lambda v: {**v, "contact": "x"})),
        {"discovery.parity"},
        {"discovery.parity": "$.contact: JSON 'x' vs XML '311@city.example'"},
    ),
    Case(
        "services: no XML declaration",
        mutate(rewrite(when("services", "xml"), edit=strip_declaration)),
        {"services.formats"},
        {"services.formats": "declaration"},
    ),
    Case(
        "services: JSON without charset",
        mutate(rewrite(when("services", "json"), content_type="application/json")),
        {"services.formats"},
        {"services.formats": "expected 'application/json; charset=utf-8'"},
    ),
    Case(
        "services: a field missing",
        drop_group,
        {"services.fields"},
        {"services.fields": "services[0] lacks group"},
    ),
    Case(
        "services: a numeric service_code in JSON",
        numeric_service_code,
        {"services.fields", "services.schema"},
        {
            "services.fields": "service_code is the JSON number 311",
            "services.schema": "$[2].service_code: 311 is not of type 'string'",
        },
    ),
    Case(
        "services: metadata as a string and an unknown type",
        lambda fake: fake.services[2].update(metadata="false", type="instant"),
        {"services.fields", "services.schema"},
        {
            "services.fields": "services[2].metadata is 'false', expected true or false; "
            "services[2].type is 'instant', expected realtime/batch/blackbox",
            "services.schema": "'instant' is not one of",
        },
    ),
    Case(
        "services: JSON and XML disagree",
        mutate(rewrite(when("services", "json"), edit_json=first_item({"service_name": "P"}))),
        {"services.parity"},
        {"services.parity": "$[0].service_name: JSON 'P' vs XML 'Pothole'"},
    ),
    Case(
        "definitions: JSON without charset",
        mutate(rewrite(when("services/POTHOLE", "json"), content_type="application/json")),
        {"definitions.formats"},
        {"definitions.formats": "GET services/POTHOLE.json: Content-Type 'application/json'"},
    ),
    Case(
        "definitions: values on a text attribute",
        edit_attribute("POTHOLE", "DETAILS", values=[{"key": "A", "name": "A"}]),
        {"definitions.fields"},
        {"definitions.fields": "is a text but has values"},
    ),
    Case(
        "definitions: a list attribute without values",
        edit_attribute("POTHOLE", "LANES", values=None),
        {"definitions.fields"},
        {"definitions.fields": "is a multivaluelist without a values array"},
    ),
    Case(
        "definitions: an unknown datatype",
        edit_attribute("POTHOLE", "DETAILS", datatype="date"),
        {"definitions.fields", "definitions.schema"},
        {
            "definitions.fields": "datatype is 'date', not one of the six",
            "definitions.schema": "'date' is not one of",
        },
    ),
    Case(
        "definitions: an attribute without variable",
        edit_attribute("GRAFFITI", "SURFACE", variable=None),
        {"definitions.fields", "definitions.schema"},
        {"definitions.schema": "'variable' is a required property"},
    ),
    Case(
        "definitions: metadata=true but no attributes",
        lambda fake: fake.definitions["GRAFFITI"].update(attributes=[]),
        {"definitions.fields"},
        {"definitions.fields": "services/GRAFFITI has metadata=true but no attributes"},
    ),
    Case(
        "definitions: a repeated order",
        edit_attribute("POTHOLE", "LANES", order=3),
        {"definitions.order"},
        {"definitions.order": "services/POTHOLE.attributes[3].order 3 is used twice"},
    ),
    Case(
        "definitions: order zero",
        edit_attribute("GRAFFITI", "SURFACE", order=0),
        {"definitions.order"},
        {"definitions.order": "is 0, expected a positive integer"},
    ),
    Case(
        "definitions: JSON and XML disagree",
        mutate(
            rewrite(
                when("services/POTHOLE", "json"),
                edit_json=lambda v: {**v, "attributes": v["attributes"][:-1]},
            )
        ),
        {"definitions.parity"},
        {"definitions.parity": "$.attributes: 5 items in JSON, 6 in XML"},
    ),
    Case(
        "definitions: unknown service answers 200",
        mutate(rewrite(when("services/CONFORMANCE-UNKNOWN-SERVICE"), status=200)),
        {"definitions.unknown_service"},
        {"definitions.unknown_service": "HTTP 200, expected 404"},
    ),
    Case(
        "post: realtime POST without service_request_id",
        quirk("post_without_id"),
        {"post.create"},
        {"post.create": "realtime service but service_request_id is None"},
    ),
    Case(
        "post: POST answers an object, not a list",
        mutate(
            rewrite(when("requests", "json", "POST"), edit_json=lambda v: v[0], successes_only=True)
        ),
        {"post.create", "post.schema", "tokens.resolve"},
        {"post.create": "top-level JSON object, expected an array"},
    ),
    Case(
        "post: a numeric account_id",
        quirk("post_account_number"),
        {"post.schema"},
        {"post.schema": "$[0].account_id: 42 is not valid"},
    ),
    Case(
        "post: non-ASCII text is mangled",
        quirk("mangle_text"),
        {"post.read_back"},
        {"post.read_back": "description is 'Open311 conformance check ? please ignore"},
    ),
    Case(
        "post: an invalid api_key is accepted",
        quirk("accept_bad_key"),
        {"post.bad_api_key"},
        {"post.bad_api_key": "POST requests.json: HTTP 200, expected 403"},
    ),
    Case(
        "post: a missing required attribute is accepted",
        quirk("accept_missing_attribute"),
        {"post.missing_attribute"},
        {"post.missing_attribute": "HTTP 200, expected 400"},
    ),
    Case(
        "post: an unknown service_code is a 400",
        quirk("unknown_service_400"),
        {"post.unknown_service"},
        {"post.unknown_service": "HTTP 400, expected 404"},
    ),
    Case(
        "tokens: the token resolves to a request that does not exist",
        quirk("token_dangling"),
        {"tokens.resolve"},
        {"tokens.resolve": "token resolved to 404404 but GET requests/404404.json: HTTP 404"},
    ),
    Case(
        "tokens: the token is not echoed",
        mutate(
            rewrite(when(prefix="tokens/tok-", fmt="json"), edit_json=first_item({"token": "x"}))
        ),
        {"tokens.resolve"},
        {"tokens.resolve": "GET tokens/tok-2003.json: token is 'x'"},
    ),
    Case(
        "tokens: an unknown token answers 200",
        quirk("unknown_token_200"),
        {"tokens.unknown"},
        {"tokens.unknown": "HTTP 200, expected 404"},
    ),
    Case(
        "requests: the default list lacks the XML declaration",
        mutate(rewrite(when("requests", "xml", bare=True), edit=strip_declaration)),
        {"requests.formats"},
        {"requests.formats": "GET requests.xml: no <?xml"},
    ),
    Case(
        "requests: every requests.json without charset",
        mutate(rewrite(when("requests", "json"), content_type="application/json")),
        {
            "requests.formats",
            "requests.filter_status",
            "requests.filter_service_code",
            "requests.filter_dates",
            "requests.empty_result",
            "requests.invalid_status",
            "requests.end_before_start",
        },
        {"requests.filter_status": "GET requests.json?status=open: Content-Type"},
    ),
    Case(
        "requests: a status outside open/closed",
        edit_request("1002", status="pending"),
        {"requests.fields", "requests.schema"},
        {
            "requests.fields": "requests[4].status is 'pending', expected open or closed",
            "requests.schema": "'pending' is not one of ['open', 'closed']",
        },
    ),
    Case(
        "requests: a numeric service_request_id in JSON",
        edit_request("1002", service_request_id=1002),
        {"requests.fields", "requests.schema"},
        {"requests.fields": "service_request_id is the JSON number 1002; ids and codes must be"},
    ),
    Case(
        "requests: a field missing",
        lambda fake: fake.requests[-1].pop("media_url"),
        {"requests.fields"},
        {"requests.fields": "requests[4] lacks media_url"},
    ),
    Case(
        "requests: a datetime without T and zone",
        edit_request("1002", requested_datetime="2024-03-05 14:07:00"),
        {"requests.datetimes"},
        {"requests.datetimes": "requests[4].requested_datetime is '2024-03-05 14:07:00'"},
        may_also_fail={"requests.schema"},  # when jsonschema can check date-time formats
    ),
    Case(
        "requests: fractional seconds",
        edit_request("1001", updated_datetime="2024-03-05T14:07:00.250-05:00"),
        {"requests.datetimes"},
        {"requests.datetimes": "updated_datetime is '2024-03-05T14:07:00.250-05:00'"},
    ),
    Case(
        "requests: JSON and XML disagree",
        mutate(
            rewrite(when("requests", "json", bare=True), edit_json=first_item({"status": "closed"}))
        ),
        {"requests.parity"},
        {"requests.parity": "$[0].status: JSON 'closed' vs XML 'open'"},
    ),
    Case(
        "requests: an empty string where XML has an empty element",
        edit_request("1002", zipcode=""),
        {"requests.parity"},
        {"requests.parity": "(Spark: an empty element is null)"},
    ),
    Case(
        "requests: the status filter is ignored",
        quirk("ignore_status"),
        {"requests.filter_status"},
        {"requests.filter_status": "status=open returned 1 request(s) with another status"},
    ),
    Case(
        "requests: the service_code filter is ignored",
        quirk("ignore_service_code"),
        {"requests.filter_service_code"},
        {"requests.filter_service_code": "service_code=POTHOLE returned 2 request(s) of"},
    ),
    Case(
        "requests: end_date is exclusive",
        quirk("exclusive_end"),
        {"requests.filter_dates"},
        {"requests.filter_dates": "misses request 2001"},
    ),
    Case(
        "requests: an empty result is a 404",
        mutate(rewrite(when("requests", query="1971"), status=404)),
        {"requests.empty_result"},
        {"requests.empty_result": "HTTP 404, expected 200"},
    ),
    Case(
        "requests: an invalid status is accepted",
        quirk("accept_invalid_status"),
        {"requests.invalid_status"},
        {"requests.invalid_status": "GET requests.json?status=conformance-invalid: HTTP 200"},
    ),
    Case(
        "requests: end_date before start_date is accepted",
        quirk("accept_end_before_start"),
        {"requests.end_before_start"},
        {"requests.end_before_start": "HTTP 200, expected 400"},
    ),
    Case(
        "request: a single request as a bare object",
        mutate(rewrite(when(prefix="requests/1001", fmt="json"), edit_json=lambda v: v[0])),
        {"request.single"},
        {"request.single": "GET requests/1001.json: top-level JSON object"},
        api_key=None,
    ),
    Case(
        "request: an unknown id answers 200 with an empty list",
        quirk("unknown_id_200"),
        {"request.unknown"},
        {"request.unknown": "HTTP 200, expected 404"},
    ),
    Case(
        "errors: {'detail': ...} instead of an errors document",
        mutate(errors_as_detail),
        {
            "definitions.unknown_service",
            "post.bad_api_key",
            "post.missing_attribute",
            "post.unknown_service",
            "tokens.unknown",
            "requests.invalid_status",
            "requests.end_before_start",
            "request.unknown",
            "errors.unknown_format",
        },
        {
            "request.unknown": "top-level JSON object, expected an array",
            "tokens.unknown": "root element <detail>, expected <errors>",
        },
    ),
    Case(
        "errors: code as a string, no description",
        mutate(
            rewrite(
                when("tokens/conformance-unknown-token-5f2c9", "json"),
                body=b'[{"code": "404"}]',
            )
        ),
        {"tokens.unknown"},
        {"tokens.unknown": "error[0] lacks description"},
    ),
    Case(
        "errors: an error in the wrong format",
        mutate(
            rewrite(
                when("requests/9999999999999999", "json"),
                body=b'<?xml version="1.0" encoding="utf-8"?><errors/>',
                content_type="text/xml; charset=utf-8",
            )
        ),
        {"request.unknown"},
        {"request.unknown": "Content-Type 'text/xml; charset=utf-8', expected 'application/json"},
    ),
    Case(
        "errors: an unknown suffix answers text/plain",
        mutate(
            rewrite(
                when("services", "yaml"),
                body=b"we support .xml and .json",
                content_type="text/plain",
            )
        ),
        {"errors.unknown_format"},
        {"errors.unknown_format": "malformed XML"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_broken_server_fails_the_right_checks(case: Case) -> None:
    fake = FakeServer()
    case.breaks(fake)
    report = await run(fake, api_key=case.api_key)
    assert case.fails <= failed(report) <= case.fails | case.may_also_fail, [
        r.line() for r in report.failed
    ]
    for name, text in case.says.items():
        assert text in report.result(name).message, report.result(name).line()
    assert not [r for r in report.results if "crashed" in r.message]
    assert report.exit_code == 1
    assert f", {len(report.failed)} failed," in report.summary()


def test_every_check_is_shown_failing_by_some_case() -> None:
    shown = set().union(*(c.fails for c in CASES))
    assert shown == set(ALL_CHECKS)


async def test_garbage_bodies_fail_without_crashing(tmp_path: Path) -> None:
    fake = FakeServer()
    fake.mutators.append(
        rewrite(when(method=None), body=b"\x00\xff<html>garbage", content_type="text/html")
    )
    report = await run(fake)
    outcomes = {r.name: r.outcome for r in report.results}
    assert report.count(Outcome.passed) == 0
    assert not [r for r in report.results if "crashed" in r.message]
    for name in ("discovery.formats", "services.formats", "requests.formats"):
        assert outcomes[name] is Outcome.failed
        problems = " ".join(report.result(name).problems)
        assert "malformed XML" in problems
        assert "body is not UTF-8" in problems
    # Checks that need the broken data skip and point at the check that failed on it.
    assert outcomes["services.fields"] is Outcome.skipped
    assert "see services.formats" in report.result("services.fields").message
    assert report.summary().startswith("0 passed, ")
    assert report.exit_code == 1

    junit = tmp_path / "report.xml"
    report.write_junit(junit)
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ALL_CHECKS
    assert (
        int(suite.get("failures", ""))
        == len(report.failed)
        == len([c for c in cases if c.find("failure") is not None])
    )
    assert int(suite.get("skipped", "")) == report.count(Outcome.skipped)
    failure = next(c for c in cases if c.get("name") == "services.formats").find("failure")
    assert failure is not None
    assert "Content-Type 'text/html'" in failure.get("message", "")
    assert "Content-Type 'text/html'" in (failure.text or "")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'<?xml version="1.0" encoding="utf-8"?><!DOCTYPE s [<!ENTITY x SYSTEM '
            b'"file:///etc/passwd">]><services>&x;</services>',
            "DOCTYPE",
        ),
        (
            b'<?xml version="1.0" encoding="utf-8"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><services>&b;</services>',
            "DOCTYPE",
        ),
        (b'<?xml version="1.0" encoding="utf-8"?><services><service>', "malformed XML"),
    ],
    ids=["xxe", "entity-expansion", "truncated"],
)
async def test_hostile_or_broken_xml_is_a_failure(body: bytes, reason: str) -> None:
    fake = FakeServer()
    fake.mutators.append(rewrite(when("services", "xml"), body=body))
    report = await run(fake, api_key=None)
    assert failed(report) == {"services.formats"}
    assert reason in report.result("services.formats").message
    assert report.result("services.parity").outcome is Outcome.skipped
    assert "see services.formats" in report.result("services.parity").message


async def test_namespaces_and_xml_attributes_are_failures() -> None:
    fake = FakeServer()
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><services xmlns="urn:x">'
        b'<service kind="a"><service_code>POTHOLE</service_code></service></services>'
    )
    fake.mutators.append(rewrite(when("services", "xml"), body=body))
    report = await run(fake, api_key=None)
    assert failed(report) == {"services.formats", "services.parity"}
    message = report.result("services.formats").message
    assert "<services> is in namespace urn:x" in message
    assert "<service> has XML attributes ['kind']" in message
    assert "$: 3 items in JSON, 1 in XML" in report.result("services.parity").message


@pytest.mark.parametrize(
    ("raised", "reason"),
    [
        (httpx.ConnectError("connection refused"), "ConnectError: connection refused"),
        (httpx.ReadTimeout("slow"), "timed out (ReadTimeout)"),
    ],
)
async def test_transport_errors_are_failures(raised: Exception, reason: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    report = await run_conformance(
        BASE_URL, api_key=API_KEY, transport=httpx.MockTransport(handler)
    )
    assert report.count(Outcome.passed) == 0
    assert reason in report.result("discovery.formats").message
    assert reason in report.result("request.unknown").message
    assert not [r for r in report.results if "crashed" in r.message]
    assert report.exit_code == 1


async def test_json_nan_and_bad_utf8_are_malformed() -> None:
    fake = FakeServer()
    fake.mutators.append(rewrite(when("discovery", "json"), body=b'{"changeset": NaN}'))
    fake.mutators.append(rewrite(when("services", "json"), body=b'[{"service_name": "\xe9"}]'))
    report = await run(fake, api_key=None)
    assert "malformed JSON" in report.result("discovery.formats").message
    assert "body is not UTF-8" in report.result("services.formats").message
    assert failed(report) == {"discovery.formats", "services.formats"}

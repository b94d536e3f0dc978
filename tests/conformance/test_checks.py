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

from app.conformance import CHECKS, Outcome, Report, run_conformance, select
from app.conformance.checks import DESCRIPTION
from app.conformance.report import write_junit
from tests.conformance.fake_server import (
    API_KEY,
    BASE_URL,
    FakeServer,
    errors_as_detail,
    rewrite,
    when,
)

ALL_CHECKS = [c.name for c in select()]  # the core suite, in the order it runs
POST_CHECKS = [c.name for c in select() if c.needs_api_key]


async def run(fake: FakeServer, *, api_key: str | None = API_KEY, **options: Any) -> Report:
    return await run_conformance(BASE_URL, api_key=api_key, transport=fake.transport(), **options)


def failed(report: Report) -> set[str]:
    return {r.name for r in report.failed}


async def test_the_fake_passes_every_check() -> None:
    report = await run(FakeServer())
    assert [r.line() for r in report.results if r.outcome is not Outcome.passed] == []
    assert [r.name for r in report.results] == ALL_CHECKS
    assert report.summary() == f"{len(ALL_CHECKS)} passed, 0 failed, 0 warned, 0 info, 0 not tested"
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
    assert created["attribute[LANES][]"] == ["N", "S"]  # multivaluelist: two keys, key[]
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


async def test_multivalue_posting_adapts_to_the_repeated_form_before_failing() -> None:
    fake = FakeServer()
    fake.quirks.add("repeated_only")  # refuses attribute[CODE][]=v, like some FMS back ends
    report = await run(fake)
    create = report.result("post.create")
    assert create.outcome is Outcome.warned, create.line()
    assert create.findings[0].rule.id == "post.multivalue"
    assert create.findings[0].exchange is not None
    assert create.findings[0].exchange.status == 400
    assert "repeated attribute[CODE] for multivaluelists" in create.message
    accepted = [p for p in fake.posts if p.get("attribute[LANES]") == ["N", "S"]]
    assert accepted, fake.posts
    assert report.failed == [], [r.line() for r in report.failed]
    assert report.exit_code == 0
    strict = await run(FakeServer(), strict=True)
    assert strict.exit_code == 0
    fake = FakeServer()
    fake.quirks.add("repeated_only")
    assert (await run(fake, strict=True)).exit_code == 1


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
    """One way to break the fake: the outcome of each check that does not pass, and the first
    finding of each (``[LEVEL] rule: root cause``)."""

    id: str
    breaks: Callable[[FakeServer], None]
    outcomes: dict[str, str]
    says: dict[str, str]
    api_key: str | None = API_KEY
    may_also: dict[str, str] = field(default_factory=dict)


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
        {"format.content_type": "INFO"},
        {"format.content_type": "[INFO] content_type.application_xml: .xml answered a"},
    ),
    Case(
        "discovery: key_service missing, endpoint formats without text/xml",
        drop_discovery_fields,
        {"discovery.fields": "FAIL"},
        {"discovery.fields": "[FAIL] discovery.required: discovery lacks key_servi"},
    ),
    Case(
        "discovery: JSON and XML disagree",
        mutate(rewrite(when("discovery", "json"), edit_json=lambda v: {**v, "contact": "x"})),
        {"discovery.parity": "FAIL"},
        {"discovery.parity": "[FAIL] parity: $.contact: JSON 'x' vs XML '311@city."},
    ),
    Case(
        "services: no XML declaration",
        mutate(rewrite(when("services", "xml"), edit=strip_declaration)),
        {"format.xml": "FAIL"},
        {"format.xml": '[FAIL] xml.declaration: no <?xml version="1.0" encod'},
    ),
    Case(
        "services: JSON without charset",
        mutate(rewrite(when("services", "json"), content_type="application/json")),
        {},
        {},
    ),
    Case(
        "services: a field missing",
        drop_group,
        {"services.fields": "INFO"},
        {"services.fields": "[INFO] rec.all_fields: fields absent: group"},
    ),
    Case(
        "services: a numeric service_code in JSON",
        numeric_service_code,
        {"services.fields": "INFO", "services.schema": "INFO"},
        {"services.fields": "[INFO] rec.ids_are_strings: service_code is a JSON n"},
    ),
    Case(
        "services: metadata as a string and an unknown type",
        lambda fake: fake.services[2].update(metadata="false", type="instant"),
        {"services.fields": "FAIL", "services.schema": "INFO"},
        {"services.fields": "[FAIL] services.fields: metadata is not true/false"},
    ),
    Case(
        "services: JSON and XML disagree",
        mutate(rewrite(when("services", "json"), edit_json=first_item({"service_name": "P"}))),
        {"services.parity": "FAIL"},
        {"services.parity": "[FAIL] parity: $[].service_name: JSON 'P' vs XML 'Po"},
    ),
    Case(
        "definitions: JSON without charset",
        mutate(rewrite(when("services/POTHOLE", "json"), content_type="application/json")),
        {},
        {},
    ),
    Case(
        "definitions: values on a text attribute",
        edit_attribute("POTHOLE", "DETAILS", values=[{"key": "A", "name": "A"}]),
        {"definitions.fields": "WARN"},
        {"definitions.fields": "[WARN] definitions.conventions: a text attribute has"},
    ),
    Case(
        "definitions: a list attribute without values",
        edit_attribute("POTHOLE", "LANES", values=None),
        {"definitions.fields": "FAIL"},
        {"definitions.fields": "[FAIL] definitions.fields: a multivaluelist without "},
    ),
    Case(
        "definitions: an unknown datatype",
        edit_attribute("POTHOLE", "DETAILS", datatype="date"),
        {"definitions.fields": "FAIL", "definitions.schema": "INFO"},
        {"definitions.fields": "[FAIL] definitions.fields: datatype is not one of th"},
    ),
    Case(
        "definitions: an attribute without variable",
        edit_attribute("GRAFFITI", "SURFACE", variable=None),
        {"definitions.fields": "FAIL", "definitions.schema": "INFO"},
        {"definitions.fields": "[FAIL] definitions.fields: attribute lacks variable"},
    ),
    Case(
        "definitions: metadata=true but no attributes",
        lambda fake: fake.definitions["GRAFFITI"].update(attributes=[]),
        {"definitions.fields": "WARN"},
        {"definitions.fields": "[WARN] definitions.conventions: metadata=true but no"},
    ),
    Case(
        "definitions: a repeated order",
        edit_attribute("POTHOLE", "LANES", order=3),
        {"definitions.order": "WARN"},
        {"definitions.order": "[WARN] definitions.conventions: order used twice in "},
    ),
    Case(
        "definitions: order zero",
        edit_attribute("GRAFFITI", "SURFACE", order=0),
        {"definitions.order": "WARN"},
        {"definitions.order": "[WARN] definitions.conventions: order is not a posit"},
    ),
    Case(
        "definitions: JSON and XML disagree",
        mutate(
            rewrite(
                when("services/POTHOLE", "json"),
                edit_json=lambda v: {**v, "attributes": v["attributes"][:-1]},
            )
        ),
        {"definitions.parity": "FAIL"},
        {"definitions.parity": "[FAIL] parity: $.attributes: 5 items in JSON, 6 in X"},
    ),
    Case(
        "definitions: unknown service answers 200",
        mutate(rewrite(when("services/CONFORMANCE-UNKNOWN-SERVICE"), status=200)),
        {"definitions.unknown_service": "FAIL"},
        {"definitions.unknown_service": "[FAIL] errors.not_found: HTTP 200, expected 404"},
    ),
    Case(
        "post: realtime POST without service_request_id",
        quirk("post_without_id"),
        {"post.create": "FAIL"},
        {"post.create": "[FAIL] post.accepted: realtime service but no servic"},
    ),
    Case(
        "post: POST answers two requests",
        mutate(
            rewrite(
                when("requests", "json", "POST"), edit_json=lambda v: v + v, successes_only=True
            )
        ),
        {"post.create": "FAIL"},
        {"post.create": "[FAIL] post.accepted: 2 items, expected one request"},
    ),
    Case(
        "tokens: a token resolves to two requests",
        mutate(rewrite(when(prefix="tokens/tok-", fmt="json"), edit_json=lambda v: v + v)),
        {"tokens.resolve": "FAIL"},
        {"tokens.resolve": "[FAIL] tokens.resolve: 2 items, expected one"},
    ),
    Case(
        "post: POST answers an object, not a list",
        mutate(
            rewrite(when("requests", "json", "POST"), edit_json=lambda v: v[0], successes_only=True)
        ),
        {"post.create": "FAIL", "post.schema": "INFO", "tokens.resolve": "FAIL"},
        {
            "post.create": "[FAIL] document.shape: top-level JSON object, expect",
            "tokens.resolve": "[FAIL] document.shape: top-level JSON object, expect",
        },
    ),
    Case(
        "post: a numeric account_id",
        quirk("post_account_number"),
        {"post.schema": "INFO"},
        {},
    ),
    Case(
        "post: non-ASCII text is mangled",
        quirk("mangle_text"),
        {"post.read_back": "FAIL"},
        {"post.read_back": "[FAIL] text.round_trip: description does not read ba"},
    ),
    Case(
        "post: an invalid api_key is accepted",
        quirk("accept_bad_key"),
        {"post.bad_api_key": "FAIL"},
        {"post.bad_api_key": "[FAIL] errors.api_key: HTTP 200, expected 403"},
    ),
    Case(
        "post: a missing required attribute is accepted",
        quirk("accept_missing_attribute"),
        {"post.missing_attribute": "FAIL"},
        {"post.missing_attribute": "[FAIL] errors.bad_request: HTTP 200, expected 400"},
    ),
    Case(
        "post: an unknown service_code is a 400",
        quirk("unknown_service_400"),
        {"post.unknown_service": "INFO"},
        {"post.unknown_service": "[INFO] rec.unknown_service_post: HTTP 400, expected "},
    ),
    Case(
        "tokens: the token resolves to a request that does not exist",
        quirk("token_dangling"),
        {"tokens.resolve": "FAIL"},
        {"tokens.resolve": "[FAIL] tokens.resolve: the token's service_request_i"},
    ),
    Case(
        "tokens: the token is not echoed",
        mutate(
            rewrite(when(prefix="tokens/tok-", fmt="json"), edit_json=first_item({"token": "x"}))
        ),
        {"tokens.resolve": "FAIL"},
        {"tokens.resolve": "[FAIL] tokens.resolve: token not echoed"},
    ),
    Case(
        "tokens: an unknown token answers 200",
        quirk("unknown_token_200"),
        {"tokens.unknown": "FAIL"},
        {"tokens.unknown": "[FAIL] errors.not_found: HTTP 200, expected 404"},
    ),
    Case(
        "requests: the default list lacks the XML declaration",
        mutate(rewrite(when("requests", "xml", bare=True), edit=strip_declaration)),
        {"format.xml": "FAIL"},
        {"format.xml": '[FAIL] xml.declaration: no <?xml version="1.0" encod'},
    ),
    Case(
        "requests: every requests.json without charset",
        mutate(rewrite(when("requests", "json"), content_type="application/json")),
        {},
        {},
    ),
    Case(
        "requests: a status outside open/closed",
        edit_request("1002", status="pending"),
        {"requests.fields": "FAIL", "requests.schema": "INFO"},
        {"requests.fields": "[FAIL] requests.fields: status is neither open nor c"},
    ),
    Case(
        "requests: a numeric service_request_id in JSON",
        edit_request("1002", service_request_id=1002),
        {"requests.fields": "INFO", "requests.schema": "INFO"},
        {"requests.fields": "[INFO] rec.ids_are_strings: service_request_id is a "},
    ),
    Case(
        "requests: a field missing",
        lambda fake: fake.requests[-1].pop("media_url"),
        {"requests.fields": "INFO"},
        {"requests.fields": "[INFO] rec.all_fields: fields absent: media_url"},
    ),
    Case(
        "requests: a datetime without T and zone",
        edit_request("1002", requested_datetime="2024-03-05 14:07:00"),
        {"requests.datetimes": "FAIL"},
        {"requests.datetimes": "[FAIL] datetime.w3c: requested_datetime is not W3C-D"},
        may_also={"requests.schema": "INFO"},  # when jsonschema can check date-time formats
    ),
    Case(
        "requests: fractional seconds",
        edit_request("1001", updated_datetime="2024-03-05T14:07:00.250-05:00"),
        {"requests.datetimes": "INFO"},
        {"requests.datetimes": "[INFO] rec.whole_seconds: updated_datetime has fract"},
    ),
    Case(
        "requests: JSON and XML disagree",
        mutate(
            rewrite(when("requests", "json", bare=True), edit_json=first_item({"status": "closed"}))
        ),
        {"requests.parity": "FAIL"},
        {"requests.parity": "[FAIL] parity: $[].status: JSON 'closed' vs XML 'ope"},
    ),
    Case(
        "requests: an empty string where XML has an empty element",
        edit_request("1002", zipcode=""),
        {"requests.parity": "INFO"},
        {"requests.parity": "[INFO] parity.empty: $[].zipcode: JSON '' but XML el"},
    ),
    Case(
        "requests: the status filter is ignored",
        quirk("ignore_status"),
        {"requests.filter_status": "FAIL"},
        {"requests.filter_status": "[FAIL] requests.filters: status=open returned anothe"},
    ),
    Case(
        "requests: the service_code filter is ignored",
        quirk("ignore_service_code"),
        {"requests.filter_service_code": "FAIL"},
        {"requests.filter_service_code": "[FAIL] requests.filters: service_code=POTHOLE return"},
    ),
    Case(
        "requests: end_date is exclusive",
        quirk("exclusive_end"),
        {"requests.filter_dates": "INFO"},
        {"requests.filter_dates": "[INFO] rec.inclusive_bounds: a request at the window"},
    ),
    Case(
        "requests: an empty result is a 404",
        mutate(rewrite(when("requests", query="1971"), status=404)),
        {"requests.empty_result": "WARN"},
        {"requests.empty_result": "[WARN] requests.empty_is_200: HTTP 404, expected 200"},
    ),
    Case(
        "requests: an invalid status is accepted",
        quirk("accept_invalid_status"),
        {"requests.invalid_status": "INFO"},
        {"requests.invalid_status": "[INFO] rec.invalid_status: HTTP 200, expected 400"},
    ),
    Case(
        "requests: end_date before start_date is accepted",
        quirk("accept_end_before_start"),
        {"requests.end_before_start": "WARN"},
        {"requests.end_before_start": "[WARN] rec.end_before_start: HTTP 200, expected 400"},
    ),
    Case(
        "request: a single request as a bare object",
        mutate(rewrite(when(prefix="requests/1001", fmt="json"), edit_json=lambda v: v[0])),
        {"request.single": "FAIL"},
        {"request.single": "[FAIL] document.shape: top-level JSON object, expect"},
        api_key=None,
    ),
    Case(
        "request: an unknown id answers 200 with an empty list",
        quirk("unknown_id_200"),
        {"request.unknown": "FAIL"},
        {"request.unknown": "[FAIL] errors.not_found: HTTP 200, expected 404"},
    ),
    Case(
        "errors: {'detail': ...} instead of an errors document",
        mutate(errors_as_detail),
        {
            "definitions.unknown_service": "FAIL",
            "errors.unknown_format": "INFO",
            "post.bad_api_key": "FAIL",
            "post.missing_attribute": "FAIL",
            "post.unknown_service": "FAIL",
            "request.unknown": "FAIL",
            "requests.end_before_start": "FAIL",
            "requests.invalid_status": "FAIL",
            "tokens.unknown": "FAIL",
        },
        {
            "definitions.unknown_service": "[FAIL] errors.document: errors as a JSON object, exp",
            "post.bad_api_key": "[FAIL] errors.document: errors as a JSON object, exp",
            "post.missing_attribute": "[FAIL] errors.document: errors as a JSON object, exp",
            "post.unknown_service": "[FAIL] errors.document: errors as a JSON object, exp",
            "tokens.unknown": "[FAIL] errors.document: errors as a JSON object, exp",
            "requests.invalid_status": "[FAIL] errors.document: errors as a JSON object, exp",
            "requests.end_before_start": "[FAIL] errors.document: errors as a JSON object, exp",
            "request.unknown": "[FAIL] errors.document: errors as a JSON object, exp",
            "errors.unknown_format": "[INFO] rec.unknown_format: root element <detail>, ex",
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
        {"tokens.unknown": "FAIL"},
        {"tokens.unknown": "[FAIL] errors.document: an error lacks description"},
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
        {"format.content_type": "WARN", "request.unknown": "FAIL"},
        {
            "request.unknown": "[FAIL] errors.document: error body: malformed JSON: ",
            "format.content_type": "[WARN] content_type.media_type: .json answered as 't",
        },
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
        {"errors.unknown_format": "INFO"},
        {"errors.unknown_format": "[INFO] rec.unknown_format: error body: malformed XML"},
    ),
    Case(
        "services: JSON labelled with a charset other than UTF-8",
        mutate(rewrite(when("services", "json"), content_type="application/json; charset=latin1")),
        {"format.content_type": "FAIL"},
        {"format.content_type": "[FAIL] content_type.charset: charset=latin1 (not UTF"},
    ),
    Case(
        "services: XML without charset",
        mutate(rewrite(when("services", "xml"), content_type="text/xml")),
        {"format.content_type": "WARN"},
        {"format.content_type": "[WARN] content_type.xml_charset: text/xml without ch"},
    ),
    Case(
        "services: the list wrapped in an object",
        mutate(rewrite(when("services", "json"), edit_json=lambda v: {"services": v})),
        {"services.formats": "FAIL", "services.parity": "FAIL", "services.schema": "INFO"},
        {"services.formats": "[FAIL] document.shape: top-level JSON object, expect"},
    ),
    Case(
        "definitions: a definition answers 500",
        mutate(rewrite(when("services/GRAFFITI", "xml"), status=500)),
        {"definitions.formats": "FAIL"},
        {"definitions.formats": "[FAIL] http.status: HTTP 500, expected 200"},
    ),
    Case(
        "requests: the list as a wrong XML root",
        mutate(
            rewrite(
                when("requests", "xml", bare=True),
                edit=lambda b: b.replace(b"service_requests>", b"requests>"),
            )
        ),
        {"requests.formats": "FAIL"},
        {"requests.formats": "[FAIL] document.shape: root element <requests>"},
    ),
    Case(
        "discovery: missing",
        mutate(rewrite(when("discovery"), status=404)),
        {"discovery.formats": "FAIL"},
        {"discovery.formats": "[FAIL] discovery.required: HTTP 404, expected 200"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_broken_server_gets_the_right_verdicts(case: Case) -> None:
    fake = FakeServer()
    case.breaks(fake)
    report = await run(fake, api_key=case.api_key)
    judged = {
        r.name: r.outcome.value
        for r in report.results
        if r.outcome not in (Outcome.passed, Outcome.skipped)
    }
    expected = {**case.outcomes, **{k: v for k, v in case.may_also.items() if k in judged}}
    assert judged == expected, [r.line() for r in report.results if r.name in judged]
    for name, text in case.says.items():
        assert text in report.result(name).problems[0], report.result(name).problems
    assert not [r for r in report.results if "crashed" in r.message]
    assert report.exit_code == (1 if "FAIL" in judged.values() else 0)
    assert f", {len(report.failed)} failed," in report.summary()
    strict = await run(FakeServer(), api_key=None, strict=True)
    assert strict.exit_code == 0


def test_every_core_check_is_shown_judging_by_some_case() -> None:
    shown = set().union(*(c.outcomes for c in CASES))
    assert shown == {c.name for c in CHECKS if c.suite == "core"}


async def test_garbage_bodies_fail_without_crashing(tmp_path: Path) -> None:
    fake = FakeServer()
    fake.mutators.append(
        rewrite(when(method=None), body=b"\x00\xff<html>garbage", content_type="text/html")
    )
    report = await run(fake)
    outcomes = {r.name: r.outcome for r in report.results}
    assert not [r for r in report.results if "crashed" in r.message]
    for name in ("discovery.formats", "services.formats", "requests.formats"):
        assert outcomes[name] is Outcome.failed
        problems = " ".join(report.result(name).problems)
        assert "malformed XML" in problems
        assert "body is not UTF-8" in problems
    # The wrong Content-Type is one finding for all responses, with a count and an example.
    finding = report.result("format.content_type").findings[0]
    assert finding.rule.id == "content_type.media_type"
    assert finding.count > 10
    assert finding.exchange is not None
    assert finding.exchange.status == 200
    # Checks that need the broken data skip and point at the check that failed on it.
    assert outcomes["services.fields"] is Outcome.skipped
    assert "see services.formats" in report.result("services.fields").message
    assert report.exit_code == 1

    junit = tmp_path / "report.xml"
    write_junit(report, junit)
    suite = ET.parse(junit).getroot().find("testsuite")  # noqa: S314 - parses this server's own response
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
    assert "malformed XML" in failure.get("message", "")
    assert "[FAIL] document.parse: body is not UTF-8" in (failure.text or "")


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
    assert failed(report) == {"services.parity"}
    xml = report.result("format.xml")
    assert xml.outcome is Outcome.warned  # discouraged, not forbidden (digest §1.2)
    assert (
        "[WARN] xml.plain: elements in namespace urn:x (×3, e.g. GET services.xml)" in xml.problems
    )
    assert (
        "[WARN] xml.plain: XML attributes ['kind'] on <service> (GET services.xml)" in xml.problems
    )
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

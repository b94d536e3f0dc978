"""The core conformance checks, registered in the order they run.

Each check is a small coroutine that takes the :class:`Context` and returns a one-line detail
(PASS), raises :class:`Failure` with the problems found or :class:`Skip` with the reason it
could not be tested. Every problem names the rule it breaks (``rules.py``: level and citation),
so the check's outcome is the worst level among them. Data several checks judge (the service
list, definitions, a created request...) is fetched once through ``ctx.once``/``ctx.get``; a
check that cannot use it because another check already failed on it skips, so one broken
response is one finding, not a cascade. Rules every response obeys (Content-Type, the XML
declaration, no namespaces) are judged once over all responses by the ``format.*`` checks.

The rules come from the spec digest (shared/spec/georeport-v2.md): §1 cross-cutting rules,
§12 the ambiguities (our recommendations are INFO), §13 the conformance checklist.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.conformance import rules as R
from app.conformance.context import Context, Failure, Params, Skip, passed, segment
from app.conformance.documents import (
    JSON,
    XML,
    Exchange,
    content_type_problems,
    error_problems,
    format_problems,
    json_type,
    parity_problems,
    parse_w3c,
    short,
    xml_problems,
)
from app.conformance.rules import Problem, Rule, problem
from app.conformance.schema import SchemaUnavailable, schema_problems
from app.georeport.models import DATATYPES, LIST_DATATYPES, REQUEST_FIELDS, SERVICE_TYPES, STATUSES

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
SERVICE_FIELDS = (
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
)
ATTRIBUTE_FIELDS = (
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
)
OPTIONAL_TEXT_FIELDS = (
    "status_notes",
    "service_name",
    "description",
    "agency_responsible",
    "service_notice",
    "address",
    "address_id",
    "zipcode",
    "media_url",
)
MAX_RESULTS = 1000
MAX_POST_TRIES = 3  # services tried before a valid submission is called refused
SEARCH_WINDOWS = 8  # earlier 90-day windows searched for a sample request
# Names no real server uses; numeric ids because many servers only have numeric ones.
UNKNOWN_SERVICE = "CONFORMANCE-UNKNOWN-SERVICE"
UNKNOWN_REQUEST_ID = "9999999999999999"
UNKNOWN_TOKEN = "conformance-unknown-token-5f2c9"  # noqa: S105 - a test value, not a secret
INVALID_API_KEY = "conformance-invalid-api-key-0000000000"
# Non-ASCII on purpose: text must round-trip in both formats (spec digest §13).
DESCRIPTION = "Open311 conformance check – please ignore. Straße, São Paulo."
ADDRESS = "Open311 conformance check (please ignore)"


CheckFunction = Callable[[Context], Awaitable[str]]


@dataclass(frozen=True)
class Check:
    """A registered check: its name, suite, the rule it is about (level, citation)."""

    name: str
    summary: str
    run: CheckFunction
    rule: Rule
    needs_api_key: bool = False
    suite: str = "core"
    last: bool = False  # judged over every response of the run: runs after all others

    @property
    def level(self) -> R.Level:
        """The level of the rule the check is about (its worst finding may differ)."""
        return self.rule.level


CHECKS: list[Check] = []
SUITES = ("core", "updates", "chicago", "ours")


def check(
    name: str,
    summary: str,
    rule: Rule,
    *,
    needs_api_key: bool = False,
    suite: str = "core",
    last: bool = False,
) -> Callable[..., Any]:
    """Register a check; checks run in the order they are defined."""

    def register(function: CheckFunction) -> CheckFunction:
        CHECKS.append(Check(name, summary, function, rule, needs_api_key, suite, last))
        return function

    return register


# ---------------------------------------------------------------------------------------
# Helpers


def usable(exchange: Exchange, judged_by: str, status: int = 200) -> Any:
    """The parsed value of a response another check judges; Skip when it is unusable."""
    if exchange.transport_error or exchange.status != status or exchange.parse_error:
        raise Skip(f"no usable {exchange.label} (see {judged_by})")
    return exchange.value


def both_parity(exchanges: dict[str, Exchange], judged_by: str) -> list[Problem]:
    """JSON/XML parity of one resource fetched in both formats."""
    if set(exchanges) != {JSON, XML}:
        raise Skip("needs both formats; only one is checked (--format)")
    json_value = usable(exchanges[JSON], judged_by)
    xml_value = usable(exchanges[XML], judged_by)
    label = exchanges[JSON].label.rsplit(".json", 1)[0]
    return parity_problems(json_value, xml_value, label, exchanges[XML])


def schema(kind: str, value: Any, where: str = "") -> list[Problem]:
    """Community JSON Schema problems (INFO); Skip when jsonschema is not installed."""
    try:
        found = schema_problems(kind, value)
    except SchemaUnavailable as exc:
        raise Skip(f"cannot validate: {exc}") from exc
    return [problem(R.SCHEMA, text, where) for text in found]


def attach(problems: list[Problem], exchange: Exchange) -> list[Problem]:
    """The problems found in one response, with it as their example exchange."""
    for item in problems:
        if item.exchange is None:
            item.exchange = exchange
    return problems


def text_or_null(value: Any) -> bool:
    """A JSON string or null."""
    return value is None or isinstance(value, str)


def id_problem(where: str, name: str, value: Any, rule: Rule) -> Problem | None:
    """Ids and codes are non-empty strings; a JSON number is our recommendation only (§12 #15)."""
    if isinstance(value, str) and value:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return problem(R.ID_STRINGS, f"{name} is a JSON number", f"{where} = {value!r}")
    return problem(rule, f"{name} is not a non-empty string", f"{where} = {short(value)}")


def hashable(value: Any) -> Any:
    """A value usable in a set (lists and objects from a broken server become their repr)."""
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def now_utc() -> datetime:
    """The current time in UTC, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


async def error_check(
    ctx: Context,
    method: str,
    path: str,
    status: int,
    *,
    params: Params | None = None,
    form: Params | None = None,
    success_rule: Rule = R.STATUS_OK,
    other_rule: Rule | None = None,
) -> list[Problem]:
    """Each format answers ``status`` with a well-formed errors document carrying the same data."""
    exchanges: dict[str, Exchange] = {}
    problems: list[Problem] = []
    for fmt in ctx.options.formats:
        if method == "POST":
            exchanges[fmt] = await ctx.post(path, fmt, form or ())
        else:
            exchanges[fmt] = await ctx.get(path, fmt, params, cache=False)
        problems.extend(
            error_problems(exchanges[fmt], status, success_rule=success_rule, other_rule=other_rule)
        )
    if not problems and set(exchanges) == {JSON, XML}:
        problems.extend(
            parity_problems(
                exchanges[JSON].value, exchanges[XML].value, f"{method} {path}", exchanges[XML]
            )
        )
    return problems


def not_found(ctx: Context, path: str) -> Awaitable[list[Problem]]:
    """An unknown resource: 404 (200 is a FAIL, another 4xx a WARN) with an errors document."""
    return error_check(
        ctx,
        "GET",
        path,
        404,
        success_rule=R.NOT_FOUND_IS_200,
        other_rule=R.NOT_FOUND_OTHER_4XX,
    )


# ---------------------------------------------------------------------------------------
# Shared data


BOOLEAN_FIELDS = ("metadata", "variable", "required")
NUMBER_FIELDS = ("lat", "long")


def from_xml(value: Any) -> Any:
    """The Spark value of an XML document typed like its JSON twin (XML has only text)."""
    if isinstance(value, list):
        return [from_xml(v) for v in value]
    if not isinstance(value, dict):
        return value
    typed: dict[str, Any] = {}
    for key, item in value.items():
        if key in BOOLEAN_FIELDS and isinstance(item, str) and item.strip() in ("true", "false"):
            typed[key] = item.strip() == "true"
        elif key in NUMBER_FIELDS and isinstance(item, str):
            try:
                typed[key] = float(item)
            except ValueError:
                typed[key] = item
        elif key == "order" and isinstance(item, str) and item.strip().isdigit():
            typed[key] = int(item)
        else:
            typed[key] = from_xml(item)
    return typed


def main_value(exchange: Exchange) -> Any:
    """A parsed response's value, typed like JSON when it is XML."""
    return from_xml(exchange.value) if exchange.fmt == XML else exchange.value


def one_request(
    exchange: Exchange, rule: Rule, status: int | tuple[int, ...] = 200, what: str = ""
) -> tuple[list[Problem], dict[str, Any] | None]:
    """The one request of a ``service_requests`` answer, or the problems why there is none
    (status, format, shape; not exactly one object: "N items, expected one{what}")."""
    found = format_problems(
        exchange, status=status, json_top=list, xml_root="service_requests", status_rule=rule
    )
    if found:
        return found, None
    items = main_value(exchange)
    if len(items) != 1 or not isinstance(items[0], dict):
        return [
            problem(rule, f"{len(items)} items, expected one{what}", exchange.label, exchange)
        ], None
    return [], items[0]


async def main_get(ctx: Context, path: str, params: Params | None = None) -> Exchange:
    """GET a resource in the first checked format (JSON unless only XML is checked)."""
    return await ctx.get(path, ctx.options.formats[0], params)


async def services(ctx: Context) -> list[dict[str, Any]]:
    """The listed services (only the items with a string service_code)."""
    exchange = await main_get(ctx, "services")
    usable(exchange, "services.formats")
    value = main_value(exchange)
    if not isinstance(value, list):
        raise Skip("the service list is not a list (see services.formats)")
    return [s for s in value if isinstance(s, dict) and isinstance(s.get("service_code"), str)]


async def definition_codes(ctx: Context) -> list[str]:
    """The codes whose definitions are checked: --service-code first, then metadata=true ones."""
    codes = [s["service_code"] for s in await services(ctx) if s.get("metadata") is True]
    chosen = ctx.options.service_code
    if chosen in codes:
        codes = [chosen] + [c for c in codes if c != chosen]
    return codes[: ctx.options.max_definitions]


async def definitions(ctx: Context) -> dict[str, dict[str, Exchange]]:
    """Definitions in each checked format, by service code."""
    codes = await definition_codes(ctx)
    if not codes:
        raise Skip("no service has metadata=true, so there is no definition to check")
    return {code: await ctx.both(f"services/{segment(code)}") for code in codes}


async def definition(ctx: Context, code: str) -> dict[str, Any]:
    """The usable definition of one service."""
    exchange = await main_get(ctx, f"services/{segment(code)}")
    usable(exchange, "definitions.formats")
    value = main_value(exchange)
    if not isinstance(value, dict) or not isinstance(value.get("attributes"), list):
        raise Skip(f"the definition of {code} has no attributes list (see definitions.fields)")
    return value


def input_attributes(definition_value: dict[str, Any]) -> list[dict[str, Any]]:
    """The attributes a client answers (variable is not false), with a string code."""
    return [
        a
        for a in definition_value.get("attributes", [])
        if isinstance(a, dict) and a.get("variable") is not False and isinstance(a.get("code"), str)
    ]


async def location(ctx: Context) -> list[tuple[str, str]]:
    """A location the server accepts: lat/long of a visible request, or an address only."""

    async def find() -> list[tuple[str, str]]:
        listing = await ctx.get("requests", ctx.options.formats[0], cache=False)
        items = main_value(listing) if listing.parsed and listing.status == 200 else []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            lat, lon = item.get("lat"), item.get("long")
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
                if lat == 0 and lon == 0:
                    continue
                return [("lat", str(lat)), ("long", str(lon)), ("address_string", ADDRESS)]
        return [("address_string", ADDRESS)]

    return await ctx.once("location", find)


@dataclass
class Submission:
    """A valid POST body for one service (without api_key)."""

    service: dict[str, Any]
    form: list[tuple[str, str]]
    required: list[str]
    multivalue: list[str]  # codes of multivaluelist attributes answered


def attribute_value(
    attribute: dict[str, Any], repeated: bool = False
) -> list[tuple[str, str]] | None:
    """Form pairs answering one attribute validly for its datatype (None: cannot answer).

    A multivaluelist gets two keys when it has two, as ``attribute[CODE][]`` (the spec's form)
    or, with ``repeated``, as repeated ``attribute[CODE]`` (the form FixMyStreet sends).
    """
    code = attribute["code"]
    datatype = attribute.get("datatype")
    values = attribute.get("values")
    keys = [str(v["key"]) for v in values or [] if isinstance(v, dict) and v.get("key") is not None]
    if datatype == "singlevaluelist":
        return [(f"attribute[{code}]", keys[0])] if keys else None
    if datatype == "multivaluelist":
        name = f"attribute[{code}]" if repeated else f"attribute[{code}][]"
        return [(name, key) for key in keys[:2]] or None
    if datatype == "number":
        return [(f"attribute[{code}]", "1")]
    if datatype == "datetime":
        return [(f"attribute[{code}]", (now_utc() - timedelta(hours=1)).isoformat())]
    if datatype == "text":
        return [(f"attribute[{code}]", "Open311 conformance check.\nPlease ignore.")]
    return [(f"attribute[{code}]", "conformance check")]


async def submission(ctx: Context, service: dict[str, Any], repeated: bool = False) -> Submission:
    """A submission filling every input attribute of the service with a valid value."""
    code = service["service_code"]
    form = [("service_code", code), ("description", DESCRIPTION), *await location(ctx)]
    required: list[str] = []
    multivalue: list[str] = []
    if service.get("metadata") is True:
        for attribute in input_attributes(await definition(ctx, code)):
            pairs = attribute_value(attribute, repeated)
            if pairs is None:
                if attribute.get("required") is True:
                    raise Skip(f"required attribute {attribute['code']} of {code} has no values")
                continue
            form.extend(pairs)
            if attribute.get("required") is True:
                required.append(attribute["code"])
            if attribute.get("datatype") == "multivaluelist":
                multivalue.append(attribute["code"])
    return Submission(service, form, required, multivalue)


def with_key(ctx: Context, form: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The form with the user's api_key."""
    return [("api_key", ctx.options.api_key or ""), *form]


async def post_candidates(ctx: Context) -> list[dict[str, Any]]:
    """Services to POST to, best first: --service-code, else realtime ones asking the most."""
    listed = await services(ctx)
    chosen = ctx.options.service_code
    if chosen:
        for service in listed:
            if service["service_code"] == chosen:
                return [service]
        raise Skip(f"--service-code {chosen} is not listed by GET services")
    codes = await definition_codes(ctx)

    async def asks(service: dict[str, Any]) -> int:
        if service.get("metadata") is not True or service["service_code"] not in codes:
            return -1
        try:
            return len(input_attributes(await definition(ctx, service["service_code"])))
        except Skip:
            return -2

    scored = [(service, await asks(service)) for service in listed]
    kinds = {kind: rank for rank, kind in enumerate(SERVICE_TYPES)}  # realtime first
    scored = [(s, n) for s, n in scored if n != -2]
    scored.sort(key=lambda item: (kinds.get(str(item[0].get("type")), 3), -item[1]))
    if not scored:
        raise Skip("GET services lists no service whose definition can be answered")
    return [service for service, _ in scored[:MAX_POST_TRIES]]


async def post_service(ctx: Context) -> dict[str, Any]:
    """The service the valid submission went to (or the best candidate without a key)."""
    if ctx.options.api_key:
        try:
            return (await created(ctx)).submission.service
        except Skip:
            pass
    return (await post_candidates(ctx))[0]


@dataclass
class Created:
    """The POST of a valid submission, once per format, and what it took to get there."""

    submission: Submission
    responses: dict[str, Exchange]
    notes: list[Problem]

    def item(self, fmt: str) -> dict[str, Any] | None:
        """The one item of a response, if it has that shape."""
        response = self.responses.get(fmt)
        if response is None:
            return None
        value = response.value if response.parsed and response.status in (200, 201) else None
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            return value[0]
        return None


def accepted(exchange: Exchange) -> bool:
    """A 2xx answer."""
    return exchange.status is not None and 200 <= exchange.status < 300


async def created(ctx: Context) -> Created:
    """POST a valid submission like a real client: adapt the form, then another service.

    The first format is tried with the spec's ``attribute[CODE][]`` form; when it is refused
    and the service has a multivaluelist, repeated ``attribute[CODE]`` is tried before the
    submission is called refused. When a service refuses, the next candidate is tried.
    """

    async def make() -> Created:
        notes: list[Problem] = []
        first_fmt = ctx.options.formats[0]
        last: Created | None = None
        for service in await post_candidates(ctx):
            sub = await submission(ctx, service)
            answer = await ctx.post("requests", first_fmt, with_key(ctx, sub.form))
            if not accepted(answer) and sub.multivalue:
                alternative = await submission(ctx, service, repeated=True)
                retry = await ctx.post("requests", first_fmt, with_key(ctx, alternative.form))
                if accepted(retry):
                    notes.append(
                        problem(
                            R.MULTIVALUE,
                            f"attribute[CODE][]=v refused (HTTP {answer.status}); the repeated "
                            "attribute[CODE]=v form was accepted",
                            service["service_code"],
                            answer,
                        )
                    )
                    sub, answer = alternative, retry
            responses = {first_fmt: answer}
            last = Created(sub, responses, notes)
            if accepted(answer):
                for fmt in ctx.options.formats[1:]:
                    responses[fmt] = await ctx.post("requests", fmt, with_key(ctx, sub.form))
                return last
            if ctx.options.service_code:
                break
            notes.append(
                problem(
                    R.POST,
                    "a submission built from the service definition was refused; "
                    "another service was tried",
                    service["service_code"],
                    answer,
                )
            )
        assert last is not None  # noqa: S101 - invariant, not an input check
        last.notes = notes[:-1] if notes and not ctx.options.service_code else notes
        return last

    return await ctx.once("the POST of a valid submission", make)


async def created_id(ctx: Context) -> str | None:
    """The service_request_id the first POST returned, if any."""
    item = (await created(ctx)).item(ctx.options.formats[0])
    value = item.get("service_request_id") if item else None
    return value if isinstance(value, str) and value else None


async def default_list(ctx: Context) -> dict[str, Exchange]:
    """GET requests without parameters (the default window), both formats."""
    return await ctx.both("requests")


async def sample(ctx: Context) -> dict[str, Any]:
    """A request to look up and filter for: the one we created, else the newest listed.

    When the default window lists nothing, earlier 90-day windows are searched (the spec caps
    a window at 90 days), up to about two years back.
    """

    async def find() -> dict[str, Any]:
        fmt = ctx.options.formats[0]
        if ctx.options.api_key:
            try:
                request_id = await created_id(ctx)
            except Skip:
                request_id = None
            if request_id:
                found = await ctx.get(f"requests/{segment(request_id)}", fmt)
                value = found.value if found.parsed and found.status == 200 else None
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    return value[0]
        listing = (await default_list(ctx))[fmt]
        for item in sample_items(listing):
            return item
        end = now_utc()
        for _ in range(SEARCH_WINDOWS):
            start = end - timedelta(days=90)
            params = [("start_date", start.isoformat()), ("end_date", end.isoformat())]
            for item in sample_items(await ctx.get("requests", fmt, params)):
                return item
            end = start
        raise Skip(
            "no service request to sample: neither the default window nor the "
            f"{SEARCH_WINDOWS} 90-day windows before it list one"
        )

    return await ctx.once("sample", find)


def sample_items(listing: Exchange) -> list[dict[str, Any]]:
    """Listed requests with a string id."""
    items = main_value(listing) if listing.parsed and listing.status == 200 else None
    return [
        item
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("service_request_id"), str)
    ]


ESSENTIAL_REQUEST_FIELDS = ("service_request_id", "status", "service_code", "requested_datetime")


def request_problems(item: Any, where: str) -> list[Problem]:
    """Fields of one service request item (spec digest §9, §13)."""
    pattern = re.sub(r"\[\d+\]", "[]", where)
    if not isinstance(item, dict):
        return [problem(R.SHAPE, f"{pattern} is a {json_type(item)}, expected an object", where)]
    problems = []
    for name in ESSENTIAL_REQUEST_FIELDS:
        if item.get(name) is None:
            problems.append(problem(R.REQUEST_FIELDS, f"{name} missing or empty", where))
    missing = [f for f in REQUEST_FIELDS if f not in item and f not in ESSENTIAL_REQUEST_FIELDS]
    if missing:
        problems.append(problem(R.ALL_FIELDS, f"fields absent: {', '.join(missing)}", where))
    for name in ("service_request_id", "service_code"):
        if item.get(name) is not None and (
            found := id_problem(where, name, item[name], R.REQUEST_FIELDS)
        ):
            problems.append(found)
    status = item.get("status")
    if isinstance(status, str) and status not in STATUSES:
        if status.lower() in STATUSES:
            problems.append(problem(R.STATUS_CASE, "status not lowercase", f"{where} = {status!r}"))
        else:
            problems.append(
                problem(
                    R.REQUEST_FIELDS, "status is neither open nor closed", f"{where} = {status!r}"
                )
            )
    elif status is not None and not isinstance(status, str):
        problems.append(problem(R.REQUEST_FIELDS, "status is not a string", where))
    for name in OPTIONAL_TEXT_FIELDS:
        if name in item and not text_or_null(item[name]):
            problems.append(
                problem(R.TYPES, f"{name} is a JSON {json_type(item[name])}, not a string", where)
            )
    for name, limit in (("lat", 90), ("long", 180)):
        value = item.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(
                problem(R.TYPES, f"{name} is not a number", f"{where} = {short(value)}")
            )
        elif not -limit <= value <= limit:
            problems.append(problem(R.REQUEST_FIELDS, f"{name} out of range", f"{where} = {value}"))
    description = item.get("description")
    if isinstance(description, str) and len(description) > 4000:
        problems.append(problem(R.DESCRIPTION_LENGTH, "description longer than 4000", where))
    return problems


def datetime_problems(item: Any, where: str) -> list[Problem]:
    """The request's datetimes are W3C-DTF with a zone (spec digest §1.5)."""
    if not isinstance(item, dict):
        return []
    problems = []
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        value = item.get(name)
        if value is None:
            continue
        problems.extend(w3c_problems(value, name, where))
    return problems


FRACTION = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.\d+(Z|[+-]\d{2}:\d{2})$")


def w3c_problems(value: Any, name: str, where: str) -> list[Problem]:
    """A W3C-DTF datetime with a zone; fractional seconds are allowed (our REC: whole)."""
    if parse_w3c(value) is not None:
        return []
    match = FRACTION.match(value) if isinstance(value, str) else None
    if match and parse_w3c(match.group(1) + match.group(2)) is not None:
        return [problem(R.WHOLE_SECONDS, f"{name} has fractional seconds", f"{where} = {value!r}")]
    return [
        problem(
            R.DATETIME,
            f"{name} is not W3C-DTF with a zone (YYYY-MM-DDThh:mm:ss±hh:mm)",
            f"{where} = {short(value)}",
        )
    ]


async def list_query(
    ctx: Context, params: Params, problems: list[Problem]
) -> list[dict[str, Any]] | None:
    """The items of GET requests with parameters, each format judged; None if unusable.

    Parity is left to requests.parity and request.single, so one mismatch is one finding.
    """
    exchanges = await ctx.both("requests", params, cache=False)
    found = []
    for exchange in exchanges.values():
        found.extend(
            format_problems(exchange, status=200, json_top=list, xml_root="service_requests")
        )
    problems.extend(found)
    if found:
        return None
    value = main_value(exchanges[ctx.options.formats[0]])
    return [i for i in value if isinstance(i, dict)]


async def optional_sample(ctx: Context) -> dict[str, Any] | None:
    """The sample request, or None."""
    try:
        return await sample(ctx)
    except Skip:
        return None


def ids(items: list[dict[str, Any]]) -> set[Any]:
    """The service_request_ids of items."""
    return {hashable(i.get("service_request_id")) for i in items}


# ---------------------------------------------------------------------------------------
# Discovery


@check("discovery.formats", "discovery.json and discovery.xml: status and shape", R.DISCOVERY)
async def discovery_formats(ctx: Context) -> str:
    problems = []
    for exchange in (await ctx.both("discovery")).values():
        problems += format_problems(
            exchange, status=200, json_top=dict, xml_root="discovery", status_rule=R.DISCOVERY
        )
    return passed(problems, "answers 200 in each format")


@check("discovery.fields", "discovery fields, endpoints, specification and formats", R.DISCOVERY)
async def discovery_fields(ctx: Context) -> str:
    exchange = await main_get(ctx, "discovery")
    usable(exchange, "discovery.formats")
    value = main_value(exchange)
    if not isinstance(value, dict):
        raise Skip("the discovery document is not an object (see discovery.formats)")
    problems = []
    for name in ("changeset", "contact", "key_service", "endpoints"):
        if name not in value:
            problems.append(problem(R.DISCOVERY, f"discovery lacks {name}", "discovery"))
    for name in ("contact", "key_service"):
        if name in value and not isinstance(value[name], str):
            problems.append(problem(R.DISCOVERY, f"{name} is not a string", "discovery"))
    if "changeset" in value and parse_w3c(value["changeset"]) is None:
        problems.append(
            problem(
                R.CHANGESET, "changeset is not ISO 8601", f"discovery = {short(value['changeset'])}"
            )
        )
    endpoints = value.get("endpoints")
    if "endpoints" in value and not isinstance(endpoints, list):
        problems.append(problem(R.DISCOVERY, "endpoints is not a list", "discovery"))
    georeport = []
    for index, endpoint in enumerate(endpoints if isinstance(endpoints, list) else []):
        where = f"endpoints[{index}]"
        if not isinstance(endpoint, dict):
            problems.append(problem(R.DISCOVERY, "an endpoint is not an object", where))
            continue
        missing = [
            f for f in ("specification", "url", "changeset", "type", "formats") if f not in endpoint
        ]
        if missing:
            problems.append(problem(R.DISCOVERY, f"endpoint lacks {', '.join(missing)}", where))
        url = endpoint.get("url")
        if "url" in endpoint and not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            problems.append(
                problem(R.DISCOVERY, "endpoint url is not http(s)", f"{where} = {short(url)}")
            )
        if "changeset" in endpoint and parse_w3c(endpoint["changeset"]) is None:
            problems.append(
                problem(
                    R.CHANGESET,
                    "endpoint changeset is not ISO 8601",
                    f"{where} = {short(endpoint['changeset'])}",
                )
            )
        if "type" in endpoint and endpoint["type"] not in ("production", "test"):
            problems.append(
                problem(
                    R.DISCOVERY,
                    "endpoint type is not production/test",
                    f"{where} = {short(endpoint['type'])}",
                )
            )
        formats = endpoint.get("formats")
        if isinstance(formats, str):
            formats = [formats]  # XML: one <format> is one text leaf
        if "formats" in endpoint and not (
            isinstance(formats, list) and all(isinstance(f, str) for f in formats)
        ):
            problems.append(problem(R.DISCOVERY, "formats is not a list of strings", where))
            formats = None
        if endpoint.get("specification") == SPECIFICATION:
            georeport.append(endpoint)
            for kind in ("text/xml", "application/json"):
                if isinstance(formats, list) and kind not in formats:
                    problems.append(problem(R.DISCOVERY_FORMATS, f"formats lack {kind}", where))
    if isinstance(endpoints, list) and not georeport:
        problems.append(
            problem(R.DISCOVERY, f"no endpoint has specification {SPECIFICATION}", "discovery")
        )
    attach(problems, exchange)
    return passed(problems, f"{len(georeport)} GeoReport v2 endpoint(s), all fields present")


@check("discovery.parity", "discovery.json and discovery.xml carry the same data", R.PARITY)
async def discovery_parity(ctx: Context) -> str:
    problems = both_parity(await ctx.both("discovery"), "discovery.formats")
    return passed(problems, "same content in both formats")


# ---------------------------------------------------------------------------------------
# Services


@check("services.formats", "services.json and services.xml: status and shape", R.SHAPE)
async def services_formats(ctx: Context) -> str:
    problems = []
    for exchange in (await ctx.both("services")).values():
        problems += format_problems(exchange, status=200, json_top=list, xml_root="services")
    return passed(problems, "answers 200 in each format")


@check(
    "services.fields", "every service: code, name, metadata, type; all 7 fields", R.SERVICE_FIELDS
)
async def services_fields(ctx: Context) -> str:
    exchange = await main_get(ctx, "services")
    usable(exchange, "services.formats")
    value = main_value(exchange)
    if not isinstance(value, list):
        raise Skip("the service list is not a list (see services.formats)")
    problems = []
    seen: set[Any] = set()
    for index, service in enumerate(value):
        where = f"services[{index}]"
        if not isinstance(service, dict):
            problems.append(problem(R.SHAPE, "a service is not an object", where))
            continue
        for name in ("service_code", "service_name", "metadata", "type"):
            if service.get(name) is None:
                problems.append(problem(R.SERVICE_FIELDS, f"{name} missing or empty", where))
        absent = [f for f in SERVICE_FIELDS if f not in service]
        absent = [f for f in absent if f in ("description", "keywords", "group")]
        if absent:
            problems.append(problem(R.ALL_FIELDS, f"fields absent: {', '.join(absent)}", where))
        code = service.get("service_code")
        if code is not None:
            if found := id_problem(where, "service_code", code, R.SERVICE_FIELDS):
                problems.append(found)
            if hashable(code) in seen:
                problems.append(
                    problem(R.SERVICE_FIELDS, "service_code repeated", f"{where} = {code!r}")
                )
            seen.add(hashable(code))
        if "service_name" in service and not text_or_null(service["service_name"]):
            problems.append(problem(R.TYPES, "service_name is not a string", where))
        for name in ("description", "keywords", "group"):
            if name in service and not text_or_null(service[name]):
                problems.append(
                    problem(R.TYPES, f"{name} is a JSON {json_type(service[name])}", where)
                )
        metadata = service.get("metadata")
        if metadata is not None and not isinstance(metadata, bool):
            problems.append(
                problem(
                    R.SERVICE_FIELDS, "metadata is not true/false", f"{where} = {short(metadata)}"
                )
            )
        kind = service.get("type")
        if kind is not None and kind not in SERVICE_TYPES:
            problems.append(
                problem(
                    R.SERVICE_FIELDS,
                    "type is not realtime/batch/blackbox",
                    f"{where} = {short(kind)}",
                )
            )
    return passed(attach(problems, exchange), f"{len(value)} services")


@check("services.schema", "services.json against the community JSON Schema", R.SCHEMA)
async def services_schema(ctx: Context) -> str:
    if JSON not in ctx.options.formats:
        raise Skip("the JSON Schemas apply to JSON; only XML is checked")
    value = usable(await ctx.get("services", JSON), "services.formats")
    return passed(schema("services", value, "services.json"), "valid against service.json")


@check("services.parity", "services.json and services.xml carry the same data", R.PARITY)
async def services_parity(ctx: Context) -> str:
    problems = both_parity(await ctx.both("services"), "services.formats")
    return passed(problems, "same content in both formats")


# ---------------------------------------------------------------------------------------
# Service definitions


@check("definitions.formats", "services/{code}.json and .xml: status and shape", R.SHAPE)
async def definitions_formats(ctx: Context) -> str:
    found = await definitions(ctx)
    problems = []
    for exchanges in found.values():
        for exchange in exchanges.values():
            problems += format_problems(
                exchange, status=200, json_top=dict, xml_root="service_definition"
            )
    return passed(problems, f"{len(found)} definitions answer in each format")


@check(
    "definitions.fields", "attributes: fields, datatypes, values for list datatypes", R.DEFINITION
)
async def definitions_fields(ctx: Context) -> str:
    found = await definitions(ctx)
    problems: list[Problem] = []
    checked = 0
    for code, exchanges in found.items():
        exchange = exchanges[ctx.options.formats[0]]
        value = main_value(exchange) if exchange.parsed and exchange.status == 200 else None
        if not isinstance(value, dict):
            continue
        checked += 1
        where = f"services/{code}"
        if value.get("service_code") != code:
            problems.append(
                problem(
                    R.DEFINITION,
                    "service_code not echoed",
                    f"{where} = {short(value.get('service_code'))}",
                )
            )
        attributes = value.get("attributes")
        if not isinstance(attributes, list):
            problems.append(problem(R.DEFINITION, "attributes is not a list", where))
            continue
        if not attributes:
            problems.append(problem(R.DEFINITION_SHOULD, "metadata=true but no attributes", where))
        codes: set[Any] = set()
        for index, attribute in enumerate(attributes):
            problems.extend(attribute_problems(attribute, f"{where}.attributes[{index}]", codes))
        attach(problems, exchange)
    if not checked:
        raise Skip("no usable definition (see definitions.formats)")
    return passed(problems, f"{checked} definitions")


def attribute_problems(attribute: Any, where: str, codes: set[Any]) -> list[Problem]:
    """One attribute of a service definition (spec digest §4)."""
    if not isinstance(attribute, dict):
        return [problem(R.DEFINITION, "an attribute is not an object", where)]
    problems = []
    for name in ("variable", "code", "datatype", "required"):
        if name not in attribute:
            problems.append(problem(R.DEFINITION, f"attribute lacks {name}", where))
    absent = [f for f in ("datatype_description", "order", "description") if f not in attribute]
    if absent:
        problems.append(problem(R.DEFINITION_SHOULD, f"attribute lacks {', '.join(absent)}", where))
    for name in ("variable", "required"):
        if name in attribute and not isinstance(attribute[name], bool):
            problems.append(
                problem(
                    R.DEFINITION, f"{name} is not true/false", f"{where} = {short(attribute[name])}"
                )
            )
    if "code" in attribute:
        if found := id_problem(where, "code", attribute["code"], R.DEFINITION):
            problems.append(found)
        elif attribute["code"] in codes:
            problems.append(
                problem(R.DEFINITION, "attribute code repeated", f"{where} = {attribute['code']!r}")
            )
        codes.add(hashable(attribute["code"]))
    for name in ("description", "datatype_description"):
        if name in attribute and not text_or_null(attribute[name]):
            problems.append(
                problem(R.TYPES, f"{name} is a JSON {json_type(attribute[name])}", where)
            )
    datatype = attribute.get("datatype")
    if "datatype" in attribute and datatype not in DATATYPES:
        problems.append(
            problem(
                R.DEFINITION,
                "datatype is not one of the six datatypes",
                f"{where} = {short(datatype)}",
            )
        )
    values = attribute.get("values")
    if isinstance(values, dict):
        values = [values]  # XML: one <value> in <values>
    if datatype in LIST_DATATYPES:
        if not isinstance(values, list):
            problems.append(problem(R.DEFINITION, f"a {datatype} without values", where))
            values = []
        keys: set[Any] = set()
        for index, item in enumerate(values):
            here = f"{where}.values[{index}]"
            if not isinstance(item, dict) or not {"key", "name"} <= set(item):
                problems.append(
                    problem(R.DEFINITION, "a value without key and name", f"{here} = {short(item)}")
                )
                continue
            for name in ("key", "name"):
                if found := id_problem(here, name, item[name], R.DEFINITION):
                    problems.append(found)
            if hashable(item["key"]) in keys:
                problems.append(
                    problem(R.DEFINITION, "value key repeated", f"{here} = {item['key']!r}")
                )
            keys.add(hashable(item["key"]))
    elif datatype in DATATYPES and values is not None and values != []:
        problems.append(problem(R.DEFINITION_SHOULD, f"a {datatype} attribute has values", where))
    return problems


@check(
    "definitions.order",
    "attribute order: positive integers, unique per service",
    R.DEFINITION_SHOULD,
)
async def definitions_order(ctx: Context) -> str:
    found = await definitions(ctx)
    problems: list[Problem] = []
    for code, exchanges in found.items():
        exchange = exchanges[ctx.options.formats[0]]
        value = main_value(exchange) if exchange.parsed else None
        if not isinstance(value, dict) or not isinstance(value.get("attributes"), list):
            continue
        orders: list[int] = []
        for index, attribute in enumerate(value["attributes"]):
            if not isinstance(attribute, dict) or "order" not in attribute:
                continue
            order = attribute["order"]
            where = f"services/{code}.attributes[{index}].order = {short(order)}"
            if isinstance(order, bool) or not isinstance(order, int) or order < 1:
                problems.append(
                    problem(R.DEFINITION_SHOULD, "order is not a positive integer", where)
                )
            elif order in orders:
                problems.append(
                    problem(R.DEFINITION_SHOULD, "order used twice in a definition", where)
                )
            else:
                orders.append(order)
    return passed(problems, "orders are unique positive integers")


@check("definitions.schema", "definitions against the community JSON Schema", R.SCHEMA)
async def definitions_schema(ctx: Context) -> str:
    if JSON not in ctx.options.formats:
        raise Skip("the JSON Schemas apply to JSON; only XML is checked")
    found = await definitions(ctx)
    problems = []
    for code, exchanges in found.items():
        if exchanges[JSON].parsed and exchanges[JSON].status == 200:
            problems += schema("service-definition", exchanges[JSON].value, f"services/{code}")
    return passed(problems, "valid against service-definition.json")


@check("definitions.parity", "definitions carry the same data in JSON and XML", R.PARITY)
async def definitions_parity(ctx: Context) -> str:
    problems = []
    compared = 0
    for exchanges in (await definitions(ctx)).values():
        try:
            problems += both_parity(exchanges, "definitions.formats")
            compared += 1
        except Skip as exc:
            if "formats" in str(exc) and "--format" in str(exc):
                raise
            continue
    if not compared:
        raise Skip("no definition usable in both formats (see definitions.formats)")
    return passed(problems, f"{compared} definitions identical in both formats")


@check("definitions.unknown_service", "an unknown service code is a 404", R.NOT_FOUND_IS_200)
async def definitions_unknown(ctx: Context) -> str:
    problems = await not_found(ctx, f"services/{UNKNOWN_SERVICE}")
    return passed(problems, "404 with an errors document")


# ---------------------------------------------------------------------------------------
# POST requests (only with --api-key: it creates real requests)


@check("post.create", "POST a submission built from the definition", R.POST, needs_api_key=True)
async def post_create(ctx: Context) -> str:
    made = await created(ctx)
    service = made.submission.service
    kind = service.get("type")
    problems: list[Problem] = list(made.notes)
    items: dict[str, dict[str, Any]] = {}
    for fmt, exchange in made.responses.items():
        found, one = one_request(exchange, R.POST, (200, 201), " request")
        problems += found
        if one is None:
            continue
        item = items[fmt] = one
        request_id, token = item.get("service_request_id"), item.get("token")
        if kind == "realtime" and not (isinstance(request_id, str) and request_id):
            problems.append(
                problem(
                    R.POST, "realtime service but no service_request_id", exchange.label, exchange
                )
            )
        if kind == "batch" and not (isinstance(token, str) and token):
            problems.append(problem(R.POST, "batch service but no token", exchange.label, exchange))
        if kind != "realtime" and request_id is not None:
            problems.append(
                problem(
                    R.POST,
                    f"{kind} service returned a service_request_id",
                    exchange.label,
                    exchange,
                )
            )
        if kind != "batch" and token is not None:
            problems.append(
                problem(R.POST, f"{kind} service returned a token", exchange.label, exchange)
            )
    if len(items) == 2 and set(items[JSON]) != set(items[XML]):
        problems.append(
            problem(
                R.PARITY,
                f"POST fields differ: JSON {sorted(items[JSON])} vs XML {sorted(items[XML])}",
            )
        )
    form = (
        "repeated attribute[CODE]"
        if any(p.rule is R.MULTIVALUE for p in made.notes)
        else "attribute[CODE][]"
    )
    detail = (
        f"{service['service_code']} ({kind}) with {len(made.submission.required)} required"
        f" attributes accepted ({form} for multivaluelists)"
    )
    return passed(problems, detail)


@check(
    "post.schema",
    "the POST response against the Swagger RequestResponse",
    R.SCHEMA,
    needs_api_key=True,
)
async def post_schema(ctx: Context) -> str:
    response = (await created(ctx)).responses.get(JSON)
    if response is None:
        raise Skip("the JSON Schemas apply to JSON; only XML is checked")
    if not response.parsed or response.status not in (200, 201):
        raise Skip(f"no usable {response.label} (see post.create)")
    return passed(schema("post", response.value, response.label), "valid against RequestResponse")


@check(
    "post.read_back",
    "the created request reads back with its text (non-ASCII)",
    R.ROUND_TRIP,
    needs_api_key=True,
)
async def post_read_back(ctx: Context) -> str:
    made = await created(ctx)
    request_id = await created_id(ctx)
    if made.submission.service.get("type") != "realtime":
        raise Skip(f"{made.submission.service['service_code']} is not realtime: no id to read")
    if request_id is None:
        raise Skip("the POST returned no service_request_id (see post.create)")
    problems: list[Problem] = []
    code = made.submission.service["service_code"]
    for exchange in (await ctx.both(f"requests/{segment(request_id)}")).values():
        found, item = one_request(exchange, R.SINGLE)
        problems += found
        if item is None:
            continue
        for name, expected, rule in (
            ("service_request_id", request_id, R.SINGLE),
            ("service_code", code, R.SINGLE),
            ("description", DESCRIPTION, R.ROUND_TRIP),
        ):
            if item.get(name) != expected:
                problems.append(
                    problem(
                        rule,
                        f"{name} does not read back as sent",
                        f"{exchange.label}: {short(item.get(name))}, sent {short(expected)}",
                        exchange,
                    )
                )
    return passed(problems, f"request {request_id} reads back in each format")


@check("post.bad_api_key", "a missing or invalid api_key is a 403", R.API_KEY, needs_api_key=True)
async def post_bad_api_key(ctx: Context) -> str:
    sub = await submission(ctx, await post_service(ctx))
    problems = await error_check(
        ctx,
        "POST",
        "requests",
        403,
        form=[("api_key", INVALID_API_KEY), *sub.form],
        success_rule=R.API_KEY,
    )
    problems += await error_check(
        ctx, "POST", "requests", 403, form=sub.form, success_rule=R.API_KEY
    )
    return passed(problems, "403 with an errors document for an invalid and a missing key")


@check(
    "post.missing_attribute",
    "a missing required attribute is a 400",
    R.BAD_REQUEST,
    needs_api_key=True,
)
async def post_missing_attribute(ctx: Context) -> str:
    made = await created(ctx)
    candidates = [made.submission.service]
    by_code = {s["service_code"]: s for s in await services(ctx)}
    candidates += [by_code[c] for c in await definition_codes(ctx) if c in by_code]
    repeated = any(p.rule is R.MULTIVALUE for p in made.notes)
    for service in candidates:
        try:
            sub = await submission(ctx, service, repeated)
        except Skip:
            continue
        if sub.required:
            break
    else:
        raise Skip("no checked service has a required attribute")
    dropped = sub.required[0]
    form = [
        (k, v) for k, v in sub.form if k not in (f"attribute[{dropped}]", f"attribute[{dropped}][]")
    ]
    problems = await error_check(
        ctx,
        "POST",
        "requests",
        400,
        form=with_key(ctx, form),
        success_rule=R.BAD_REQUEST,
        other_rule=R.NOT_FOUND_OTHER_4XX,
    )
    return passed(problems, f"400 without attribute[{dropped}] of {service['service_code']}")


@check(
    "post.unknown_service",
    "POST to an unknown service_code is a 404",
    R.UNKNOWN_SERVICE_POST,
    needs_api_key=True,
)
async def post_unknown_service(ctx: Context) -> str:
    form = [("service_code", UNKNOWN_SERVICE), ("description", DESCRIPTION), *await location(ctx)]
    problems = await error_check(
        ctx,
        "POST",
        "requests",
        404,
        form=with_key(ctx, form),
        success_rule=R.NOT_FOUND_IS_200,
        other_rule=R.UNKNOWN_SERVICE_POST,
    )
    return passed(problems, "404 with an errors document")


# ---------------------------------------------------------------------------------------
# Tokens


@check(
    "tokens.resolve", "a batch service's token resolves via GET tokens", R.TOKEN, needs_api_key=True
)
async def tokens_resolve(ctx: Context) -> str:
    token = await batch_token(ctx)
    problems: list[Problem] = []
    exchanges = await ctx.both(f"tokens/{segment(token)}")
    for exchange in exchanges.values():
        found, item = one_request(exchange, R.TOKEN)
        problems += found
        if item is None:
            continue
        if item.get("token") != token:
            problems.append(
                problem(
                    R.TOKEN,
                    "token not echoed",
                    f"{exchange.label}: {short(item.get('token'))}",
                    exchange,
                )
            )
        if "service_request_id" not in item:
            problems.append(
                problem(
                    R.TOKEN, "no service_request_id (null while pending)", exchange.label, exchange
                )
            )
    if problems:
        raise Failure(problems)
    if set(exchanges) == {JSON, XML}:
        problems += parity_problems(
            exchanges[JSON].value, exchanges[XML].value, f"GET tokens/{token}"
        )
        problems += schema("token", exchanges[JSON].value, f"tokens/{token}.json")
    first = exchanges[ctx.options.formats[0]]
    request_id = main_value(first)[0].get("service_request_id")
    if request_id is None:
        return passed(problems, f"token {token} is known and still pending")
    if found_problem := id_problem("token", "service_request_id", request_id, R.TOKEN):
        raise Failure([*problems, found_problem])
    read_back = await ctx.get(f"requests/{segment(request_id)}", first.fmt)
    value = main_value(read_back) if read_back.parsed and read_back.status == 200 else None
    if not (isinstance(value, list) and value and isinstance(value[0], dict)) or (
        value[0].get("service_request_id") != request_id
    ):
        problems.append(
            problem(
                R.TOKEN,
                "the token's service_request_id does not read back",
                f"{request_id}: {read_back.describe()}",
                read_back,
            )
        )
    return passed(problems, f"token {token} resolved to request {request_id}")


async def batch_token(ctx: Context) -> str:
    """A token from POSTing to a batch service (the chosen service's POST when it is batch)."""
    made = await created(ctx)
    fmt = ctx.options.formats[0]
    if made.submission.service.get("type") == "batch":
        item = made.item(fmt)
        token = item.get("token") if item else None
        if not (isinstance(token, str) and token):
            raise Skip("the batch POST returned no token (see post.create)")
        return token
    batch = [s for s in await services(ctx) if s.get("type") == "batch"]
    if not batch:
        raise Skip("no batch service is listed")
    sub = await submission(ctx, batch[0], any(p.rule is R.MULTIVALUE for p in made.notes))
    exchange = await ctx.post("requests", fmt, with_key(ctx, sub.form))
    problems = format_problems(
        exchange, status=(200, 201), json_top=list, xml_root="service_requests", status_rule=R.POST
    )
    if problems:
        raise Failure(problems)
    value = main_value(exchange)
    token = value[0].get("token") if value and isinstance(value[0], dict) else None
    if not (isinstance(token, str) and token):
        raise Failure(
            [problem(R.POST, "batch service but no token", batch[0]["service_code"], exchange)]
        )
    return token


@check("tokens.unknown", "an unknown token is a 404", R.NOT_FOUND_IS_200)
async def tokens_unknown(ctx: Context) -> str:
    problems = await not_found(ctx, f"tokens/{UNKNOWN_TOKEN}")
    return passed(problems, "404 with an errors document")


# ---------------------------------------------------------------------------------------
# GET requests


@check("requests.formats", "requests.json and requests.xml: status and shape", R.SHAPE)
async def requests_formats(ctx: Context) -> str:
    problems = []
    for exchange in (await default_list(ctx)).values():
        problems += format_problems(
            exchange, status=200, json_top=list, xml_root="service_requests"
        )
    return passed(problems, "answers 200 in each format")


async def listed(ctx: Context) -> list[Any]:
    """The items of the default list (first checked format); Skip when unusable or empty."""
    exchange = (await default_list(ctx))[ctx.options.formats[0]]
    usable(exchange, "requests.formats")
    value = main_value(exchange)
    if not isinstance(value, list):
        raise Skip("the request list is not a list (see requests.formats)")
    if not value:
        raise Skip("the default window (last 90 days) lists no request")
    return value


@check("requests.fields", "every request: id, status open/closed, code, fields", R.REQUEST_FIELDS)
async def requests_fields(ctx: Context) -> str:
    items = await listed(ctx)
    problems = []
    if len(items) > MAX_RESULTS:
        problems.append(
            problem(
                R.RESULT_LIMIT,
                f"more than {MAX_RESULTS} requests without parameters",
                f"{len(items)} listed",
            )
        )
    for index, item in enumerate(items):
        problems += request_problems(item, f"requests[{index}]")
    objects = [i for i in items if isinstance(i, dict)]
    if len({hashable(i.get("service_request_id")) for i in objects}) != len(objects):
        problems.append(problem(R.REQUEST_FIELDS, "a service_request_id is listed twice"))
    return passed(
        attach(problems, (await default_list(ctx))[ctx.options.formats[0]]),
        f"{len(items)} requests",
    )


@check("requests.datetimes", "request datetimes are W3C (YYYY-MM-DDThh:mm:ss±hh:mm)", R.DATETIME)
async def requests_datetimes(ctx: Context) -> str:
    items = await listed(ctx)
    problems = []
    for index, item in enumerate(items):
        problems += datetime_problems(item, f"requests[{index}]")
    exchange = (await default_list(ctx))[ctx.options.formats[0]]
    return passed(attach(problems, exchange), f"{len(items)} requests with W3C datetimes")


@check("requests.schema", "requests.json against the community JSON Schema", R.SCHEMA)
async def requests_schema(ctx: Context) -> str:
    if JSON not in ctx.options.formats:
        raise Skip("the JSON Schemas apply to JSON; only XML is checked")
    items = await listed(ctx)
    return passed(
        schema("requests", items, "requests.json"),
        f"{len(items)} requests valid against request.json",
    )


@check("requests.parity", "requests.json and requests.xml carry the same data", R.PARITY)
async def requests_parity(ctx: Context) -> str:
    problems = both_parity(await default_list(ctx), "requests.formats")
    return passed(problems, "same content in both formats")


@check("requests.filter_status", "status=open / status=closed return only those", R.FILTERS)
async def requests_filter_status(ctx: Context) -> str:
    example = await optional_sample(ctx)
    problems: list[Problem] = []
    counts = []
    for status in STATUSES:
        items = await list_query(ctx, [("status", status)], problems)
        if items is None:
            continue
        counts.append(f"{len(items)} {status}")
        wrong = [i.get("service_request_id") for i in items if i.get("status") != status]
        if wrong:
            problems.append(
                problem(
                    R.FILTERS,
                    f"status={status} returned another status",
                    f"{len(wrong)} request(s), e.g. {short(wrong[0])}",
                )
            )
        if (
            example
            and example.get("status") == status
            and len(items) < MAX_RESULTS
            and example["service_request_id"] not in ids(items)
        ):
            problems.append(
                problem(
                    R.FILTERS, f"status={status} misses a request", example["service_request_id"]
                )
            )
    return passed(problems, ", ".join(counts))


@check("requests.filter_service_code", "service_code=X returns only requests of X", R.FILTERS)
async def requests_filter_service_code(ctx: Context) -> str:
    example = await optional_sample(ctx)
    if example and isinstance(example.get("service_code"), str):
        code = example["service_code"]
    else:
        listed_services = await services(ctx)
        if not listed_services:
            raise Skip("no service code to filter on")
        code = listed_services[0]["service_code"]
    problems: list[Problem] = []
    items = await list_query(ctx, [("service_code", code)], problems)
    if items is not None:
        wrong = [i.get("service_code") for i in items if i.get("service_code") != code]
        if wrong:
            problems.append(
                problem(
                    R.FILTERS,
                    f"service_code={code} returned other codes",
                    f"{len(wrong)} request(s) of {short(wrong[0])}",
                )
            )
        if example and len(items) < MAX_RESULTS and example["service_request_id"] not in ids(items):
            problems.append(
                problem(
                    R.FILTERS,
                    f"service_code={code} misses a request",
                    example["service_request_id"],
                )
            )
    return passed(problems, f"service_code={code}: {len(items or [])} requests")


@check("requests.filter_dates", "start_date/end_date filter requested_datetime", R.FILTERS)
async def requests_filter_dates(ctx: Context) -> str:
    example = await sample(ctx)
    text = example.get("requested_datetime")
    moment = parse_w3c(text)
    if moment is None:
        raise Skip(f"the sample's requested_datetime {short(text)} is not W3C (see its check)")
    request_id = example["service_request_id"]
    second, hour = timedelta(seconds=1), timedelta(hours=1)
    windows = (
        (str(text), str(text), True),
        ((moment + second).isoformat(), (moment + hour).isoformat(), False),
        ((moment - hour).isoformat(), (moment - second).isoformat(), False),
    )
    problems: list[Problem] = []
    for start, end, included in windows:
        items = await list_query(ctx, [("start_date", start), ("end_date", end)], problems)
        if items is None:
            continue
        window = f"start_date={start}&end_date={end}"
        if included and request_id not in ids(items):
            problems.append(
                problem(
                    R.INCLUSIVE,
                    "a request at the window's bounds is left out",
                    f"{window} misses {request_id} requested at {text}",
                )
            )
        if not included and request_id in ids(items):
            problems.append(
                problem(
                    R.FILTERS,
                    "a request outside the window is listed",
                    f"{window} lists {request_id} requested at {text}",
                )
            )
        low, high = parse_w3c(start) or moment, parse_w3c(end) or moment
        outside = [
            i.get("requested_datetime")
            for i in items
            if (at := parse_w3c(i.get("requested_datetime"))) and not low <= at <= high
        ]
        if outside:
            problems.append(
                problem(
                    R.FILTERS,
                    "a request outside the window is listed",
                    f"{window} lists one requested at {outside[0]}",
                )
            )
    return passed(problems, f"bounds around {request_id} requested at {text}")


@check(
    "requests.empty_result", "a window without requests is 200 with an empty list", R.EMPTY_RESULT
)
async def requests_empty_result(ctx: Context) -> str:
    problems: list[Problem] = []
    params = [("start_date", "1971-01-01T00:00:00Z"), ("end_date", "1971-01-02T00:00:00Z")]
    exchanges = await ctx.both("requests", params, cache=False)
    for exchange in exchanges.values():
        problems += format_problems(
            exchange,
            status=200,
            json_top=list,
            xml_root="service_requests",
            status_rule=R.EMPTY_RESULT,
        )
    first = exchanges[ctx.options.formats[0]]
    if not problems and main_value(first):
        problems.append(
            problem(
                R.FILTERS, "requests listed for January 1971", f"{len(first.value)} items", first
            )
        )
    return passed(problems, "200 with an empty list")


async def _requests_refused(ctx: Context, params: Params, rule: Rule) -> str:
    """GET requests with ``params`` is a 400 with an errors document (``rule`` otherwise)."""
    problems = await error_check(
        ctx, "GET", "requests", 400, params=params, success_rule=rule, other_rule=rule
    )
    return passed(problems, "400 with an errors document")


@check("requests.invalid_status", "an invalid status value is a 400", R.INVALID_STATUS)
async def requests_invalid_status(ctx: Context) -> str:
    return await _requests_refused(ctx, [("status", "conformance-invalid")], R.INVALID_STATUS)


@check("requests.end_before_start", "end_date before start_date is a 400", R.END_BEFORE_START)
async def requests_end_before_start(ctx: Context) -> str:
    now = now_utc()
    params = [
        ("start_date", (now - timedelta(days=1)).isoformat()),
        ("end_date", (now - timedelta(days=2)).isoformat()),
    ]
    return await _requests_refused(ctx, params, R.END_BEFORE_START)


# ---------------------------------------------------------------------------------------
# GET request (one)


@check("request.single", "requests/{id} is a one-element list of that request", R.SINGLE)
async def request_single(ctx: Context) -> str:
    request_id = (await sample(ctx))["service_request_id"]
    exchanges = await ctx.both(f"requests/{segment(request_id)}")
    problems: list[Problem] = []
    for exchange in exchanges.values():
        problems += format_problems(
            exchange, status=200, json_top=list, xml_root="service_requests", status_rule=R.SINGLE
        )
    if problems:
        raise Failure(problems)
    first = exchanges[ctx.options.formats[0]]
    items = main_value(first)
    if len(items) != 1:
        problems.append(
            problem(R.SINGLE, "not exactly one item", f"{first.label}: {len(items)} items", first)
        )
    if items and isinstance(items[0], dict) and items[0].get("service_request_id") != request_id:
        problems.append(
            problem(
                R.SINGLE,
                "another request answered",
                f"requests/{request_id}: {short(items[0].get('service_request_id'))}",
                first,
            )
        )
    for index, item in enumerate(items):
        problems += request_problems(item, f"requests/{request_id}[{index}]")
        problems += datetime_problems(item, f"requests/{request_id}[{index}]")
    attach(problems, first)
    if set(exchanges) == {JSON, XML}:
        problems += parity_problems(
            items, exchanges[XML].value, f"GET requests/{request_id}", exchanges[XML]
        )
        problems += schema("requests", items, f"requests/{request_id}.json")
    return passed(problems, f"request {request_id} as a one-element list")


@check("request.unknown", "an unknown service_request_id is a 404", R.NOT_FOUND_IS_200)
async def request_unknown(ctx: Context) -> str:
    problems = await not_found(ctx, f"requests/{UNKNOWN_REQUEST_ID}")
    return passed(problems, "404 with an errors document")


# ---------------------------------------------------------------------------------------
# Errors


@check(
    "errors.unknown_format",
    "an unknown format suffix is a 404 (we send XML errors)",
    R.UNKNOWN_FORMAT,
)
async def errors_unknown_format(ctx: Context) -> str:
    exchange = await ctx.get("services", "yaml", cache=False)
    if exchange.transport_error:
        raise Failure([problem(R.REACHABLE, exchange.transport_error, exchange.label, exchange)])
    assert exchange.status is not None  # noqa: S101 - invariant, not an input check
    if exchange.status < 400:
        raise Failure(
            [
                problem(
                    R.UNKNOWN_FORMAT_200,
                    f"HTTP {exchange.status} for an unknown suffix",
                    exchange.label,
                    exchange,
                )
            ]
        )
    # A path without a usable suffix: our recommendation is 404 with XML, the mandatory format.
    as_xml = Exchange.received(
        "GET",
        exchange.label,
        XML,
        exchange.status,
        exchange.content_type,
        exchange.body,
        url=exchange.url,
        headers=exchange.headers,
    )
    problems = error_problems(as_xml, 404, other_rule=R.UNKNOWN_FORMAT)
    problems = [
        problem(R.UNKNOWN_FORMAT, p.message, p.where, exchange)
        if p.rule is R.ERRORS_DOCUMENT
        else p
        for p in problems
    ]
    return passed(problems, f"HTTP {exchange.status} with an XML errors document")


# ---------------------------------------------------------------------------------------
# Rules every response obeys, judged once over all responses of the run


async def everything(ctx: Context) -> list[Exchange]:
    """Every response so far (the basic resources are fetched when nothing ran before)."""
    if not ctx.history:
        for path in ("discovery", "services", "requests"):
            await ctx.both(path)
    return [e for e in ctx.history if e.status is not None]


@check(
    "format.content_type",
    "Content-Type of every response (JSON needs no charset)",
    R.MEDIA_TYPE,
    last=True,
)
async def format_content_type(ctx: Context) -> str:
    responses = await everything(ctx)
    if not responses:
        raise Skip("no response arrived to judge")
    problems = [p for e in responses for p in content_type_problems(e)]
    return passed(problems, f"{len(responses)} responses")


@check(
    "format.xml",
    "every XML response: declaration first, no namespaces or attributes",
    R.XML_DECLARATION,
    last=True,
)
async def format_xml(ctx: Context) -> str:
    if XML not in ctx.options.formats:
        raise Skip("only JSON is checked (--format json)")
    responses = [e for e in await everything(ctx) if e.fmt == XML and e.xml is not None]
    if not responses:
        raise Skip("no XML response parsed to judge")
    problems = [p for e in responses for p in xml_problems(e)]
    return passed(problems, f"{len(responses)} XML responses")

"""The conformance checks, registered in the order they run.

Each check is a small coroutine that takes the :class:`Context` and returns a one-line detail
(PASS), raises :class:`Failure` with the problems found (FAIL) or :class:`Skip` with a reason.
Data several checks judge (the service list, definitions, a created request...) is fetched
once through ``ctx.once``/``ctx.get``; a check that cannot use it because another check already
failed on it skips, so one broken response is one FAIL, not a cascade.

The rules come from the spec digest (shared/spec/georeport-v2.md): §1 cross-cutting rules,
§12 our resolutions of the ambiguities, §13 the conformance checklist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.conformance.context import Context, Failure, Params, Skip, passed, segment
from app.conformance.documents import (
    FORMATS,
    JSON,
    XML,
    Exchange,
    error_problems,
    format_problems,
    json_type,
    parity_problems,
    parse_w3c,
    short,
)
from app.conformance.schema import SchemaUnavailable, schema_problems

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
SERVICE_TYPES = ("realtime", "batch", "blackbox")
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LIST_DATATYPES = ("singlevaluelist", "multivaluelist")
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
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
# Names no real server uses; numeric ids because many servers only have numeric ones.
UNKNOWN_SERVICE = "CONFORMANCE-UNKNOWN-SERVICE"
UNKNOWN_REQUEST_ID = "9999999999999999"
UNKNOWN_TOKEN = "conformance-unknown-token-5f2c9"
INVALID_API_KEY = "conformance-invalid-api-key-0000000000"
# Non-ASCII on purpose: text must round-trip in both formats (spec digest §13).
DESCRIPTION = "Open311 conformance check – please ignore. Straße, São Paulo."
ADDRESS = "Open311 conformance check (please ignore)"


CheckFunction = Callable[[Context], Awaitable[str]]


@dataclass(frozen=True)
class Check:
    """A registered check."""

    name: str
    summary: str
    run: CheckFunction
    needs_api_key: bool = False


CHECKS: list[Check] = []


def check(name: str, summary: str, *, needs_api_key: bool = False) -> Callable[..., Any]:
    """Register a check; checks run in the order they are defined."""

    def register(function: CheckFunction) -> CheckFunction:
        CHECKS.append(Check(name, summary, function, needs_api_key))
        return function

    return register


# ---------------------------------------------------------------------------------------
# Helpers


def usable(exchange: Exchange, judged_by: str, status: int = 200) -> Any:
    """The parsed value of a response another check judges; Skip when it is unusable."""
    if exchange.transport_error or exchange.status != status or exchange.parse_error:
        raise Skip(f"no usable {exchange.label} (see {judged_by})")
    return exchange.value


def prefixed(label: str, problems: list[str]) -> list[str]:
    """Problems of one response, named after it."""
    return [f"{label}: {p}" for p in problems]


def both_parity(exchanges: dict[str, Exchange], judged_by: str) -> list[str]:
    """JSON/XML parity of one resource fetched in both formats."""
    json_value = usable(exchanges[JSON], judged_by)
    xml_value = usable(exchanges[XML], judged_by)
    label = exchanges[JSON].label.rsplit(".json", 1)[0]
    return prefixed(label, parity_problems(json_value, xml_value))


def schema(kind: str, value: Any) -> list[str]:
    """JSON Schema problems; Skip when jsonschema is not installed."""
    try:
        return schema_problems(kind, value)
    except SchemaUnavailable as exc:
        raise Skip(f"cannot validate: {exc}") from exc


def text_or_null(value: Any) -> bool:
    """A JSON string or null."""
    return value is None or isinstance(value, str)


def id_problem(where: str, name: str, value: Any) -> str | None:
    """Ids and codes are non-empty JSON strings (spec digest §1.3, §12 #15)."""
    if isinstance(value, str) and value:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{where}.{name} is the JSON number {value!r}; ids and codes must be strings"
    return f"{where}.{name} is {short(value)}, expected a non-empty string"


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
) -> list[str]:
    """Both formats answer ``status`` with a well-formed errors document carrying the same data."""
    exchanges: dict[str, Exchange] = {}
    problems: list[str] = []
    for fmt in FORMATS:
        if method == "POST":
            exchanges[fmt] = await ctx.post(path, fmt, form or ())
        else:
            exchanges[fmt] = await ctx.get(path, fmt, params, cache=False)
        problems.extend(error_problems(exchanges[fmt], status))
    if not problems:
        problems.extend(
            prefixed(
                f"{method} {path}", parity_problems(exchanges[JSON].value, exchanges[XML].value)
            )
        )
    return problems


# ---------------------------------------------------------------------------------------
# Shared data


async def services(ctx: Context) -> list[dict[str, Any]]:
    """The services of GET services.json (only the items with a string service_code)."""
    value = usable(await ctx.get("services", JSON), "services.formats")
    if not isinstance(value, list):
        raise Skip("services.json is not a list (see services.formats)")
    return [s for s in value if isinstance(s, dict) and isinstance(s.get("service_code"), str)]


async def definition_codes(ctx: Context) -> list[str]:
    """The codes whose definitions are checked: --service-code first, then metadata=true ones."""
    codes = [s["service_code"] for s in await services(ctx) if s.get("metadata") is True]
    chosen = ctx.options.service_code
    if chosen in codes:
        codes = [chosen] + [c for c in codes if c != chosen]
    return codes[: ctx.options.max_definitions]


async def definitions(ctx: Context) -> dict[str, dict[str, Exchange]]:
    """Definitions in both formats, by service code."""
    codes = await definition_codes(ctx)
    if not codes:
        raise Skip("no service has metadata=true, so there is no definition to check")
    return {code: await ctx.both(f"services/{segment(code)}") for code in codes}


async def definition(ctx: Context, code: str) -> dict[str, Any]:
    """The usable JSON definition of one service."""
    value = usable(await ctx.get(f"services/{segment(code)}", JSON), "definitions.formats")
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
        listing = await ctx.get("requests", JSON, cache=False)
        items = listing.value if listing.parsed and isinstance(listing.value, list) else []
        for item in items:
            if not isinstance(item, dict):
                continue
            lat, lon = item.get("lat"), item.get("long")
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
                return [("lat", str(lat)), ("long", str(lon)), ("address_string", ADDRESS)]
        return [("address_string", ADDRESS)]

    return await ctx.once("location", find)


@dataclass
class Submission:
    """A valid POST body for one service (without api_key)."""

    service: dict[str, Any]
    form: list[tuple[str, str]]
    required: list[str]


def attribute_value(attribute: dict[str, Any]) -> list[tuple[str, str]] | None:
    """Form pairs answering one attribute validly for its datatype (None: cannot answer)."""
    code = attribute["code"]
    datatype = attribute.get("datatype")
    values = attribute.get("values")
    keys = [str(v["key"]) for v in values or [] if isinstance(v, dict) and v.get("key") is not None]
    if datatype == "singlevaluelist":
        return [(f"attribute[{code}]", keys[0])] if keys else None
    if datatype == "multivaluelist":
        return [(f"attribute[{code}][]", keys[0])] if keys else None
    if datatype == "number":
        return [(f"attribute[{code}]", "1")]
    if datatype == "datetime":
        return [(f"attribute[{code}]", (now_utc() - timedelta(hours=1)).isoformat())]
    if datatype == "text":
        return [(f"attribute[{code}]", "Open311 conformance check.\nPlease ignore.")]
    return [(f"attribute[{code}]", "conformance check")]


async def submission(ctx: Context, service: dict[str, Any]) -> Submission:
    """A submission filling every input attribute of the service with a valid value."""
    code = service["service_code"]
    form = [("service_code", code), ("description", DESCRIPTION), *await location(ctx)]
    required: list[str] = []
    if service.get("metadata") is True:
        for attribute in input_attributes(await definition(ctx, code)):
            pairs = attribute_value(attribute)
            if pairs is None:
                if attribute.get("required") is True:
                    raise Skip(f"required attribute {attribute['code']} of {code} has no values")
                continue
            form.extend(pairs)
            if attribute.get("required") is True:
                required.append(attribute["code"])
    return Submission(service, form, required)


def with_key(ctx: Context, form: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The form with the user's api_key."""
    return [("api_key", ctx.options.api_key or ""), *form]


async def post_service(ctx: Context) -> dict[str, Any]:
    """--service-code, else the realtime service whose definition asks the most, else any."""
    listed = await services(ctx)
    chosen = ctx.options.service_code
    if chosen:
        for service in listed:
            if service["service_code"] == chosen:
                return service
        raise Skip(f"--service-code {chosen} is not listed by GET services")
    realtime = [s for s in listed if s.get("type") == "realtime"]
    best, best_count = None, -1
    for service in realtime:
        if service.get("metadata") is not True:
            continue
        if service["service_code"] not in await definition_codes(ctx):
            continue
        try:
            count = len(input_attributes(await definition(ctx, service["service_code"])))
        except Skip:
            continue
        if count > best_count:
            best, best_count = service, count
    if best is not None:
        return best
    if realtime or listed:
        return (realtime or listed)[0]
    raise Skip("GET services lists no service to POST to")


@dataclass
class Created:
    """The POST of a valid submission, once per format."""

    submission: Submission
    responses: dict[str, Exchange]

    def item(self, fmt: str) -> dict[str, Any] | None:
        """The one item of a response, if it has that shape."""
        response = self.responses[fmt]
        value = response.value if response.parsed and response.status in (200, 201) else None
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            return value[0]
        return None


async def created(ctx: Context) -> Created:
    """POST a valid submission to the chosen service, in JSON and in XML."""

    async def make() -> Created:
        sub = await submission(ctx, await post_service(ctx))
        responses = {
            fmt: await ctx.post("requests", fmt, with_key(ctx, sub.form)) for fmt in FORMATS
        }
        return Created(sub, responses)

    return await ctx.once("the POST of a valid submission", make)


async def created_id(ctx: Context) -> str | None:
    """The service_request_id the JSON POST returned, if any."""
    item = (await created(ctx)).item(JSON)
    value = item.get("service_request_id") if item else None
    return value if isinstance(value, str) and value else None


async def default_list(ctx: Context) -> dict[str, Exchange]:
    """GET requests without parameters (the default window), both formats."""
    return await ctx.both("requests")


async def sample(ctx: Context) -> dict[str, Any]:
    """A request to look up and filter for: the one we created, else the newest listed."""

    async def find() -> dict[str, Any]:
        if ctx.options.api_key:
            try:
                request_id = await created_id(ctx)
            except Skip:
                request_id = None
            if request_id:
                found = await ctx.get(f"requests/{segment(request_id)}", JSON)
                value = found.value if found.parsed and found.status == 200 else None
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    return value[0]
        listing = (await default_list(ctx))[JSON]
        items = listing.value if listing.parsed and listing.status == 200 else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("service_request_id"), str):
                return item
        raise Skip("no service request to sample: the default 90-day window lists none")

    return await ctx.once("sample", find)


def request_problems(item: Any, where: str) -> list[str]:
    """Fields of one service request item (spec digest §9, §13)."""
    if not isinstance(item, dict):
        return [f"{where} is a {json_type(item)}, expected an object"]
    problems = []
    missing = [f for f in REQUEST_FIELDS if f not in item]
    if missing:
        problems.append(f"{where} lacks {', '.join(missing)}")
    for name in ("service_request_id", "service_code"):
        if name in item and (problem := id_problem(where, name, item[name])):
            problems.append(problem)
    if "status" in item and item["status"] not in ("open", "closed"):
        problems.append(f"{where}.status is {short(item['status'])}, expected open or closed")
    for name in OPTIONAL_TEXT_FIELDS:
        if name in item and not text_or_null(item[name]):
            problems.append(f"{where}.{name} is a JSON {json_type(item[name])}, expected a string")
    for name, limit in (("lat", 90), ("long", 180)):
        value = item.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{where}.{name} is {short(value)}, expected a JSON number")
        elif not -limit <= value <= limit:
            problems.append(f"{where}.{name} {value} is out of range")
    description = item.get("description")
    if isinstance(description, str) and len(description) > 4000:
        problems.append(f"{where}.description is longer than 4000 characters")
    return problems


def datetime_problems(item: Any, where: str) -> list[str]:
    """The request's datetimes are W3C-DTF with seconds and a zone (spec digest §1.5)."""
    if not isinstance(item, dict):
        return []
    problems = []
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        value = item.get(name)
        if value is None and name != "requested_datetime":
            continue
        if parse_w3c(value) is None:
            problems.append(
                f"{where}.{name} is {short(value)}, expected YYYY-MM-DDThh:mm:ss with Z or ±hh:mm"
            )
    return problems


async def list_query(
    ctx: Context, params: Params, problems: list[str]
) -> list[dict[str, Any]] | None:
    """The JSON items of GET requests with parameters, both formats judged; None if unusable.

    Parity is left to requests.parity and request.single, so one mismatch is one failure.
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
    return [i for i in exchanges[JSON].value if isinstance(i, dict)]


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


@check("discovery.formats", "discovery.json and discovery.xml: status, Content-Type, shape")
async def discovery_formats(ctx: Context) -> str:
    problems = []
    for exchange in (await ctx.both("discovery")).values():
        problems += format_problems(exchange, status=200, json_top=dict, xml_root="discovery")
    return passed(problems, "both formats answer 200 with the right Content-Type")


@check("discovery.fields", "discovery fields, endpoints, specification and formats")
async def discovery_fields(ctx: Context) -> str:
    value = usable(await ctx.get("discovery", JSON), "discovery.formats")
    if not isinstance(value, dict):
        raise Skip("discovery.json is not an object (see discovery.formats)")
    problems = []
    for name in ("changeset", "contact", "key_service", "endpoints"):
        if name not in value:
            problems.append(f"discovery lacks {name}")
    for name in ("contact", "key_service"):
        if name in value and not isinstance(value[name], str):
            problems.append(f"discovery.{name} is {short(value[name])}, expected a string")
    if "changeset" in value and parse_w3c(value["changeset"]) is None:
        problems.append(f"discovery.changeset {short(value['changeset'])} is not a W3C datetime")
    endpoints = value.get("endpoints")
    if "endpoints" in value and not isinstance(endpoints, list):
        problems.append(f"discovery.endpoints is a JSON {json_type(endpoints)}, expected an array")
    georeport = []
    for index, endpoint in enumerate(endpoints if isinstance(endpoints, list) else []):
        where = f"endpoints[{index}]"
        if not isinstance(endpoint, dict):
            problems.append(f"{where} is a {json_type(endpoint)}, expected an object")
            continue
        missing = [
            f for f in ("specification", "url", "changeset", "type", "formats") if f not in endpoint
        ]
        if missing:
            problems.append(f"{where} lacks {', '.join(missing)}")
        url = endpoint.get("url")
        if "url" in endpoint and not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            problems.append(f"{where}.url {short(url)} is not an http(s) URL")
        if "changeset" in endpoint and parse_w3c(endpoint["changeset"]) is None:
            problems.append(f"{where}.changeset {short(endpoint['changeset'])} is not W3C")
        if "type" in endpoint and endpoint["type"] not in ("production", "test"):
            problems.append(f"{where}.type is {short(endpoint['type'])}, not production/test")
        formats = endpoint.get("formats")
        if "formats" in endpoint and not (
            isinstance(formats, list) and all(isinstance(f, str) for f in formats)
        ):
            problems.append(f"{where}.formats is {short(formats)}, expected an array of strings")
            formats = None
        if endpoint.get("specification") == SPECIFICATION:
            georeport.append(endpoint)
            for media_type in ("text/xml", "application/json"):
                if isinstance(formats, list) and media_type not in formats:
                    problems.append(f"{where}.formats {formats} lacks {media_type}")
    if isinstance(endpoints, list) and not georeport:
        problems.append(f"no endpoint has specification {SPECIFICATION}")
    return passed(problems, f"{len(georeport)} GeoReport v2 endpoint(s), all fields present")


@check("discovery.parity", "discovery.json and discovery.xml carry the same data")
async def discovery_parity(ctx: Context) -> str:
    problems = both_parity(await ctx.both("discovery"), "discovery.formats")
    return passed(problems, "same content in both formats")


# ---------------------------------------------------------------------------------------
# Services


@check("services.formats", "services.json and services.xml: status, Content-Type, shape")
async def services_formats(ctx: Context) -> str:
    problems = []
    for exchange in (await ctx.both("services")).values():
        problems += format_problems(exchange, status=200, json_top=list, xml_root="services")
    return passed(problems, "both formats answer 200 with the right Content-Type")


@check("services.fields", "every service has the 7 fields; metadata boolean; type known")
async def services_fields(ctx: Context) -> str:
    value = usable(await ctx.get("services", JSON), "services.formats")
    if not isinstance(value, list):
        raise Skip("services.json is not an array (see services.formats)")
    problems = []
    seen: set[Any] = set()
    for index, service in enumerate(value):
        where = f"services[{index}]"
        if not isinstance(service, dict):
            problems.append(f"{where} is a {json_type(service)}, expected an object")
            continue
        missing = [f for f in SERVICE_FIELDS if f not in service]
        if missing:
            problems.append(f"{where} lacks {', '.join(missing)}")
        if "service_code" in service:
            if problem := id_problem(where, "service_code", service["service_code"]):
                problems.append(problem)
            elif service["service_code"] in seen:
                problems.append(f"{where}.service_code {service['service_code']} is repeated")
            seen.add(hashable(service["service_code"]))
        if "service_name" in service and not isinstance(service["service_name"], str):
            problems.append(f"{where}.service_name is {short(service['service_name'])}")
        for name in ("description", "keywords", "group"):
            if name in service and not text_or_null(service[name]):
                problems.append(f"{where}.{name} is a JSON {json_type(service[name])}")
        if "metadata" in service and not isinstance(service["metadata"], bool):
            problems.append(
                f"{where}.metadata is {short(service['metadata'])}, expected true or false"
            )
        if "type" in service and service["type"] not in SERVICE_TYPES:
            problems.append(
                f"{where}.type is {short(service['type'])}, expected realtime/batch/blackbox"
            )
    return passed(problems, f"{len(value)} services with all 7 fields")


@check("services.schema", "services.json validates against the GeoReport v2 JSON Schema")
async def services_schema(ctx: Context) -> str:
    value = usable(await ctx.get("services", JSON), "services.formats")
    return passed(schema("services", value), "valid against services.json/service.json")


@check("services.parity", "services.json and services.xml carry the same data")
async def services_parity(ctx: Context) -> str:
    problems = both_parity(await ctx.both("services"), "services.formats")
    return passed(problems, "same content in both formats")


# ---------------------------------------------------------------------------------------
# Service definitions


@check("definitions.formats", "services/{code}.json and .xml: status, Content-Type, shape")
async def definitions_formats(ctx: Context) -> str:
    found = await definitions(ctx)
    problems = []
    for exchanges in found.values():
        for exchange in exchanges.values():
            problems += format_problems(
                exchange, status=200, json_top=dict, xml_root="service_definition"
            )
    return passed(problems, f"{len(found)} definitions answer in both formats")


@check("definitions.fields", "attributes: fields, datatypes, values only for list datatypes")
async def definitions_fields(ctx: Context) -> str:
    found = await definitions(ctx)
    problems: list[str] = []
    checked = 0
    for code, exchanges in found.items():
        exchange = exchanges[JSON]
        if not exchange.parsed or exchange.status != 200 or not isinstance(exchange.value, dict):
            continue
        checked += 1
        value = exchange.value
        where = f"services/{code}"
        if value.get("service_code") != code:
            problems.append(f"{where}.service_code is {short(value.get('service_code'))}")
        attributes = value.get("attributes")
        if not isinstance(attributes, list):
            problems.append(f"{where}.attributes is {short(attributes)}, expected an array")
            continue
        if not attributes:
            problems.append(f"{where} has metadata=true but no attributes")
        codes: set[Any] = set()
        for index, attribute in enumerate(attributes):
            problems.extend(attribute_problems(attribute, f"{where}.attributes[{index}]", codes))
    if not checked:
        raise Skip("no usable definition (see definitions.formats)")
    return passed(problems, f"{checked} definitions, every attribute well-formed")


def attribute_problems(attribute: Any, where: str, codes: set[Any]) -> list[str]:
    """One attribute of a service definition (spec digest §4)."""
    if not isinstance(attribute, dict):
        return [f"{where} is a {json_type(attribute)}, expected an object"]
    problems = []
    missing = [f for f in ATTRIBUTE_FIELDS if f not in attribute]
    if missing:
        problems.append(f"{where} lacks {', '.join(missing)}")
    for name in ("variable", "required"):
        if name in attribute and not isinstance(attribute[name], bool):
            problems.append(f"{where}.{name} is {short(attribute[name])}, expected true/false")
    if "code" in attribute:
        if problem := id_problem(where, "code", attribute["code"]):
            problems.append(problem)
        elif attribute["code"] in codes:
            problems.append(f"{where}.code {attribute['code']} is repeated")
        codes.add(hashable(attribute["code"]))
    for name in ("description", "datatype_description"):
        if name in attribute and not text_or_null(attribute[name]):
            problems.append(f"{where}.{name} is a JSON {json_type(attribute[name])}")
    datatype = attribute.get("datatype")
    if "datatype" in attribute and datatype not in DATATYPES:
        problems.append(f"{where}.datatype is {short(datatype)}, not one of the six datatypes")
    values = attribute.get("values")
    if datatype in LIST_DATATYPES:
        if not isinstance(values, list):
            problems.append(f"{where} is a {datatype} without a values array")
            values = []
        keys: set[Any] = set()
        for index, item in enumerate(values):
            here = f"{where}.values[{index}]"
            if not isinstance(item, dict) or set(item) < {"key", "name"}:
                problems.append(f"{here} is {short(item)}, expected an object with key and name")
                continue
            for name in ("key", "name"):
                if problem := id_problem(here, name, item[name]):
                    problems.append(problem)
            if hashable(item["key"]) in keys:
                problems.append(f"{here}.key {item['key']} is repeated")
            keys.add(hashable(item["key"]))
    elif datatype in DATATYPES and values is not None and values != []:
        problems.append(f"{where} is a {datatype} but has values (only list datatypes do)")
    return problems


@check("definitions.order", "attribute order: positive integers, unique per service")
async def definitions_order(ctx: Context) -> str:
    found = await definitions(ctx)
    problems: list[str] = []
    for code, exchanges in found.items():
        value = exchanges[JSON].value if exchanges[JSON].parsed else None
        if not isinstance(value, dict) or not isinstance(value.get("attributes"), list):
            continue
        orders: list[int] = []
        for index, attribute in enumerate(value["attributes"]):
            if not isinstance(attribute, dict) or "order" not in attribute:
                continue
            order = attribute["order"]
            where = f"services/{code}.attributes[{index}].order"
            if isinstance(order, bool) or not isinstance(order, int) or order < 1:
                problems.append(f"{where} is {short(order)}, expected a positive integer")
            elif order in orders:
                problems.append(f"{where} {order} is used twice")
            else:
                orders.append(order)
    return passed(problems, "orders are unique positive integers")


@check("definitions.schema", "definitions validate against the GeoReport v2 JSON Schema")
async def definitions_schema(ctx: Context) -> str:
    found = await definitions(ctx)
    problems = []
    for code, exchanges in found.items():
        if exchanges[JSON].parsed and exchanges[JSON].status == 200:
            problems += prefixed(
                f"services/{code}", schema("service-definition", exchanges[JSON].value)
            )
    return passed(problems, "valid against service-definition.json")


@check("definitions.parity", "definitions carry the same data in JSON and XML")
async def definitions_parity(ctx: Context) -> str:
    problems = []
    compared = 0
    for exchanges in (await definitions(ctx)).values():
        try:
            problems += both_parity(exchanges, "definitions.formats")
            compared += 1
        except Skip:
            continue
    if not compared:
        raise Skip("no definition usable in both formats (see definitions.formats)")
    return passed(problems, f"{compared} definitions identical in both formats")


@check("definitions.unknown_service", "an unknown service code is a 404 errors document")
async def definitions_unknown(ctx: Context) -> str:
    problems = await error_check(ctx, "GET", f"services/{UNKNOWN_SERVICE}", 404)
    return passed(problems, "404 with an errors document in both formats")


# ---------------------------------------------------------------------------------------
# POST requests (only with --api-key: it creates real requests)


@check(
    "post.create", "POST a valid submission with attributes, in JSON and XML", needs_api_key=True
)
async def post_create(ctx: Context) -> str:
    made = await created(ctx)
    service = made.submission.service
    kind = service.get("type")
    problems: list[str] = []
    for fmt, exchange in made.responses.items():
        found = format_problems(
            exchange, status=(200, 201), json_top=list, xml_root="service_requests"
        )
        problems += found
        if found:
            continue
        value = exchange.value
        if len(value) != 1 or not isinstance(value[0], dict):
            problems.append(f"{exchange.label}: {len(value)} items, expected exactly one request")
            continue
        item = value[0]
        request_id, token = item.get("service_request_id"), item.get("token")
        if kind == "realtime" and not (isinstance(request_id, str) and request_id):
            problems.append(
                f"{exchange.label}: realtime service but service_request_id is {short(request_id)}"
            )
        if kind == "batch" and not (isinstance(token, str) and token):
            problems.append(f"{exchange.label}: batch service but token is {short(token)}")
        if kind != "realtime" and request_id is not None:
            problems.append(f"{exchange.label}: {kind} service returned a service_request_id")
        if kind != "batch" and token is not None:
            problems.append(f"{exchange.label}: {kind} service returned a token")
        if fmt == XML:
            json_item = made.item(JSON)
            if json_item is not None and set(json_item) != set(item):
                problems.append(
                    f"POST requests: JSON fields {sorted(json_item)} vs XML fields {sorted(item)}"
                )
    detail = f"{service['service_code']} ({kind}) with {len(made.submission.required)} required"
    return passed(problems, detail + " attributes accepted in both formats")


@check(
    "post.schema",
    "the POST response validates against the Swagger RequestResponse",
    needs_api_key=True,
)
async def post_schema(ctx: Context) -> str:
    response = (await created(ctx)).responses[JSON]
    if not response.parsed or response.status not in (200, 201):
        raise Skip(f"no usable {response.label} (see post.create)")
    return passed(schema("post", response.value), "valid against RequestResponse")


@check(
    "post.read_back", "the created request reads back with its text (non-ASCII)", needs_api_key=True
)
async def post_read_back(ctx: Context) -> str:
    made = await created(ctx)
    request_id = await created_id(ctx)
    if made.submission.service.get("type") != "realtime":
        raise Skip(f"{made.submission.service['service_code']} is not realtime: no id to read")
    if request_id is None:
        raise Skip("the POST returned no service_request_id (see post.create)")
    problems: list[str] = []
    code = made.submission.service["service_code"]
    for fmt, exchange in (await ctx.both(f"requests/{segment(request_id)}")).items():
        found = format_problems(exchange, status=200, json_top=list, xml_root="service_requests")
        problems += found
        if found:
            continue
        items = exchange.value
        if len(items) != 1 or not isinstance(items[0], dict):
            problems.append(f"{exchange.label}: {len(items)} items, expected one")
            continue
        item = items[0]
        for name, expected in (
            ("service_request_id", request_id),
            ("service_code", code),
            ("description", DESCRIPTION),
        ):
            if item.get(name) != expected:
                problems.append(
                    f"{exchange.label} ({fmt}): {name} is {short(item.get(name))}, "
                    f"expected {short(expected)}"
                )
    return passed(problems, f"request {request_id} reads back in both formats")


@check("post.bad_api_key", "a missing or invalid api_key is a 403", needs_api_key=True)
async def post_bad_api_key(ctx: Context) -> str:
    sub = await submission(ctx, await post_service(ctx))
    problems = await error_check(
        ctx, "POST", "requests", 403, form=[("api_key", INVALID_API_KEY), *sub.form]
    )
    problems += await error_check(ctx, "POST", "requests", 403, form=sub.form)
    return passed(problems, "403 with an errors document for an invalid and a missing key")


@check("post.missing_attribute", "a missing required attribute is a 400", needs_api_key=True)
async def post_missing_attribute(ctx: Context) -> str:
    candidates = [await post_service(ctx)]
    by_code = {s["service_code"]: s for s in await services(ctx)}
    candidates += [by_code[c] for c in await definition_codes(ctx) if c in by_code]
    for service in candidates:
        try:
            sub = await submission(ctx, service)
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
    problems = await error_check(ctx, "POST", "requests", 400, form=with_key(ctx, form))
    return passed(problems, f"400 without attribute[{dropped}] of {service['service_code']}")


@check("post.unknown_service", "POST to an unknown service_code is a 404", needs_api_key=True)
async def post_unknown_service(ctx: Context) -> str:
    form = [("service_code", UNKNOWN_SERVICE), ("description", DESCRIPTION), *await location(ctx)]
    problems = await error_check(ctx, "POST", "requests", 404, form=with_key(ctx, form))
    return passed(problems, "404 with an errors document in both formats")


# ---------------------------------------------------------------------------------------
# Tokens


@check("tokens.resolve", "a batch service's token resolves via GET tokens", needs_api_key=True)
async def tokens_resolve(ctx: Context) -> str:
    token = await batch_token(ctx)
    problems: list[str] = []
    exchanges = await ctx.both(f"tokens/{segment(token)}")
    for exchange in exchanges.values():
        found = format_problems(exchange, status=200, json_top=list, xml_root="service_requests")
        problems += found
        if found:
            continue
        items = exchange.value
        if len(items) != 1 or not isinstance(items[0], dict):
            problems.append(f"{exchange.label}: {len(items)} items, expected one")
            continue
        item = items[0]
        if item.get("token") != token:
            problems.append(f"{exchange.label}: token is {short(item.get('token'))}")
        if "service_request_id" not in item:
            problems.append(f"{exchange.label}: no service_request_id (null while pending)")
    if problems:
        raise Failure(problems)
    problems += prefixed(
        f"GET tokens/{token}", parity_problems(exchanges[JSON].value, exchanges[XML].value)
    )
    problems += schema("token", exchanges[JSON].value)
    request_id = exchanges[JSON].value[0].get("service_request_id")
    if request_id is None:
        return passed(problems, f"token {token} is known and still pending")
    if problem := id_problem("token", "service_request_id", request_id):
        raise Failure([*problems, problem])
    found = await ctx.get(f"requests/{segment(request_id)}", JSON)
    value = found.value if found.parsed and found.status == 200 else None
    if not (isinstance(value, list) and value and isinstance(value[0], dict)) or (
        value[0].get("service_request_id") != request_id
    ):
        problems.append(f"token resolved to {request_id} but {found.describe()}")
    return passed(problems, f"token {token} resolved to request {request_id}")


async def batch_token(ctx: Context) -> str:
    """A token from POSTing to a batch service (the chosen service's POST when it is batch)."""
    made = await created(ctx)
    if made.submission.service.get("type") == "batch":
        item = made.item(JSON)
        token = item.get("token") if item else None
        if not (isinstance(token, str) and token):
            raise Failure([f"the batch POST returned no token: {made.responses[JSON].describe()}"])
        return token
    batch = [s for s in await services(ctx) if s.get("type") == "batch"]
    if not batch:
        raise Skip("no batch service is listed")
    sub = await submission(ctx, batch[0])
    exchange = await ctx.post("requests", JSON, with_key(ctx, sub.form))
    problems = format_problems(exchange, status=(200, 201), json_top=list, xml_root="")
    if problems:
        raise Failure(problems)
    value = exchange.value
    token = value[0].get("token") if value and isinstance(value[0], dict) else None
    if not (isinstance(token, str) and token):
        raise Failure([f"batch service {batch[0]['service_code']}: no token in {short(value)}"])
    return token


@check("tokens.unknown", "an unknown token is a 404 errors document")
async def tokens_unknown(ctx: Context) -> str:
    problems = await error_check(ctx, "GET", f"tokens/{UNKNOWN_TOKEN}", 404)
    return passed(problems, "404 with an errors document in both formats")


# ---------------------------------------------------------------------------------------
# GET requests


@check("requests.formats", "requests.json and requests.xml: status, Content-Type, shape")
async def requests_formats(ctx: Context) -> str:
    problems = []
    for exchange in (await default_list(ctx)).values():
        problems += format_problems(
            exchange, status=200, json_top=list, xml_root="service_requests"
        )
    return passed(problems, "both formats answer 200 with the right Content-Type")


async def listed(ctx: Context) -> list[Any]:
    """The JSON items of the default list; Skip when unusable or empty."""
    value = usable((await default_list(ctx))[JSON], "requests.formats")
    if not isinstance(value, list):
        raise Skip("requests.json is not an array (see requests.formats)")
    if not value:
        raise Skip("the default window (last 90 days) lists no request")
    return value


@check("requests.fields", "every request has the 17 fields; status open/closed; string ids")
async def requests_fields(ctx: Context) -> str:
    items = await listed(ctx)
    problems = []
    if len(items) > MAX_RESULTS:
        problems.append(f"{len(items)} requests without parameters, more than {MAX_RESULTS}")
    for index, item in enumerate(items):
        problems += request_problems(item, f"requests[{index}]")
    objects = [i for i in items if isinstance(i, dict)]
    if len({hashable(i.get("service_request_id")) for i in objects}) != len(objects):
        problems.append("a service_request_id is listed twice")
    return passed(problems, f"{len(items)} requests with all 17 fields")


@check("requests.datetimes", "request datetimes are W3C (YYYY-MM-DDThh:mm:ss±hh:mm)")
async def requests_datetimes(ctx: Context) -> str:
    items = await listed(ctx)
    problems = []
    for index, item in enumerate(items):
        problems += datetime_problems(item, f"requests[{index}]")
    return passed(problems, f"{len(items)} requests with W3C datetimes")


@check("requests.schema", "requests.json validates against the GeoReport v2 JSON Schema")
async def requests_schema(ctx: Context) -> str:
    items = await listed(ctx)
    return passed(schema("requests", items), f"{len(items)} requests valid against request.json")


@check("requests.parity", "requests.json and requests.xml carry the same data")
async def requests_parity(ctx: Context) -> str:
    problems = both_parity(await default_list(ctx), "requests.formats")
    return passed(problems, "same content in both formats")


@check("requests.filter_status", "status=open / status=closed return only those")
async def requests_filter_status(ctx: Context) -> str:
    example = await optional_sample(ctx)
    problems: list[str] = []
    counts = []
    for status in ("open", "closed"):
        items = await list_query(ctx, [("status", status)], problems)
        if items is None:
            continue
        counts.append(f"{len(items)} {status}")
        wrong = [i.get("service_request_id") for i in items if i.get("status") != status]
        if wrong:
            problems.append(
                f"status={status} returned {len(wrong)} request(s) with another status "
                f"(e.g. {short(wrong[0])})"
            )
        if (
            example
            and example.get("status") == status
            and len(items) < MAX_RESULTS
            and example["service_request_id"] not in ids(items)
        ):
            problems.append(f"status={status} misses request {example['service_request_id']}")
    return passed(problems, ", ".join(counts))


@check("requests.filter_service_code", "service_code=X returns only requests of X")
async def requests_filter_service_code(ctx: Context) -> str:
    example = await optional_sample(ctx)
    if example and isinstance(example.get("service_code"), str):
        code = example["service_code"]
    else:
        listed_services = await services(ctx)
        if not listed_services:
            raise Skip("no service code to filter on")
        code = listed_services[0]["service_code"]
    problems: list[str] = []
    items = await list_query(ctx, [("service_code", code)], problems)
    if items is not None:
        wrong = [i.get("service_code") for i in items if i.get("service_code") != code]
        if wrong:
            problems.append(
                f"service_code={code} returned {len(wrong)} request(s) of {short(wrong[0])}"
            )
        if example and len(items) < MAX_RESULTS and example["service_request_id"] not in ids(items):
            problems.append(f"service_code={code} misses request {example['service_request_id']}")
    return passed(problems, f"service_code={code}: {len(items or [])} requests")


@check("requests.filter_dates", "start_date/end_date filter requested_datetime, both inclusive")
async def requests_filter_dates(ctx: Context) -> str:
    example = await sample(ctx)
    text = example.get("requested_datetime")
    moment = parse_w3c(text)
    if moment is None:
        raise Skip(f"the sample's requested_datetime {short(text)} is not W3C (see its check)")
    request_id = example["service_request_id"]
    second, hour = timedelta(seconds=1), timedelta(hours=1)
    windows = (
        (text, text, True),
        ((moment + second).isoformat(), (moment + hour).isoformat(), False),
        ((moment - hour).isoformat(), (moment - second).isoformat(), False),
    )
    problems: list[str] = []
    for start, end, included in windows:
        items = await list_query(ctx, [("start_date", start), ("end_date", end)], problems)
        if items is None:
            continue
        window = f"start_date={start}&end_date={end}"
        if included and request_id not in ids(items):
            problems.append(f"{window} misses request {request_id} requested at {text}")
        if not included and request_id in ids(items):
            problems.append(f"{window} lists request {request_id} requested at {text}")
        low, high = parse_w3c(start) or moment, parse_w3c(end) or moment
        outside = [
            i.get("requested_datetime")
            for i in items
            if (at := parse_w3c(i.get("requested_datetime"))) and not low <= at <= high
        ]
        if outside:
            problems.append(f"{window} lists a request requested at {outside[0]}")
    return passed(problems, f"bounds inclusive around {request_id} requested at {text}")


@check("requests.empty_result", "a window without requests is 200 with an empty list")
async def requests_empty_result(ctx: Context) -> str:
    problems: list[str] = []
    params = [("start_date", "1971-01-01T00:00:00Z"), ("end_date", "1971-01-02T00:00:00Z")]
    items = await list_query(ctx, params, problems)
    if items:
        problems.append(f"{len(items)} requests from January 1971")
    return passed(problems, "200 with an empty list in both formats")


@check("requests.invalid_status", "an invalid status value is a 400 errors document")
async def requests_invalid_status(ctx: Context) -> str:
    params = [("status", "conformance-invalid")]
    problems = await error_check(ctx, "GET", "requests", 400, params=params)
    return passed(problems, "400 with an errors document in both formats")


@check("requests.end_before_start", "end_date before start_date is a 400 errors document")
async def requests_end_before_start(ctx: Context) -> str:
    now = now_utc()
    params = [
        ("start_date", (now - timedelta(days=1)).isoformat()),
        ("end_date", (now - timedelta(days=2)).isoformat()),
    ]
    problems = await error_check(ctx, "GET", "requests", 400, params=params)
    return passed(problems, "400 with an errors document in both formats")


# ---------------------------------------------------------------------------------------
# GET request (one)


@check("request.single", "requests/{id} is a one-element list of that request")
async def request_single(ctx: Context) -> str:
    request_id = (await sample(ctx))["service_request_id"]
    exchanges = await ctx.both(f"requests/{segment(request_id)}")
    problems: list[str] = []
    for exchange in exchanges.values():
        problems += format_problems(
            exchange, status=200, json_top=list, xml_root="service_requests"
        )
    if problems:
        raise Failure(problems)
    items = exchanges[JSON].value
    if len(items) != 1:
        problems.append(f"{exchanges[JSON].label}: {len(items)} items, expected exactly one")
    if items and isinstance(items[0], dict) and items[0].get("service_request_id") != request_id:
        problems.append(f"requests/{request_id} answered {items[0].get('service_request_id')!r}")
    for index, item in enumerate(items):
        problems += request_problems(item, f"requests/{request_id}[{index}]")
        problems += datetime_problems(item, f"requests/{request_id}[{index}]")
    problems += prefixed(f"GET requests/{request_id}", parity_problems(items, exchanges[XML].value))
    problems += schema("requests", items)
    return passed(problems, f"request {request_id} as a one-element list in both formats")


@check("request.unknown", "an unknown service_request_id is a 404 errors document")
async def request_unknown(ctx: Context) -> str:
    problems = await error_check(ctx, "GET", f"requests/{UNKNOWN_REQUEST_ID}", 404)
    return passed(problems, "404 with an errors document in both formats")


# ---------------------------------------------------------------------------------------
# Errors


@check("errors.unknown_format", "an unknown format suffix is a 404 XML errors document")
async def errors_unknown_format(ctx: Context) -> str:
    exchange = await ctx.get("services", "yaml", cache=False)
    if exchange.status is not None:
        # A path without a usable suffix answers in XML, the one mandatory format (§1.1, §12 #36).
        exchange = Exchange.received(
            "GET", exchange.label, XML, exchange.status, exchange.content_type, exchange.body
        )
    problems = error_problems(exchange, 404)
    return passed(problems, "404 with an XML errors document")

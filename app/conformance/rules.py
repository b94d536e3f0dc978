"""The rules the checks apply: a level and a citation each, and the problems they find.

A rule's level says what breaking it means (spec digest ``shared/spec/georeport-v2.md``):

* ``FAIL`` — the spec (the digest's [SPEC] lines, with the wiki's wording) says MUST, or the
  document cannot be used by a client following the spec;
* ``WARN`` — the spec says SHOULD, or a convention most clients rely on is broken;
* ``INFO`` — our own recommendation from the digest's ambiguity table (§12), or an observation;
  never a defect of someone else's server.

Only ``FAIL`` changes the exit status (``--strict`` also counts ``WARN``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.conformance.documents import Exchange


class Level(StrEnum):
    """How much a broken rule matters."""

    FAIL = "FAIL"
    WARN = "WARN"
    INFO = "INFO"

    @property
    def rank(self) -> int:
        """FAIL 3, WARN 2, INFO 1."""
        return {"FAIL": 3, "WARN": 2, "INFO": 1}[self.value]


@dataclass(frozen=True)
class Rule:
    """One rule: its id, level, where it is written and what it says."""

    id: str
    level: Level
    section: str  # e.g. "digest §1.1 [SPEC]"
    text: str  # the rule in the spec's (wiki's) words, as the digest gives them

    @property
    def citation(self) -> str:
        """``digest §1.1 [SPEC]: "XML is mandatory ..."``."""
        return f'{self.section}: "{self.text}"'


RULES: dict[str, Rule] = {}


def _rule(rule_id: str, level: Level, section: str, text: str) -> Rule:
    rule = Rule(rule_id, level, section, text)
    RULES[rule_id] = rule
    return rule


F, W, I = Level.FAIL, Level.WARN, Level.INFO  # noqa: E741

# -- transport, documents, formats ---------------------------------------------------------
REACHABLE = _rule(
    "http.answer", F, "digest §0 [SPEC]", "every method answers over HTTP at {base}/{method}.{fmt}"
)
PARSE = _rule(
    "document.parse",
    F,
    "digest §1.1-§1.4 [SPEC]",
    "XML is mandatory for every method; JSON (when served) per RFC 4627; UTF-8 everywhere",
)
SHAPE = _rule(
    "document.shape",
    F,
    "digest §0, §1.3 [SPEC]",
    "JSON is the Spark mapping of the XML: the root is dropped; services, requests, POST, "
    "token and error bodies are arrays, definitions and discovery objects; XML roots are "
    "services, service_definition, service_requests, errors, discovery",
)
STATUS_OK = _rule(
    "http.status",
    F,
    "digest §1.10 [SPEC]",
    "HTTP status codes are mandatory: 404 for resources that do not exist, 403 for a wrong or "
    "missing api_key, 400 for every other request that cannot be fulfilled",
)
MEDIA_TYPE = _rule(
    "content_type.media_type",
    W,
    "digest §1.1 [SPEC]",
    "Content-Type headers to send: XML responses text/xml; charset=utf-8, JSON responses "
    "application/json; charset=utf-8",
)
CHARSET_NOT_UTF8 = _rule(
    "content_type.charset",
    F,
    "digest §1.4 [SPEC]",
    "UTF-8 everywhere: responses must be UTF-8 with matching HTTP charset",
)
XML_NO_CHARSET = _rule(
    "content_type.xml_charset",
    W,
    "digest §1.1, §1.4 [SPEC]",
    "XML responses: text/xml; charset=utf-8 (without the parameter, RFC 3023 readers take "
    "text/xml as US-ASCII; RFC 7303 readers use the XML declaration)",
)
APPLICATION_XML = _rule(
    "content_type.application_xml",
    I,
    "digest §12 #30 [REC]",
    "XML Content-Type: the spec names text/xml; FMS and 6Aika send application/xml; "
    "we recommend text/xml; charset=utf-8",
)
XML_DECLARATION = _rule(
    "xml.declaration",
    F,
    "digest §1.2 [SPEC]",
    "The document must start with an XML declaration carrying the encoding, e.g. <?xml "
    'version="1.0" encoding="utf-8"?>',
)
XML_PLAIN = _rule(
    "xml.plain",
    W,
    "digest §1.2 [SPEC]",
    "The XML is schemaless and carries no namespace; adding foreign elements or namespaces is "
    "tolerated but risky and discouraged; no XML attributes anywhere",
)
PARITY = _rule(
    "parity",
    F,
    "digest §1.3 [SPEC], §2",
    "JSON is defined as a mechanical mapping of the XML (Spark); discovery.xml and "
    "discovery.json carry identical data",
)
EMPTY_AS_STRING = _rule(
    "parity.empty",
    I,
    "digest §12 #14 [REC]",
    "Empty values: XML empty element, JSON null (the spec's examples); we recommend null",
)
# -- errors ---------------------------------------------------------------------------------
ERRORS_DOCUMENT = _rule(
    "errors.document",
    F,
    "digest §1.10 [SPEC]",
    "Error body structure (same for every method): errors -> error with code and description; "
    "JSON: an array of {code, description}",
)
NOT_FOUND_IS_200 = _rule(
    "errors.not_found",
    F,
    "digest §1.10 [SPEC]",
    "404 for resources that do not exist (unknown service_code, token, service_request_id)",
)
NOT_FOUND_OTHER_4XX = _rule(
    "errors.not_found_status",
    W,
    "digest §1.10 [SPEC]",
    "404 for resources that do not exist (another 4xx still tells the client it failed)",
)
API_KEY = _rule(
    "errors.api_key",
    F,
    "digest §1.8 [SPEC]",
    "Missing or invalid key -> HTTP 403 (error body should say what is wrong)",
)
BAD_REQUEST = _rule(
    "errors.bad_request",
    F,
    "digest §5.1, §1.10 [SPEC]",
    "attribute[CODE]: required for each attribute with required=true; 400 for every other "
    "request that cannot be fulfilled",
)
UNKNOWN_SERVICE_POST = _rule(
    "rec.unknown_service_post",
    I,
    "digest §12 #2 [REC]",
    "Unknown service_code on POST: spec 404; adapter/uReport/6Aika answer 400; we use 404",
)
UNKNOWN_FORMAT = _rule(
    "rec.unknown_format",
    I,
    "digest §1.1, §12 #36 [REC]",
    "Unknown/missing suffix -> HTTP 404 with an XML errors document (the adapter answers 404 "
    "text/plain)",
)
UNKNOWN_FORMAT_200 = _rule(
    "errors.unknown_format",
    W,
    "digest §1.1, §1.10 [SPEC]",
    "The client chooses the format with a suffix; 404 for resources that do not exist",
)
INVALID_STATUS = _rule(
    "rec.invalid_status",
    I,
    "digest §12 #11 [REC]",
    "status filter values are open, closed; we answer an unknown value with 400",
)
END_BEFORE_START = _rule(
    "rec.end_before_start",
    W,
    "digest §12 #8 [REC], §1.10 [SPEC]",
    "end_date < start_date: unstated; 400 for every other request that cannot be fulfilled; "
    "clients rely on being told their window is inverted",
)
EMPTY_RESULT = _rule(
    "requests.empty_is_200",
    W,
    "digest §7, §12 #17",
    "No matches -> 200 with an empty list (XML <service_requests/>, JSON [])",
)
# -- discovery ------------------------------------------------------------------------------
DISCOVERY = _rule(
    "discovery.required",
    F,
    "digest §2 [SPEC]",
    "Required for GeoReport v2; both .xml and .json are mandatory; all fields are required: "
    "changeset, contact, key_service, endpoints (specification, url, changeset, type, formats)",
)
DISCOVERY_FORMATS = _rule(
    "discovery.formats",
    W,
    "digest §2 [SPEC], [OBS: validator]",
    "formats: MIME types the endpoint serves: text/xml, application/json; the validator "
    "requires text/xml in every v2 endpoint",
)
CHANGESET = _rule(
    "rec.changeset",
    I,
    "digest §12 #31 [REC]",
    "changeset is a sortable string (the wiki example is not ISO 8601); we use ISO 8601 UTC",
)
# -- services and definitions ---------------------------------------------------------------
SERVICE_FIELDS = _rule(
    "services.fields",
    F,
    "digest §3 [SPEC], [OBS: schema-validation]",
    "service_code, service_name, metadata (true/false), type (realtime | batch | blackbox); "
    "codes are unique ids",
)
ALL_FIELDS = _rule(
    "rec.all_fields",
    I,
    "digest §12 #14 [REC], §3, §9",
    "always emit every field (empty element / null); uReport, FMS and the adapter omit some",
)
ID_STRINGS = _rule(
    "rec.ids_are_strings",
    I,
    "digest §1.3, §12 #15 [REC]",
    "the spec's examples use bare numbers (even 001); the validator schema types ids and codes "
    "as strings; we emit strings",
)
DEFINITION = _rule(
    "definitions.fields",
    F,
    "digest §4 [SPEC]",
    "a definition echoes service_code; each attribute has variable, code, datatype (string, "
    "number, datetime, text, singlevaluelist, multivaluelist), required; list datatypes "
    "carry values with key and name",
)
DEFINITION_SHOULD = _rule(
    "definitions.conventions",
    W,
    "digest §4, §13",
    "order is a unique positive integer; values appear only for list datatypes; metadata is "
    "true iff the service has attributes; description and datatype_description present",
)
SCHEMA = _rule(
    "schema.community",
    I,
    "digest §15, [OBS: open311/schema-validation]",
    "the community JSON Schemas (not normative; the fields checks judge the spec's rules)",
)
# -- POST -------------------------------------------------------------------------------------
POST = _rule(
    "post.accepted",
    F,
    "digest §5 [SPEC]",
    "a POST with api_key, service_code, a location and every required attribute[CODE] creates "
    "a request; realtime -> service_request_id, batch -> token, blackbox -> neither",
)
MULTIVALUE = _rule(
    "post.multivalue",
    W,
    "digest §5.2 [SPEC], §12 #22",
    "Multiple values for a multivaluelist: repeat with [] (attribute[LANES][]=N); FixMyStreet "
    "may repeat attribute[CODE]=v without []; accept both",
)
ROUND_TRIP = _rule(
    "text.round_trip",
    F,
    "digest §1.4 [SPEC], §13",
    "UTF-8 everywhere: non-ASCII text (Straße, São Paulo) round-trips in both formats",
)
TOKEN = _rule(
    "tokens.resolve",
    F,
    "digest §6 [SPEC]",
    "GET tokens/{token}: service_requests -> request with service_request_id (usable with "
    "GET Service Request) and token (echo)",
)
# -- GET requests ---------------------------------------------------------------------------
REQUEST_FIELDS = _rule(
    "requests.fields",
    F,
    "digest §9 [SPEC]",
    "always present: service_request_id, status (open | closed only in core v2), service_name, "
    "service_code, requested_datetime, updated_datetime; lat/long WGS84 degrees",
)
STATUS_CASE = _rule(
    "requests.status_case",
    W,
    "digest §9 [SPEC], §12 #12",
    "status is open | closed (lowercase in the spec; clients compare exactly)",
)
TYPES = _rule(
    "rec.json_types",
    W,
    "digest §1.3, §12 #15",
    "lat/long JSON numbers, booleans JSON booleans, text JSON strings (what clients parse)",
)
DESCRIPTION_LENGTH = _rule(
    "requests.description_length",
    W,
    "digest §1.9 [SPEC]",
    "description: free text, max 4,000 characters",
)
DATETIME = _rule(
    "datetime.w3c",
    F,
    "digest §1.5 [SPEC]",
    "Every date/time is the W3C-DTF profile of ISO 8601, and a timezone designator is "
    "mandatory: Z or +hh:mm / -hh:mm",
)
WHOLE_SECONDS = _rule(
    "rec.whole_seconds",
    I,
    "digest §1.5 [REC]",
    "Output YYYY-MM-DDThh:mm:ss±hh:mm, whole seconds (the adapter rejects fractions on input)",
)
RESULT_LIMIT = _rule(
    "requests.limit",
    W,
    "digest §7 [SPEC]",
    "Default result limit: 90 days or the first 1000 requests, whichever is smaller",
)
FILTERS = _rule(
    "requests.filters",
    F,
    "digest §7 [SPEC]",
    "service_code restricts to these types; status restricts by status; start_date/end_date "
    "bound requested_datetime",
)
INCLUSIVE = _rule(
    "rec.inclusive_bounds",
    I,
    "digest §12 #6 [REC]",
    "Inclusive/exclusive bounds: unstated; FMS end is exclusive; we make both inclusive",
)
SINGLE = _rule(
    "request.single",
    F,
    "digest §8 [SPEC]",
    "the same list wrapper as GET Service Requests (JSON: an array with one object)",
)
# -- extension suites -------------------------------------------------------------------------
UPDATES = _rule(
    "updates.fields",
    F,
    "digest §10.6.1 [OBS: mySociety]",
    "servicerequestupdates: service_request_updates -> request_update with update_id, "
    "service_request_id, status, updated_datetime (W3C), description, media_url",
)
UPDATES_POST = _rule(
    "updates.post",
    F,
    "digest §10.6.3 [OBS: mySociety]",
    "POST servicerequestupdates with api_key, service_request_id, update_id, status "
    "(UPPERCASE), updated_datetime, description answers request_update with update_id",
)
CHICAGO = _rule(
    "chicago.extensions",
    F,
    "digest §10.3 [OBS: Chicago]",
    "With extensions=true each request gains attributes (object), extended_attributes "
    "(object), notes (array of datetime, summary, type)",
)
CHICAGO_PARTS = _rule(
    "chicago.parts",
    W,
    "digest §10.3 [OBS: Chicago], §10.4",
    "attributes (Chicago: object; SF: array) and notes (array) come with extensions=true",
)
EXTENSIONS_OPT_IN = _rule(
    "extensions.opt_in",
    W,
    "digest §10 (wiki Extensions page)",
    "an endpoint with extensions must still be fully v2-compliant; extension data should "
    "only appear when asked for (typically extensions=true)",
)
PAGING = _rule(
    "paging",
    F,
    "digest §10.1 [REC], §13",
    "page/page_size paging: page_size bounds the page; pages are stable and disjoint",
)
OURS = _rule(
    "ours.listing",
    F,
    "README (this server's extensions)",
    "areas.{fmt} and jurisdictions.{fmt} answer 200 with a list of objects in both formats",
)


@dataclass
class Problem:
    """One thing a check found: the rule broken, the root cause, where, and the exchange."""

    rule: Rule
    message: str  # the root cause, the same text wherever it repeats
    where: str = ""  # e.g. "requests[3]"; the first one is kept as the example
    exchange: Exchange | None = None

    def text(self) -> str:
        """``where: message``."""
        return f"{self.where}: {self.message}" if self.where else self.message


def problem(rule: Rule, message: str, where: str = "", exchange: Exchange | None = None) -> Problem:
    """A problem found by a check."""
    return Problem(rule, message, where, exchange)


@dataclass
class Finding:
    """One root cause: every problem with the same rule and message, counted, one example."""

    rule: Rule
    message: str
    count: int
    where: str
    exchange: Exchange | None

    @property
    def level(self) -> Level:
        """The rule's level."""
        return self.rule.level

    def line(self) -> str:
        """``message (×3, e.g. requests[3])``."""
        extra = []
        if self.count > 1:
            extra.append(f"×{self.count}")
        if self.where:
            extra.append(f"e.g. {self.where}" if self.count > 1 else self.where)
        return self.message + (f" ({', '.join(extra)})" if extra else "")


def group(problems: list[Problem]) -> list[Finding]:
    """One finding per root cause (rule and message), worst level first, then first seen."""
    findings: dict[tuple[str, str], Finding] = {}
    for item in problems:
        key = (item.rule.id, item.message)
        if key in findings:
            found = findings[key]
            found.count += 1
            if found.exchange is None and item.exchange is not None:
                found.exchange = item.exchange
        else:
            findings[key] = Finding(item.rule, item.message, 1, item.where, item.exchange)
    return sorted(findings.values(), key=lambda f: -f.level.rank)

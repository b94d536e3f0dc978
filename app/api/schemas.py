"""JSON Schemas of the inputs, written to match what the server accepts, no more, no less.

Contract tests generate valid and invalid requests from these schemas and expect the server to
accept exactly the valid ones, so every rule of ``app.domain.requests`` that a schema can
express is expressed here:

- an empty or blank value of an optional parameter means "not given" (spec §1.6);
- text is trimmed, then must not contain control characters (free text may keep tab, CR, LF);
- lengths are the server's limits.

Patterns use only the syntax common to ECMA 262, Python and Rust regular expressions.
"""

from __future__ import annotations

from typing import Any

from app.api import examples
from app.domain.requests import TEXT_FIELDS
from app.domain.statuses import DETAILED_STATUSES
from app.georeport.models import CHANNELS
from app.media.settings import MediaSettings

# Python's str.isspace(): what str.strip() removes and what counts as blank.
WS = "\\t-\\r\\x1c- \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# Refused in any text (single line) / in free text such as description (multi-line).
CONTROL = "\\x00-\\x1f\\x7f\\ufffe\\uffff"
CONTROL_MULTILINE = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ufffe\\uffff"

BLANK = f"^[{WS}]*$"
NOT_BLANK = f"[^{WS}]"
# Trimmed, then no control characters (a blank value is "not given").
SINGLE_LINE = f"^[{WS}]*[^{CONTROL}]*[{WS}]*$"
FREE_TEXT = f"^(?:[{WS}]*|[^{CONTROL_MULTILINE}]*)$"
_EMAIL_PART = f"[^@{WS}{CONTROL}]+"
EMAIL = f"^[{WS}]*(?:{_EMAIL_PART}@{_EMAIL_PART}\\.{_EMAIL_PART})?[{WS}]*$"
# The host part (up to / ? #) as Python's urlsplit() takes it: no brackets (IPv6 literals are
# left out), none of the characters whose NFKC form holds / ? # @ : (urlsplit refuses them),
# and not only blanks unless a path follows (the value is trimmed first).
_NFKC_DELIMITERS = (
    "\\u2047-\\u2049\\u2100\\u2101\\u2105\\u2106\\u2a74\\ufe13\\ufe16\\ufe55\\ufe56\\ufe5f"
    "\\ufe6b\\uff03\\uff0f\\uff1a\\uff1f\\uff20"
)
_HOST_CHAR = f"[^/?#\\[\\]{CONTROL}{_NFKC_DELIMITERS}]"
_HOST_NOT_BLANK = f"[^/?#\\[\\]{CONTROL}{_NFKC_DELIMITERS}{WS}]"
_URL = (
    f"[hH][tT][tT][pP][sS]?://"
    f"(?:{_HOST_CHAR}*{_HOST_NOT_BLANK}{_HOST_CHAR}*|{_HOST_CHAR}+[/?#][^{CONTROL}]*)"
)
MEDIA_URL = f"^[{WS}]*(?:{_URL})?[{WS}]*$"
# Every value of an attribute, blank or not, must be free of control characters.
ATTRIBUTE_VALUE = f"^[^{CONTROL_MULTILINE}]*$"
ATTRIBUTE_NAME = r"^attribute\[[^\]]+\](\[\])?$"
INVALID_ATTRIBUTE_NAME = (
    f"^attribute\\[(?:[{WS}]*|[^\\]]{{256,}}|[^\\]]*[{CONTROL}][^\\]]*)\\](?:\\[\\])?$"
)
STATUS_ITEM = f"[{WS}]*(?:[oO][pP][eE][nN]|[cC][lL][oO][sS][eE][dD])?[{WS}]*"
STATUS_LIST = f"^{STATUS_ITEM}(?:,{STATUS_ITEM})*$"


def text(max_length: int, description: str, **extra: Any) -> dict[str, Any]:
    """An optional single-line text field."""
    return {
        "type": "string",
        "maxLength": max_length,
        "pattern": SINGLE_LINE,
        "description": description,
        **extra,
    }


def _coordinate(name: str, bound: int, example: float) -> dict[str, Any]:
    return {
        "description": f"WGS84 {name} in decimal degrees; given together with the other "
        "coordinate. Empty means not given.",
        "anyOf": [
            {"type": "number", "minimum": -bound, "maximum": bound},
            {"type": "string", "pattern": BLANK},
        ],
        "examples": [example],
    }


_LOCATED = {"type": "number"}

POST_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["api_key", "service_code"],
    "properties": {
        "api_key": {
            "type": "string",
            "description": "Your client key (also accepted in the query string); "
            "missing, unknown or revoked: 403.",
            "examples": ["your-api-key"],
        },
        "jurisdiction_id": {
            "type": "string",
            "description": "Required only on a multi-jurisdiction server.",
            "examples": ["test.example.org"],
        },
        "service_code": {
            "type": "string",
            "pattern": NOT_BLANK,
            "description": "A service_code of GET services; unknown: 404.",
            "examples": ["FEEDBACK"],
        },
        "lat": _coordinate("latitude", 90, 43.6534),
        "long": _coordinate("longitude", 180, -79.3841),
        "address_string": text(
            TEXT_FIELDS["address_string"],
            "Human-readable address, most specific first.",
            examples=["100 Queen St W, Toronto"],
        ),
        "address_id": text(
            TEXT_FIELDS["address_id"],
            "Id in the jurisdiction's master address repository.",
            examples=["ADDR-55120"],
        ),
        "email": {
            "type": "string",
            "maxLength": TEXT_FIELDS["email"],
            "pattern": EMAIL,
            "description": "Reporter's e-mail (stored, never published).",
            "examples": ["ana@example.org"],
        },
        "device_id": text(TEXT_FIELDS["device_id"], "Reporter's device (stored, never published)."),
        "account_id": text(
            TEXT_FIELDS["account_id"], "Reporter's account (echoed in the POST response)."
        ),
        "first_name": text(TEXT_FIELDS["first_name"], "Stored, never published."),
        "last_name": text(TEXT_FIELDS["last_name"], "Stored, never published."),
        "phone": text(TEXT_FIELDS["phone"], "Stored, never published."),
        "description": {
            "type": "string",
            "maxLength": 4000,
            "pattern": FREE_TEXT,
            "description": "The report (line breaks allowed; at most 4000 characters).",
            "examples": ["Large pothole in the bike lane"],
        },
        "channel": {
            "type": "string",
            "enum": list(CHANNELS),
            "description": "Staff intake only (a key with the staff scope; any other key: "
            "403): the channel the request came in through (the server also reads any case, "
            "and - or a space for _). Default: the key's channel.",
            "examples": ["phone"],
        },
        "status": {
            "type": "string",
            "maxLength": 64,
            "description": "Staff intake only (ignored for other keys: a server-owned field): the "
            f"status the request is filed with, one of {', '.join(sorted(DETAILED_STATUSES))} "
            "(any case); a closed one (closed, fixed, ...) is resolved at first contact. "
            "Recorded as the first entry of the request's history.",
            "examples": ["fixed"],
        },
        "expected_datetime": {
            "type": "string",
            "maxLength": 64,
            "format": "date-time",
            "description": "Staff intake only (ignored for other keys: a server-owned field): "
            "overrides the "
            "expected_datetime computed from the service's resolve target; recorded in the "
            "request's history.",
            "examples": ["2018-03-09T17:00:00-05:00"],
        },
        "media_url": {
            "description": "http(s) URL of a photo; repeat the field for several (at most 10; "
            "the first is published).",
            "anyOf": [
                {"type": "string", "maxLength": 2048, "pattern": MEDIA_URL},
                {
                    "type": "array",
                    "maxItems": 10,
                    "items": {"type": "string", "maxLength": 2048, "pattern": MEDIA_URL},
                },
            ],
            "examples": ["https://img.example.org/p/991.jpg"],
        },
    },
    # What the server reads as an attribute, and the names it refuses: a blank code, a code
    # longer than 255 characters or with control characters.
    "propertyNames": {"not": {"pattern": INVALID_ATTRIBUTE_NAME}},
    "patternProperties": {
        ATTRIBUTE_NAME: {
            "description": "Answer to a service definition attribute: attribute[CODE]=value; "
            "a multivaluelist repeats attribute[CODE][]=value. Checked against the definition "
            "of service_code (required present, number parses, datetime is ISO 8601 with a "
            "zone, list values among the keys); codes the definition does not know are "
            "stored as sent.",
            "anyOf": [
                {"type": "string", "maxLength": 4000, "pattern": ATTRIBUTE_VALUE},
                {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 4000, "pattern": ATTRIBUTE_VALUE},
                },
            ],
        }
    },
    "allOf": [
        {
            "description": "A location: lat and long, or address_string, or address_id.",
            "anyOf": [
                {"required": ["lat", "long"], "properties": {"lat": _LOCATED, "long": _LOCATED}},
                {
                    "required": ["address_string"],
                    "properties": {"address_string": {"pattern": NOT_BLANK}},
                },
                {"required": ["address_id"], "properties": {"address_id": {"pattern": NOT_BLANK}}},
            ],
        },
        {
            "description": "lat and long come together.",
            "if": {"required": ["lat"], "properties": {"lat": _LOCATED}},
            "then": {"required": ["long"], "properties": {"long": _LOCATED}},
        },
        {
            "if": {"required": ["long"], "properties": {"long": _LOCATED}},
            "then": {"required": ["lat"], "properties": {"lat": _LOCATED}},
        },
    ],
}


# The ``media`` file parts of a multipart POST (requests, servicerequestupdates): photos.
MEDIA_PARTS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "maxItems": MediaSettings.model_fields["max_files"].default,
    "description": "Photos, one file part each (multipart/form-data only): JPEG, PNG, WebP "
    "or HEIC, told by their content; at most media.max_files files of media.max_file_bytes "
    "each (else 400). Re-encoded without metadata (EXIF GPS, device and owner fields never "
    "leave the server) and given a thumbnail; media_url is the first photo's URL, "
    "extensions=true lists them all. Refused with a 400 when photos are switched off.",
}


def with_media(schema: dict[str, Any]) -> dict[str, Any]:
    """A form schema with the ``media`` file parts (the multipart variant)."""
    return {**schema, "properties": {**schema["properties"], "media": MEDIA_PARTS}}


POST_EXAMPLES = {
    "realtime": {
        "summary": "A pothole (realtime: answers a service_request_id)",
        "value": examples.POST_POTHOLE,
    },
    "batch": {
        "summary": "Graffiti (batch: answers a token)",
        "value": examples.POST_GRAFFITI,
    },
    "blackbox": {
        "summary": "Feedback (blackbox: answers neither)",
        "value": examples.POST_FEEDBACK,
    },
}

# Printable Latin-1 (what a header can carry), trimmed, 1 to 255 characters.
_LATIN1_WS = "\\t-\\r\\x1c- \\x85\\xa0"
_PRINTABLE = "!-~\\xa1-\\xac\\xae-\\xff"
IDEMPOTENCY_KEY: dict[str, Any] = {
    "type": "string",
    "pattern": f"^[{_LATIN1_WS}]*[{_PRINTABLE}](?:[ {_PRINTABLE}]{{0,253}}[{_PRINTABLE}])?"
    f"[{_LATIN1_WS}]*$",
    "examples": ["5b0f7e0e-2c1d-4b8a-9a53-0f5c6f1f9d2e"],
}

# GET requests filters.
W3C_DATETIME_TEXT = (
    "A W3C datetime with a zone (2024-03-05T14:07:00-05:00, ...Z), or a bare date meaning "
    "local midnight; seconds may be left out, and a space where an unencoded + arrived is read "
    "as +. Empty means not given."
)
W3C_DATETIME: dict[str, Any] = {
    "type": "string",
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
        {"type": "string", "pattern": BLANK},
    ],
}

STATUS: dict[str, Any] = {
    "type": "string",
    "pattern": STATUS_LIST,
    "description": "open, closed or both, comma-separated (case-insensitive); anything else "
    "is a 400.",
    "examples": ["open"],
}


# ---------------------------------------------------------------------------------------
# Query parameters. Routes read every query parameter from the parsed query string
# (``app.api.deps.QueryDep``, one rule for repeated keys: ``app.georeport.params``) and
# declare none to FastAPI; the document lists them from here (``app.api.docs.documented``),
# in the form FastAPI gives a declared ``str | None`` query parameter.


def query_parameter(
    name: str, schema: dict[str, Any], description: str | None = None
) -> dict[str, Any]:
    """An optional query parameter of the OpenAPI document."""
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": False}
    parameter["schema"] = schema
    if description:
        parameter["description"] = description
    return parameter


def text_parameter(name: str, description: str, *example: str) -> dict[str, Any]:
    """A string query parameter."""
    schema: dict[str, Any] = {"type": "string", "description": description}
    if example:
        schema["examples"] = list(example)
    return query_parameter(name, schema, description)


def datetime_parameter(name: str, description: str, *example: str) -> dict[str, Any]:
    """A W3C datetime query parameter (empty means not given)."""
    description = f"{description} {W3C_DATETIME_TEXT}"
    schema: dict[str, Any] = {"anyOf": W3C_DATETIME["anyOf"], "description": description}
    if example:
        schema["examples"] = list(example)
    schema["type"] = "string"
    return query_parameter(name, schema, description)


def whole_parameter(name: str, description: str, low: int, high: int) -> dict[str, Any]:
    """A whole-number query parameter in [low, high]."""
    schema = {"type": "integer", "maximum": high, "minimum": low, "description": description}
    return query_parameter(name, schema, description)


PAGE_MAX = 1_000_000
PAGE_SIZE_MAX = 1000  # whatever requests.max_results allows (the default page is that long)

JURISDICTION_ID = text_parameter(
    "jurisdiction_id",
    "The jurisdiction (e.g. toronto.ca). Required only when the server hosts several "
    "jurisdictions.",
)
EXTENSIONS = text_parameter(
    "extensions",
    "Extension: true (or 1, all) adds extended_attributes (ward, ward_name, channel, "
    "first_contact_resolution, detailed_status, media_urls, the public attribute values and "
    "the update history as notes); any other value adds nothing.",
    "true",
)


def number_parameter(
    name: str, description: str, low: float, high: float, example: float, *, above: bool = False
) -> dict[str, Any]:
    """A decimal-number query parameter in [low, high] (``above``: low excluded)."""
    schema: dict[str, Any] = {"type": "number", "maximum": high, "description": description}
    schema["exclusiveMinimum" if above else "minimum"] = low
    schema["examples"] = [example]
    return query_parameter(name, schema, description)


LAT = number_parameter("lat", "Latitude (decimal degrees, WGS84).", -90, 90, 43.6534)
LONG = number_parameter("long", "Longitude (decimal degrees, WGS84).", -180, 180, -79.3841)
WHERE_FILTERS: tuple[dict[str, Any], ...] = (
    text_parameter(
        "bbox",
        "Extension: only requests located in this box, minLong,minLat,maxLong,maxLat in "
        "decimal degrees (WGS84), minLong <= maxLong and minLat <= maxLat, each side at most "
        "2 degrees (requests.bbox_max_span_deg).",
        "-79.40,43.64,-79.37,43.66",
    ),
    number_parameter(
        "lat",
        "Extension: with long and radius (all three or none), only requests located within "
        "radius metres of this point (decimal degrees, WGS84).",
        -90,
        90,
        43.6534,
    ),
    number_parameter(
        "long", "Extension: the longitude of the lat/long/radius filter.", -180, 180, -79.3841
    ),
    number_parameter(
        "radius",
        "Extension: the radius of the lat/long/radius filter in metres, at most 50000 "
        "(requests.radius_max_m).",
        0,
        50_000,
        500,
        above=True,
    ),
)
REQUEST_FILTERS: tuple[dict[str, Any], ...] = (
    text_parameter(
        "service_request_id",
        "Comma-separated ids; overrides every other filter (unknown ids are simply absent).",
        "638344,638301",
    ),
    text_parameter("service_code", "Comma-separated service codes.", "POTHOLE,GRAFFITI"),
    datetime_parameter(
        "start_date", "Earliest requested_datetime, inclusive.", "2024-02-01T00:00:00-05:00"
    ),
    datetime_parameter(
        "end_date",
        "Latest requested_datetime, inclusive; not before start_date.",
        "2024-03-01T00:00:00-05:00",
    ),
    query_parameter("status", STATUS),
    text_parameter("ward", "Extension: ward codes of the current ward set, comma-separated.", "10"),
    EXTENSIONS,
    datetime_parameter(
        "updated_after",
        "Extension (sync): earliest updated_datetime, inclusive. Disables the default 90-day "
        "window; results are then ordered by updated_datetime, newest first.",
    ),
    datetime_parameter("updated_before", "Extension (sync): latest updated_datetime, inclusive."),
    whole_parameter(
        "page", "Extension: 1-based page number (offset paging; 0 means 1).", 0, PAGE_MAX
    ),
    whole_parameter(
        "page_size",
        "Extension: results a page, at most the server's limit (advertised in the "
        "X-Page-Size-Max header; default 1000).",
        1,
        PAGE_SIZE_MAX,
    ),
    text_parameter(
        "cursor",
        "Extension: opaque position from the X-Next-Cursor header of the previous page. "
        "Keyset paging: no gaps or duplicates while requests are written.",
    ),
    *WHERE_FILTERS,
    text_parameter(
        "q",
        "Extension: text search. Requests whose description or address holds every word "
        "(letters and digits; case ignored; whole words), or whose service's name holds "
        "them all. At most 200 characters and 8 words (requests.q_max_length, q_max_words).",
        "pothole queen",
    ),
)
UPDATE_WINDOW: tuple[dict[str, Any], ...] = (
    datetime_parameter(
        "start_date", "Earliest update time, inclusive.", "2024-02-22T00:00:00-05:00"
    ),
    datetime_parameter(
        "end_date",
        "Latest update time, inclusive; not before start_date. Without dates: the last 90 "
        "days, or every update of the requests named by service_request_id.",
        "2024-02-23T00:00:00-05:00",
    ),
)
UPDATE_FEED: tuple[dict[str, Any], ...] = (
    *UPDATE_WINDOW,
    text_parameter(
        "service_request_id",
        "Extension: only updates of these requests (comma-separated ids, at most as many as "
        "X-Page-Size-Max); unknown ids are simply absent.",
        "638344,638301",
    ),
    whole_parameter(
        "page_size",
        "Extension: updates a page, at most the server's limit (advertised in the "
        "X-Page-Size-Max header; default 1000).",
        1,
        PAGE_SIZE_MAX,
    ),
    text_parameter(
        "cursor",
        "Extension: opaque position from the X-Next-Cursor header (or the Link) of the "
        "previous page. Keyset paging on (updated_datetime, update_id): every update of the "
        "window, once, whatever its size.",
    ),
)
AREA_FILTERS: tuple[dict[str, Any], ...] = (
    text_parameter(
        "boundary_set",
        "A named boundary set (default: the current sets); unknown: 404.",
        "wards-2018",
    ),
    text_parameter("kind", "Only areas of this kind.", "ward"),
    text_parameter("geometry", "true (or 1) adds each area's GeoJSON geometry.", "true"),
)
WEBHOOK_API_KEY = text_parameter("api_key", "Any valid key of the app (403 without one).")
JURISDICTION_CHECK: tuple[dict[str, Any], ...] = (
    text_parameter(
        "check",
        "true (or 1) probes a remote partner live first (admin keys only: 403 otherwise): "
        "502/503/504 when it fails (within the federation timeout; 503 at once while its "
        "circuit is open), 404 for a local jurisdiction.",
        "true",
    ),
    text_parameter("api_key", "An API key with the admin scope: required with check=true."),
)

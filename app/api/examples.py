"""Examples for the OpenAPI document, composed after the spec digest (``shared/spec``).

Response examples are GeoReport documents as JSON values; ``app.api.docs`` renders the XML
example of each with the codec, so the two formats of an example always match.
"""

from __future__ import annotations

from typing import Any

SERVICE_LIST: list[dict[str, Any]] = [
    {
        "service_code": "POTHOLE",
        "service_name": "Pothole",
        "description": "Hole in the road surface.",
        "metadata": True,
        "type": "realtime",
        "keywords": "road, pavement, hole",
        "group": "Streets",
    },
    {
        "service_code": "GRAFFITI",
        "service_name": "Graffiti",
        "description": "Graffiti on public property.",
        "metadata": True,
        "type": "batch",
        "keywords": "graffiti, paint",
        "group": "Cleanliness",
    },
    {
        "service_code": "FEEDBACK",
        "service_name": "General feedback",
        "description": None,
        "metadata": False,
        "type": "blackbox",
        "keywords": None,
        "group": None,
    },
]

SERVICE_DEFINITION: dict[str, Any] = {
    "service_code": "POTHOLE",
    "attributes": [
        {
            "variable": False,
            "code": "NOTE",
            "datatype": "string",
            "required": False,
            "datatype_description": None,
            "order": 1,
            "description": "Call 911 if the hole is an immediate danger.",
        },
        {
            "variable": True,
            "code": "SIZE",
            "datatype": "singlevaluelist",
            "required": True,
            "datatype_description": "Pick the closest size.",
            "order": 2,
            "description": "How big is it?",
            "values": [
                {"key": "SMALL", "name": "Smaller than a plate"},
                {"key": "LARGE", "name": "Larger than a plate"},
            ],
        },
        {
            "variable": True,
            "code": "DEPTH",
            "datatype": "number",
            "required": True,
            "datatype_description": "Centimetres.",
            "order": 3,
            "description": "How deep is it?",
        },
        {
            "variable": True,
            "code": "LANES",
            "datatype": "multivaluelist",
            "required": True,
            "datatype_description": None,
            "order": 4,
            "description": "Which lanes?",
            "values": [
                {"key": "N", "name": "Northbound"},
                {"key": "S", "name": "Southbound"},
                {"key": "BIKE", "name": "Bike lane"},
            ],
        },
        {
            "variable": True,
            "code": "SEEN",
            "datatype": "datetime",
            "required": False,
            "datatype_description": "ISO 8601 with zone.",
            "order": 5,
            "description": "When did you first notice it?",
        },
    ],
}

DISCOVERY: dict[str, Any] = {
    "changeset": "2024-03-01T09:30:00Z",
    "contact": "Open311 team: open311@example-city.gov, +1 555 0100",
    "key_service": "Request a key at https://example-city.gov/open311/keys",
    "endpoints": [
        {
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": "https://api.example-city.gov/open311/v2",
            "changeset": "2024-02-27T16:05:00Z",
            "type": "production",
            "formats": ["text/xml", "application/json"],
        },
        {
            "specification": "urn:open311-server:extension:exports:v1",
            "url": "https://api.example-city.gov/open311/v2",
            "changeset": "2024-02-27T16:05:00Z",
            "type": "production",
            "formats": ["text/csv", "application/geo+json", "application/x-ndjson"],
            "resources": ["exports/requests.{format}"],
        },
    ],
    "max_page_size": 1000,
    "locales": ["en", "fr"],
}

REQUEST: dict[str, Any] = {
    "service_request_id": "638344",
    "status": "open",
    "status_notes": None,
    "service_name": "Pothole",
    "service_code": "POTHOLE",
    "description": "Large pothole in the bike lane",
    "agency_responsible": "Transportation Services",
    "service_notice": "Crews usually respond within 3 business days.",
    "requested_datetime": "2024-02-20T08:14:55-05:00",
    "updated_datetime": "2024-02-21T10:02:10-05:00",
    "expected_datetime": None,
    "address": "100 Queen St W, Toronto",
    "address_id": None,
    "zipcode": None,
    "lat": 43.6534,
    "long": -79.3841,
    "media_url": "https://img.example.org/p/991.jpg",
}

REQUEST_ADDRESS_ONLY: dict[str, Any] = {
    **REQUEST,
    "service_request_id": "638301",
    "status": "closed",
    "status_notes": "Removed.",
    "service_name": "Graffiti",
    "service_code": "GRAFFITI",
    "description": None,
    "agency_responsible": None,
    "service_notice": None,
    "requested_datetime": "2024-02-11T19:40:00-05:00",
    "updated_datetime": "2024-02-12T09:00:00-05:00",
    "address": None,
    "address_id": "ADDR-55120",
    "lat": None,
    "long": None,
    "media_url": None,
}

REQUEST_NEARBY: dict[str, Any] = {**REQUEST, "distance_m": 42.5}
REQUEST_EXTENDED: dict[str, Any] = {
    **REQUEST,
    "extended_attributes": {
        "ward": "10",
        "ward_name": "Spadina-Fort York",
        "channel": "mobile_app",
        "first_contact_resolution": False,
        "detailed_status": "in_progress",
        "media_urls": ["https://img.example.org/p/991.jpg", "https://img.example.org/p/992.jpg"],
        "attributes": [
            {
                "code": "WHERE",
                "name": "Where is the pothole?",
                "value": "BIKE_LANE",
                "value_name": "Bike lane",
            }
        ],
        "notes": [
            {
                "update_id": "5521",
                "datetime": "2024-02-21T10:02:10-05:00",
                "status": "open",
                "detailed_status": "in_progress",
                "description": "Crew scheduled",
                "media_url": None,
                "media_urls": [],
                "photos": [],
            }
        ],
    },
}

CREATED_REALTIME = [
    {
        "service_request_id": "638344",
        "service_notice": "Crews usually respond within 3 business days.",
        "account_id": None,
    }
]
CREATED_BATCH = [{"token": "Xb2Lq0fEYkq1lO0bS4zJqjN7", "service_notice": None, "account_id": None}]
CREATED_BLACKBOX = [{"service_notice": "Thank you for your feedback.", "account_id": None}]

TOKEN = [{"service_request_id": "638345", "token": "Xb2Lq0fEYkq1lO0bS4zJqjN7"}]

AREAS: list[dict[str, Any]] = [
    {
        "code": "10",
        "name": "Spadina-Fort York",
        "kind": "ward",
        "boundary_set": "wards-2018",
        "current": True,
    },
    {
        "code": "11",
        "name": "University-Rosedale",
        "kind": "ward",
        "boundary_set": "wards-2018",
        "current": True,
    },
]

JURISDICTIONS: list[dict[str, Any]] = [
    {
        "jurisdiction_id": "toronto.ca",
        "name": "City of Toronto",
        "kind": "local",
        "status": "ok",
        "last_synced_at": None,
        "partner_url": None,
    },
    {
        "jurisdiction_id": "greatersudbury.ca",
        "name": "City of Greater Sudbury",
        "kind": "remote",
        "status": "ok",
        "last_synced_at": "2026-11-28T09:15:02-05:00",
        "partner_url": "https://open311.greatersudbury.ca/open311/v2",
    },
]

ERRORS: dict[int, list[dict[str, Any]]] = {
    400: [
        {"code": 400, "description": "attribute[SIZE] is required for service POTHOLE."},
        {
            "code": 400,
            "description": "lat must be a number between -90 and 90 (decimal degrees, WGS84).",
        },
    ],
    403: [{"code": 403, "description": "A valid api_key is required to submit service requests."}],
    404: [{"code": 404, "description": "No service request with id '638399'."}],
    413: [{"code": 413, "description": "The request body may be at most 1048576 bytes."}],
    422: [
        {
            "code": 422,
            "description": "This Idempotency-Key was already used with a different request; "
            "use a new key for a new request.",
        }
    ],
    429: [
        {
            "code": 429,
            "description": "Too many requests: over the rate limit. Retry after the time in "
            "Retry-After.",
        }
    ],
    500: [{"code": 500, "description": "Internal server error."}],
    502: [
        {
            "code": 502,
            "description": "The partner's JSON could not be parsed: Expecting value: line 1 "
            "column 1 (char 0)",
        }
    ],
    504: [
        {
            "code": 504,
            "description": "greatersudbury.ca: no answer within 10 s.",
        }
    ],
    503: [{"code": 503, "description": "The server is at capacity. Please retry in a moment."}],
}

# Form bodies of POST requests, one per kind of service of the test catalogue.
POST_POTHOLE: dict[str, Any] = {
    "api_key": "your-api-key",
    "service_code": "POTHOLE",
    "lat": 43.6534,
    "long": -79.3841,
    "address_string": "100 Queen St W, Toronto",
    "description": "Large pothole in the bike lane",
    "media_url": "https://img.example.org/p/991.jpg",
    "attribute[SIZE]": "LARGE",
    "attribute[DEPTH]": "12.5",
    "attribute[LANES][]": ["N", "BIKE"],
}
POST_GRAFFITI: dict[str, Any] = {
    "api_key": "your-api-key",
    "service_code": "GRAFFITI",
    "address_id": "ADDR-55120",
    "attribute[SURFACE]": "WALL",
}
POST_FEEDBACK: dict[str, Any] = {
    "api_key": "your-api-key",
    "service_code": "FEEDBACK",
    "address_string": "City Hall, Toronto",
    "description": "The new bike lanes are great.",
    "first_name": "Ana",
    "last_name": "Silva",
    "email": "ana@example.org",
}

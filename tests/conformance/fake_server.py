"""A small, conformant GeoReport v2 upstream served through ``httpx.MockTransport``.

It stands for "another city's server": the conformance checks must pass against it as is, and
each test breaks one thing (its data, a quirk of behaviour, or the bytes of some responses)
to see the right check fail. Its XML writer is written here, independently of the app's codec.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import httpx

BASE_URL = "http://city.example/open311/v2"
API_KEY = "fake-city-key-123"
ZONE = timezone(timedelta(hours=-5))
CONTENT_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
CONTAINERS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
Mutator = Callable[[httpx.Request, httpx.Response], httpx.Response | None]


def w3c(moment: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss-05:00``."""
    return moment.astimezone(ZONE).isoformat(timespec="seconds")


def _xml(name: str, value: Any) -> str:
    if value is None or value == [] or value == "":
        return f"<{name}/>"
    if isinstance(value, list):
        item = CONTAINERS.get(name, "item")
        return f"<{name}>" + "".join(_xml(item, v) for v in value) + f"</{name}>"
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_xml(k, v) for k, v in value.items()) + f"</{name}>"
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


def render(root: str, value: Any, fmt: str, status: int = 200) -> httpx.Response:
    """A GeoReport document (Spark: JSON drops the root)."""
    if fmt == "json":
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    else:
        body = ('<?xml version="1.0" encoding="utf-8"?>' + _xml(root, value)).encode("utf-8")
    return httpx.Response(status, content=body, headers={"Content-Type": CONTENT_TYPES[fmt]})


def error(status: int, description: str, fmt: str) -> httpx.Response:
    """A GeoReport errors document."""
    return render("errors", [{"code": status, "description": description}], fmt, status)


def attribute(code: str, datatype: str, order: int, **fields: Any) -> dict[str, Any]:
    """A service definition attribute with every field."""
    item = {
        "variable": fields.pop("variable", True),
        "code": code,
        "datatype": datatype,
        "required": fields.pop("required", False),
        "datatype_description": None,
        "order": order,
        "description": f"About {code.lower()}?",
    }
    item.update(fields)
    return item


class FakeServer:
    """An in-memory GeoReport v2 server; tests change its data, quirks or responses."""

    def __init__(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        self.services: list[dict[str, Any]] = [
            {
                "service_code": "POTHOLE",
                "service_name": "Pothole",
                "description": "Hole in the road.",
                "metadata": True,
                "type": "realtime",
                "keywords": "road, hole",
                "group": "Streets",
            },
            {
                "service_code": "GRAFFITI",
                "service_name": "Graffiti",
                "description": "Paint on walls.",
                "metadata": True,
                "type": "batch",
                "keywords": None,
                "group": "Cleanliness",
            },
            {
                "service_code": "FEEDBACK",
                "service_name": "Feedback – Straße",
                "description": None,
                "metadata": False,
                "type": "blackbox",
                "keywords": None,
                "group": None,
            },
        ]
        sizes = [{"key": "SMALL", "name": "Small"}, {"key": "LARGE", "name": "Large"}]
        lanes = [{"key": "N", "name": "Northbound"}, {"key": "S", "name": "Southbound"}]
        surfaces = [{"key": "WALL", "name": "Wall"}, {"key": "SIGN", "name": "Sign"}]
        self.definitions: dict[str, dict[str, Any]] = {
            "POTHOLE": {
                "service_code": "POTHOLE",
                "attributes": [
                    attribute("NOTE", "string", 1, variable=False),
                    attribute("SIZE", "singlevaluelist", 2, required=True, values=sizes),
                    attribute("DEPTH", "number", 3, required=True),
                    attribute("LANES", "multivaluelist", 4, values=lanes),
                    attribute("SEEN", "datetime", 5),
                    attribute("DETAILS", "text", 6),
                ],
            },
            "GRAFFITI": {
                "service_code": "GRAFFITI",
                "attributes": [
                    attribute("SURFACE", "singlevaluelist", 1, required=True, values=surfaces)
                ],
            },
        }
        self.requests: list[dict[str, Any]] = [
            self._request("1001", "POTHOLE", "open", now - timedelta(days=2), 43.65, -79.38),
            self._request("1002", "GRAFFITI", "closed", now - timedelta(days=3), None, None),
        ]
        self.times = {"1001": now - timedelta(days=2), "1002": now - timedelta(days=3)}
        self.tokens: dict[str, str] = {}
        self.ids = itertools.count(2001)
        self.quirks: set[str] = set()
        self.mutators: list[Mutator] = []
        self.posts: list[dict[str, list[str]]] = []

    @staticmethod
    def _request(
        request_id: str,
        code: str,
        status: str,
        at: datetime,
        lat: float | None,
        lon: float | None,
        description: str | None = "Reported by a resident.",
    ) -> dict[str, Any]:
        return {
            "service_request_id": request_id,
            "status": status,
            "status_notes": None,
            "service_name": code.title(),
            "service_code": code,
            "description": description,
            "agency_responsible": "Public Works",
            "service_notice": None,
            "requested_datetime": w3c(at),
            "updated_datetime": w3c(at),
            "expected_datetime": None,
            "address": "100 Main St" if lat is None else None,
            "address_id": None,
            "zipcode": None,
            "lat": lat,
            "long": lon,
            "media_url": None,
        }

    def transport(self) -> httpx.MockTransport:
        """The fake as an httpx transport."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route, then let the tests' mutators rewrite the response."""
        response = self.route(request)
        for mutate in self.mutators:
            response = mutate(request, response) or response
        return response

    # -- routing ---------------------------------------------------------------------

    def route(self, request: httpx.Request) -> httpx.Response:
        """Answer like a conformant GeoReport v2 server."""
        path = request.url.path.removeprefix("/open311/v2/")
        head, _, fmt = path.rpartition(".")
        if fmt not in CONTENT_TYPES:
            return error(404, "Use a .xml or .json suffix.", "xml")
        query = self._multi(request.url.query.decode())
        if request.method == "POST" and head == "requests":
            return self.post(self._multi(request.content.decode("utf-8")), fmt)
        if request.method != "GET":
            return error(405, "Method not allowed.", fmt)
        if head == "discovery":
            return render("discovery", self.discovery(), fmt)
        if head == "services":
            return render("services", self.services, fmt)
        if head.startswith("services/"):
            code = head.removeprefix("services/")
            if code not in self.definitions:
                return error(404, f"No service {code}.", fmt)
            return render("service_definition", self.definitions[code], fmt)
        if head.startswith("tokens/"):
            token = head.removeprefix("tokens/")
            if token not in self.tokens and "unknown_token_200" not in self.quirks:
                return error(404, f"No token {token}.", fmt)
            item = {"service_request_id": self.tokens.get(token), "token": token}
            return render("service_requests", [item], fmt)
        if head == "requests":
            return self.search(query, fmt)
        if head.startswith("requests/"):
            request_id = head.removeprefix("requests/")
            found = [r for r in self.requests if r["service_request_id"] == request_id]
            if not found:
                if "unknown_id_200" in self.quirks:
                    return render("service_requests", [], fmt)
                return error(404, f"No request {request_id}.", fmt)
            return render("service_requests", found, fmt)
        return error(404, "Unknown resource.", fmt)

    @staticmethod
    def _multi(text: str) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for key, value in parse_qsl(text, keep_blank_values=True):
            values.setdefault(key, []).append(value)
        return values

    def discovery(self) -> dict[str, Any]:
        """The discovery document."""
        return {
            "changeset": "2024-03-01T09:30:00Z",
            "contact": "311@city.example",
            "key_service": "Ask 311 for a key.",
            "endpoints": [
                {
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": BASE_URL,
                    "changeset": "2024-02-27T16:05:00Z",
                    "type": "test",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }

    def post(self, form: dict[str, list[str]], fmt: str) -> httpx.Response:
        """POST requests: key, service, location, required attributes."""
        self.posts.append(form)
        if form.get("api_key", [""])[0] != API_KEY and "accept_bad_key" not in self.quirks:
            return error(403, "A valid api_key is required.", fmt)
        code = form.get("service_code", [""])[0]
        if not code:
            return error(400, "service_code is required.", fmt)
        service = next((s for s in self.services if s["service_code"] == code), None)
        if service is None:
            status = 400 if "unknown_service_400" in self.quirks else 404
            return error(status, f"No service {code}.", fmt)
        if not (form.get("address_string") or ("lat" in form and "long" in form)):
            return error(400, "A location is required.", fmt)
        problems = []
        if "repeated_only" in self.quirks and any(k.endswith("][]") for k in form):
            return error(400, "attribute[CODE][] is not understood here.", fmt)
        for attr in self.definitions.get(code, {}).get("attributes", []):
            sent = form.get(f"attribute[{attr['code']}]") or form.get(
                f"attribute[{attr['code']}][]"
            )
            if attr.get("variable", True) and attr["required"] and not sent:
                problems.append(f"attribute[{attr['code']}] is required.")
            is_list = attr["datatype"] in ("singlevaluelist", "multivaluelist")
            keys = {v["key"] for v in attr.get("values", [])} if is_list else set()
            if sent and keys and not set(sent) <= keys:
                problems.append(f"attribute[{attr['code']}] has an unknown value.")
        if problems and "accept_missing_attribute" not in self.quirks:
            return render(
                "errors", [{"code": 400, "description": p} for p in problems], fmt, status=400
            )
        request_id = str(next(self.ids))
        now = datetime.now(UTC).replace(microsecond=0)
        lat = float(form["lat"][0]) if "lat" in form else None
        lon = float(form["long"][0]) if "long" in form else None
        text = form.get("description", [None])[0]
        if text and "mangle_text" in self.quirks:
            text = text.encode("ascii", "replace").decode("ascii")
        stored = self._request(request_id, code, "open", now, lat, lon, text)
        if service["type"] != "blackbox":
            self.requests.insert(0, stored)
            self.times[request_id] = now
        item: dict[str, Any] = {}
        if service["type"] == "realtime" and "post_without_id" not in self.quirks:
            item["service_request_id"] = request_id
        elif service["type"] == "batch":
            token = f"tok-{request_id}"
            self.tokens[token] = "404404" if "token_dangling" in self.quirks else request_id
            item["token"] = token
        account = 42 if "post_account_number" in self.quirks else None
        item.update({"service_notice": None, "account_id": account})
        return render("service_requests", [item], fmt)

    def search(self, query: dict[str, list[str]], fmt: str) -> httpx.Response:
        """GET requests with the status, service_code and date filters."""

        def listed(name: str) -> list[str]:
            return [v.strip() for raw in query.get(name, []) for v in raw.split(",") if v.strip()]

        statuses = listed("status")
        if set(statuses) - {"open", "closed"} and "accept_invalid_status" not in self.quirks:
            return error(400, "status must be open or closed.", fmt)
        bounds = {}
        for name in ("start_date", "end_date"):
            if query.get(name, [""])[0]:
                try:
                    bounds[name] = datetime.fromisoformat(query[name][0])
                except ValueError:
                    return error(400, f"{name} is not a W3C datetime.", fmt)
        now = datetime.now(UTC)
        start = bounds.get("start_date", now - timedelta(days=90))
        end = bounds.get("end_date", now)
        if end < start and "accept_end_before_start" not in self.quirks:
            return error(400, "end_date is before start_date.", fmt)
        codes = listed("service_code")
        found = []
        for item in self.requests:
            at = self.times[str(item["service_request_id"])]
            if "ignore_status" not in self.quirks and statuses and item["status"] not in statuses:
                continue
            skip_code = codes and item["service_code"] not in codes
            if skip_code and "ignore_service_code" not in self.quirks:
                continue
            if at < start or at > end or ("exclusive_end" in self.quirks and at == end):
                continue
            found.append(item)
        return render("service_requests", found, fmt)


# -- response mutators ---------------------------------------------------------------


def when(
    path: str | None = None,
    fmt: str | None = None,
    method: str | None = "GET",
    *,
    prefix: str | None = None,
    bare: bool = False,
    query: str | None = None,
) -> Callable[[httpx.Request], bool]:
    """Select requests by resource path (exact, or ``prefix``), suffix, method and query."""

    def select(request: httpx.Request) -> bool:
        tail = request.url.path.removeprefix("/open311/v2/")
        head, _, suffix = tail.rpartition(".")
        text = request.url.query.decode()
        return (
            (path is None or head == path)
            and (prefix is None or head.startswith(prefix))
            and (fmt is None or suffix == fmt)
            and (method is None or request.method == method)
            and (not bare or not text)
            and (query is None or query in text)
        )

    return select


def rewrite(
    select: Callable[[httpx.Request], bool],
    *,
    body: bytes | None = None,
    edit: Callable[[bytes], bytes] | None = None,
    edit_json: Callable[[Any], Any] | None = None,
    content_type: str | None = None,
    status: int | None = None,
    successes_only: bool = False,
) -> Mutator:
    """Change the selected responses: body, raw edit, JSON edit, Content-Type or status."""

    def mutate(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if not select(request) or (successes_only and response.status_code >= 400):
            return None
        content = response.content if body is None else body
        if edit is not None:
            content = edit(content)
        if edit_json is not None:
            content = json.dumps(edit_json(json.loads(content))).encode("utf-8")
        return httpx.Response(
            status or response.status_code,
            content=content,
            headers={"Content-Type": content_type or response.headers.get("content-type", "")},
        )

    return mutate


def errors_as_detail(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
    """FastAPI's default error shape instead of a GeoReport errors document."""
    if response.status_code < 400:
        return None
    if request.url.path.endswith(".json"):
        body, content_type = b'{"detail": "Not Found"}', CONTENT_TYPES["json"]
    else:
        body = b'<?xml version="1.0" encoding="utf-8"?><detail>Not Found</detail>'
        content_type = CONTENT_TYPES["xml"]
    return httpx.Response(
        response.status_code, content=body, headers={"Content-Type": content_type}
    )

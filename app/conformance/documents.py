"""Reading GeoReport v2 responses of any server: parsing, format rules, JSON/XML parity.

Nothing here trusts the server: every parser returns problems (strings) instead of raising on
malformed input, and XML is parsed with entity expansion, DTDs and network access disabled.
The XML reader is independent of ``app.georeport.codec`` on purpose, so our own server's two
renderings are compared with a reader that does not share its writer's assumptions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree

from app.conformance.rules import (
    APPLICATION_XML,
    CHARSET_NOT_UTF8,
    EMPTY_AS_STRING,
    ERRORS_DOCUMENT,
    MEDIA_TYPE,
    PARITY,
    PARSE,
    REACHABLE,
    SHAPE,
    STATUS_OK,
    XML_DECLARATION,
    XML_NO_CHARSET,
    XML_PLAIN,
    Problem,
    Rule,
    problem,
)
from app.georeport.codec import parse_xml_safely

XML = "xml"
JSON = "json"
FORMATS = (JSON, XML)

# Spark containers: the spec's lists plus the common extensions' (spec digest §1.3, §10).
CONTAINERS: dict[str, str] = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "service_request_updates": "request_update",
    "groups": "group",
    "notes": "note",
    "media_urls": "media_url",
    "photos": "photo",  # this server's extensions (--suite ours)
    "areas": "area",
    "jurisdictions": "jurisdiction",
}

# Spec digest §13: whole seconds and a mandatory zone designator.
W3C_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
_DECLARATION = re.compile(
    rb"""^(\xef\xbb\xbf)?<\?xml\s+version\s*=\s*["']1\.[01]["']\s+encoding\s*=\s*["']utf-8["']"""
    rb"""(\s+standalone\s*=\s*["'](yes|no)["'])?\s*\?>""",
    re.IGNORECASE,
)
MAX_SHOWN = 4  # problems quoted per check line


def parse_w3c(text: Any) -> datetime | None:
    """The aware datetime of a W3C-DTF ``YYYY-MM-DDThh:mm:ss±hh:mm`` string, else None."""
    if not isinstance(text, str) or not W3C_DATETIME.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def short(value: Any, limit: int = 60) -> str:
    """A value quoted for a message, cut to ``limit`` characters."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# ---------------------------------------------------------------------------------------
# Parsing


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Decode a JSON body (UTF-8 only); raises ``ValueError`` with a short reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if text.startswith("\ufeff"):
        raise ValueError("JSON body starts with a byte order mark")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"malformed JSON: {short(str(exc).encode(), 80)}") from exc


@dataclass
class XmlDocument:
    """A parsed XML body: root name, Spark value (leaves as text) and structural problems."""

    root: str
    value: Any
    problems: list[str] = field(default_factory=list)


def parse_xml(body: bytes) -> XmlDocument:
    """Decode an XML body into its Spark value; raises ``ValueError`` if it is not usable XML."""
    try:
        element = parse_xml_safely(body)
    except ValueError as exc:
        prefix = "malformed XML: "
        text = str(exc)
        if text.startswith(prefix):
            raise ValueError(prefix + short(text[len(prefix) :].encode(), 80)) from exc
        raise
    if element is None:
        raise ValueError("empty XML document")
    problems: list[str] = []
    value = _convert(element, problems)
    root = _local(element)
    if root in CONTAINERS and not isinstance(value, list):
        value = [] if value is None else [value]
    return XmlDocument(root, value, problems)


def _local(element: Any) -> str:
    return str(etree.QName(element).localname)


def _convert(element: Any, problems: list[str]) -> Any:
    name = _local(element)
    if etree.QName(element).namespace:
        problems.append(f"elements in namespace {etree.QName(element).namespace}")
    if element.attrib:
        names = sorted(str(etree.QName(a).localname) for a in element.attrib)
        problems.append(f"XML attributes {names} on <{name}>")
    children = [c for c in element if isinstance(c.tag, str)]
    if children and element.text and element.text.strip():
        problems.append(f"<{name}> mixes text and elements")
    if name in CONTAINERS:
        item = CONTAINERS[name]
        strangers = sorted({_local(c) for c in children} - {item})
        if strangers:
            problems.append(f"<{name}> holds <{strangers[0]}>; only <{item}> items belong there")
        if children:
            return [_convert(c, problems) for c in children]
        text = element.text
        if text and text.strip():
            problems.append(f"container <{name}> holds text {short(text)}")
            return text
        return []
    if not children:
        return element.text if element.text else None
    names = [_local(c) for c in children]
    if len(names) > 1 and len(set(names)) == 1:
        return [_convert(c, problems) for c in children]  # Spark: repeated children -> array
    value: dict[str, Any] = {}
    for child, child_name in zip(children, names, strict=True):
        if child_name in value:
            problems.append(f"<{name}> repeats <{child_name}>")
        value[child_name] = _convert(child, problems)
    return value


# ---------------------------------------------------------------------------------------
# One HTTP exchange


@dataclass
class Exchange:
    """One request and its response (or transport error), parsed in the requested format."""

    method: str
    label: str  # e.g. "GET services.json?status=open"
    fmt: str
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    transport_error: str | None = None
    value: Any = None
    xml: XmlDocument | None = None
    parse_error: str | None = None
    url: str = ""
    sent: bytes = b""  # the request body (form) when there was one
    headers: tuple[tuple[str, str], ...] = ()  # response headers

    @classmethod
    def received(
        cls,
        method: str,
        label: str,
        fmt: str,
        status: int,
        content_type: str | None,
        body: bytes,
        **details: Any,
    ) -> Exchange:
        """Parse a response body in the format the path asked for."""
        exchange = cls(method, label, fmt, status, content_type, body, **details)
        try:
            if fmt == XML:
                exchange.xml = parse_xml(body)
                exchange.value = exchange.xml.value
            else:
                exchange.value = parse_json(body)
        except ValueError as exc:
            exchange.parse_error = str(exc)
        return exchange

    @property
    def parsed(self) -> bool:
        """True when a body arrived and parsed."""
        return self.transport_error is None and self.parse_error is None

    def describe(self) -> str:
        """What came back, for messages."""
        if self.transport_error:
            return f"{self.label}: {self.transport_error}"
        return f"{self.label}: HTTP {self.status}, body {short(self.body)}"

    def example(self, limit: int = 600) -> dict[str, Any]:
        """The exchange as a report shows it: request line, status, headers, body excerpt."""
        request_line = f"{self.method} {self.url or self.label.split(' ', 1)[-1]}"
        shown: dict[str, Any] = {"request": request_line}
        if self.sent:
            shown["form"] = excerpt(self.sent, limit)
        if self.transport_error:
            shown["error"] = self.transport_error
            return shown
        shown["status"] = self.status
        shown["headers"] = {k: v for k, v in self.headers if k.lower() in SHOWN_HEADERS}
        shown["body"] = excerpt(self.body, limit)
        return shown


SHOWN_HEADERS = {"content-type", "content-length", "location", "link", "x-result-count"}


def excerpt(data: bytes, limit: int) -> str:
    """The first ``limit`` characters of a body, decoded leniently."""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + f"… ({len(data)} bytes)"


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """``("text/xml", {"charset": "utf-8"})`` from a Content-Type header."""
    if not header:
        return "", {}
    kind, *rest = header.split(";")
    params = {}
    for item in rest:
        name, _, value = item.partition("=")
        params[name.strip().lower()] = value.strip().strip('"').lower()
    return kind.strip().lower(), params


def content_type_problems(exchange: Exchange) -> list[Problem]:
    """The Content-Type of a response in the format its suffix asked for.

    JSON needs no charset (RFC 8259 defines none), so only a charset other than UTF-8 is a
    problem; for XML, ``application/xml`` is a recommendation (INFO), a missing charset a WARN.
    """
    if exchange.status is None or exchange.fmt not in FORMATS:
        return []
    kind, params = media_type(exchange.content_type)
    charset = params.get("charset")
    header = repr(exchange.content_type)
    where = exchange.label
    if charset is not None and charset.replace("-", "") != "utf8":
        return [problem(CHARSET_NOT_UTF8, f"charset={charset} (not UTF-8)", where, exchange)]
    if exchange.fmt == JSON:
        if kind == "application/json" or kind.endswith("+json"):
            return []
        return [problem(MEDIA_TYPE, f".json answered as {header}", where, exchange)]
    if kind == "application/xml":
        return [problem(APPLICATION_XML, ".xml answered as 'application/xml'", where, exchange)]
    if kind != "text/xml":
        return [problem(MEDIA_TYPE, f".xml answered as {header}", where, exchange)]
    if charset is None:
        return [problem(XML_NO_CHARSET, "text/xml without charset=utf-8", where, exchange)]
    return []


def xml_problems(exchange: Exchange) -> list[Problem]:
    """The XML declaration, namespaces and XML attributes of a parsed XML response."""
    if exchange.fmt != XML or exchange.status is None or exchange.xml is None:
        return []
    problems = []
    if not _DECLARATION.match(exchange.body):
        problems.append(
            problem(
                XML_DECLARATION,
                'no <?xml version="1.0" encoding="utf-8"?> declaration first',
                exchange.label,
                exchange,
            )
        )
    for text in exchange.xml.problems:
        problems.append(problem(XML_PLAIN, text, exchange.label, exchange))
    return problems


def format_problems(
    exchange: Exchange,
    *,
    status: int | tuple[int, ...],
    json_top: type,
    xml_root: str,
    status_rule: Rule = STATUS_OK,
) -> list[Problem]:
    """Status, parsing and the root/top-level shape (headers and XML style: cross-cutting)."""
    label = exchange.label
    if exchange.transport_error:
        return [problem(REACHABLE, exchange.transport_error, label, exchange)]
    expected = (status,) if isinstance(status, int) else status
    problems = []
    if exchange.status not in expected:
        want = " or ".join(map(str, expected))
        problems.append(
            problem(status_rule, f"HTTP {exchange.status}, expected {want}", label, exchange)
        )
        if exchange.status is not None and exchange.status >= 400:
            return problems  # an error answer: its body is not the document asked for
    if exchange.parse_error:
        problems.append(problem(PARSE, exchange.parse_error, label, exchange))
        return problems
    if exchange.fmt == XML:
        assert exchange.xml is not None  # noqa: S101 - invariant, not an input check
        if exchange.xml.root != xml_root:
            problems.append(
                problem(
                    SHAPE,
                    f"root element <{exchange.xml.root}>, expected <{xml_root}>",
                    label,
                    exchange,
                )
            )
    elif not isinstance(exchange.value, json_top):
        want = "array" if json_top is list else "object"
        problems.append(
            problem(
                SHAPE,
                f"top-level JSON {json_type(exchange.value)}, expected an {want} (Spark)",
                label,
                exchange,
            )
        )
    return problems


def error_problems(
    exchange: Exchange,
    status: int,
    *,
    success_rule: Rule = STATUS_OK,
    other_rule: Rule | None = None,
) -> list[Problem]:
    """An error answer: the HTTP status and the ``errors`` document shape.

    A success status breaks ``success_rule``; another error status breaks ``other_rule``
    (default: the same rule). The document is judged whenever the status is an error.
    """
    label = exchange.label
    if exchange.transport_error:
        return [problem(REACHABLE, exchange.transport_error, label, exchange)]
    problems = []
    if exchange.status != status:
        rule = (
            success_rule
            if exchange.status is None or exchange.status < 400
            else other_rule or success_rule
        )
        problems.append(
            problem(rule, f"HTTP {exchange.status}, expected {status}", label, exchange)
        )
        if exchange.status is None or exchange.status < 400:
            return problems
    if exchange.parse_error:
        problems.append(
            problem(ERRORS_DOCUMENT, f"error body: {exchange.parse_error}", label, exchange)
        )
        return problems
    items = exchange.value
    if exchange.fmt == XML:
        assert exchange.xml is not None  # noqa: S101 - invariant, not an input check
        if exchange.xml.root != "errors":
            return [
                *problems,
                problem(
                    ERRORS_DOCUMENT,
                    f"root element <{exchange.xml.root}>, expected <errors>",
                    label,
                    exchange,
                ),
            ]
    elif not isinstance(items, list):
        return [
            *problems,
            problem(
                ERRORS_DOCUMENT,
                f"errors as a JSON {json_type(items)}, expected an array of {{code, description}}",
                label,
                exchange,
            ),
        ]
    if not items:
        return [
            *problems,
            problem(ERRORS_DOCUMENT, "the errors document is empty", label, exchange),
        ]
    for index, item in enumerate(items):
        where = f"{label}: error[{index}]"
        if not isinstance(item, dict):
            problems.append(
                problem(ERRORS_DOCUMENT, f"an error is a {json_type(item)}", where, exchange)
            )
            continue
        missing = [k for k in ("code", "description") if k not in item]
        if missing:
            problems.append(
                problem(ERRORS_DOCUMENT, f"an error lacks {', '.join(missing)}", where, exchange)
            )
            continue
        code = item["code"]
        if exchange.fmt == JSON:
            if isinstance(code, bool) or not isinstance(code, int):
                problems.append(
                    problem(ERRORS_DOCUMENT, "code is not a JSON integer", where, exchange)
                )
        elif not (isinstance(code, str) and code.strip().isdigit()):
            problems.append(problem(ERRORS_DOCUMENT, "code is not an integer", where, exchange))
        description = item["description"]
        if not isinstance(description, str) or not description.strip():
            problems.append(problem(ERRORS_DOCUMENT, "description is empty", where, exchange))
    return problems


# ---------------------------------------------------------------------------------------
# JSON/XML parity (Spark: containers -> arrays, empty element -> null)


def parity_problems(
    json_value: Any, xml_value: Any, label: str = "", exchange: Exchange | None = None
) -> list[Problem]:
    """Differences between a JSON value and the Spark value of the same XML document."""
    found: list[tuple[str, str]] = []
    _parity(json_value, xml_value, "$", found)
    problems = []
    for path, message in found:
        pattern = re.sub(r"\[\d+\]", "[]", path)
        rule = EMPTY_AS_STRING if message.startswith("JSON '' but XML element is empty") else PARITY
        where = f"{label} {path}".strip()
        problems.append(problem(rule, f"{pattern}: {message}", where, exchange))
    return problems


def _parity(json_value: Any, xml_value: Any, path: str, found: list[tuple[str, str]]) -> None:
    if isinstance(json_value, dict):
        if xml_value is None and not json_value:
            return
        if not isinstance(xml_value, dict):
            found.append((path, f"JSON object but XML {_xml_kind(xml_value)}"))
            return
        only_json = sorted(set(json_value) - set(xml_value))
        only_xml = sorted(set(xml_value) - set(json_value))
        if only_json:
            found.append((path, f"only in JSON: {', '.join(only_json)}"))
        if only_xml:
            found.append((path, f"only in XML: {', '.join(only_xml)}"))
        for key in json_value:
            if key in xml_value:
                _parity(json_value[key], xml_value[key], f"{path}.{key}", found)
        return
    if isinstance(json_value, list):
        if isinstance(xml_value, dict) and len(xml_value) == 1:
            xml_value = list(xml_value.values())  # a one-item container we do not know by name
        if xml_value is None:
            xml_value = []
        if not isinstance(xml_value, list):
            found.append((path, f"JSON array but XML {_xml_kind(xml_value)}"))
            return
        if len(json_value) != len(xml_value):
            found.append((path, f"{len(json_value)} items in JSON, {len(xml_value)} in XML"))
            return
        for index, (j, x) in enumerate(zip(json_value, xml_value, strict=True)):
            _parity(j, x, f"{path}[{index}]", found)
        return
    if isinstance(xml_value, dict | list):
        found.append((path, f"JSON {json_type(json_value)} but XML {_xml_kind(xml_value)}"))
        return
    if json_value is None:
        if xml_value is not None:
            found.append((path, f"JSON null but XML {short(xml_value)}"))
        return
    if xml_value is None:
        if json_value == "":
            found.append(
                (path, "JSON '' but XML element is empty (Spark: an empty element is null)")
            )
        else:
            found.append((path, f"JSON {short(json_value)} but XML element is empty"))
        return
    if isinstance(json_value, bool):
        ok = xml_value.strip() == ("true" if json_value else "false")
    elif isinstance(json_value, int | float):
        try:
            ok = float(xml_value) == float(json_value)
        except ValueError:
            ok = False
    else:
        ok = xml_value == json_value
    if not ok:
        found.append((path, f"JSON {short(json_value)} vs XML {short(xml_value)}"))


def _xml_kind(value: Any) -> str:
    if value is None:
        return "empty element"
    if isinstance(value, dict):
        return "element with children"
    if isinstance(value, list):
        return "container"
    return f"text {short(value)}"

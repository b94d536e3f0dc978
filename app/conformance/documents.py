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

from app.georeport.codec import parse_xml_safely

XML = "xml"
JSON = "json"
FORMATS = (JSON, XML)
CONTENT_TYPES = {XML: "text/xml; charset=utf-8", JSON: "application/json; charset=utf-8"}

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
        problems.append(f"<{name}> is in namespace {etree.QName(element).namespace}")
    if element.attrib:
        problems.append(f"<{name}> has XML attributes {sorted(element.attrib)}")
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
    label: str  # e.g. "GET services.json"
    fmt: str
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    transport_error: str | None = None
    value: Any = None
    xml: XmlDocument | None = None
    parse_error: str | None = None

    @classmethod
    def received(
        cls, method: str, label: str, fmt: str, status: int, content_type: str | None, body: bytes
    ) -> Exchange:
        """Parse a response body in the format the path asked for."""
        exchange = cls(method, label, fmt, status, content_type, body)
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


def content_type_ok(fmt: str, header: str | None) -> bool:
    """The exact media type and charset the spec requires (case and spaces aside)."""
    if header is None:
        return False
    return header.replace(" ", "").lower() == CONTENT_TYPES[fmt].replace(" ", "")


def format_problems(
    exchange: Exchange, *, status: int | tuple[int, ...], json_top: type, xml_root: str
) -> list[str]:
    """Status, Content-Type, XML declaration, parsing and the root/top-level shape."""
    label = exchange.label
    if exchange.transport_error:
        return [f"{label}: {exchange.transport_error}"]
    expected = (status,) if isinstance(status, int) else status
    problems = []
    if exchange.status not in expected:
        want = " or ".join(map(str, expected))
        problems.append(f"{label}: HTTP {exchange.status}, expected {want}")
    if not content_type_ok(exchange.fmt, exchange.content_type):
        problems.append(
            f"{label}: Content-Type {exchange.content_type!r}, "
            f"expected {CONTENT_TYPES[exchange.fmt]!r}"
        )
    if exchange.fmt == XML and not _DECLARATION.match(exchange.body):
        problems.append(f'{label}: no <?xml version="1.0" encoding="utf-8"?> declaration first')
    if exchange.parse_error:
        problems.append(f"{label}: {exchange.parse_error}")
        return problems
    if exchange.fmt == XML:
        assert exchange.xml is not None
        if exchange.xml.root != xml_root:
            problems.append(f"{label}: root element <{exchange.xml.root}>, expected <{xml_root}>")
        problems.extend(f"{label}: {p}" for p in exchange.xml.problems)
    elif not isinstance(exchange.value, json_top):
        want = "array" if json_top is list else "object"
        problems.append(
            f"{label}: top-level JSON {json_type(exchange.value)}, expected an {want} (Spark)"
        )
    return problems


def error_problems(exchange: Exchange, status: int) -> list[str]:
    """An error answer: the HTTP status, the format rules and the ``errors`` document shape."""
    problems = format_problems(exchange, status=status, json_top=list, xml_root="errors")
    if not exchange.parsed:
        return problems
    label = exchange.label
    items = exchange.value
    if not isinstance(items, list) or not items:
        if isinstance(items, list) or exchange.fmt == XML:
            problems.append(f"{label}: the errors document holds no <error>")
        return problems
    for index, item in enumerate(items):
        where = f"{label}: error[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} is a {json_type(item)}, expected an object")
            continue
        missing = [k for k in ("code", "description") if k not in item]
        if missing:
            problems.append(f"{where} lacks {', '.join(missing)} (has {sorted(item)})")
            continue
        code = item["code"]
        if exchange.fmt == JSON:
            if isinstance(code, bool) or not isinstance(code, int):
                problems.append(f"{where}.code is {short(code)}, expected a JSON integer")
        elif not (isinstance(code, str) and code.strip().isdigit()):
            problems.append(f"{where}.code is {short(code)}, expected an integer")
        description = item["description"]
        if not isinstance(description, str) or not description.strip():
            problems.append(f"{where}.description is {short(description)}, expected text")
    return problems


# ---------------------------------------------------------------------------------------
# JSON/XML parity (Spark: containers -> arrays, empty element -> null)


def parity_problems(json_value: Any, xml_value: Any, path: str = "$") -> list[str]:
    """Differences between a JSON value and the Spark value of the same XML document."""
    if isinstance(json_value, dict):
        if xml_value is None and not json_value:
            return []
        if not isinstance(xml_value, dict):
            return [f"{path}: JSON object but XML {_xml_kind(xml_value)}"]
        problems = []
        only_json = sorted(set(json_value) - set(xml_value))
        only_xml = sorted(set(xml_value) - set(json_value))
        if only_json:
            problems.append(f"{path}: only in JSON: {', '.join(only_json)}")
        if only_xml:
            problems.append(f"{path}: only in XML: {', '.join(only_xml)}")
        for key in json_value:
            if key in xml_value:
                problems.extend(parity_problems(json_value[key], xml_value[key], f"{path}.{key}"))
        return problems
    if isinstance(json_value, list):
        if isinstance(xml_value, dict) and len(xml_value) == 1:
            xml_value = list(xml_value.values())  # a one-item container we do not know by name
        if xml_value is None:
            xml_value = []
        if not isinstance(xml_value, list):
            return [f"{path}: JSON array but XML {_xml_kind(xml_value)}"]
        if len(json_value) != len(xml_value):
            return [f"{path}: {len(json_value)} items in JSON, {len(xml_value)} in XML"]
        problems = []
        for index, (j, x) in enumerate(zip(json_value, xml_value, strict=True)):
            problems.extend(parity_problems(j, x, f"{path}[{index}]"))
        return problems
    if isinstance(xml_value, dict | list):
        return [f"{path}: JSON {json_type(json_value)} but XML {_xml_kind(xml_value)}"]
    if json_value is None:
        return [] if xml_value is None else [f"{path}: JSON null but XML {short(xml_value)}"]
    if xml_value is None:
        hint = " (Spark: an empty element is null)" if json_value == "" else ""
        return [f"{path}: JSON {short(json_value)} but XML element is empty{hint}"]
    if isinstance(json_value, bool):
        expected = "true" if json_value else "false"
        ok = xml_value.strip() == expected
    elif isinstance(json_value, int | float):
        try:
            ok = float(xml_value) == float(json_value)
        except ValueError:
            ok = False
    else:
        ok = xml_value == json_value
    return [] if ok else [f"{path}: JSON {short(json_value)} vs XML {short(xml_value)}"]


def _xml_kind(value: Any) -> str:
    if value is None:
        return "empty element"
    if isinstance(value, dict):
        return "element with children"
    if isinstance(value, list):
        return "container"
    return f"text {short(value)}"

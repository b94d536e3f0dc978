"""Test helpers: fetch a resource in both formats, check headers, parity and JSON Schemas; a
webhook receiver on loopback.

The XML side is decoded here with the standard library, independently of ``app.georeport.codec``,
so the server's two renderings are checked against each other, not against themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMAS = Path(__file__).parent / "schemas" / "georeport-v2"
XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
# A valid POST requests form (without its key or jurisdiction) of the test catalogue: a
# pothole at City Hall with its required attributes answered.
POTHOLE_AT_CITY_HALL = {
    "service_code": "POTHOLE",
    "lat": "43.6534",
    "long": "-79.3841",
    "attribute[SIZE]": "SMALL",
    "attribute[DEPTH]": "4",
    "attribute[LANES][]": "N",
}
W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")

# The 17 fields of a service request, in the spec's order (spec digest §9).
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

CONTAINERS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "notes": "note",
    "media_urls": "media_url",
    "photos": "photo",
    "resources": "resource",
    "locales": "locale",
}


def xml_to_value(body: bytes) -> tuple[str, Any]:
    """(root name, value) of a GeoReport XML body: containers become lists, leaves text/None."""
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'), body[:60]
    root = ET.fromstring(body)  # noqa: S314 - parses this server's own response

    def convert(element: ET.Element) -> Any:
        children = list(element)
        if element.tag in CONTAINERS:
            assert all(c.tag == CONTAINERS[element.tag] for c in children), element.tag
            return [convert(c) for c in children]
        if children:
            names = [c.tag for c in children]
            assert len(names) == len(set(names)), f"repeated children in <{element.tag}>"
            return {c.tag: convert(c) for c in children}
        assert not element.attrib, "GeoReport XML has no attributes"
        return element.text if element.text else None

    return root.tag, convert(root)


def assert_parity(json_value: Any, xml_value: Any, path: str = "$") -> None:
    """JSON and XML carry the same content, field for field."""
    if isinstance(json_value, dict):
        assert isinstance(xml_value, dict), path
        assert list(json_value) == list(xml_value), (
            f"{path}: keys {list(json_value)} vs {list(xml_value)}"
        )
        for key in json_value:
            assert_parity(json_value[key], xml_value[key], f"{path}.{key}")
    elif isinstance(json_value, list):
        if not json_value:
            assert xml_value in ([], None), f"{path}: {xml_value!r}"
            return
        assert isinstance(xml_value, list), path
        assert len(json_value) == len(xml_value), path
        for i, (j, x) in enumerate(zip(json_value, xml_value, strict=True)):
            assert_parity(j, x, f"{path}[{i}]")
    elif json_value is None:
        assert xml_value is None, f"{path}: {xml_value!r}"
    elif isinstance(json_value, bool):
        assert xml_value == ("true" if json_value else "false"), f"{path}: {xml_value!r}"
    elif isinstance(json_value, int | float):
        assert xml_value is not None, path
        assert float(xml_value) == float(json_value), f"{path}: {xml_value!r} vs {json_value!r}"
    else:
        assert xml_value == json_value, f"{path}: {xml_value!r} vs {json_value!r}"


@cache
def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        if path.name == "swagger.json":
            continue
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append(
            (path.name, Resource.from_contents(contents, default_specification=DRAFT4))
        )
    return Registry().with_resources(resources)


def _object(schema: dict[str, Any]) -> dict[str, Any]:
    # The community item schemas carry no "type": "object" (see tests/schemas/README.md).
    return {"type": "object", **schema}


def _swagger_definition(name: str) -> dict[str, Any]:
    swagger = json.loads((SCHEMAS / "swagger.json").read_text(encoding="utf-8"))
    schema = swagger["definitions"][name]
    # The spec's own POST example has "account_id": null: let every property be null.
    props = {
        key: {"anyOf": [{k: v for k, v in prop.items() if k != "format"}, {"type": "null"}]}
        for key, prop in schema["properties"].items()
    }
    return {"type": "object", "properties": props, "additionalProperties": False}


def validate_schema(kind: str, value: Any) -> None:
    """Validate a JSON body against the community GeoReport v2 schema for ``kind``."""
    if kind in ("services", "requests"):
        item = "service.json" if kind == "services" else "request.json"
        schema = {"type": "array", "items": _object({"$ref": item})}
        if kind == "services":
            schema["items"] = _object(json.loads((SCHEMAS / "service.json").read_text()))
        else:
            schema["items"] = _object(json.loads((SCHEMAS / "request.json").read_text()))
    elif kind == "service-definition":
        schema = _object(json.loads((SCHEMAS / "service-definition.json").read_text()))
    elif kind == "post":
        schema = {"type": "array", "items": _swagger_definition("RequestResponse")}
    elif kind == "token":
        schema = {"type": "array", "items": _swagger_definition("TokenResponse")}
    else:
        raise ValueError(kind)
    Draft4Validator(
        schema, registry=_registry(), format_checker=Draft4Validator.FORMAT_CHECKER
    ).validate(value)


@dataclass
class Both:
    """A resource fetched in both formats."""

    status: int
    json: Any
    xml_root: str
    xml: Any
    json_response: httpx.Response
    xml_response: httpx.Response


async def fetch_both(
    client: httpx.AsyncClient,
    path: str,
    params: Any = None,
    *,
    method: str = "GET",
    data: Any = None,
    expect: int = 200,
    headers: dict[str, str] | None = None,
) -> Both:
    """Call ``path.json`` and ``path.xml``; check status, exact Content-Type and parity.

    ``path`` is relative to the base path and has no suffix, e.g. ``services``.
    """
    results = {}
    for fmt in ("json", "xml"):
        response = await client.request(
            method, f"/open311/v2/{path}.{fmt}", params=params, data=data, headers=headers
        )
        assert response.status_code == expect, (fmt, response.status_code, response.text[:500])
        assert response.headers["content-type"] == (JSON_TYPE if fmt == "json" else XML_TYPE)
        results[fmt] = response
    json_value = results["json"].json()
    root, xml_value = xml_to_value(results["xml"].content)
    if method == "GET":
        assert_parity(json_value, xml_value)
    return Both(expect, json_value, root, xml_value, results["json"], results["xml"])


def error_descriptions(value: Any) -> list[str]:
    """Descriptions of a JSON error document (checking its shape)."""
    assert isinstance(value, list), value
    assert value, "an error document has at least one error"
    for item in value:
        assert set(item) == {"code", "description"}, item
        assert isinstance(item["code"], int)
        assert isinstance(item["description"], str)
        assert item["description"]
    return [item["description"] for item in value]


RUN_SCRIPT = Path(__file__).parent.parent / "scripts" / "run.sh"


def make_run_default_jurisdiction() -> str:
    """The default jurisdiction ``make run`` serves (read from scripts/run.sh, so a test using
    it tests what make run configures)."""
    found = re.search(
        r'^export OPEN311_DEFAULT_JURISDICTION="\$\{OPEN311_DEFAULT_JURISDICTION:-([^}]+)\}"$',
        RUN_SCRIPT.read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    assert found, "scripts/run.sh no longer sets OPEN311_DEFAULT_JURISDICTION"
    return found.group(1)


# ---------------------------------------------------------------------------------------
# Webhook receiver (the fixture: tests/lifecycle/conftest.py)


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server on 127.0.0.1 that records each request.

    Answers 500 to the first ``fail_first`` requests and to those numbered in ``fail_at`` (all
    when ``always_fail``), else 200;
    ``hold`` keeps requests waiting for an answer until it is set; ``arrived`` is set by the
    first request.
    """

    fail_first: int = 0
    fail_at: frozenset[int] = frozenset()  # these requests (1-based) are answered 500
    always_fail: bool = False
    delay: float = 0.0
    hold: asyncio.Event | None = None
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(method, target, headers, body))
                self.arrived.set()
                if self.hold is not None:
                    await self.hold.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                number = len(self.requests)
                failing = self.always_fail or number <= self.fail_first or number in self.fail_at
                status = "500 Internal Server Error" if failing else "200 OK"
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                    "Connection: close\r\n\r\nok".encode("ascii")
                )
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away (e.g. a cancelled sender)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def get_scope(path: str, query: bytes = b"", client: str = "127.0.0.1") -> dict[str, Any]:
    """The ASGI scope of a GET of ``path?query`` from ``client``, for tests that drive the
    app directly (a reader that stalls, a query longer than httpx builds)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": (client, 50000),
        "server": ("testserver", 80),
    }


def silent_after_request() -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` of a client that sends its (empty) request and then nothing, not
    even a disconnect: it stays connected, as a slow reader does."""
    asked: list[bool] = []

    async def receive() -> dict[str, Any]:
        if not asked:
            asked.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive

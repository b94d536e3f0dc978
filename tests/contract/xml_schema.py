"""Read GeoReport XML by its OpenAPI schema, so XML responses are validated like JSON ones.

Schemathesis validates JSON bodies against the documented schema but has no XML reader. This
one is driven by the schema and its OpenAPI ``xml`` annotations alone (root element name,
wrapped arrays and their item elements): it turns ``<services><service>…`` into the value the
JSON schema describes, converting leaf text by the declared type. It does not use the
server's codec, so the server's XML is checked against the document, not against itself.
Anything the schema does not describe is kept as text, so the validator then rejects it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'

Schema = dict[str, Any]


class XMLShapeError(ValueError):
    """The XML does not have the element structure its schema documents."""


def _resolve(schema: Schema, document: Schema) -> Schema:
    while "$ref" in schema:
        pointer = schema["$ref"]
        assert pointer.startswith("#/"), pointer
        target: Any = document
        for part in pointer[2:].split("/"):
            target = target[part]
        # OpenAPI 3.1 lets keywords such as ``xml`` sit next to ``$ref``; they win.
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _branches(schema: Schema, document: Schema) -> list[Schema]:
    schema = _resolve(schema, document)
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            rest = {k: v for k, v in schema.items() if k != keyword}
            out: list[Schema] = []
            for branch in schema[keyword]:
                out.extend(_branches({**rest, **branch}, document))
            return out
    return [schema]


def _types(schema: Schema) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, list):
        return set(declared)
    if isinstance(declared, str):
        return {declared}
    return set()


def element_name(schema: Schema, document: Schema, default: str | None = None) -> str | None:
    """The element name the schema gives its values (``xml.name``), else ``default``."""
    xml = _resolve(schema, document).get("xml", {})
    name = xml.get("name")
    return str(name) if name else default


def _scalar(text: str, branches: list[Schema]) -> Any:
    kinds = set().union(*(_types(b) for b in branches))
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    if "integer" in kinds:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in kinds:
        try:
            return float(text)
        except ValueError:
            pass
    return text


def decode_element(element: ET.Element, schema: Schema, document: Schema) -> Any:
    """The JSON value of one element, as described by ``schema``."""
    if element.attrib:
        raise XMLShapeError(f"<{element.tag}> has XML attributes; GeoReport XML has none")
    branches = _branches(schema, document)
    children = list(element)
    text = element.text or ""
    if not children and text == "":
        # An empty element is null, or an empty container (Spark convention).
        if any("array" in _types(b) for b in branches):
            return []
        return None
    arrays = [b for b in branches if "array" in _types(b)]
    objects = [b for b in branches if "object" in _types(b) and "properties" in b]
    if children and arrays:
        array = arrays[0]
        if not array.get("xml", {}).get("wrapped"):
            raise XMLShapeError(f"<{element.tag}> is a list the schema does not mark as wrapped")
        items = array.get("items", {})
        item_name = element_name(items, document)
        values = []
        for child in children:
            if item_name is not None and child.tag != item_name:
                raise XMLShapeError(f"<{element.tag}> holds <{child.tag}>, not <{item_name}>")
            values.append(decode_element(child, items, document))
        return values
    if children and text.strip():
        raise XMLShapeError(f"<{element.tag}> mixes text and elements")
    if children:
        names = [child.tag for child in children]
        if len(names) != len(set(names)):
            raise XMLShapeError(f"<{element.tag}> repeats a child element: {names}")
        properties: dict[str, Schema] = objects[0].get("properties", {}) if objects else {}
        return {
            child.tag: decode_element(child, properties.get(child.tag, {}), document)
            for child in children
        }
    return _scalar(text, branches)


def decode_document(body: bytes, schema: Schema, document: Schema) -> Any:
    """The JSON value of a whole XML response body, checking its root element name."""
    if not body.startswith(XML_DECLARATION):
        raise XMLShapeError("the XML declaration with encoding utf-8 is missing")
    root = ET.fromstring(body)  # noqa: S314 - parses this server's own response
    expected = element_name(schema, document)
    if expected is not None and root.tag != expected:
        raise XMLShapeError(f"root element <{root.tag}>, the schema documents <{expected}>")
    return decode_element(root, schema, document)

"""Every example of the document is valid for its schema, in JSON and in XML.

The XML examples are read with ``xml_schema`` (the reader the schemathesis tests use for XML
answers), which this module also checks against malformed documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.contract.xml_schema import XMLShapeError, decode_document

pytestmark = pytest.mark.contract

DOCUMENT: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "openapi" / "openapi.json").read_text(encoding="utf-8")
)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    # The media type schema refers to #/components/...: give it the document's components.
    return Draft202012Validator(
        {**schema, "components": DOCUMENT["components"]}, format_checker=FormatChecker()
    )


def _documented_examples() -> list[tuple[str, str, dict[str, Any], Any]]:
    found = []
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for media, content in response.get("content", {}).items():
                    for name, example in content.get("examples", {}).items():
                        label = f"{method.upper()} {path} {status} {media} {name}"
                        found.append((label, media, content["schema"], example["value"]))
    return found


EXAMPLES = _documented_examples()


def test_every_response_example_is_valid_in_both_formats() -> None:
    media_types = {media for _, media, _, _ in EXAMPLES}
    assert media_types == {"application/json", "text/xml"}
    for label, media, schema, value in EXAMPLES:
        if media == "text/xml":
            value = decode_document(value.encode("utf-8"), schema, DOCUMENT)
        errors = [e.message for e in _validator(schema).iter_errors(value)]
        assert not errors, (label, errors)


def test_xml_and_json_examples_carry_the_same_document() -> None:
    by_label = {label: (media, schema, value) for label, media, schema, value in EXAMPLES}
    pairs = 0
    for label, (media, schema, value) in by_label.items():
        if media != "text/xml":
            continue
        json_label = label.replace(" text/xml ", " application/json ")
        decoded = decode_document(value.encode("utf-8"), schema, DOCUMENT)
        assert decoded == _without_empty_lists(by_label[json_label][2]), label
        pairs += 1
    assert pairs >= 10


def _without_empty_lists(value: Any) -> Any:
    # Spark: an empty list and a null are both an empty element in XML.
    if isinstance(value, dict):
        return {k: _without_empty_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_empty_lists(v) for v in value]
    return value


def test_post_body_examples_are_valid_forms() -> None:
    body = DOCUMENT["paths"]["/open311/v2/requests.{format}"]["post"]["requestBody"]["content"]
    for media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        validator = _validator(body[media]["schema"])
        for name, example in body[media]["examples"].items():
            errors = [e.message for e in validator.iter_errors(example["value"])]
            assert not errors, (media, name, errors)


SERVICES = DOCUMENT["paths"]["/open311/v2/services.{format}"]["get"]["responses"]["200"]
SERVICES_XML = SERVICES["content"]["text/xml"]["schema"]
HEAD = b'<?xml version="1.0" encoding="utf-8"?>'


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<services/>", "declaration"),
        (HEAD + b"<service_list/>", "root element"),
        (HEAD + b"<services><item/></services>", "not <service>"),
        (
            HEAD + b"<services><service><type>batch</type><type>x</type></service></services>",
            "repeats",
        ),
        (HEAD + b'<services><service code="x"/></services>', "attributes"),
    ],
)
def test_xml_reader_refuses_other_shapes(body: bytes, problem: str) -> None:
    with pytest.raises(XMLShapeError, match=problem):
        decode_document(body, SERVICES_XML, DOCUMENT)


def test_xml_reader_types_leaves_by_the_schema() -> None:
    body = HEAD + (
        b"<services><service><service_code>001</service_code><service_name>Pothole"
        b"</service_name><description/><metadata>true</metadata><type>realtime</type>"
        b"<keywords/><group>Streets</group></service></services>"
    )
    assert decode_document(body, SERVICES_XML, DOCUMENT) == [
        {
            "service_code": "001",
            "service_name": "Pothole",
            "description": None,
            "metadata": True,
            "type": "realtime",
            "keywords": None,
            "group": "Streets",
        }
    ]
    assert decode_document(HEAD + b"<services/>", SERVICES_XML, DOCUMENT) == []

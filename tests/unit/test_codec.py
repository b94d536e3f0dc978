"""The Spark codec: encode/decode round trips and XML safety."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.georeport import codec
from app.georeport.codec import decode_xml, encode_json, encode_xml, escape_text
from tests.support import assert_parity, xml_to_value

DOCUMENTS = [
    ("services", []),
    (
        "services",
        [
            {
                "service_code": "A.1",
                "service_name": 'Straße <b> & "q"',
                "description": None,
                "metadata": True,
                "type": "realtime",
                "keywords": "a, b",
                "group": None,
            }
        ],
    ),
    (
        "service_definition",
        {
            "service_code": "X",
            "attributes": [
                {
                    "variable": True,
                    "code": "L",
                    "datatype": "multivaluelist",
                    "required": False,
                    "datatype_description": None,
                    "order": 1,
                    "description": "d",
                    "values": [{"key": "1", "name": "one"}],
                }
            ],
        },
    ),
    ("service_definition", {"service_code": "X", "attributes": []}),
    (
        "discovery",
        {
            "changeset": "2024-01-01T00:00:00+00:00",
            "contact": "c",
            "key_service": "k",
            "endpoints": [
                {
                    "specification": "http://wiki.open311.org/GeoReport_v2",
                    "url": "http://x/open311/v2",
                    "changeset": "2024-01-01T00:00:00+00:00",
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
    ),
    ("service_requests", [{"service_request_id": "1", "lat": 43.5, "long": -79.25, "x": None}]),
    ("errors", [{"code": 400, "description": "bad"}]),
]


@pytest.mark.parametrize(("root", "value"), DOCUMENTS)
def test_round_trip(root: str, value: object) -> None:
    xml = encode_xml(root, value)
    assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    decoded_root, decoded = decode_xml(xml)
    assert decoded_root == root
    assert decoded == value
    assert orjson.loads(encode_json(value)) == value
    # An independent stdlib reading of the XML matches the JSON field for field.
    std_root, std_value = xml_to_value(xml)
    assert std_root == root
    assert_parity(value, std_value)


def test_empty_container_is_self_closing() -> None:
    assert encode_xml("service_requests", []).endswith(b"<service_requests/>")


def test_escaping_and_invalid_characters() -> None:
    assert escape_text("a<b>&c") == "a&lt;b&gt;&amp;c"
    xml = encode_xml("errors", [{"code": 400, "description": "bell\x07 <script>"}])
    _, value = decode_xml(xml)
    assert value == [{"code": 400, "description": "bell\ufffd <script>"}]


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        encode_xml("service_requests", [{"lat": math.nan}])


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<errors>&e;</errors>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<errors>&b;</errors>",
        b"<errors><error>",
    ],
)
def test_hostile_xml_is_rejected(payload: bytes) -> None:
    with pytest.raises(ValueError, match=r"DOCTYPE|malformed"):
        decode_xml(payload)


def test_decode_tolerates_default_namespace() -> None:
    xml = (
        b'<services xmlns="http://wiki.open311.org/GeoReport_v2"><service>'
        b"<service_code>A</service_code><metadata>false</metadata></service></services>"
    )
    assert decode_xml(xml) == ("services", [{"service_code": "A", "metadata": False}])


# --- list documents: the templated item writers against the leaf-by-leaf reference ---------

_TEXT = st.one_of(
    st.sampled_from(["", "open", "Queen & King", "a<b>c", "x\r\ny", "nan", "inf", "\ufffe", "é"]),
    st.text(max_size=12),  # any code point, lone surrogates and controls among them
)
_LEAF = st.one_of(
    st.none(),
    _TEXT,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.booleans(),
    st.lists(_TEXT, max_size=2),
    st.fixed_dictionaries({"ward": _TEXT}),
)
_KEYS = st.sampled_from([("service_request_id", "status", "lat"), ("a", "b"), ("c-d", "e.f")])


@st.composite
def _items(draw: st.DrawFn) -> list[dict[str, object]]:
    keys = draw(_KEYS)
    items: list[dict[str, object]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        order = draw(st.permutations(keys)) if draw(st.booleans()) else keys
        items.append({key: draw(_LEAF) for key in order})
    return items


def _reference(root: str, items: list[dict[str, object]]) -> bytes:
    out = [codec.XML_DECLARATION, f"<{root}>"]
    for item in items:
        codec._write(out, codec.CONTAINER_ITEMS[root], item)
    out.append(f"</{root}>")
    return "".join(out).encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(_items())
def test_list_documents_match_the_reference_writer(items: list[dict[str, object]]) -> None:
    try:
        expected: bytes | None = _reference("service_requests", items)
    except ValueError:
        expected = None  # a non-finite number: refused
    if expected is None:
        with pytest.raises(ValueError, match="non-finite"):
            encode_xml("service_requests", items)
    else:
        assert encode_xml("service_requests", items) == expected
